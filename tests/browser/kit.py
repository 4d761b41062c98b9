"""What the browser tests share: axe-core checks and screenshots kept as test artefacts.

Screenshots go to `$SCREENSHOT_DIR` (default `build/screenshots/` in the repository), one
folder per area: `build/screenshots/<area>/<name>-<width>.png`. CI keeps that folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import Page

AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
REPOSITORY = Path(__file__).resolve().parents[2]
RULES = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']"


def require_axe() -> None:
    """axe-core comes from `npm ci --prefix tests/browser`: skip without it, fail in CI."""
    if not AXE.exists():
        message = f"{AXE} is missing: npm ci --prefix tests/browser (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def axe_problems(page: Page, exclude: str = "[['#card-element']]") -> list[dict]:
    """The serious and critical axe-core violations on the page as it is now. The context
    must be made with `bypass_csp=True` (axe is injected as a script). The card Element is
    Stripe's, not ours to check."""
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate(
        f"async () => await axe.run({{exclude: {exclude}}}, {{runOnly: {RULES}}})"
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def assert_no_axe_problems(found: dict[str, list[dict]]) -> None:
    """No serious or critical violation on any page checked (page: its violations)."""
    problems = {
        path: [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]]) for v in vs]
        for path, vs in found.items()
        if vs
    }
    assert problems == {}, json.dumps(problems, indent=1)


def overflow_width(page: Page) -> int:
    """How wide the page's content is, in CSS pixels (wider than the viewport = cut off)."""
    return page.evaluate("document.documentElement.scrollWidth")


def save_screenshot(page: Page, area: str, name: str, full_page: bool = True) -> Path:
    """Keep a screenshot as a test artefact; returns its path."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or REPOSITORY / "build" / "screenshots")
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = folder / area / f"{name}-{width}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path
