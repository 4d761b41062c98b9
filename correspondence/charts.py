"""Small server-rendered SVG charts (no JavaScript): vertical bars for a series over time,
horizontal bars for categories. Each carries its title and a text description, and pages
show the same figures in a table beside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape


def money_label(cents: int) -> str:
    sign = "−" if cents < 0 else ""
    dollars = abs(cents) / 100
    if dollars >= 10_000:
        return f"{sign}${dollars / 1000:,.0f}k"
    return f"{sign}${dollars:,.0f}"


def _describe(title: str, points: Sequence[tuple[str, int]], fmt: Callable[[int], str]) -> str:
    return f"{title}: " + "; ".join(f"{label} {fmt(value)}" for label, value in points)


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    fmt: Callable[[int], str] = money_label,
    width: int = 560,
    height: int = 170,
) -> Markup:
    """Vertical bars, one per (label, value); negative values hang below the zero line."""
    top, bottom, side = 16, 22, 4
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
            f'<text x="{cx:.1f}" y="{height - 6}" font-size="9" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
        if value:
            vy = (y - 3) if value >= 0 else (y + bar + 10)
            parts.append(
                f'<text x="{cx:.1f}" y="{vy:.1f}" font-size="8" text-anchor="middle">'
                f"{escape(fmt(value))}</text>"
            )
    parts.append(
        f'<line x1="{side}" y1="{zero_y:.1f}" x2="{width - side}" y2="{zero_y:.1f}" '
        'stroke="#555" stroke-width="0.8"/>'
    )
    return _svg(width, height, title, _describe(title, points, fmt), parts)


def hbar_chart(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    fmt: Callable[[int], str] = money_label,
    width: int = 560,
    label_width: int = 150,
) -> Markup:
    """Horizontal bars, one row per (label, value), for categories with long names."""
    row = 22
    height = max(len(points), 1) * row + 8
    high = max([1, *(abs(v) for _, v in points)])
    room = width - label_width - 90
    parts = []
    for i, (label, value) in enumerate(points):
        y = 4 + i * row
        bar = abs(value) * room / high
        text = escape(f"{label}: {fmt(value)}")
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" font-size="10" text-anchor="end">'
            f"{escape(label[:28])}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{bar:.1f}" height="{row - 8}" '
            f'fill="{"#2f6f9f" if value >= 0 else "#b03a2e"}"><title>{text}</title></rect>'
            f'<text x="{label_width + bar + 4:.1f}" y="{y + 14}" font-size="9">'
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
