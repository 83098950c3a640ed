"""Print the import cycles among the modules of a package and exit 1 if there is any.

Every `import` and `from ... import` counts: at module level, inside a function (a deferred import is still a
dependency) and under `if TYPE_CHECKING:` (so is a type used in a signature). A cycle is a strongly connected
component of more than one module.

    python scripts/import_cycles.py                 # changeanywhere/, experiments/, bench/ and scripts/
    python scripts/import_cycles.py DIR [DIR ...]

A folder with an `__init__.py` is a package (modules `pkg.sub.mod`); a folder without one is a folder of scripts
that import one another by file name (`experiments/zero_shot.py` importing `zero_shot_report`).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


FOLDERS = ("changeanywhere", "experiments", "bench", "scripts")


def module_name(path: Path, package_dir: Path) -> str:
    if not (package_dir / "__init__.py").is_file():  # a folder of scripts: modules by file name
        return path.stem
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package modules that the module `name` (file `path`) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `from pkg import name` names a module or an attribute
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):  # a parent package is no edge
                found.add(target)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    pattern = "*.py" if not (package_dir / "__init__.py").is_file() else "**/*.py"  # scripts: the folder's own
    files = {module_name(p, package_dir): p for p in sorted(package_dir.glob(pattern))}
    return {name: imports_of(path, name, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
        for w in sorted(graph[v]):
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folders = [Path(a) for a in args] if args else [ROOT / f for f in FOLDERS]
    total = 0
    for folder in folders:
        graph = import_graph(folder)
        found = cycles(graph)
        total += len(found)
        for component in found:
            inside = set(component)
            edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & inside)]
            print(f"cycle of {len(component)} modules: {', '.join(component)}")
            for edge in edges:
                print(f"    {edge}")
        print(f"{folder.name}/: {len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} import "
              "cycle(s)")
    print(f"{total} import cycle(s) in {len(folders)} folder(s)")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
