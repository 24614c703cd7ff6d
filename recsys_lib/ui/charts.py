"""Charts as inline SVG drawn on the server: no script, no stylesheet, nothing fetched.

:func:`interval_chart` draws rates (fractions in [0, 1], shown as %) over ordered x labels such as
report dates: one line per series, each point with its interval as a vertical bar, a legend, and a
``<title>`` tooltip per point with the exact value and interval. :func:`bar_chart` draws counts
(e.g. shoppers per segment) as horizontal bars. Pure: values in, a string out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TypeGuard

#: Series colours in order when none is given: blue, amber, green, violet.
PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed")
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 44, 34  # margins around the plot area (px)
_MAX_X_LABELS = 6


@dataclass(frozen=True)
class Point:
    """A rate at ``x`` with its interval [``low``, ``high``]; ``value`` None when not measurable.
    ``note`` is added to the point's tooltip (e.g. "partial window")."""

    x: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _pct(value: float, decimals: int = 2) -> str:
    return f"{value * 100:.{decimals}f}%"


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten) from at or below ``low`` to at or above ``high``."""
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9) * step
    n = math.ceil((high - first) / step - 1e-9)
    return [first + i * step for i in range(n + 1)]


def _y_ticks(points: Sequence[Point]) -> list[float]:
    """The y ticks covering every finite value and interval end of ``points``."""
    values = [v for p in points for v in (p.value, p.low, p.high) if _finite(v)]
    low, high = min(values), max(values)
    if high - low < 1e-4:  # one value (or all equal): a band of +-0.5 points around it
        low, high = (max(low - 0.005, 0.0) if low >= 0 else low - 0.005), high + 0.005
    return _ticks(low, high)


def interval_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    *,
    colours: Mapping[str, str] | None = None,
    width: int = 560,
    height: int = 260,
) -> str:
    """A self-contained ``<svg>`` of ``series`` (name -> points), every text escaped.

    x: the labels of all points in sorted order, evenly spaced (so ISO dates read oldest to
    newest); y: the rates as %, with a few round ticks. Points whose value is None or not finite
    are left out of the line (the line joins its neighbours); a missing interval end draws no bar.
    """
    colour = {name: (colours or {}).get(name) or PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    measured = {name: [(p, p.value) for p in pts if _finite(p.value)] for name, pts in series.items()}
    labels = sorted({p.x for pts in series.values() for p in pts})
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(title)}" font-family="system-ui,sans-serif" font-size="11" class="chart">',
        f"<title>{_e(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="600" fill="#1f2933">{_e(title)}</text>',
    ]
    legend_x = _LEFT
    for name in series:
        out.append(
            f'<rect x="{legend_x}" y="26" width="12" height="3" fill="{_e(colour[name])}"/>'
            f'<text x="{legend_x + 16}" y="31" fill="#1f2933">{_e(name)}</text>'
        )
        legend_x += 32 + 7 * len(name)
    if not any(measured.values()):
        out.append(f'<text x="{_LEFT}" y="{_TOP + plot_h // 2}" fill="#7b8794">no measurable value</text></svg>')
        return "".join(out)

    ticks = _y_ticks([p for pts in measured.values() for p, _ in pts])
    y_low, y_high = ticks[0], ticks[-1]
    decimals = max(0, min(3, -math.floor(math.log10((ticks[1] - ticks[0]) * 100 + 1e-12))))

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - (value - y_low) / (y_high - y_low))

    band = plot_w / len(labels)
    x_of = {label: _LEFT + band * (i + 0.5) for i, label in enumerate(labels)}
    for tick in ticks:
        out.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e4e7eb"/>'
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#52606d">'
            f"{_pct(tick, decimals)}</text>"
        )
    every = math.ceil(len(labels) / _MAX_X_LABELS)
    for i, label in enumerate(labels):
        if (len(labels) - 1 - i) % every == 0:  # the newest label always shows
            out.append(
                f'<text x="{x_of[label]:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" fill="#52606d">'
                f"{_e(label)}</text>"
            )
    out.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#cbd2d9"/>')
    dodge = min(6.0, band / (len(series) + 1))
    for j, (name, points) in enumerate(measured.items()):
        shift, stroke = (j - (len(series) - 1) / 2) * dodge, _e(colour[name])
        coords = " ".join(f"{x_of[p.x] + shift:.1f},{y(v):.1f}" for p, v in points)
        out.append(f'<g class="series"><polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="2"/>')
        out.extend(_marker(name, p, v, x_of[p.x] + shift, y, stroke) for p, v in points)
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _marker(name: str, p: Point, value: float, px: float, y: Callable[[float], float], stroke: str) -> str:
    """One point at x ``px``: its dot, its interval bar with caps, and its tooltip."""
    tip, bar = f"{name} · {p.x}: {_pct(value)}", ""
    if _finite(p.low) and _finite(p.high):
        tip += f" [{_pct(p.low)}, {_pct(p.high)}]"
        top, bottom = y(p.high), y(p.low)
        bar = (
            f'<path class="interval" d="M{px:.1f},{top:.1f}V{bottom:.1f}M{px - 3:.1f},{top:.1f}h6'
            f'M{px - 3:.1f},{bottom:.1f}h6" stroke="{stroke}" stroke-width="1.5"/>'
        )
    tip += f" ({p.note})" if p.note else ""
    return f'<g><title>{_e(tip)}</title>{bar}<circle cx="{px:.1f}" cy="{y(value):.1f}" r="3.5" fill="{stroke}"/></g>'


def bar_chart(
    title: str,
    bars: Mapping[str, int],
    *,
    colour: str = PALETTE[0],
    width: int = 560,
    bar_height: int = 20,
    label_width: int = 110,
) -> str:
    """A self-contained ``<svg>`` of ``bars`` (label -> count >= 0) as horizontal bars, in the given
    order, every text escaped.

    Bar lengths are proportional to the counts (the largest spans the plot width); each bar is
    labelled on its left, carries its count and share of the total on its right, and a ``<title>``
    tooltip with the same. Height grows with the number of bars (``bar_height`` px each, plus 8 px
    between them); no bars draws the title and "no data".
    """
    negative = [label for label, count in bars.items() if count < 0]
    if negative:
        raise ValueError(f"bar_chart counts must be >= 0; negative for {negative!r}")
    total = sum(bars.values())
    top, gap, right = 30, 8, 96  # px: title band, space between bars, room for "1,234 (12.3%)"
    height = top + max(len(bars), 1) * (bar_height + gap) + 4
    plot_w = width - label_width - right
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(title)}" font-family="system-ui,sans-serif" font-size="11" class="chart">',
        f"<title>{_e(title)}</title>",
        f'<text x="8" y="16" font-size="13" font-weight="600" fill="#1f2933">{_e(title)}</text>',
    ]
    if not bars:
        out.append(f'<text x="8" y="{top + bar_height // 2 + 4}" fill="#7b8794">no data</text></svg>')
        return "".join(out)
    largest = max(max(bars.values()), 1)
    for i, (label, count) in enumerate(bars.items()):
        y = top + i * (bar_height + gap)
        length = plot_w * count / largest
        text = f"{count:,} ({count / total:.1%})" if total else f"{count:,}"
        out.append(
            f'<g class="bar"><title>{_e(label)}: {_e(text)}</title>'
            f'<text x="{label_width - 6}" y="{y + bar_height / 2 + 4:.1f}" text-anchor="end" fill="#1f2933">'
            f"{_e(label)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{_e(colour)}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height / 2 + 4:.1f}" fill="#52606d">'
            f"{_e(text)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)
