"""The repository documents itself: README.md and docs/ link only to files inside it, the
README's settings table is the settings table of shell/settings.py, docs/api.md describes
exactly the operations of api/openapi.json, and docs/cli.md every command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import click

from shell import settings

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|(?:href|src)=\"([^\"]+)\"")


def links_outside(folder: Path, markdown: str) -> list[str]:
    """The links of a Markdown text in `folder` that leave the repository or point at nothing
    (web addresses and anchors are fine)."""
    found = []
    for target in [a or b for a, b in LINK.findall(markdown)]:
        parts = urlsplit(target)
        if parts.scheme in ("http", "https", "mailto") or target.startswith("#"):
            continue
        resolved = (folder / unquote(parts.path)).resolve()
        if parts.scheme or not resolved.is_relative_to(ROOT) or not resolved.exists():
            found.append(target)
    return found


def test_readme_and_docs_link_only_to_files_inside_the_repository():
    outside = {
        str(document.relative_to(ROOT)): links_outside(
            document.parent, document.read_text(encoding="utf-8")
        )
        for document in DOCUMENTS
    }
    assert {name: found for name, found in outside.items() if found} == {}


def test_the_link_check_catches_a_link_outside_the_repository():
    docs = ROOT / "docs"
    assert links_outside(docs, "see [the spec](../shared/SPEC.md)") == ["../shared/SPEC.md"]
    assert links_outside(docs, '<a href="../../etc/passwd">x</a>') == ["../../etc/passwd"]
    assert links_outside(docs, "[gone](nowhere.md) [ok](../README.md) [web](https://x.org)") == [
        "nowhere.md"
    ]


def readme_settings() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n#", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_readme_documents_every_setting_and_no_other():
    assert readme_settings() == set(settings.BY_NAME)


def test_every_setting_has_a_doc_line_and_secrets_are_masked():
    for setting in settings.SETTINGS:
        assert setting.doc.strip(), setting.name
        if setting.secret and setting.name not in ("DATABASE_URL", "REDIS_URL"):
            assert settings.masked(setting, "s3cret") == "******** (set)"


def api_operations_in_openapi() -> set[str]:
    spec = json.loads((ROOT / "api" / "openapi.json").read_text())
    base = spec["servers"][0]["url"]
    return {
        f"{method.upper()} {base}{path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


def api_operations_in_docs() -> set[str]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^#+ `?((?:GET|POST|PUT|PATCH|DELETE) /api/v1\S*?)`?$", text, re.M))


def test_docs_api_describes_exactly_the_operations_of_openapi_json():
    assert api_operations_in_docs() == api_operations_in_openapi()


def commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name))


def test_docs_cli_describes_every_command(app):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = set(
        re.findall(r"^#+ `flask --app wsgi ([a-z][a-z -]*?)(?: [A-Z\[-].*)?`$", text, re.M)
    )
    ours = {name for name in commands(app.cli) if not name.startswith("db ")}
    assert ours - documented == set()
    assert documented - ours <= {"db upgrade"}
