"""Server-rendered line charts: geometry computed here, drawn as SVG by a template macro
(admin/_charts.html). No script and no inline style, so the CSP holds; colours come from CSS
classes in app.css."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

WIDTH, HEIGHT = 480, 150
LEFT, RIGHT, TOP, BOTTOM = 58, 8, 10, 22


@dataclass(frozen=True)
class Line:
    """One series: polyline segments (gaps where there was no data), CSS class, legend label."""

    label: str
    css: str
    segments: list[str]
    last: str


@dataclass(frozen=True)
class Chart:
    """A chart ready to draw: lines, y ticks (y, label), x ticks (x, label), an optional cap."""

    key: str
    title: str
    lines: list[Line]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    cap: tuple[float, str] | None = None
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = False
    summary: str = field(default="")

    @property
    def plot(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the plot area."""
        return LEFT, TOP, self.width - RIGHT, self.height - BOTTOM


def line_chart(key: str, title: str, series: Sequence[tuple[str, str, Sequence[float | None]]],
               x_labels: Sequence[tuple[int, str]], fmt: Callable[[float], str],
               cap: float | None = None, cap_label: str = "cap") -> Chart:
    """A chart of `series` ((label, css class, values; None for no data)) over equal steps.

    `x_labels` are (index, label) pairs; the y axis runs from 0 to the largest value (or the
    cap, when it is above them all) and is labelled with `fmt`."""
    n = max((len(v) for _, _, v in series), default=0)
    values = [x for _, _, v in series for x in v if x is not None]
    top = max(values, default=0.0)
    if cap is not None and cap > top:
        top = cap
    top = top or 1.0
    left, upper, right, lower = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    step = (right - left) / max(1, n - 1)

    def x(i: int) -> float:
        return round(left + i * step, 1)

    def y(v: float) -> float:
        return round(lower - (lower - upper) * (v / top), 1)

    lines = []
    for label, css, points in series:
        segments: list[str] = []
        current: list[str] = []
        for i, value in enumerate(points):
            if value is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            current.append(f"{x(i)},{y(value)}")
        if current:
            segments.append(" ".join(current))
        # A lone point still shows: draw it as a short flat segment.
        segments = [s if " " in s else f"{s} {float(s.split(',')[0]) + 2},{s.split(',')[1]}"
                    for s in segments]
        latest = next((v for v in reversed(points) if v is not None), None)
        lines.append(Line(label, css, segments, fmt(latest) if latest is not None else "–"))
    y_ticks = [(y(top * f), fmt(top * f)) for f in (0.0, 0.5, 1.0)]
    x_ticks = [(x(i), text) for i, text in x_labels]
    cap_line = (y(cap), f"{cap_label} {fmt(cap)}") if cap is not None else None
    empty = not values
    summary = "no calls in this period" if empty else "; ".join(
        f"{line.label}: latest {line.last}" for line in lines)
    return Chart(key, title, lines, y_ticks, x_ticks, cap_line, empty=empty, summary=summary)


def size(n: float) -> str:
    """Bytes as B, KiB or MiB."""
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n:.0f} B"


def fuel(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    if n >= 1e3:
        return f"{n / 1e3:.0f} k"
    return f"{n:.0f}"


def count(n: float) -> str:
    return f"{n:.0f}" if n >= 10 or n == int(n) else f"{n:.1f}"


def millis(n: float) -> str:
    return f"{n / 1000:.1f} s" if n >= 1000 else f"{n:.0f} ms"
