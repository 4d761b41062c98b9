"""Bar charts of benchmark figures, as SVG files the docs show beside their tables."""

from __future__ import annotations

from html import escape
from pathlib import Path

WIDTH, BAR, GAP, LEFT, TOP = 640, 26, 12, 250, 44


def bars_svg(
    title: str,
    unit: str,
    bars: list[tuple[str, float]],
    goal: float | None = None,
    goal_label: str = "goal",
) -> str:
    """Horizontal bars, one per (label, value), on one scale; `goal` as a dashed line, named
    `goal_label` (a budget or a limit is drawn the same way)."""
    top = max([value for _, value in bars] + [goal or 0]) * 1.1 or 1
    span = WIDTH - LEFT - 60
    height = TOP + len(bars) * (BAR + GAP) + 24

    def x(value: float) -> float:
        return LEFT + span * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = TOP + i * (BAR + GAP)
        parts += [
            f'<text x="{LEFT - 8}" y="{y + BAR * 0.68:.0f}" text-anchor="end">{escape(label)}</text>',
            f'<rect x="{LEFT}" y="{y}" width="{x(value) - LEFT:.1f}" height="{BAR}" fill="#3b6ea8"/>',
            f'<text x="{x(value) + 6:.1f}" y="{y + BAR * 0.68:.0f}">{value:,.0f} {escape(unit)}</text>',
        ]
    if goal is not None:
        bottom = TOP + len(bars) * (BAR + GAP)
        parts += [
            f'<line x1="{x(goal):.1f}" y1="{TOP - 6}" x2="{x(goal):.1f}" y2="{bottom}" '
            'stroke="#b03030" stroke-width="2" stroke-dasharray="6 4"/>',
            f'<text x="{x(goal):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#b03030">'
            f"{escape(goal_label)} {goal:,.0f} {escape(unit)}</text>",
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_bars(path: str | Path, *args, **kwargs) -> None:
    Path(path).write_text(bars_svg(*args, **kwargs))
    print(f"chart written to {path}")
