"""The shape docs/architecture.md promises, checked on the source: imports only point down
the layers, package faces only re-export, modules stay readable, and no container engine
is called outside ``dlenv.engine``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "dlenv"

# Bottom to top, as docs/architecture.md draws them; a module may import its own layer's
# modules of the same package and anything lower, never higher or a sibling package of
# its own layer.
LAYERS = [
    ["errors"],
    ["fsutil", "checks", "launcher", "serving"],
    ["cache", "config"],
    ["compat", "oci"],
    ["spec"],
    ["lock"],
    ["resolve"],
    ["image"],
    ["engine"],
    ["cluster"],
    ["run", "doctor", "verify", "lint", "audit"],
    ["workflows"],
    ["cli"],
    ["__main__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def top(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def dlenv_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "dlenv":
                # the package face: only its version, which every layer may print
                found += [(node.lineno, f"dlenv.{a.name}") for a in node.names
                          if a.name != "__version__"]
            elif node.module.startswith("dlenv."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("dlenv")]
    return found


def test_every_package_has_a_layer():
    tops = {top(p) for p in modules() if p.name != "__init__.py" or p.parent != SRC}
    assert tops <= set(LAYER), sorted(tops - set(LAYER))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_point_down(path):
    if path == SRC / "__init__.py":
        return  # the package face re-exports the public API
    mine = top(path)
    wrong = []
    for line, module in dlenv_imports(path):
        theirs = module.split(".")[1]
        if theirs == mine:
            continue
        if LAYER[theirs] >= LAYER[mine]:
            wrong.append(f"line {line}: {module} ({LAYERS[LAYER[theirs]]} is not below "
                         f"{mine})")
    assert not wrong, wrong


@pytest.mark.parametrize("path", [p for p in modules() if p.name == "__init__.py"],
                         ids=lambda p: str(p.relative_to(SRC)))
def test_package_faces_only_re_export(path):
    tree = ast.parse(path.read_text())
    body = tree.body[1:]  # after the docstring
    if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in body):
        # A face may re-export lazily (PEP 562): its names under TYPE_CHECKING for the
        # type checker, and __getattr__ importing them on first use.
        body = [n for n in body if not (isinstance(n, ast.FunctionDef)
                                        and n.name == "__getattr__")
                and not (isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
                and not (isinstance(n, ast.Import) and
                         [a.name for a in n.names] == ["importlib"])]
    kinds = {type(node).__name__ for node in body}
    assert kinds <= {"ImportFrom", "Assign"}, kinds
    assert len(path.read_text().splitlines()) <= 60


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_readable(path):
    assert len(path.read_text().splitlines()) <= 520


def test_no_container_engine_is_called_outside_the_engine_package():
    for path in modules():
        if top(path) == "engine":
            continue
        text = path.read_text()
        for needle in ('["docker", "', '["podman", "', '"/usr/bin/docker"'):
            assert needle not in text, f"{path.relative_to(SRC)} calls an engine: {needle}"
