"""PNG plots of a benchmark run (``img/*.png``), from ``results.json``."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import get
from benchmarks.report import is_ok, mem_key, ok_value, side_label, side_rows, speedups
from benchmarks.training import SIDES


def plots(results: dict, folder: Path) -> list[Path]:
    """PNG plots of whatever the results hold; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    gpu = get(results, "meta", "settings", "device") == "cuda"
    tag = "gpu" if gpu else "cpu"
    mk = mem_key(gpu)
    written = []
    colors = {side: f"C{i}" for i, side in enumerate(SIDES)}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        path = folder / f"{name}_{tag}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    alif = [k for k, s in SIDES.items() if s.network == "alif"]  # the headline network's sides
    sides = {k: side_rows(results, "vs_T", k) for k in alif}
    if any(sides.values()):
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        for side, rows in sides.items():
            pts = sorted((T, r) for T, r in rows.items() if is_ok(r))
            if not pts:
                continue
            Ts = [T for T, _ in pts]
            ax[0].plot(
                Ts,
                [r["median_s"] * 1e3 for _, r in pts],
                "o-",
                color=colors[side],
                label=side_label(side),
            )
            ax[1].plot(Ts, [r.get(mk) for _, r in pts], "o-", color=colors[side])
            if not gpu:  # the part the training itself added (peak minus RSS before it)
                ax[1].plot(Ts, [r.get("train_mem_mb") for _, r in pts], "s--", ms=3,
                           color=colors[side], alpha=0.7)  # fmt: skip
        for T, (v, peer) in speedups(results).items():  # at the strongest peer's point
            if v is not None:
                ax[0].annotate(
                    f"{v:.1f}x",
                    (T, sides[peer][T]["median_s"] * 1e3),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=8,
                )
        B = get(results, "meta", "settings", "B")
        ax[0].set(
            xlabel="sequence length T (steps)",
            ylabel="ms per training batch",
            title=f"time per batch, ALIF network (batch {B})",
            yscale="log",
        )
        ax[1].set(
            xlabel="sequence length T (steps)",
            ylabel="device memory (MB)" if gpu else "MB",
            title="device memory" if gpu else "peak RSS (solid); peak minus RSS before (dashed)",
        )
        ax[0].legend(fontsize=7)
        save(fig, "training_vs_T")

        prof = sorted(
            (T, r["profile_s"])
            for T, r in sides["snncc"].items()
            if is_ok(r) and r.get("profile_s")
        )
        tprof = {
            T: r["profile_s"] for T, r in sides["torch"].items() if is_ok(r) and r.get("profile_s")
        }
        if prof:
            fig, ax = plt.subplots(figsize=(8, 3.8))
            keys = []
            for _, pr in prof:
                keys += [k for k in pr if k not in keys]
            x = list(range(len(prof)))
            bottom = [0.0] * len(prof)
            for i, k in enumerate(keys):
                vals = [max(pr.get(k, 0.0), 0.0) * 1e3 for _, pr in prof]
                ax.bar(
                    [xi - 0.2 for xi in x],
                    vals,
                    0.38,
                    bottom=bottom,
                    label=f"snncc {k}",
                    color=plt.cm.tab10(i),
                )
                bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
            tb = [0.0] * len(prof)
            for i, k in enumerate(("forward+loss", "backward", "adam")):
                vals = [max(tprof.get(T, {}).get(k, 0.0), 0.0) * 1e3 for T, _ in prof]
                ax.bar(
                    [xi + 0.2 for xi in x],
                    vals,
                    0.38,
                    bottom=tb,
                    label=f"PyTorch {k}",
                    color=plt.cm.Pastel1(i),
                    edgecolor="k",
                    linewidth=0.3,
                )
                tb = [b + v for b, v in zip(tb, vals, strict=True)]
            ax.set_xticks(x, [f"T={T}" for T, _ in prof])
            ax.set(
                ylabel="ms per batch",
                title="where the time goes (left: snncc, right: PyTorch)",
            )
            ax.legend(fontsize=7, ncol=2)
            save(fig, "profile_vs_T")

    bs = {k: side_rows(results, "vs_batch", k) for k in ("snncc", "torch")}
    if any(bs.values()):
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for side, rows in bs.items():
            pts = sorted((B, r) for B, r in rows.items() if is_ok(r))
            if pts:
                ax.plot(
                    [B for B, _ in pts],
                    [B / r["median_s"] for B, r in pts],
                    "o-",
                    color=colors[side],
                    label=side_label(side),
                )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel="examples / s",
            title=f"training throughput (T={get(results, 'meta', 'settings', 'batch_T')})",
        )
        ax.legend()
        save(fig, "throughput_vs_batch")

    mh = get(results, "training", "max_hidden")
    if isinstance(mh, dict) and mh.get("sides"):
        import numpy as np

        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for side, info in mh["sides"].items():
            pts = info.get("points") or []
            if not pts:
                continue
            ax.plot(
                [n for n, _ in pts],
                [m for _, m in pts],
                "o",
                color=colors[side],
                label=side_label(side),
            )
            fit, nmax = info.get("fit_mb"), info.get("predicted_max")
            if fit:
                hi = max(nmax or 0, max(n for n, _ in pts)) * 1.1
                ns = np.linspace(0, hi, 100)
                ax.plot(
                    ns, fit[0] + fit[1] * ns + fit[2] * ns**2, "-", color=colors[side], alpha=0.5
                )
            if nmax:
                ax.axvline(nmax, color=colors[side], ls=":", lw=1)
            if info.get("budget_mb"):
                ax.axhline(info["budget_mb"], color="k", ls="--", lw=0.8)
        ax.set(
            xlabel="hidden neurons N",
            ylabel="device memory (MB)" if gpu else "peak RSS (MB)",
            title=f"memory at T={mh.get('T')}, batch {mh.get('B')} (fit, budget)",
        )
        ax.legend()
        save(fig, "max_hidden")

    inf = results.get("inference")
    if isinstance(inf, dict) and inf.get("rows"):
        rows = inf["rows"]
        big = max((get(r, "config", "B") or 0 for r in rows), default=0)
        fig, ax = plt.subplots(1, 2, figsize=(8, 3.4))
        for k, (B, what) in enumerate(
            ((1, "latency, batch 1 (ms)"), (big, f"throughput, batch {big} (examples/s)"))
        ):
            vals = []
            for side in ("snncc", "torch"):
                r = next(
                    (r for r in rows if r.get("side") == side and get(r, "config", "B") == B), None
                )
                v = ok_value(r, "median_s")
                vals.append((v * 1e3 if k == 0 else B / v) if v else 0.0)
            ax[k].bar(
                ["snncc LSNN", "PyTorch LSTM"], vals, color=[colors["snncc"], colors["torch"]]
            )
            ax[k].set(title=what)
        save(fig, "inference")
    return written
