"""snncc train end to end, checkpoints (resume == uninterrupted), NaN handling, missing data."""

import json

import numpy as np
import pytest

import snncc
from snncc import init, neurons
from snncc.cli import main
from snncc.data import SpikeDataset
from snncc.experiment import TrainConfig, load_data
from tests.test_data import write_idx


def test_snncc_train_one_epoch_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--epochs", "1", "--neurons", "32", "--out", str(out), "--no-progress"])
    assert rc == 0
    for name in (
        "config.json",
        "metrics.jsonl",
        "metrics.csv",
        "checkpoint.snncc",
        "learning_curves.png",
        "raster.png",
        "readout.png",
    ):
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["dataset"] == "digits" and cfg["neurons"] == 32 and cfg["model"] == "alif"
    epoch, test = (json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines())
    assert epoch["epoch"] == 1 and 0.0 <= epoch["val_accuracy"] <= 1.0
    assert epoch["epoch_s"] > 0 and epoch["examples_per_s"] > 0
    assert 0.0 <= test["test_accuracy"] <= 1.0 and "epoch" not in test
    assert "test accuracy" in capsys.readouterr().out


def test_missing_dataset_directory_gives_instructions(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--dataset",
            "shd",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "shd_train.h5" in err and "--data-dir" in err


def _numbered_mnist(folder, n_train=40, n_test=6):
    """MNIST idx files whose image i has one saturated pixel, number 100 + i, and label i % 10:
    the step of its spikes tells which image an example is."""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28 * 28), np.uint8)
        images[np.arange(n), 100 + np.arange(n)] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images=images.reshape(n, 28, 28))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels=np.arange(n) % 10)


def _image_numbers(ds, steps_per_pixel: int) -> list[int]:
    """Which image each example is: pixel 100 + i = 255 makes the "up" threshold crossings
    (inputs 41..78, tonic's SMNIST) on the step into that pixel, pixel 99 + i."""
    numbers = []
    for x in ds.x:
        steps = np.flatnonzero(x[:, 41:79].all(axis=1))
        assert len(steps) == steps_per_pixel and x.sum() == steps_per_pixel * (38 + 1 + 38)
        numbers.append(int(steps[0]) // steps_per_pixel - 99)
    return numbers


@pytest.mark.parametrize("steps", [1, 2])
def test_train_subset_takes_the_first_images_and_pixel_steps_sets_the_encoding(tmp_path, steps):
    data = tmp_path / "mnist"
    _numbered_mnist(data)
    cfg = TrainConfig(
        dataset="smnist", data_dir=str(data), train_subset=20, validation=0.25, pixel_steps=steps
    )
    train, val, test = load_data(cfg)
    assert train.n_steps == val.n_steps == test.n_steps == 784 * steps
    assert len(train) == 15 and len(val) == 5
    assert sorted(_image_numbers(train, steps) + _image_numbers(val, steps)) == list(range(20))
    assert _image_numbers(test, steps) == list(range(6))  # the test set stays whole
    assert list(train.y) == [i % 10 for i in _image_numbers(train, steps)]


def test_snncc_train_with_a_subset_and_one_step_per_pixel(tmp_path, capsys):
    data, run = tmp_path / "mnist", tmp_path / "run"
    _numbered_mnist(data)
    common = ["--neurons", "8", "--batch-size", "8", "--no-progress"]
    argv = ["--dataset", "smnist", "--data-dir", str(data), "--pixel-steps", "1"]
    argv += ["--train-subset", "20", "--validation", "0.25", "--epochs", "1", "--out", str(run)]
    assert main(["train", *argv, *common]) == 0
    said = capsys.readouterr().out
    assert "n=15, n_steps=784" in said and "validating on 5" in said
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train_subset"] == 20 and cfg["pixel_steps"] == 1
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("epoch") for r in rows] == [1, None, 2, None]
    # the embedded digits take --train-subset too (they have no pixels to step through)
    digits = ["--train-subset", "40", "--validation", "0.25", "--epochs", "0"]
    assert main(["train", *digits, "--out", str(tmp_path / "digits"), *common]) == 0
    assert "n=30, n_steps=" in capsys.readouterr().out


def test_a_run_of_every_model_and_rule_resumes(tmp_path):
    run = tmp_path / "run"
    tiny = ["--neurons", "8", "--no-progress", "--validation", "0"]
    assert (
        main(
            [
                "train",
                "--model",
                "adlif",
                "--rule",
                "bptt",
                "--epochs",
                "0",
                "--out",
                str(run),
                *tiny,
            ]
        )
        == 0
    )
    assert main(["train", "--resume", str(run), "--epochs", "1", "--no-progress"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "adlif" and cfg["rule"] == "bptt"
    assert snncc.load(run / "checkpoint.snncc").progress["epoch"] == 1


def test_tau_a_and_refractory_reach_the_neurons(tmp_path):
    run = tmp_path / "run"
    flags = ["--model", "adlif", "--tau-a", "150", "--refractory", "0", "--epochs", "0"]
    assert main(["train", *flags, "--neurons", "8", "--no-progress", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["tau_a"] == 150.0 and cfg["refractory"] == 0.0
    model = snncc.load(run / "checkpoint.snncc")
    np.testing.assert_array_equal(model.params["hidden.tau_w"], np.full(8, 150, np.float32))
    assert model.net.populations["hidden"].model.refractory == 0.0
    alif = tmp_path / "alif"
    assert (
        main(
            [
                "train",
                "--refractory",
                "3",
                "--epochs",
                "0",
                "--neurons",
                "8",
                "--no-progress",
                "--out",
                str(alif),
            ]
        )
        == 0
    )
    model = snncc.load(alif / "checkpoint.snncc")
    assert model.net.populations["hidden"].model.refractory == 3.0
    np.testing.assert_array_equal(model.params["hidden.tau_a"], np.full(8, 200, np.float32))


def _small(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((40, 30, 12)) < 0.15).astype(np.uint8)
    y = rng.integers(0, 3, 40)
    return SpikeDataset(x, y, n_classes=3, name="tiny")


def _model(lr=5e-3):
    net = snncc.Network(dt=1.0, seed=1)
    inp = net.add_input("input", 12)
    hid = net.add_population("hidden", 20, neurons.ALIF(tau_a=100.0))
    out = net.add_population("output", 3, neurons.LeakyIntegrator())
    net.connect(inp, hid, name="in_hid", weight=init.Normal(0, 0.5))
    net.connect(hid, hid, name="hid_hid", weight=init.Normal(0, 0.2), allow_self=False)
    net.connect(hid, out, name="hid_out", weight=init.Normal(0, 0.3))
    return snncc.compile(
        net,
        batch_size=8,
        rule=snncc.rules.EProp(readout="output", c_reg=1e-3),
        optimizer=snncc.optim.Adam(lr),
    )


def test_save_load_continue_equals_uninterrupted_training(tmp_path):
    data = _small()
    straight = _model()
    straight.fit(data, epochs=3, seed=7, progress=False)
    first = _model()
    first.fit(data, epochs=1, seed=7, progress=False, checkpoint=str(tmp_path / "c.snncc"))
    resumed = snncc.load(tmp_path / "c.snncc")
    assert resumed.progress["epoch"] == 1 and resumed.step == first.step
    resumed.fit(data, epochs=2, seed=7, progress=False)
    for name in ("in_hid", "hid_hid", "hid_out"):
        np.testing.assert_array_equal(resumed.weights[name], straight.weights[name])
    assert resumed.step == straight.step


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    data = _small()
    model = _model()
    ckpt = tmp_path / "c.snncc"
    model.fit(data, epochs=1, progress=False, checkpoint=str(ckpt))
    good = ckpt.read_bytes()
    model.optimizer.lr = 1e38  # the next step blows the weights up: inf, then NaN
    with pytest.raises(snncc.TrainingError, match="NaN or infinite") as err:
        model.fit(data, epochs=1, progress=False, checkpoint=str(ckpt))
    assert f"The last good checkpoint is {ckpt} (after epoch 1)" in str(err.value)
    assert ckpt.read_bytes() == good
    back = snncc.load(ckpt)
    assert back.progress["epoch"] == 1
    assert all(np.isfinite(back.weights[k]).all() for k in ("in_hid", "hid_hid", "hid_out"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    import os

    model = _model()
    ckpt = tmp_path / "c.snncc"
    model.save(ckpt)
    before = ckpt.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk died mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        model.save(ckpt)
    assert ckpt.read_bytes() == before  # the old checkpoint is intact
