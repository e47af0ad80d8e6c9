"""A Gantt chart of a modeled `up`, drawn from the model's spans alone (matplotlib, imported here
only: `bench.model` works without it)."""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from bench.model import Span

PART_NAMES = {1: "storage", 2: "network", 3: "database", 4: "app-image", 5: "app-tier", 6: "web-image",
              7: "web-tier"}
COLORS = {1: "#8c8c8c", 2: "#4c78a8", 3: "#f58518", 4: "#54a24b", 5: "#e45756", 6: "#72b7b2", 7: "#b279a2"}
SEGMENT_SHADES = {"pending": 0.35, "boot": 0.5, "wait for the database": 0.25}


# The install that adds matplotlib, as the README's quick start installs the package.
INSTALL = "pip install -e '.[bench]'"


def unavailable() -> str | None:
    """Why no chart can be drawn here, in one line (matplotlib is an extra: the README's install
    of the package leaves it out), or None when it can."""
    try:
        importlib.import_module("matplotlib")
    except ImportError as exc:
        missing = exc.name or "matplotlib"
        return f"no Gantt chart: {missing} is not installed ({INSTALL} adds it; --no-gantt skips the chart)"
    return None


def _rows(spans: Sequence[Span]) -> list[Span]:
    """The create spans, in Part order then start time; instances without user data are left out."""
    wanted = [s for s in spans if s.action == "create" and s.kind not in ("instance",)]
    return sorted(wanted, key=lambda s: (s.part or 0, s.start, s.kind))


def draw(panels: Sequence[tuple[str, Sequence[Span], float | None]], path: Path) -> Path:
    """One panel per (title, spans, total seconds); x in minutes from the command's start."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = [p for p in panels if p[1]]
    heights = [max(len(_rows(spans)), 1) for _, spans, _ in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 1.2 + 0.32 * sum(heights) + 0.8 * len(panels)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    longest = max(((total or 0) / 60 for _, _, total in panels), default=1)
    for ax, (title, spans, total) in zip(axes[:, 0], panels, strict=True):
        rows = _rows(spans)
        origin = min((s.start for s in spans), default=0.0) if total is None else 0.0
        labels = []
        for y, span in enumerate(rows):
            color = COLORS.get(span.part or 0, "#333333")
            end = span.end if span.end is not None else (total or span.start)
            if span.segments:
                for label, start, stop in span.segments:
                    ax.broken_barh([((start - origin) / 60, max(stop - start, 0.5) / 60)], (y - 0.38, 0.76),
                                   facecolors=color, alpha=SEGMENT_SHADES.get(label, 0.9), edgecolor="white",
                                   linewidth=0.5)
                    if stop - start >= 40:
                        ax.text((start + stop) / 2 / 60 - origin / 60, y, label, ha="center", va="center",
                                fontsize=6.5, color="black")
            else:
                ax.broken_barh([((span.start - origin) / 60, max(end - span.start, 0.5) / 60)], (y - 0.38, 0.76),
                               facecolors=color, alpha=0.9 if span.end is not None else 0.4)
            ax.text((end - origin) / 60 + 0.15, y, f"{(end - span.start) / 60:.1f} min", va="center", fontsize=6.5,
                    color="#444444")
            failed = " (FAILED)" if span.failed else ""
            labels.append(f"P{span.part or '?'} {span.kind}: {span.name}{failed}")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=7.5)
        ax.invert_yaxis()
        ax.set_xlim(0, longest * 1.06 + 0.5)
        ax.grid(axis="x", linestyle=":", alpha=0.6)
        if total is not None:
            ax.axvline(total / 60, color="black", linewidth=1)
            ax.text(total / 60, len(rows) - 0.6, f"up done: {total / 60:.1f} min ", fontsize=8, ha="right",
                    va="bottom", fontweight="bold")
        ax.set_title(title, fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("minutes since `threetier up` started (virtual time, docs/aws-latency.md model)")
    parts = sorted({s.part for _, spans, _ in panels for s in spans if s.part})
    fig.legend(handles=[Patch(color=COLORS[p], label=f"Part {p} {PART_NAMES.get(p, '')}") for p in parts],
               loc="lower center", ncol=len(parts), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
