"""Drawing the platform's plots with matplotlib (headless Agg): plain data in, SVG or PNG bytes out.

Workers only: matplotlib loads numpy, which the web process never does. The figures are
built with the object API (no pyplot state), so concurrent renders in one process do not
share a figure. SVG keeps its text as text (searchable, smaller) and carries no date or
random ids, so the same data draws the same bytes.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402 (after the backend is chosen)

from apps.plots.selectors import DurationsPlotData, RDPlotData  # noqa: E402

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "limitgraph",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
SIZE_INCHES = (7.0, 4.5)
PNG_DPI = 120
KNEE_COLOR = "#d62728"


def _bytes(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(buffer, format=fmt, dpi=PNG_DPI, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def render_rd(data: RDPlotData, fmt: str) -> bytes:
    """Rate (bits) against distortion, one line per sweep, each point labelled with its level
    (the coarsened graph's nodes), the knee ringed and named."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=SIZE_INCHES)
        axes = figure.subplots()
        for curve in data.curves:
            distortion = [point[2] for point in curve.points]
            rate = [point[1] for point in curve.points]
            (line,) = axes.plot(distortion, rate, marker="o", markersize=4, label=curve.label)
            for level, point_rate, point_distortion in curve.points:
                axes.annotate(
                    f"k={level}",
                    (point_distortion, point_rate),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                    color=line.get_color(),
                )
            if curve.knee is not None:
                level, knee_rate, knee_distortion = curve.knee
                axes.plot(
                    [knee_distortion],
                    [knee_rate],
                    marker="o",
                    markersize=12,
                    markerfacecolor="none",
                    markeredgecolor=KNEE_COLOR,
                    markeredgewidth=2,
                    linestyle="none",
                )
                axes.annotate(
                    f"knee (k={level})",
                    (knee_distortion, knee_rate),
                    textcoords="offset points",
                    xytext=(10, -14),
                    color=KNEE_COLOR,
                    fontweight="bold",
                )
        axes.margins(x=0.08, y=0.08)  # room for the level labels at the ends
        axes.set_xlabel("distortion D (FGW to the coarsened graph)")
        axes.set_ylabel("rate R(D) (bits)")
        axes.set_title(data.title)
        if len(data.curves) > 1:
            axes.legend(loc="upper right", fontsize=7)
        return _bytes(figure, fmt)


def render_durations(data: DurationsPlotData, fmt: str) -> bytes:
    """One box per kind (median, quartiles, whiskers at 1.5 IQR), each run a dot beside it."""
    kinds = list(data.seconds_by_kind)
    values = [data.seconds_by_kind[kind] for kind in kinds]
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=SIZE_INCHES)
        axes = figure.subplots()
        positions = list(range(1, len(kinds) + 1))
        axes.boxplot(values, positions=positions, widths=0.5, showfliers=False)
        for position, seconds in zip(positions, values, strict=True):
            # spread the dots evenly across the box's width: the same data draws the same picture
            offsets = [(index % 11 - 5) * 0.03 for index in range(len(seconds))]
            axes.plot(
                [position + offset for offset in offsets],
                seconds,
                "o",
                markersize=3,
                alpha=0.5,
                color="#1f77b4",
            )
        axes.set_xticks(
            positions, [f"{kind}\n(n={len(seconds)})" for kind, seconds in zip(kinds, values, strict=True)]
        )
        smallest = min(min(seconds) for seconds in values)
        if smallest > 0 and max(max(seconds) for seconds in values) / smallest > 100:
            axes.set_yscale("log")
        axes.set_ylabel("duration (seconds)")
        axes.set_title(data.title)
        return _bytes(figure, fmt)
