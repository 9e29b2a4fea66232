"""The house's floors, kept true: each stage imports only the stages below it, no module imports a private
name of another package, nothing loose lies at the package root, and no function or module outgrows a
reading. The rules are data (``FLOORS``), checked by walking every module's imports, lazy ones included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "mlengineer"

#: lowest floor first: a package may import from any floor below its own, never from its own floor's other
#: packages or from above. The root's shared leaves stand on the ground floor.
FLOORS: list[set[str]] = [
    {"errors", "written_numbers"},
    {"tasks", "metrics"},
    {"data"},
    {"features"},
    {"training"},
    {"evaluation", "explain"},
    {"bundle"},
    {"tracking"},
    {"pipeline"},
    {"monitoring"},
    {"serving"},
    {"spark"},
    {"report"},
    {"demo"},
    {"cli"},
]
#: what may stand at the root beside the packages: the public face and the small shared leaves
ROOT_MODULES = {"__init__.py", "errors.py", "tasks.py", "metrics.py", "written_numbers.py", "py.typed"}
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 420


def _floor(stage: str) -> int:
    for i, floor in enumerate(FLOORS):
        if stage in floor:
            return i
    raise AssertionError(f"{stage!r} stands on no floor: add it to FLOORS in {Path(__file__).name}")


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _is_module(dotted: str) -> bool:
    path = SRC.parent / Path(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports() -> list[tuple[str, str, list[str], int]]:
    """(importing module, imported module, names, line) for every import of mlengineer's own modules."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        name, is_package = _module(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "mlengineer":
                    continue
                # ``from .. import errors`` imports the module mlengineer.errors, not a name of the root
                modules = [a.name for a in node.names if _is_module(f"{target}.{a.name}")]
                found.extend((name, f"{target}.{m}", [], node.lineno) for m in modules)
                names = [a.name for a in node.names if a.name not in modules]
                if names:
                    found.append((name, target, names, node.lineno))
            elif isinstance(node, ast.Import):
                found.extend((name, a.name, [], node.lineno) for a in node.names
                             if a.name.split(".")[0] == "mlengineer")
    return found


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def test_every_stage_imports_only_the_floors_below_it() -> None:
    wrong = []
    for src, dst, names, line in _imports():
        a, b = _stage(src), _stage(dst)
        if a == "(root)" or a == b:
            continue  # the public face may reach anywhere (lazily); a package may use itself
        if b == "(root)":
            # the package root is the public face: a stage takes the version from it, nothing else
            if names != ["__version__"]:
                wrong.append(f"{src}:{line} imports {names} from the package root")
            continue
        if _floor(b) >= _floor(a):
            wrong.append(f"{src}:{line} ({a}, floor {_floor(a)}) imports {dst} ({b}, floor {_floor(b)})")
    assert not wrong, "imports against the floors:\n" + "\n".join(wrong)


def test_no_private_name_crosses_a_package() -> None:
    wrong = []
    for src, dst, names, line in _imports():
        dst_pkg = dst.rsplit(".", 1)[0]
        dst_is_package = (SRC.parent / Path(*dst.split(".")) / "__init__.py").is_file()
        home = dst if dst_is_package else dst_pkg
        if not src.startswith(home) and src != home:
            private_module = any(p.startswith("_") for p in dst.split(".")[1:])
            private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private_module or private_names:
                wrong.append(f"{src}:{line} imports {private_names or dst} from {dst}")
    assert not wrong, "private names used outside their package:\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    modules = {_module(p)[0] for p in SRC.rglob("*.py")}
    for src, dst, names, _ in _imports():
        targets = {f"{dst}.{n}" for n in names if f"{dst}.{n}" in modules} or {dst}
        for t in targets:
            if t != src and t in modules and _stage(src) != "(root)":
                graph[src].add(t)
    # a module importing its own package's __init__ (for re-exported names) is not a cycle of its own
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_root_holds_only_the_public_face_and_shared_leaves() -> None:
    loose = sorted(p.name for p in SRC.iterdir() if p.is_file() and p.name not in ROOT_MODULES)
    assert not loose, f"modules loose at the package root (give each a stage): {loose}"


def test_modules_and_functions_stay_small() -> None:
    """Small enough to read in one sitting: no module over about 400 lines, no function over 80."""
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(SRC))
        if text.count("\n") > MAX_MODULE_LINES:
            wrong.append(f"{name}: {text.count(chr(10))} lines")
        wrong += [f"{name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                  for node in ast.walk(ast.parse(text))
                  if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not wrong, f"split these (modules over {MAX_MODULE_LINES} lines, functions over {MAX_FUNCTION_LINES}):\n" + \
        "\n".join(wrong)
