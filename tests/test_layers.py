"""Layers import downward only: no import cycle among the modules of `reenact/` and `cli/` (docs/architecture.md).

Every import statement counts, at module level or inside a function or an `if TYPE_CHECKING:` block: an import
hidden in a function still ties the two modules together, it only fails later. Imports are read with `ast`, so the
check needs none of the modules' dependencies and runs in well under a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"reenact": "reenact", "cli": "reenact_cli"}  # folder -> the name it is imported as (pyproject.toml)

# Cycles known and owned elsewhere, as sorted module lists. Nothing else may join them.
KNOWN_CYCLES = [
    # TODO: remove once render/interior and render/mouth are untangled
    ["reenact.render.interior", "reenact.render.mouth"],
]


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    found: dict[str, Path] = {}
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [name, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(module: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The project modules `module` imports anywhere in its file -> the line of the first such import.

    `from package import name` counts as importing `package.name` when that is a module, else `package`; an import
    of a module's parent package by itself counts for the package's __init__ only."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    edges: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                up = package[: len(package) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import reenact.io.video as v` -> the deepest module we know
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.setdefault(target, node.lineno)
    return edges


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def describe(component: list[str], graph: dict[str, dict[str, int]], known: dict[str, Path]) -> str:
    lines = [" <-> ".join(component)]
    for v in component:
        for w, line in sorted(graph[v].items()):
            if w in component:
                lines.append(f"    {known[v].relative_to(ROOT)}:{line} imports {w}")
    return "\n".join(lines)


def import_graph() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    known = modules()
    return {m: imported(m, p, known) for m, p in known.items()}, known


def test_no_import_cycle() -> None:
    graph, known = import_graph()
    new = [c for c in cycles(graph) if c not in KNOWN_CYCLES]
    assert not new, "import cycles (move the shared definitions down a layer):\n" + "\n".join(
        describe(c, graph, known) for c in new)


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import pkg.b\n")
    b.write_text("def late():\n    from pkg import a\n    return a\n")
    known = {"pkg.a": a, "pkg.b": b}
    graph = {m: imported(m, p, known) for m, p in known.items()}
    assert graph == {"pkg.a": {"pkg.b": 1}, "pkg.b": {"pkg.a": 2}}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_cli_modules_are_covered() -> None:
    """The CLI's folder is imported as `reenact_cli`; its modules are in the graph under that name."""
    assert "reenact_cli.app" in modules()


# ------------------------------------------------------------------------------------------------ function size
MAX_LINES = 60  # from the `def` line to the function's last line (decorators not counted)
MAX_PARAMS = 10  # self and cls not counted
EXCUSE = "# long:"  # a comment line right above the def (or its decorators) that says why it may be longer


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line name lines/params` for each function of `path` over MAX_LINES or MAX_PARAMS without an EXCUSE."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines), str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = node.args
        params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if p is not None]
        n_params = len([p for p in params if p not in ("self", "cls")])
        n_lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if n_lines <= MAX_LINES and n_params <= MAX_PARAMS:
            continue
        top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        if top >= 2 and lines[top - 2].strip().startswith(EXCUSE):
            continue
        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} {n_lines}/{n_params}")
    return found


def test_functions_are_short_or_say_why() -> None:
    over = [v for folder in PACKAGES for path in sorted((ROOT / folder).rglob("*.py")) for v in oversized(path)]
    assert not over, (f"functions over {MAX_LINES} lines or {MAX_PARAMS} parameters (split them, or take a spec; "
                      f"else a `{EXCUSE} why` comment right above the def, docs/architecture.md):\n" + "\n".join(over))


def test_the_size_check_sees_an_excuse(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\n# long: a table, read top to bottom\n"
                                   f"@decorated\ndef excused():\n{body}\n\ndef many({', '.join('abcdefghijk')}):\n"
                                   f"    pass\n")
    assert [v.split(" ", 1)[1] for v in oversized(tmp_path / "m.py", tmp_path)] == [f"long {MAX_LINES + 1}/0", "many 2/11"]
