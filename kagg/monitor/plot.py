"""``--plot FILE.png``: latency over time and a latency histogram (matplotlib, an extra).

matplotlib is imported only here and only when asked for, so ``kagg monitor`` works and
starts fast without it; :func:`require` fails before probing rather than after a long run.
"""

from __future__ import annotations

from pathlib import Path

from kagg.errors import BadInput
from kagg.monitor.stats import Stats


def require() -> None:
    """BadInput now if matplotlib is missing, so a run is not wasted."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BadInput("--plot needs matplotlib, an optional extra: pip install 'kagg[plot]'")


def _plain_ticks(ax) -> None:
    """Axis labels as plain numbers (``0.5``, ``20``, ``1000`` ms), never ``10^3`` or a ``1e3``
    offset: log axes get a formatter that keeps matplotlib's choice of which ticks to label
    but writes each as a plain number; linear axes lose the offset and scientific notation."""
    from matplotlib.ticker import LogFormatter, ScalarFormatter

    class PlainLog(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):  # LogFormatter's hook: '%1.0e' beyond 1e4
            return f"{x:.0f}" if x >= 1 else f"{x:.6f}".rstrip("0").rstrip(".")

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_formatter(PlainLog(labelOnlyBase=False))
            axis.set_minor_formatter(PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        else:
            plain = ScalarFormatter(useOffset=False)
            plain.set_scientific(False)
            axis.set_major_formatter(plain)


def build_figure(stats: list[Stats]):
    """Top: every request's latency at its due time (failures as red crosses) and the
    per-second median; bottom: the distribution on log-spaced bins. Returns the figure."""
    require()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over_time, hist) = plt.subplots(2, 1, figsize=(10, 8), constrained_layout=True)
    for s in stats:
        results = s.results or []
        ok = [(r.due - s.t0, r.latency_ms) for r in results if not r.error]
        bad = [(r.due - s.t0, r.latency_ms) for r in results if r.error]
        series = s.series()
        (line,) = over_time.plot([p["second"] + 0.5 for p in series], [p["p50"] for p in series],
                                 label=f"{s.name} p50 per second")
        if ok:
            over_time.scatter(*zip(*ok), s=4, alpha=0.4, color=line.get_color())
        if bad:
            over_time.scatter(*zip(*bad), s=16, marker="x", color="red", label=f"{s.name} failed")
        values = [v for v in s.all_latencies() if v > 0]
        if values:
            low, high = min(values), max(values)
            bins = [low * (high / low) ** (i / 60) for i in range(61)] if high > low else 10
            hist.hist(values, bins=bins, histtype="step", color=line.get_color(), label=s.name)
            hist.set_xscale("log")
    over_time.set_xlim(left=0)
    over_time.set(title="latency of each request, from its due time", xlabel="second of the run",
                  ylabel="latency (ms)", yscale="log")
    hist.set(title="latency distribution", xlabel="latency (ms)", ylabel="requests", yscale="log")
    for ax in (over_time, hist):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        _plain_ticks(ax)
    return fig


def write_plot(path: Path | str, stats: list[Stats]) -> None:
    """Draw :func:`build_figure` into the PNG ``path``."""
    fig = build_figure(stats)
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise BadInput(f"cannot write --plot {path}: {exc.strerror}")
    finally:
        plt.close(fig)
