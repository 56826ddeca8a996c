"""voxlive's package layering, checked on the source text.

- every import of the repo's own code goes through ``voxlive`` (a bare ``import protocol``
  with the repo root on ``sys.path`` would load a second copy of the module);
- ``protocol`` imports the standard library and msgpack only;
- ``engine`` imports no I/O framework (asyncio, websockets, redis, msgpack) and no other part;
- ``server`` imports ``protocol`` and ``engine``; ``client`` imports ``protocol``;
- nothing imports the command line or the benchmarks but themselves;
- no import cycle between modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"protocol": "protocol", "engine": "engine", "server": "server", "client": "client"}
BARE = {"protocol", "engine", "server", "client", "voxlive_tests", "tests"}
STDLIB = set(sys.stdlib_module_names)


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the installed package."""
    found: dict[str, Path] = {}
    roots = {f"voxlive.{p}": ROOT / d for p, d in PARTS.items()} | {"voxlive": ROOT / "voxlive"}
    for package, folder in roots.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            found[".".join((package, *rel))] = path
    return found


MODULES = _modules()


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Nodes under ``if TYPE_CHECKING:`` (annotations only; never run)."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for child in node.body:
                inside.update(ast.walk(child))
    return inside


def _imports(name: str, path: Path, runtime: bool = False) -> list[tuple[str, int]]:
    """Absolute module names imported by one module (relative imports resolved).

    ``runtime``: leave out imports made for type checking only.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = _type_checking_only(tree) if runtime else set()
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            for alias in node.names:  # `from . import x` may name a submodule
                if f"{target}.{alias.name}" in MODULES:
                    out.append((f"{target}.{alias.name}", node.lineno))
    return out


def _part(module: str) -> str:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[1] in PARTS else "app"


ENGINE_FORBIDDEN = {"asyncio", "websockets", "redis", "msgpack", "uvloop"}
PROTOCOL_FORBIDDEN = {"asyncio", "numpy", "torch", "websockets", "time", "threading"}
ALLOWED_PARTS = {
    "protocol": {"protocol"},
    "engine": {"engine"},
    "server": {"server", "protocol", "engine"},
    "client": {"client", "protocol"},
}


def _violations() -> list[str]:
    bad: list[str] = []
    for name, path in MODULES.items():
        part = _part(name)
        where = path.relative_to(ROOT)
        for target, line in _imports(name, path):
            top = target.split(".")[0]
            if top in BARE:
                bad.append(f"{where}:{line}: bare import of {target!r} (use voxlive.{target})")
                continue
            if top == "voxlive":
                tpart = _part(target)
                if part in ALLOWED_PARTS and tpart not in ALLOWED_PARTS[part]:
                    bad.append(f"{where}:{line}: {part} must not import {target}")
                if tpart == "app" and part != "app":
                    bad.append(f"{where}:{line}: {part} imports the application {target}")
                continue
            if part == "protocol" and top not in STDLIB and top not in {"msgpack"}:
                bad.append(f"{where}:{line}: protocol imports third-party {target}")
            if part == "protocol" and top in PROTOCOL_FORBIDDEN:
                bad.append(f"{where}:{line}: protocol imports {target}")
            if part == "engine" and top in ENGINE_FORBIDDEN:
                bad.append(f"{where}:{line}: engine imports {target}")
    return bad


def test_every_package_keeps_to_its_layer() -> None:
    assert _violations() == []


def test_the_command_line_is_imported_by_nobody_else() -> None:
    users = {
        name
        for name, path in MODULES.items()
        for target, _ in _imports(name, path)
        if (target + ".").startswith("voxlive.cli.")
        and not (name + ".").startswith(("voxlive.cli.", "voxlive.__main__."))
    }
    assert users == set()


def test_modules_form_no_import_cycle() -> None:
    """No cycle among the imports that run (type-checking back-references aside)."""
    graph = {
        name: {t for t, _ in _imports(name, path, runtime=True) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    # Importing a submodule imports its packages first; that edge is not a cycle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_tests_import_the_package_not_its_folders() -> None:
    bad = []
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            bad += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {n}"
                for n in names
                if n.split(".")[0] in PARTS
            ]
    assert bad == []


def test_installed_voxlive_adds_no_generic_top_level_names(tmp_path: Path) -> None:
    """Outside the repo, ``import protocol`` finds nothing of ours (PyPI has a ``protocol``)."""
    code = (
        "import importlib.util, json; "
        "print(json.dumps({n: getattr(importlib.util.find_spec(n), 'origin', None) "
        "for n in ['protocol', 'engine', 'server', 'client', 'voxlive.protocol']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout)
    assert found["voxlive.protocol"] == str(ROOT / "protocol" / "__init__.py")
    for name in ("protocol", "engine", "server", "client"):
        assert found[name] is None or not found[name].startswith(str(ROOT)), found
