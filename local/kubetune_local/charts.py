"""Line and bar charts as inline SVG, for the run report (`report.py`).

The report is one self-contained file that opens with no network: a charting library would have to be
vendored into every report (a JavaScript one) or installed with the demo (a Python one, for a few dozen
shapes). These charts are a few SVG primitives instead, and every data point is an element of its own
(`class="point"`, its figures in `data-*` attributes and a `<title>` tooltip), so a browser shows each value
on hover and a test can count what was drawn. Values that are None or not finite are left out, never drawn
as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 250
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 34, 44
# Colour-blind-safe (Okabe-Ito), in the order series are given.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]  # (x, y)


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def _ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high] (`whole`: integers only, for steps and request counts)."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1, math.ceil(step))
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _frame(title: str, points: int, body: list[str], legend: list[str]) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" data-points="{points}">'
            f'<text x="{MARGIN_LEFT}" y="18" class="title">{escape(title)}</text>'
            + "".join(legend) + "".join(body) + "</svg>")


def _legend(names: list[str]) -> list[str]:
    out, x = [], WIDTH - MARGIN_RIGHT
    for i, name in reversed(list(enumerate(names))):
        x -= 14 + 7 * len(name)
        out.append(f'<rect x="{x}" y="9" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{x + 13}" y="18" class="legend">{escape(name)}</text>')
    return out


def _axes(y_ticks: list[float], y_of, x_label: str, y_label: str, percent: bool) -> list[str]:
    plot_right = WIDTH - MARGIN_RIGHT
    out = []
    for t in y_ticks:
        y = y_of(t)
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{plot_right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                   f'{_fmt(t * 100) + "%" if percent else _fmt(t)}</text>')
    bottom = HEIGHT - MARGIN_BOTTOM
    out.append(f'<line x1="{MARGIN_LEFT}" x2="{plot_right}" y1="{bottom}" y2="{bottom}" class="axis"/>')
    out.append(f'<text x="{(MARGIN_LEFT + plot_right) / 2:.0f}" y="{HEIGHT - 6}" class="label" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14 {(MARGIN_TOP + bottom) / 2:.0f}) rotate(-90)" class="label" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    return out


def line_chart(title: str, series: list[Series], *, x_label: str, y_label: str) -> str:
    """Each series a line through its points (a point alone is still drawn as a dot)."""
    clean = [Series(s.name, [(x, y) for x, y in s.points if _finite(x) and _finite(y)]) for s in series]
    clean = [s for s in clean if s.points]
    if not clean:
        return _frame(title, 0, [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
                                 'nothing recorded</text>'], [])
    xs = [x for s in clean for x, _ in s.points]
    ys = [y for s in clean for _, y in s.points]
    y_ticks = _ticks(min(0.0, min(ys)), max(ys))
    x_low, x_high = min(xs), max(xs)
    x_span = (x_high - x_low) or 1.0
    y_low, y_high = y_ticks[0], y_ticks[-1]
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x_of(x: float) -> float:
        return MARGIN_LEFT + (x - x_low) / x_span * plot_w if x_high > x_low else MARGIN_LEFT + plot_w / 2

    def y_of(y: float) -> float:
        return MARGIN_TOP + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    body = _axes(y_ticks, y_of, x_label, y_label, percent=False)
    whole = all(float(x).is_integer() for x in xs)
    for t in _ticks(x_low, x_high, 6, whole=whole) if x_high > x_low else [x_low]:
        if x_low <= t <= x_high:
            body.append(f'<text x="{x_of(t):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" class="tick" '
                        f'text-anchor="middle">{_fmt(t)}</text>')
    count = 0
    for i, s in enumerate(clean):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x_of(x):.1f},{y_of(y):.1f}" for j, (x, y) in enumerate(s.points))
        body.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in s.points:
            count += 1
            body.append(f'<circle class="point" cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="3" fill="{colour}" '
                        f'data-series="{escape(s.name)}" data-x="{x:g}" data-y="{y:g}">'
                        f'<title>{escape(s.name)}: {escape(x_label)} {_fmt(x)}, {y:.4g}</title></circle>')
    return _frame(title, count, body, _legend([s.name for s in clean]))


def bar_chart(title: str, groups: list[str], series: list[tuple[str, list[float | None]]], *,
              y_label: str, percent: bool = True) -> str:
    """Grouped bars: one group per entry of `groups`, one bar per series in each (None: no bar)."""
    values = [v for _, vs in series for v in vs if _finite(v)]
    if not groups or not values:
        return _frame(title, 0, [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
                                 'nothing recorded</text>'], [])
    y_ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if percent and max(values) <= 1.0 else _ticks(0.0, max(values))
    y_high = y_ticks[-1]
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def y_of(y: float) -> float:
        return MARGIN_TOP + plot_h - y / y_high * plot_h

    body = _axes(y_ticks, y_of, "", y_label, percent)
    group_w = plot_w / len(groups)
    bar_w = min(28.0, group_w * 0.8 / max(len(series), 1))
    count = 0
    for g, group in enumerate(groups):
        left = MARGIN_LEFT + g * group_w + (group_w - bar_w * len(series)) / 2
        body.append(f'<text x="{MARGIN_LEFT + (g + 0.5) * group_w:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                    f'class="tick" text-anchor="middle">{escape(group)}</text>')
        for i, (name, vs) in enumerate(series):
            value = vs[g] if g < len(vs) else None
            if not _finite(value):
                continue
            count += 1
            top = min(y_of(value), HEIGHT - MARGIN_BOTTOM - 2)  # a zero stays visible, as a thin bar
            shown = f"{value * 100:.1f}%" if percent else f"{value:.4g}"
            body.append(f'<rect class="point" x="{left + i * bar_w:.1f}" y="{top:.1f}" width="{bar_w - 2:.1f}" '
                        f'height="{HEIGHT - MARGIN_BOTTOM - top:.1f}" fill="{PALETTE[i % len(PALETTE)]}" '
                        f'data-series="{escape(name)}" data-x="{escape(group)}" data-y="{value:g}">'
                        f'<title>{escape(name)}, {escape(group)}: {shown}</title></rect>')
    return _frame(title, count, body, _legend([name for name, _ in series]))
