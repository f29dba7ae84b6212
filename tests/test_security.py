"""Nothing a user writes or loads runs as code: hostile text in every field of a spec, crafted
checkpoints, and a cache someone else can write are refused or rendered harmless.

The hostile payload is real: ``test_the_payloads_are_live`` shows that, rendered without
snncc's escaping, it creates the marker file when the code is compiled and run. With the
escaping, every field either is refused where it is declared or compiles and runs without
creating it.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import snncc
from snncc import neurons

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


def _payload(marker: Path) -> str:
    """Lines Python reads as comments (so equation text still parses) but C preprocesses: macros
    that run a command wherever the generated code calls memset afterwards (it clears the
    synaptic input every step; a block-scope declaration bound to libc's system by an asm
    label needs no header). The last line swallows whatever followed on the comment's line."""
    run = (
        '__extension__ ({ int snncc_sys(const char*) __asm__("system"); '
        f'snncc_sys("touch {marker}"); }})'
    )
    wrap = "#define memset(a, b, n) (SNNCC_RUN, __builtin_memset(a, b, n))"
    return f"\n#define SNNCC_RUN {run}\n{wrap}\n#define SNNCC_TAIL"


FIELDS = [
    "name",
    "param name",
    "state name",
    "dynamics",
    "threshold",
    "reset",
    "on_spike",
    "input",
    "surrogate",
    "population name",
    "projection name",
    "rule filter_decay",
]


def _hostile_net(field: str, marker: Path) -> tuple[snncc.Network, snncc.rules.EProp]:
    """A trainable ALIF-like network with the payload in ``field``."""
    pre = fs = _payload(marker)
    spec = dict(
        name="ALIFX",
        params={"tau_m": 20.0, "tau_a": 200.0, "beta": 0.0174, "v_th": 0.6, "gamma": 0.3},
        state={"v": 0.0, "a": 0.0},
        dynamics=["dv/dt = -v / tau_m", "da/dt = -a / tau_a"],
        reset={"v": "v - v_th"},
        on_spike={"a": "a + 1"},
        input={"v": "I_syn"},
        threshold="v > v_th + beta * a",
        surrogate=neurons.TRIANGLE,
    )
    if field == "name":
        spec["name"] = "ALIFX" + fs
    elif field == "param name":
        spec["params"] = {**spec["params"], "g" + fs: 1.0}
    elif field == "state name":
        spec["state"] = {**spec["state"], "s" + fs: 0.0}
    elif field == "dynamics":
        spec["dynamics"] = ["dv/dt = -v / tau_m" + pre, "da/dt = -a / tau_a"]
    elif field in ("threshold", "surrogate"):
        spec[field] = spec[field] + pre
    elif field in ("reset", "on_spike", "input"):
        key = next(iter(spec[field]))
        spec[field] = {key: spec[field][key] + pre}
    model = snncc.NeuronModel(**spec)
    hidden = "hidden" + fs if field == "population name" else "hidden"
    proj = "in_hid" + fs if field == "projection name" else "in_hid"
    net = snncc.Network(dt=1.0, seed=0)
    net.add_input("input", 6)
    net.add_population(hidden, 8, model)
    net.add_population("output", 2, neurons.LeakyIntegrator())
    net.connect("input", hidden, name=proj, weight=0.4)
    net.connect(hidden, hidden, name="rec", weight=0.05, allow_self=False)
    net.connect(hidden, "output", name="readout", weight=0.3)
    decay = "kappa" + pre if field == "rule filter_decay" else "kappa"
    return net, snncc.rules.EProp(readout="output", filter_decay=decay)


def _preprocessor_lines(source: str) -> set[str]:
    return {ln.strip() for ln in source.splitlines() if ln.lstrip().startswith("#")}


#: The only preprocessor lines snncc's own templates write.
ALLOWED = re.compile(
    r"#include <(math|stddef|string|stdlib)\.h>|#pragma omp .*|#pragma unroll( \d+)?"
)


@needs_gxx
@pytest.mark.parametrize("field", FIELDS)
def test_hostile_text_in_every_field_runs_nothing(field, tmp_path):
    marker = tmp_path / f"pwned_{field.replace(' ', '_')}"
    try:
        net, rule = _hostile_net(field, marker)
    except snncc.ModelError as err:  # refused where it is declared, saying what is wrong
        assert "name" in field and "is not allowed" in str(err), err
        return
    for backend in ("cpu", "cuda"):
        for src in snncc.generate(net, backend, batch_size=2, rule=rule).values():
            stray = {ln for ln in _preprocessor_lines(src) if not ALLOWED.fullmatch(ln)}
            assert not stray, f"{field} reached the {backend} source as {stray}"
    model = snncc.compile(net, batch_size=2, rule=rule, optimizer=snncc.optim.Adam(1e-3))
    x = (np.random.default_rng(0).random((2, 30, 6)) < 0.3).astype(np.uint8)
    model.run(x, record=[next(p for p in net.populations if p.startswith("hidden"))])
    model.train_batch(x, np.array([0, 1]))
    assert not marker.exists(), f"the payload in {field} ran"


@needs_gxx
def test_the_payloads_are_live(tmp_path, monkeypatch):
    """The same payloads, with the escaping switched off, do run: so the test above can fail."""
    from snncc.codegen import names, render

    monkeypatch.setenv("SNNCC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(names, "comment_text", lambda text: str(text))
    monkeypatch.setattr(render, "comment", lambda text: f"// {text}")
    monkeypatch.setattr(render, "comment_text", lambda text: str(text))
    render.environment.cache_clear()
    try:
        for field in ("name", "dynamics"):
            marker = tmp_path / f"live_{field}"
            net, rule = _hostile_net(field, marker)
            model = snncc.compile(net, batch_size=2)
            model.run((np.ones((2, 5, 6))).astype(np.uint8))
            assert marker.exists(), f"the {field} payload did not run unescaped"
    finally:
        render.environment.cache_clear()


# ------------------------------------------------------------------------- checkpoints
def _small_model() -> snncc.runtime.model.CompiledModel:
    net = snncc.Network(dt=1.0, seed=0)
    net.add_input("input", 4)
    net.add_population("hidden", 5, neurons.LIF())
    net.add_population("output", 2, neurons.LeakyIntegrator())
    net.connect("input", "hidden", weight=0.5)
    net.connect("hidden", "output", weight=0.2)
    return snncc.compile(net, batch_size=2, rule=snncc.rules.EProp(readout="output"))


class _Pwn:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@needs_gxx
def test_a_crafted_pickle_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned_by_pickle"
    path = tmp_path / "evil.snncc"
    path.write_bytes(pickle.dumps({"format": 1, "net": _Pwn(str(marker))}))
    with pytest.raises(snncc.CheckpointError, match="not a zip archive.*pickle.*never opened"):
        snncc.load(path)
    assert not marker.exists()


@needs_gxx
def test_a_pickle_smuggled_into_a_checkpoint_array_is_refused(tmp_path):
    marker = tmp_path / "pwned_by_npy"
    model = _small_model()
    good = tmp_path / "good.snncc"
    model.save(good)
    evil = tmp_path / "evil.snncc"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state/weights/input_to_hidden.npy":
                import io

                buf = io.BytesIO()
                np.save(buf, np.array([_Pwn(str(marker))], dtype=object), allow_pickle=True)
                data = buf.getvalue()
            dst.writestr(info, data)
    with pytest.raises(snncc.CheckpointError, match="does not match meta.json|not allowed"):
        snncc.load(evil)
    assert not marker.exists()


# ------------------------------------------------------------------------------- cache
def _compile_in(cache: Path) -> None:
    env = {**os.environ, "SNNCC_CACHE": str(cache)}
    code = (
        "import snncc\nfrom snncc import neurons\n"
        "net = snncc.Network(); net.add_input('i', 3)\n"
        "net.add_population('h', 4, neurons.LIF()); net.connect('i', 'h', weight=0.5)\n"
        "snncc.compile(net, batch_size=2)\n"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


@needs_gxx
def test_cache_directories_are_private(tmp_path):
    cache = tmp_path / "cache"
    assert _compile_in(cache).returncode == 0
    for d in [cache, *[p for p in cache.rglob("*") if p.is_dir()]]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def _crafted_library(path: Path, marker: Path) -> None:
    """A shared library that runs a command as soon as it is loaded."""
    src = path.with_suffix(".cpp")
    src.write_text(
        "#include <stdlib.h>\n__attribute__((constructor)) static void pwn() "
        f'{{ system("touch {marker}"); }}\n'
    )
    subprocess.run(["g++", "-shared", "-fPIC", str(src), "-o", str(path)], check=True)
    src.unlink()


@needs_gxx
@pytest.mark.parametrize("how", ["world-writable file", "world-writable directory", "foreign"])
def test_a_crafted_library_in_an_untrusted_cache_is_refused(tmp_path, how):
    cache = tmp_path / "cache"
    assert _compile_in(cache).returncode == 0
    (lib,) = (cache / "build" / "cpu").glob("*.so")
    marker = tmp_path / "pwned_by_so"
    _crafted_library(lib, marker)  # replaces the cached build, as another user could
    if how == "world-writable file":
        lib.chmod(0o777)
    elif how == "world-writable directory":
        lib.parent.chmod(0o777)
    else:  # owned by another user: simulated by making this process look like another uid
        pytest.importorskip("ctypes")
        if os.getuid() != 0:
            pytest.skip("changing a file's owner needs root")
        os.chown(lib, 12345, 12345)
    proc = _compile_in(cache)
    assert proc.returncode != 0
    assert "CacheError" in proc.stderr and str(lib.parent if "directory" in how else lib) in (
        proc.stderr
    )
    assert "writable by group or others" in proc.stderr or "another user" in proc.stderr
    assert not marker.exists(), "the crafted library was loaded"


@needs_gxx
def test_a_crafted_plan_in_a_shared_cache_is_refused(tmp_path):
    cache = tmp_path / "cache"
    assert _compile_in(cache).returncode == 0
    (plan,) = (cache / "build" / "plans").glob("*.json")
    plan.chmod(0o666)
    proc = _compile_in(cache)
    assert proc.returncode != 0 and "writable by group or others" in proc.stderr


@needs_gxx
def test_a_plan_cache_entry_of_unknown_classes_is_a_miss_not_code(tmp_path):
    """A plan file naming a class outside the whitelist is ignored: the plan is derived again."""
    import json

    cache = tmp_path / "cache"
    assert _compile_in(cache).returncode == 0
    (plan,) = (cache / "build" / "plans").glob("*.json")
    plan.write_text(json.dumps({"o": ["os.system", {"command": "touch x"}]}))
    assert _compile_in(cache).returncode == 0
    assert json.loads(plan.read_text()) != {"o": ["os.system", {"command": "touch x"}]}
