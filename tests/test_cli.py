"""The ``snncc`` command line: ``inspect`` writes sources, plan and discrete updates."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jinja2
import pytest

import snncc
from snncc import cli

REPO = Path(__file__).resolve().parents[1]

ALIF_SPEC = """
import numpy as np
import snncc
from snncc import init, neurons

net = snncc.Network(dt=1.0, seed=0)
inp = net.add_input("input", 10)
hid = net.add_population(
    "hidden", 16, neurons.ALIF(tau_m=np.linspace(10.0, 30.0, 16), tau_a=200.0, refractory=3.0)
)
out = net.add_population("output", 3, neurons.LeakyIntegrator(tau=20.0))
net.connect(inp, hid, name="in_hid", weight=init.Normal(0.0, 0.3))
net.connect(hid, hid, name="hid_hid", weight=init.Normal(0.0, 0.1), allow_self=False)
net.connect(hid, out, name="hid_out", weight=init.Normal(0.0, 0.1))

if __name__ == "__main__":
    raise RuntimeError("the __main__ block of a spec must not run under snncc inspect")
"""


def write_spec(tmp_path: Path, text: str, name: str = "spec.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_inspect_writes_sources_plan_and_updates(tmp_path, capsys):
    spec = write_spec(tmp_path, ALIF_SPEC)
    out = tmp_path / "gen"
    assert cli.main(["inspect", str(spec), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "network.cpp" in names
    assert {"plan.txt", "update_hidden.txt", "update_output.txt"} <= set(names)
    assert "update_input.txt" not in names  # an input population has no discrete update

    # every written file is listed
    printed = capsys.readouterr().out
    assert f"wrote {len(names)} files to {out}" in printed
    for name in names:
        assert str(out / name) in printed

    # the ALIF equations appear in the generated source as comments
    src = (out / "network.cpp").read_text()
    comments = "\n".join(ln.split("//", 1)[1] for ln in src.splitlines() if "//" in ln)
    for eq in ["dv/dt = -v / tau_m", "da/dt = -a / tau_a", "reset: v = v - v_th"]:
        assert eq in comments, eq
    assert "population 'hidden' (16 x ALIF)" in comments

    plan = (out / "plan.txt").read_text()
    assert plan.startswith("KernelPlan") and "batch 32" in plan
    assert "population hidden (16 x ALIF) <- in_hid, hid_hid" in plan
    assert "hidden_p_v_decay [16]" in plan  # heterogeneous tau_m: per-neuron constant

    upd = (out / "update_hidden.txt").read_text()
    assert upd.startswith("DiscreteUpdate of ALIF (integration: exact)")
    assert "const v_decay = exp(-dt/tau_m)" in upd and "_refrac" in upd


def test_inspect_sources_equal_generate(tmp_path):
    spec = write_spec(tmp_path, ALIF_SPEC)
    out = tmp_path / "gen"
    assert cli.main(["inspect", str(spec), "--out", str(out), "--batch-size", "4"]) == 0
    net = cli.load_spec(spec)
    for name, text in snncc.generate(net, "cpu", 4).items():
        assert (out / name).read_text() == text
    assert "batch 4" in (out / "plan.txt").read_text()


def test_inspect_plan_flag_prints_the_plan(tmp_path, capsys):
    spec = write_spec(tmp_path, ALIF_SPEC)
    assert cli.main(["inspect", str(spec), "--out", str(tmp_path / "o"), "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "KernelPlan" in printed and "DiscreteUpdate of ALIF" in printed


def test_inspect_cuda(tmp_path):
    spec = write_spec(tmp_path, ALIF_SPEC)
    try:
        expected = snncc.generate(cli.load_spec(spec), "cuda", 32)
    except jinja2.TemplateNotFound:
        pytest.skip("CUDA templates not written yet")
    out = tmp_path / "cuda"
    assert cli.main(["inspect", str(spec), "--backend", "cuda", "--out", str(out)]) == 0
    for name, text in expected.items():
        assert (out / name).read_text() == text
    assert any(name.endswith(".cu") for name in expected)
    assert (out / "plan.txt").exists()


def test_spec_can_import_its_neighbours(tmp_path):
    write_spec(tmp_path, "SIZE = 7\n", name="sizes.py")
    spec = write_spec(
        tmp_path,
        """
        import snncc
        from sizes import SIZE
        net = snncc.Network()
        net.add_input("inp", SIZE)
        net.add_population("p", SIZE, snncc.neurons.LIF())
        net.connect("inp", "p", weight=0.1)
        """,
    )
    assert cli.load_spec(spec).populations["p"].size == 7
    assert str(tmp_path) not in sys.path  # the spec's folder is taken off sys.path again


# ------------------------------------------------------------------------------ bad specs
def _fails(capsys, argv) -> str:
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_spec_without_net(tmp_path, capsys):
    spec = write_spec(tmp_path, "import snncc\nnetwork = snncc.Network()\n")
    err = _fails(capsys, ["inspect", str(spec), "--out", str(tmp_path / "o")])
    assert "snncc inspect: error:" in err and str(spec) in err
    assert "does not define 'net'" in err
    assert not (tmp_path / "o").exists()


def test_spec_whose_net_is_not_a_network(tmp_path, capsys):
    spec = write_spec(tmp_path, "net = 42\n")
    err = _fails(capsys, ["inspect", str(spec), "--out", str(tmp_path / "o")])
    assert "'net' is a int, not a snncc.Network" in err


def test_spec_that_raises(tmp_path, capsys):
    spec = write_spec(tmp_path, "import snncc\n\nnet = snncc.Network(dt=undefined_name)\n")
    err = _fails(capsys, ["inspect", str(spec), "--out", str(tmp_path / "o")])
    assert f"running {spec} failed" in err
    assert "NameError" in err and "undefined_name" in err
    assert "spec.py" in err and "line 3" in err  # the user's own frame
    assert "runpy" not in err  # not snncc's machinery


def test_spec_with_a_model_error(tmp_path, capsys):
    spec = write_spec(
        tmp_path,
        """
        import snncc
        net = snncc.Network()
        net.add_input("inp", 2)
        net.add_population("p", 3, snncc.neurons.LIF(tau_m=float("nan")))
        """,
    )
    err = _fails(capsys, ["inspect", str(spec), "--out", str(tmp_path / "o")])
    assert "parameter 'tau_m' is not finite" in err and "Traceback" not in err


def test_spec_that_cannot_compile(tmp_path, capsys):
    spec = write_spec(
        tmp_path,
        """
        import snncc
        net = snncc.Network()
        net.add_population("p", 3, snncc.neurons.LIF())
        """,
    )
    err = _fails(capsys, ["inspect", str(spec), "--out", str(tmp_path / "o")])
    assert "no input population" in err


def test_missing_spec_file(tmp_path, capsys):
    err = _fails(capsys, ["inspect", str(tmp_path / "nope.py"), "--out", str(tmp_path / "o")])
    assert "nope.py' not found" in err


def test_traceback_flag_reraises(tmp_path):
    spec = write_spec(tmp_path, "net = 42\n")
    with pytest.raises(cli.CliError, match="not a snncc.Network"):
        cli.main(["--traceback", "inspect", str(spec), "--out", str(tmp_path / "o")])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["inspect"],
        ["inspect", "spec.py"],  # --out is required
        ["inspect", "spec.py", "--out", "o", "--backend", "tpu"],
        ["inspect", "spec.py", "--out", "o", "--batch-size", "0"],
        ["inspect", "spec.py", "--out", "o", "--batch-size", "many"],
        ["frobnicate"],
    ],
)
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage: snncc" in capsys.readouterr().err


# ---------------------------------------------------------------------------- extension
def test_commands_are_registered_from_the_list(monkeypatch, capsys):
    seen = {}

    def add_echo(parser):
        parser.add_argument("word")

    def run_echo(args):
        """Echo a word (a test command)."""
        seen["word"] = args.word
        return 3

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, ("echo", add_echo, run_echo)])
    assert cli.main(["echo", "hello"]) == 3 and seen == {"word": "hello"}
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert "echo" in help_text and "Echo a word" in help_text and "inspect" in help_text


def test_python_dash_m_snncc(tmp_path):
    spec = write_spec(tmp_path, ALIF_SPEC)
    out = tmp_path / "gen"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "snncc", "inspect", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "network.cpp").exists() and "network.cpp" in proc.stdout


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_inspect_train_writes_the_training_kernels_and_the_rule(tmp_path, backend):
    spec = write_spec(tmp_path, ALIF_SPEC)
    out = tmp_path / "gen"
    argv = ["inspect", str(spec), "--out", str(out), "--backend", backend, "--train"]
    assert cli.main(argv) == 0
    source = (out / ("network.cpp" if backend == "cpu" else "network.cu")).read_text()
    wanted = {
        "cpu": ["snncc_forward_backward", "snncc_accumulate", "snncc_optimize", "readout 'output'"],
        "cuda": [
            "void __launch_bounds__(",
            "backward_hidden(",
            "accumulate_in_hid(",
            "optimize(",
            "readout 'output'",
        ],  # fmt: skip
    }[backend]
    for part in wanted:
        assert part in source, part
    training = (out / "training.txt").read_text()
    assert "eProp rule equations" in training and "eps_a <-" in training  # derived traces
    assert "Adam: m <-" in training
    manifest = (out / "manifest.txt").read_text()
    assert "gradient:" in manifest and "optimize:" in manifest


def test_inspect_train_uses_the_rule_and_optimizer_the_spec_defines(tmp_path):
    spec = write_spec(
        tmp_path,
        ALIF_SPEC
        + "\nrule = snncc.rules.BPTT(readout='output')\noptimizer = snncc.optim.SGD(0.1)\n",
    )
    out = tmp_path / "gen"
    assert cli.main(["inspect", str(spec), "--out", str(out), "--train"]) == 0
    source = (out / "network.cpp").read_text()
    assert "exact: dLoss/dz through 'hid_hid'" in source  # BPTT's signal, not eProp's
    assert "SGD: w <-" in (out / "training.txt").read_text()


def test_inspect_train_without_a_clear_readout_says_what_to_define(tmp_path, capsys):
    spec = write_spec(
        tmp_path,
        ALIF_SPEC
        + "\nnet.add_population('other', 2, neurons.LeakyIntegrator())\n"
        "net.connect(hid, 'other', weight=0.1)\n".replace("output", "out2"),
    )
    text = spec.read_text().replace('"output", 3', '"out2", 3')
    spec.write_text(text)
    assert cli.main(["inspect", str(spec), "--out", str(tmp_path / "g"), "--train"]) == 1
    err = capsys.readouterr().err
    assert "which population is the readout" in err and "rule = snncc.rules.EProp(readout=" in err


def test_inspect_reads_a_checkpoint_as_data_with_its_rule(tmp_path, capsys):
    """A checkpoint someone sent: its kernels can be read without running anything of theirs."""
    spec = write_spec(tmp_path, ALIF_SPEC)
    net = cli.load_spec(spec)
    model = snncc.compile(
        net, 4, rule=snncc.rules.BPTT(readout="output"), optimizer=snncc.optim.SGD(0.1)
    )
    ckpt = tmp_path / "model.snncc"
    model.save(ckpt)
    out = tmp_path / "gen"
    assert cli.main(["inspect", str(ckpt), "--out", str(out), "--train"]) == 0
    assert "exact: dLoss/dz through 'hid_hid'" in (out / "network.cpp").read_text()
    assert "SGD: w <-" in (out / "training.txt").read_text()
    plain = tmp_path / "plain"
    assert cli.main(["inspect", str(ckpt), "--out", str(plain)]) == 0
    assert not (plain / "training.txt").exists()
    assert (plain / "network.cpp").read_text() == snncc.generate(net, "cpu", 32)["network.cpp"]
    capsys.readouterr()
    (tmp_path / "bad.snncc").write_bytes(b"not a zip")
    assert cli.main(["inspect", str(tmp_path / "bad.snncc"), "--out", str(plain)]) == 1
    assert "bad.snncc" in capsys.readouterr().err
