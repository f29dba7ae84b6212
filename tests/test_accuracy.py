"""The headline job: `snncc train` with no arguments reaches >= 92 % on the embedded digits.

This runs the real default configuration, so the claim in README stays true: 10 % of the
training set is held out for validation and the test set is evaluated once, at the end. Seeds
0-2 reach 93.1 / 95.6 / 95.3 % (cosine learning-rate decay); without the decay the last epochs
oscillated and seed 0 ended at 89.7 %, which this threshold would have caught. The PyTorch BPTT
peer with a row-by-row thermometer code reaches ~88 %.
"""

import json

from snncc.cli import main


def test_default_snncc_train_reaches_92_percent(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 31  # 30 epochs, then the test set, evaluated once
    assert rows[-1]["test_accuracy"] >= 0.92, rows[-1]
