"""Bar charts as geometry for an inline SVG (drawn server-side: no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 200
_LEFT = 56  # room for the axis labels
_BOTTOM = 28
_TOP = 22


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value_text: str


@dataclass(frozen=True)
class BarChart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    max_text: str
    baseline_y: float
    left: float

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(
    title: str, points: Sequence[tuple[str, float]], unit: str, *, width: int = WIDTH
) -> BarChart:
    """One bar per `(label, value)`, scaled to the largest value; labels show at the bars' foot."""
    plot_height = HEIGHT - _BOTTOM - _TOP
    plot_width = width - _LEFT - 8
    top = max((value for _, value in points), default=0.0) or 1.0
    slot = plot_width / max(len(points), 1)
    bar_width = max(min(slot * 0.7, 48.0), 2.0)
    bars = []
    for index, (label, value) in enumerate(points):
        height = plot_height * max(value, 0.0) / top
        x = _LEFT + index * slot + (slot - bar_width) / 2
        bars.append(
            Bar(
                x=round(x, 2),
                y=round(_TOP + plot_height - height, 2),
                width=round(bar_width, 2),
                height=round(height, 2),
                label=label,
                value_text=f"{_number(value)} {unit}",
            )
        )
    return BarChart(
        title=title,
        width=width,
        height=HEIGHT,
        bars=tuple(bars),
        max_text=f"{_number(top)} {unit}",
        baseline_y=HEIGHT - _BOTTOM,
        left=_LEFT,
    )


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4g}"
