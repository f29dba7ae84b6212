"""The headline job: `snncc train` with no arguments reaches >= 88 % on the embedded digits.

This runs the real default configuration (about 30 s to 2 min on 2 cores), so the claim in
README stays true. The PyTorch BPTT peer with a row-by-row thermometer code reaches ~88 %.
"""

import json

from snncc.cli import main


def test_default_snncc_train_reaches_88_percent(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    assert rows[-1]["val_accuracy"] >= 0.88, rows[-1]
