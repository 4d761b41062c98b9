"""The shape of the code (docs/architecture.md), checked: no import circle, counted the way
Python runs imports; the domain never reaches up into the web side; no view commits; web
files stay small and their names say which room they are in."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "agency",
    "api",
    "client_area",
    "portal",
    "correspondence",
    "shell",
    "demo",
    "payments",
    "cases",
)
DOMAIN = ("cases", "payments")
WEB = ("agency", "api", "client_area", "portal", "correspondence", "shell", "demo")
# Who may import whom (top-level packages). The shell's foundation modules (extensions,
# settings, timezone, money, document_store, security, unit_of_work, job_runner) are shared by
# every room; `shell.app` and the CLI modules compose the rooms and are imported only by
# `agency.create_app`.
ALLOWED = {
    "agency": {
        "agency",
        "api",
        "client_area",
        "portal",
        "correspondence",
        "shell",
        "payments",
        "cases",
    },
    "api": {"api", "correspondence", "shell", "payments", "cases"},
    "client_area": {"client_area", "correspondence", "shell", "payments", "cases"},
    "portal": {"portal", "correspondence", "shell", "payments", "cases"},
    "correspondence": {"correspondence", "shell", "payments", "cases"},
    "demo": {"demo", "payments", "cases"},
    "shell": {"shell", "api", "correspondence", "demo", "payments", "cases"},
    "payments": {"payments", "cases"},
    "cases": {"cases"},
}
SHELL_COMPOSERS = (
    "shell.app",
    "shell.cli",
    "shell.autopay_cli",
    "shell.notices_cli",
    "shell.reminders_cli",
    "shell.statements_cli",
    "shell.stripe_cli",
    "shell.config_cli",
    "shell.error_pages",
)


def modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(module imported, line, inside a function?) for each import of a module of ours;
    importing `a.b.c` runs `a` and `a.b` first, so they count too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    in_function = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for sub in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                module = ".".join(parts[:i])
                if module in MODULES and module != name and not name.startswith(module + "."):
                    found.append((module, node.lineno, id(node) in in_function))
    return found


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def test_there_is_no_import_circle():
    edges = {name: {target for target, _, _ in found} for name, found in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert circles == []


def test_no_module_imports_ours_inside_a_function():
    inside = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, found in GRAPH.items()
        for target, line, in_function in found
        if in_function
    ]
    assert inside == []


def test_dependencies_point_one_way():
    wrong = [
        f"{name} imports {target}"
        for name, found in GRAPH.items()
        for target, _, _ in found
        if target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    ]
    assert wrong == []
    # The shell's composing modules are reached only from create_app and from one another.
    reaching = [
        f"{name} imports {target}"
        for name, found in GRAPH.items()
        for target, _, _ in found
        if target in SHELL_COMPOSERS and not (name == "agency" or name.startswith("shell."))
    ]
    assert reaching == []


def test_the_domain_names_no_web_module_and_knows_nothing_of_flask():
    named, flask = [], []
    for name, path in MODULES.items():
        if name.split(".")[0] not in DOMAIN:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                head = node.value.split(":")[0].split(".")[0]
                if ":" in node.value and head in WEB:
                    named.append(f"{name}:{node.lineno} {node.value}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(m.split(".")[0].startswith("flask") for m in mods):
                    flask.append(f"{name}:{node.lineno}")
    assert named == [] and flask == []


def test_no_view_commits_or_rolls_back():
    found = []
    for name, path in MODULES.items():
        if name.split(".")[0] not in WEB:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            routed = any(
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and d.func.attr in ("route", "get", "post", "put", "patch", "delete")
                for d in node.decorator_list
            )
            if routed:
                for sub in ast.walk(node):
                    if (
                        isinstance(sub, ast.Call)
                        and isinstance(sub.func, ast.Attribute)
                        and sub.func.attr in ("commit", "rollback")
                    ):
                        found.append(f"{path.relative_to(ROOT)}:{sub.lineno} {node.name}")
    assert found == []


def test_commit_and_rollback_live_only_in_the_unit_of_work_on_the_web_side():
    found = []
    for name, path in MODULES.items():
        if name.split(".")[0] not in WEB or name == "shell.unit_of_work":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ".commit()" in line or ".rollback()" in line:
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []


def test_web_files_stay_small_and_their_names_say_which_room_they_are_in():
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for name, path in MODULES.items()
        if name.split(".")[0] in WEB
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > 420
    ]
    assert long == []
    # A name repeats only for the same thing in parallel rooms.
    parallel = {"__init__.py", "views.py", "statement_pages.py", "report_pages.py"}
    names = Counter(path.name for path in MODULES.values())
    assert sorted(n for n, count in names.items() if count > 1 and n not in parallel) == []


@pytest.mark.parametrize("first", PACKAGES)
def test_each_package_imports_first_in_a_fresh_interpreter(first):
    """Whichever package a process imports first (a worker, a command, a test), it loads."""
    ours = [name for name in MODULES if name.split(".")[0] == first]
    code = f"import importlib\nfor name in {ours!r}:\n    importlib.import_module(name)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
