"""Tests for snncc.data: binning, batching, cache, tonic-backed loaders (on synthetic files),
missing-data errors (without any network access) and the embedded digits dataset."""

from __future__ import annotations

import gzip
import struct
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest

import snncc.data as D
from snncc.data import core, digits, tonic_sets

# --------------------------------------------------------------------------------------------
# fixtures / helpers


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to download fails loudly."""

    def boom(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", boom)
    try:
        import tonic.download_utils as du
    except ImportError:  # pragma: no cover
        return
    for fn in ("download_url", "download_and_extract_archive", "_urlretrieve"):
        monkeypatch.setattr(du, fn, boom)
    import tonic.datasets.s_mnist as sm

    monkeypatch.setattr(sm, "download_and_extract_archive", boom)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(core.CACHE_ENV, str(d))
    return d


def write_hsd(path: Path, times_s, units, labels, n_keys: int) -> None:
    """A small file with the real SHD/SSC layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        ft = f.create_dataset("spikes/times", (len(times_s),), dtype=h5py.vlen_dtype(np.float32))
        fu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(zip(times_s, units, strict=True)):
            ft[i] = np.asarray(t, np.float32)
            fu[i] = np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"k{i}".encode() for i in range(n_keys)]))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), np.uint16))


# times in seconds, chosen away from bin edges (tonic truncates to integer microseconds)
HSD_TIMES = [[0.0002, 0.0105, 0.0107, 0.0301], [0.0055], [0.0], [0.0421, 0.0031]]
HSD_UNITS = [[0, 699, 699, 5], [42], [1], [7, 8]]
HSD_LABELS = [3, 19, 0, 7]


def write_idx(path: Path, images: np.ndarray | None = None, labels=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if images is not None:
        data = struct.pack(">IIII", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes()
    else:
        data = struct.pack(">II", 2049, len(labels)) + np.asarray(labels, np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def smnist_images() -> tuple[np.ndarray, np.ndarray]:
    imgs = np.zeros((3, 28, 28), np.uint8)
    imgs[0].flat[100] = 255  # one saturated pixel
    imgs[1].flat[300:303] = 128
    return imgs, np.array([7, 1, 4])


# --------------------------------------------------------------------------------------------
# bin_events


def test_bin_events_hand_example():
    times = [0.0, 0.4, 1.0, 2.5, 2.7, 9.0]
    units = [0, 1, 0, 2, 2, 1]
    x = D.bin_events(times, units, n_units=3, dt=1.0)
    expected = np.zeros((10, 3), np.uint8)
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[2, 2] = expected[9, 1] = 1
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, expected)  # two events at (2, unit 2) count once
    # fixed n_steps drops late events / pads
    np.testing.assert_array_equal(D.bin_events(times, units, 3, 1.0, n_steps=3), expected[:3])
    assert D.bin_events(times, units, 3, 1.0, n_steps=12)[10:].sum() == 0
    # dt = 2 merges bins
    x2 = D.bin_events(times, units, 3, 2.0)
    assert x2.shape == (5, 3)
    assert x2[0].tolist() == [1, 1, 0] and x2[1].tolist() == [0, 0, 1] and x2[4, 1] == 1
    # no floating-point surprises at exact bin edges
    assert D.bin_events([0.3], [0], 1, 0.1).shape == (4, 1)
    assert D.bin_events([], [], 4, 1.0).shape == (0, 4)


def test_bin_events_rejects_bad_input():
    with pytest.raises(ValueError):
        D.bin_events([1.0], [3], n_units=3, dt=1.0)
    with pytest.raises(ValueError):
        D.bin_events([-1.0], [0], n_units=3, dt=1.0)
    with pytest.raises(ValueError):
        D.bin_events([1.0, 2.0], [0], n_units=3, dt=1.0)


# --------------------------------------------------------------------------------------------
# SpikeDataset


def make_ds(n=23, T=5, n_in=3, n_classes=4) -> D.SpikeDataset:
    rng = np.random.default_rng(0)
    x = (rng.random((n, T, n_in)) < 0.3).astype(np.uint8)
    x[:, 0, 0] = np.arange(n) % 2  # not needed, just non-trivial
    y = np.arange(n) % n_classes
    return D.SpikeDataset(x, y, n_classes=n_classes, name="toy")


def test_from_events_padding():
    events = [(np.array([0.5, 3.2]), np.array([0, 1])), (np.array([1.0]), np.array([2]))]
    ds = D.SpikeDataset.from_events(events, [1, 0], n_inputs=3, dt=1.0, n_classes=2, name="p")
    assert ds.x.shape == (2, 4, 3) and ds.n_steps == 4 and ds.n_inputs == 3
    assert ds.x[0, 0, 0] == 1 and ds.x[0, 3, 1] == 1 and ds.x[1, 1, 2] == 1
    assert ds.x[1, 2:].sum() == 0  # zero padding
    ds6 = D.SpikeDataset.from_events(events, [1, 0], n_inputs=3, dt=1.0, n_steps=6)
    assert ds6.x.shape == (2, 6, 3) and ds6.x.sum() == 3
    ds2 = D.SpikeDataset.from_events(events, [1, 0], n_inputs=3, dt=1.0, n_steps=2)
    assert ds2.x.sum() == 2  # the event at 3.2 ms is dropped
    assert ds.y.dtype == np.int64 and ds.x.dtype == np.uint8
    assert "n=2" in repr(ds) and "n_inputs=3" in repr(ds)


def test_batches_deterministic_and_complete():
    ds = make_ds()
    orders = {}
    for seed, epoch in [(1, 0), (1, 1), (2, 0)]:
        ys = [yb for _, yb in ds.batches(5, seed=seed, epoch=epoch)]
        again = [yb for _, yb in ds.batches(5, seed=seed, epoch=epoch)]
        assert all(np.array_equal(a, b) for a, b in zip(ys, again, strict=True))
        assert [len(b) for b in ys] == [5, 5, 5, 5, 3]
        orders[seed, epoch] = ds.epoch_order(True, seed, epoch)
        assert sorted(orders[seed, epoch].tolist()) == list(range(len(ds)))
    assert not np.array_equal(orders[1, 0], orders[1, 1])
    assert not np.array_equal(orders[1, 0], orders[2, 0])
    # x and y stay paired, every example exactly once
    seen = []
    for xb, yb in ds.batches(4, seed=3, epoch=5):
        for xi, yi in zip(xb, yb, strict=True):
            i = next(j for j in range(len(ds)) if np.array_equal(ds.x[j], xi) and ds.y[j] == yi)
            seen.append(i)
    assert len(seen) == len(ds)
    # drop_last and no shuffling
    assert [len(b) for _, b in ds.batches(5, drop_last=True)] == [5, 5, 5, 5]
    assert ds.n_batches(5) == 5 and ds.n_batches(5, drop_last=True) == 4
    flat = np.concatenate([yb for _, yb in ds.batches(5, shuffle=False)])
    np.testing.assert_array_equal(flat, ds.y)


def test_split_subset_save_load(tmp_path):
    ds = make_ds(n=40)
    a, b = ds.split(0.25, seed=0)
    assert len(a) == 30 and len(b) == 10
    assert sorted(np.bincount(b.y, minlength=4).tolist()) == [2, 2, 3, 3]
    a2, b2 = ds.split(0.25, seed=0)
    np.testing.assert_array_equal(b.x, b2.x)
    assert a.n_classes == ds.n_classes == 4
    sub = ds.subset(7)
    assert len(sub) == 7 and np.array_equal(sub.x, ds.x[:7])
    assert np.array_equal(ds.subset([3, 1]).y, ds.y[[3, 1]])
    ds.save(tmp_path / "d.npz")
    back = D.SpikeDataset.load(tmp_path / "d.npz")
    assert np.array_equal(back.x, ds.x) and np.array_equal(back.y, ds.y)
    assert back.name == "toy" and back.n_classes == 4
    assert list(tmp_path.iterdir()) == [tmp_path / "d.npz"]  # no temp files left behind


# --------------------------------------------------------------------------------------------
# SHD / SSC


def test_shd_loader_bins_and_cache(tmp_path, cache_dir, monkeypatch):
    data = tmp_path / "data"
    write_hsd(data / "shd_train.h5", HSD_TIMES, HSD_UNITS, HSD_LABELS, 20)
    calls = []
    real = tonic_sets.SpikeDataset.from_events
    monkeypatch.setattr(
        tonic_sets.SpikeDataset,
        "from_events",
        classmethod(lambda cls, *a, **k: calls.append(1) or real(*a, **k)),
    )
    ds = D.load_shd(data, "train", dt=1.0)
    assert ds.x.shape == (4, 43, 700) and ds.n_classes == 20 and ds.n_inputs == 700
    assert ds.y.tolist() == HSD_LABELS
    expected = np.zeros((4, 43, 700), np.uint8)
    for i, (ts, us) in enumerate(zip(HSD_TIMES, HSD_UNITS, strict=True)):
        for t, u in zip(ts, us, strict=True):
            expected[i, int(t * 1000), u] = 1
    np.testing.assert_array_equal(ds.x, expected)
    assert len(calls) == 1 and len(list(cache_dir.glob("shd-train-*.npz"))) == 1

    # second load: from the cache, tonic is not touched
    import tonic.datasets

    with monkeypatch.context() as m:
        m.setattr(tonic.datasets.SHD, "__init__", None)
        again = D.load_shd(data, "train", dt=1.0)
    np.testing.assert_array_equal(again.x, ds.x)
    assert len(calls) == 1

    # other conversion parameters -> another cache entry
    coarse = D.load_shd(data, "train", dt=10.0, n_steps=3)
    assert len(calls) == 2
    assert coarse.x.shape == (4, 3, 700) and coarse.x[0, 1, 699] == 1
    assert coarse.x[3].sum() == 1 and coarse.x[3, 0, 8] == 1  # 42.1 ms is past 3 bins
    assert len(list(cache_dir.glob("shd-train-*.npz"))) == 2
    assert len(D.load_shd(data, "train", limit=2, cache=False)) == 2


def test_shd_accepts_gz_and_tonic_layout(tmp_path, cache_dir):
    data = tmp_path / "data"
    write_hsd(tmp_path / "raw.h5", HSD_TIMES, HSD_UNITS, HSD_LABELS, 20)
    data.mkdir()
    (data / "shd_test.h5.gz").write_bytes(gzip.compress((tmp_path / "raw.h5").read_bytes()))
    ds = D.load("shd", data, split="test", cache=False)
    assert ds.x.shape == (4, 43, 700) and ds.name == "shd/test"
    tonic_layout = tmp_path / "t"
    write_hsd(tonic_layout / "SHD" / "shd_train.h5", HSD_TIMES, HSD_UNITS, HSD_LABELS, 20)
    ds2 = D.load_shd(tonic_layout, cache=False)
    np.testing.assert_array_equal(ds2.x, ds.x)
    # the .gz was unpacked into the cache; the tonic layout was used in place
    assert len(list((cache_dir / "sources").iterdir())) == 1


def test_ssc_loader_valid_split(tmp_path, cache_dir):
    data = tmp_path / "data"
    write_hsd(data / "ssc_valid.h5", HSD_TIMES, HSD_UNITS, [34, 0, 1, 2], 35)
    ds = D.load_ssc(data, "valid", dt=2.0)
    assert ds.x.shape == (4, 22, 700) and ds.n_classes == 35 and ds.y[0] == 34
    assert ds.x[0, 5, 699] == 1 and ds.x[0, 15, 5] == 1
    with pytest.raises(D.DatasetNotFoundError, match="ssc_train.h5"):
        D.load_ssc(data, "train")
    with pytest.raises(ValueError, match="split"):
        D.load_shd(data, "valid")


# --------------------------------------------------------------------------------------------
# SMNIST


@pytest.mark.parametrize("gz", [False, True])
def test_smnist_loader(tmp_path, cache_dir, gz):
    data = tmp_path / "data"
    imgs, labels = smnist_images()
    sfx = ".gz" if gz else ""
    write_idx(data / f"t10k-images-idx3-ubyte{sfx}", images=imgs)
    write_idx(data / f"t10k-labels-idx1-ubyte{sfx}", labels=labels)
    ds = D.load_smnist(data, "test")
    assert ds.x.shape == (3, 1568, 79) and ds.n_inputs == 79 and ds.n_classes == 10
    assert ds.y.tolist() == labels.tolist()
    x = ds.x[0]
    # pixel 100 = 255: "up" crossings (units 41..78) on the 99 -> 100 transition, i.e. steps
    # 198, 199 (duplicate=True); "255" neuron (unit 0) at pixel 100 = steps 200, 201; "down"
    # crossings (units 2..39) on the 100 -> 101 transition = steps 200, 201.
    assert x[198:200, 41:79].all() and x[200:202, 0].all() and x[200:202, 2:40].all()
    assert x.sum() == 2 * (38 + 1 + 38)
    assert ds.x[2].sum() == 0  # blank image
    assert len(D.load_smnist(data, "test", limit=2, duplicate=False)) == 2
    half = D.load_smnist(data, "test", limit=1, duplicate=False, cache=False)
    assert half.n_steps == 784 and half.x[0, 99, 41:79].all()


def test_smnist_missing_files(tmp_path, cache_dir):
    data = tmp_path / "data"
    write_idx(data / "train-images-idx3-ubyte", images=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.load("smnist", data)
    msg = str(e.value)
    assert "train-labels-idx1-ubyte" in msg and str(data) in msg
    assert "train-images-idx3-ubyte and" not in msg  # the images file is there
    assert "dataset-fashion-mnist" in msg and f"--data-dir {data}" in msg


# --------------------------------------------------------------------------------------------
# errors without network


def test_missing_data_errors(tmp_path, cache_dir):
    for name in ("shd", "ssc", "smnist"):
        with pytest.raises(D.DatasetNotFoundError, match="--data-dir"):
            D.load(name)
    with pytest.raises(D.DatasetNotFoundError, match="does not exist"):
        D.load_shd(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.load_shd(empty, "test")
    msg = str(e.value)
    assert "shd_test.h5" in msg and str(empty) in msg and "https://zenkelab.org/datasets/" in msg
    assert f"--data-dir {empty}" in msg
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(ValueError, match="digits, shd, ssc, smnist"):
        D.load("cifar")
    assert not cache_dir.exists()  # nothing converted, nothing staged


def test_tonic_download_is_refused(tmp_path):
    import tonic.datasets

    cls = tonic_sets._no_download(tonic.datasets.SHD, check_exists=True)
    assert cls.__name__ == "SHD"
    with pytest.raises(D.DatasetNotFoundError, match="never downloads"):
        cls(save_to=str(tmp_path), train=True)
    cls = tonic_sets._no_download(tonic.datasets.SMNIST, check_exists=False)
    with pytest.raises(D.DatasetNotFoundError, match="never downloads"):
        cls(save_to=str(tmp_path), train=False)


# --------------------------------------------------------------------------------------------
# embedded digits


def test_digits():
    tr = D.load_digits("train")
    te = D.load("digits", split="test")
    assert tr.n_inputs == te.n_inputs <= 128 and tr.n_steps == te.n_steps <= 100
    assert tr.x.dtype == np.uint8 and tr.x.max() == 1 and tr.n_classes == 10
    assert len(tr) + len(te) == 1797 and len(te) == 360
    assert set(tr.y.tolist()) == set(range(10)) == set(te.y.tolist())
    again = D.load_digits("train")
    np.testing.assert_array_equal(again.x, tr.x)
    np.testing.assert_array_equal(again.y, tr.y)
    i_tr, i_te = digits.split_indices(seed=0)
    assert not set(i_tr.tolist()) & set(i_te.tolist())
    assert len(set(i_tr.tolist()) | set(i_te.tolist())) == 1797
    other = D.load_digits("train", seed=1)
    assert not np.array_equal(other.y, tr.y)
    with pytest.raises(ValueError):
        D.load_digits("valid")
