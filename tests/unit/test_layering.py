"""The house rules of `workflow/`, read from the source (ast), every import counted: at module level, inside
functions and under `if TYPE_CHECKING:`.

- Packages by who runs the code, imports flowing one way: each may import only itself and those before it in
  LAYERS; cli.py, commands/ and local/ (the operator's side) may import any.
- core/, registry/ and engine/ (the copy job's asset) never import pydantic.
- No import cycle between modules.
- At most 8 modules at workflow/'s top level, and every package says in its docstring what it may import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "workflow"
LAYERS = ("core", "registry", "engine", "models", "gates", "pipeline", "ops")
TOP = ("cli", "commands", "local")
COPY_JOB = ("core", "registry", "engine")
MAX_TOP_LEVEL_MODULES = 8


@dataclass(frozen=True)
class Import:
    """One imported name: the importing module, its line, and what it imports (a module, or a third party)."""

    module: str
    line: int
    target: str


def module_name(path: Path, root: Path = ROOT) -> str:
    """`workflow.x.y` of a file under `root` (the `workflow` folder)."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package, by name."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in a module's source, resolved to the module it loads (`from a import b`: `a.b` when that
    is a module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                member = f"{base}.{alias.name}"
                yield Import(name, node.lineno, member if member in known else base)


def layer_of(module: str) -> int:
    """The index of a workflow module's layer (LAYERS, then TOP as one last layer); the bare package is 0."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if parts[1] in TOP:
        return len(LAYERS)
    raise AssertionError(f"{module} is in no layer: put it in one of {', '.join(LAYERS + TOP)}")


def all_imports(root: Path = ROOT) -> list[Import]:
    """Every import of every module under `root`."""
    found = modules(root)
    return [item for name, path in found.items() for item in imports_of(name, path, set(found))]


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports of a package after the importer's own in LAYERS."""
    return [
        f"{item.module}:{item.line} imports {item.target}: {_layer_name(item.module)} may not import "
        f"{_layer_name(item.target)}"
        for item in imports
        if item.target.split(".")[0] == "workflow" and layer_of(item.target) > layer_of(item.module)
    ]


def _layer_name(module: str) -> str:
    index = layer_of(module)
    return f"{LAYERS[index]}/" if index < len(LAYERS) else "cli.py, commands/ and local/"


def pydantic_imports(imports: list[Import]) -> list[str]:
    """Imports of pydantic by the copy job's packages."""
    return [
        f"{item.module}:{item.line} imports {item.target}"
        for item in imports
        if item.target.split(".")[0] == "pydantic" and item.module.split(".")[1:2] in ([p] for p in COPY_JOB)
    ]


def cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself): Tarjan."""
    graph: dict[str, set[str]] = {}
    for item in imports:
        if item.target.split(".")[0] == "workflow":
            graph.setdefault(item.module, set()).add(item.target)
            graph.setdefault(item.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    """Every import under workflow/."""
    return all_imports()


def test_each_package_imports_only_the_packages_before_it(imports: list[Import]) -> None:
    # Given every import of every module under workflow/
    # When each is compared with the layer order, Then none reaches a later layer
    violations = layer_violations(imports)
    assert not violations, "imports against the layer order:\n" + "\n".join(violations)


def test_the_copy_job_packages_never_import_pydantic(imports: list[Import]) -> None:
    # Given the imports of core/, registry/ and engine/, When pydantic is looked for, Then it is not there
    found = pydantic_imports(imports)
    assert not found, "the copy job's packages import pydantic:\n" + "\n".join(found)


def test_no_module_imports_itself_back_through_others(imports: list[Import]) -> None:
    # Given the graph of workflow/'s imports (TYPE_CHECKING and in-function ones too), When its cycles are found,
    # Then there are none
    found = cycles(imports)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_top_level_holds_few_modules_and_every_package_says_what_it_may_import() -> None:
    # Given workflow/'s top level and its packages
    top_level = sorted(path.name for path in ROOT.glob("*.py"))
    packages = sorted(path.parent for path in ROOT.rglob("__init__.py") if path.parent != ROOT)
    # Then few modules stand at the top, and each package's docstring has a "May import:" line
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level
    silent = [
        str(package.relative_to(ROOT.parent))
        for package in packages
        if "May import:" not in (ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or "")
    ]
    assert not silent, f"packages whose docstring does not say what they may import: {silent}"


def test_the_checks_catch_an_engine_importing_models_a_cycle_and_pydantic(tmp_path: Path) -> None:
    # Given a small tree where the engine imports the models (pydantic) back, and models import the engine
    for name, source in {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/copy.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import workflow.models.config\n",
        "models/__init__.py": "",
        "models/config.py": "import pydantic\nfrom workflow.engine import copy\n",
        "registry/__init__.py": "",
        "registry/client.py": "def f():\n    from pydantic import BaseModel\n",
    }.items():
        (tmp_path / "workflow" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "workflow" / name).write_text(source)
    # When the checks read it
    found = all_imports(tmp_path / "workflow")
    # Then each rule names the import that breaks it
    assert layer_violations(found) == [
        "workflow.engine.copy:3 imports workflow.models.config: engine/ may not import models/"
    ]
    assert pydantic_imports(found) == ["workflow.registry.client:2 imports pydantic"]
    assert cycles(found) == [["workflow.engine.copy", "workflow.models.config"]]
