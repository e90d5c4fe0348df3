"""PNG plots of a simulation: latency CDFs with SLA lines, throughput, queue depth and KV use over time."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from planner.sim.metrics import columns, latencies


def plot_all(cluster, summary: dict, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    c = columns(cluster.records)
    lat = latencies(c)
    w0, w1 = summary["warmup_s"], summary["duration_s"]
    inw = (c["arrival"] >= w0) & (c["arrival"] < w1)
    paths = []

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, name in zip(axes, ("ttft", "tpot", "e2e"), ("TTFT", "TPOT", "end-to-end")):
        x = np.sort(lat[key][inw & ~np.isnan(lat[key])])
        if len(x):
            ax.plot(x, np.arange(1, len(x) + 1) / len(x))
        slas = list(summary["slas"]) + [dict(t["sla"], tier=name) for name, t in summary.get("tiers", {}).items()]
        colors = iter(["red", "darkorange", "purple", "green", "brown"])
        for s in slas:
            if s["metric"] == key:
                tier = "" if s.get("tier", "default") == "default" else f"{s['tier']}: "
                col = next(colors, "red")
                label = f"{tier}SLA P{s['percentile']:g} < {s['target_s']} s"
                ax.axvline(s["target_s"], color=col, ls="--", label=label)
                ax.axhline(s["percentile"] / 100, color=col, ls=":", lw=0.8)
                ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel(f"{name} (s)")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"{name} CDF")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    p = out / "latency_cdf.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    s = cluster.series
    t = np.asarray(s.t)
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    done = c["status"] == "completed"
    if done.any():
        bins = np.arange(0, max(t.max() if len(t) else 1, 1) + 10, 10.0)
        h, _ = np.histogram(c["finish"][done], bins=bins, weights=c["output_tokens"][done])
        axes[0].step(bins[:-1], h / 10.0, where="post")
    axes[0].set_ylabel("output tok/s")
    axes[0].set_title("throughput (10 s bins)")
    axes[1].plot(t, s.waiting, label="waiting")
    axes[1].plot(t, s.running, label="running")
    axes[1].set_ylabel("requests")
    axes[1].legend()
    axes[2].plot(t, np.asarray(s.kv_util) * 100)
    axes[2].set_ylabel("KV blocks used (%)")
    axes[2].set_xlabel("simulated time (s)")
    for ax in axes:
        ax.axvspan(0, w0, color="grey", alpha=0.15)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    p = out / "timeseries.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths
