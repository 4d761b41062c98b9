"""Small server-rendered SVG charts (no JavaScript): vertical bars for a series over time,
grouped bars for two or more series, lines for curves, horizontal bars for categories. Each
carries its title, a text description and, with more than one series, a legend; pages show
the same figures in a table beside it.

Text is 12 units or more: a chart is drawn 640 units wide and shown at about that width on a
desktop screen, so its labels read at 12px or larger (SVG text scales with the chart)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
FONT = 12  # labels; values and legend use the same size, never smaller
# Series colours with at least 3:1 contrast on white (WCAG 1.4.11), told apart by dash too.
PALETTE = ("#2f6f9f", "#b35900", "#2e7d32", "#8e3b8c", "#5c5c5c", "#b03a2e")
DASHES = ("", "6 3", "2 3", "8 3 2 3")


def money_label(cents: int) -> str:
    sign = "−" if cents < 0 else ""
    dollars = abs(cents) / 100
    if dollars >= 10_000:
        return f"{sign}${dollars / 1000:,.0f}k"
    return f"{sign}${dollars:,.0f}"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | None]  # one per label; None: no point (a line stops there)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    return DASHES[(i // len(PALETTE)) % len(DASHES)]


def _describe(title: str, points: Sequence[tuple[str, int]], fmt: Callable[[int], str]) -> str:
    return f"{title}: " + "; ".join(f"{label} {fmt(value)}" for label, value in points)


def _describe_series(
    title: str, labels: Sequence[str], series: Sequence[Series], fmt: Callable[[int], str]
) -> str:
    parts = []
    for s in series:
        values = ", ".join(
            f"{label} {fmt(v)}" for label, v in zip(labels, s.values, strict=False) if v is not None
        )
        parts.append(f"{s.name}: {values or 'no figures'}")
    return f"{title}. " + "; ".join(parts)


def _legend(series: Sequence[Series], width: int, line: bool = False) -> tuple[list[str], int]:
    """The legend across the top, wrapping as needed; returns its parts and its height."""
    parts, x, y, row = [], 4.0, 4.0, FONT + 8
    for i, s in enumerate(series):
        span = 26 + len(s.name) * FONT * 0.6
        if x + span > width and x > 4:
            x, y = 4.0, y + row
        if line:
            extra = f' stroke-dasharray="{dash(i)}"' if dash(i) else ""
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + FONT / 2 + 1:.1f}" x2="{x + 18:.1f}" '
                f'y2="{y + FONT / 2 + 1:.1f}" stroke="{colour(i)}" stroke-width="3"{extra}/>'
            )
        else:
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 1:.1f}" width="14" height="{FONT}" fill="{colour(i)}"/>'
            )
        parts.append(
            f'<text x="{x + 22:.1f}" y="{y + FONT:.1f}" font-size="{FONT}">{escape(s.name)}</text>'
        )
        x += span + 12
    return parts, int(y + row + 4)


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    fmt: Callable[[int], str] = money_label,
    width: int = WIDTH,
    height: int = 200,
) -> Markup:
    """Vertical bars, one per (label, value); negative values hang below the zero line."""
    top, bottom, side = 20, 26, 4
    high = max([0, *(v for _, v in points)])
    low = min([0, *(v for _, v in points)])
    span = (high - low) or 1
    plot = height - top - bottom
    zero_y = top + plot * high / span
    slot = (width - 2 * side) / max(len(points), 1)
    parts = []
    for i, (label, value) in enumerate(points):
        x = side + i * slot + slot * 0.15
        bar = abs(value) * plot / span
        y = zero_y - bar if value >= 0 else zero_y
        text = escape(f"{label}: {fmt(value)}")
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar:.1f}" '
            f'fill="{"#2f6f9f" if value >= 0 else "#b03a2e"}"><title>{text}</title></rect>'
        )
        cx = side + i * slot + slot / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{height - 8}" font-size="{FONT}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
        if value:
            vy = (y - 4) if value >= 0 else (y + bar + FONT + 1)
            parts.append(
                f'<text x="{cx:.1f}" y="{vy:.1f}" font-size="{FONT}" text-anchor="middle">'
                f"{escape(fmt(value))}</text>"
            )
    parts.append(
        f'<line x1="{side}" y1="{zero_y:.1f}" x2="{width - side}" y2="{zero_y:.1f}" '
        'stroke="#555" stroke-width="0.8"/>'
    )
    return _svg(width, height, title, _describe(title, points, fmt), parts)


def grouped_bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Callable[[int], str] = money_label,
    width: int = WIDTH,
    plot_height: int = 170,
) -> Markup:
    """Side-by-side bars, one group per label and one bar per series, with a legend. Values
    are not negative (counts)."""
    legend, top = _legend(series, width)
    bottom, side = 26, 4
    top += FONT + 4  # room for the values over the tallest bars
    height = top + plot_height + bottom
    high = max([1, *(v or 0 for s in series for v in s.values)])
    slot = (width - 2 * side) / max(len(labels), 1)
    bar_width = slot * 0.8 / max(len(series), 1)
    base = top + plot_height
    parts = list(legend)
    for i, label in enumerate(labels):
        for j, s in enumerate(series):
            value = s.values[i] or 0
            bar = value * plot_height / high
            x = side + i * slot + slot * 0.1 + j * bar_width
            parts.append(
                f'<rect x="{x:.1f}" y="{base - bar:.1f}" width="{bar_width:.1f}" '
                f'height="{bar:.1f}" fill="{colour(j)}">'
                f"<title>{escape(f'{label}, {s.name}: {fmt(value)}')}</title></rect>"
            )
            if value:
                parts.append(
                    f'<text x="{x + bar_width / 2:.1f}" y="{base - bar - 3:.1f}" '
                    f'font-size="{FONT}" text-anchor="middle">{escape(fmt(value))}</text>'
                )
        parts.append(
            f'<text x="{side + i * slot + slot / 2:.1f}" y="{height - 8}" font-size="{FONT}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(
        f'<line x1="{side}" y1="{base}" x2="{width - side}" y2="{base}" '
        'stroke="#555" stroke-width="0.8"/>'
    )
    return _svg(width, height, title, _describe_series(title, labels, series, fmt), parts)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Callable[[int], str],
    high: int | None = None,
    width: int = WIDTH,
    plot_height: int = 200,
    axis: str = "",
) -> Markup:
    """One line per series over shared x labels, with a legend and a y axis from 0 to `high`
    (default: the largest value). A series stops where its values are None."""
    legend, top = _legend(series, width, line=True)
    top += 6
    left, right, bottom = 64, 12, 44 if axis else 26
    height = top + plot_height + bottom
    high = high or max([1, *(v or 0 for s in series for v in s.values)])
    step = (width - left - right) / max(len(labels) - 1, 1)
    base = top + plot_height
    parts = list(legend)
    for k in range(5):
        value = high * k // 4
        y = base - plot_height * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#ccc" stroke-width="0.6"/>'
            f'<text x="{left - 6}" y="{y + FONT / 3:.1f}" font-size="{FONT}" '
            f'text-anchor="end">{escape(fmt(value))}</text>'
        )
    every = max(1, round(len(labels) / 12))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{left + i * step:.1f}" y="{base + FONT + 6}" font-size="{FONT}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    if axis:
        parts.append(
            f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" font-size="{FONT}" '
            f'text-anchor="middle">{escape(axis)}</text>'
        )
    for j, s in enumerate(series):
        points = [
            (left + i * step, base - min(v, high) * plot_height / high, labels[i], v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if not points:
            continue
        extra = f' stroke-dasharray="{dash(j)}"' if dash(j) else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour(j)}" stroke-width="2.5"'
            f"{extra}/>"
        )
        for x, y, label, v in points:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour(j)}">'
                f"<title>{escape(f'{s.name}, {label}: {fmt(v)}')}</title></circle>"
            )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" '
        'stroke="#555" stroke-width="0.8"/>'
    )
    return _svg(width, height, title, _describe_series(title, labels, series, fmt), parts)


def hbar_chart(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    fmt: Callable[[int], str] = money_label,
    width: int = WIDTH,
    label_width: int = 180,
) -> Markup:
    """Horizontal bars, one row per (label, value), for categories with long names."""
    row = 26
    height = max(len(points), 1) * row + 8
    high = max([1, *(abs(v) for _, v in points)])
    room = width - label_width - 100
    parts = []
    for i, (label, value) in enumerate(points):
        y = 4 + i * row
        bar = abs(value) * room / high
        text = escape(f"{label}: {fmt(value)}")
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 17}" font-size="{FONT}" text-anchor="end">'
            f"{escape(label[:24])}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{bar:.1f}" height="{row - 8}" '
            f'fill="{"#2f6f9f" if value >= 0 else "#b03a2e"}"><title>{text}</title></rect>'
            f'<text x="{label_width + bar + 4:.1f}" y="{y + 17}" font-size="{FONT}">'
            f"{escape(fmt(value))}</text>"
        )
    return _svg(width, height, title, _describe(title, points, fmt), parts)


def _svg(width: int, height: int, title: str, desc: str, parts: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="DejaVu Sans, sans-serif">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(parts)}</svg>"
    )
