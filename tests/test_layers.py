"""The package's layering, enforced (docs/architecture.md): a module imports only from its
own layer or below, including imports inside functions; the two facades below are the only
upward edges.  No import cycles, and no ``except ImportError`` around bpfkit's own modules
(a broken import must fail loudly, not make a feature disappear).

Pure: parses the sources with ``ast``, imports nothing.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "bpfkit"

L0, L1, L2, L3, L4, L5, L6 = range(7)

# Module (or package prefix) -> layer; the longest matching prefix wins, so a module that
# lands later in a known package (bpfkit.trace.*, bpfkit.tools.*...) is placed already.
# A new top-level module must be added here (test_every_module_has_a_layer says so).
LAYERS: dict[str, int] = {
    # bpfkit/__init__ imports only under TYPE_CHECKING (PEP 562 lazy names, __version__)
    "bpfkit": L0,
    # L0: exceptions, generated constants, verifier-log text
    "bpfkit.errors": L0, "bpfkit._consts": L0, "bpfkit.verifier_log": L0,
    # L1: pure formats (bytes in, objects out; files read by path, no bpf(2))
    "bpfkit.asm": L1, "bpfkit.elf": L1, "bpfkit.dwarf": L1, "bpfkit.sections": L1,
    "bpfkit.core": L1, "bpfkit.linker": L1, "bpfkit.btf": L1, "bpfkit.spec": L1,
    "bpfkit.records": L1, "bpfkit.inputfile": L1, "bpfkit.show": L1, "bpfkit.losses": L1,
    "bpfkit.trace": L5,  # the bpftrace-like compiler and runtime...
    "bpfkit.trace.ast": L1, "bpfkit.trace.lexer": L1, "bpfkit.trace.parser": L1,
    "bpfkit.trace.check": L1, "bpfkit.trace.types": L1, "bpfkit.trace.errors": L1,
    "bpfkit.trace.cli": L6,  # ...whose front end is pure and whose command is an application
    # L2: the system interface, the only code that calls the kernel or reads /proc, /sys
    "bpfkit.syscall": L2, "bpfkit.perf_event": L2, "bpfkit.netlink": L2, "bpfkit.netns": L2,
    "bpfkit.fd": L2, "bpfkit.cleanup": L2, "bpfkit.host": L2,
    # L3: kernel objects and feature probes
    "bpfkit.maps": L3, "bpfkit.program": L3, "bpfkit.link": L3, "bpfkit.introspect": L3,
    "bpfkit.features": L3,
    # L4: load, attach, read
    "bpfkit.loader": L4, "bpfkit.attach": L4, "bpfkit.readers": L4, "bpfkit.symbolize": L4,
    "bpfkit.histogram": L4, "bpfkit.flamegraph": L4,
    # L5: orchestration
    "bpfkit.manager": L5, "bpfkit.build": L5, "bpfkit.run": L5,
    # L6: applications
    "bpfkit.cli": L6, "bpfkit.tools": L6, "bpfkit.export": L6, "bpfkit.testing": L6,
    "bpfkit.examples": L6, "bpfkit.demo": L6,
}

# The deliberate upward calls (both lazy, both public API): at most two.
FACADES: dict[str, str] = {
    "bpfkit.program": "bpfkit.attach",      # Program.attach_* -> the attach functions
    "bpfkit.spec._elf_reader": "bpfkit.loader",  # CollectionSpec.load -> the loader
}
# A plug-in hook, not a dependency: the core CLI imports the optional exporter's and the
# tracer's commands by name so that they register themselves.
PLUGINS = {("bpfkit.cli", "bpfkit.export.cli"), ("bpfkit.cli", "bpfkit.trace.cli")}


def layer_of(module: str) -> int:
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best == "bpfkit" and module != "bpfkit":
        raise KeyError(f"{module} has no layer: add it to LAYERS in tests/test_layers.py "
                       "(see docs/architecture.md)")
    return LAYERS[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The bpfkit modules an import statement loads (``from . import x`` -> ``pkg.x``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "bpfkit"]
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "bpfkit":
        return []
    known = modules()
    out = []
    for a in node.names:
        sub = f"{target}.{a.name}"
        out.append(sub if sub in known else target)
    return out


@functools.cache
def imports() -> list[tuple[str, str, int, bool]]:
    """(importer, imported, line, inside a function) for every runtime bpfkit import."""
    edges = []
    for mod, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if _in_type_checking(node, parents):
                continue
            local = False
            p = node
            while p in parents:
                p = parents[p]
                if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    local = True
            for target in _resolve(mod, path.name == "__init__.py", node):
                edges.append((mod, target, node.lineno, local))
        # importlib.import_module("bpfkit.x") with a literal name is an import too
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).startswith("bpfkit.")):
                edges.append((mod, str(node.args[0].value), node.lineno, True))
    return edges


def _allowed(src: str, dst: str) -> bool:
    if (src, dst) in PLUGINS:
        return True
    facade = FACADES.get(src)
    return facade is not None and (dst == facade or dst.startswith(facade + "."))


def test_every_module_has_a_layer() -> None:
    missing = []
    for mod in modules():
        try:
            layer_of(mod)
        except KeyError as e:
            missing.append(str(e))
    assert not missing, "\n".join(missing)


def test_relative_imports_resolve() -> None:
    """mypy runs with ignore_missing_imports, so a relative import left one level off
    after a move would only fail when that line runs: catch it here."""
    known = modules()
    bad = []
    for mod, path in known.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module])
                if target not in known:
                    bad.append(f"{mod}:{node.lineno} imports {target}, which does not exist")
    assert not bad, "\n".join(bad)


def test_no_upward_imports() -> None:
    bad = []
    for src, dst, line, local in imports():
        if layer_of(dst) > layer_of(src) and not _allowed(src, dst):
            where = "inside a function" if local else "at module level"
            bad.append(f"{src}:{line} (L{layer_of(src)}) imports {dst} (L{layer_of(dst)}) "
                       f"{where}")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_facades_are_few_and_used() -> None:
    assert len(FACADES) <= 2
    used = {(s, FACADES[s]) for s, d, _, _ in imports() if s in FACADES and _allowed(s, d)}
    assert used == set(FACADES.items()), "an allow-listed facade no longer exists: drop it"


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst, _, _ in imports():
        if src != dst and not _allowed(src, dst) and not dst.startswith(src + "."):
            graph.setdefault(src, set()).add(dst)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    # a package importing its own submodules and those importing back through the
    # package name is how packages work; a cycle between separate modules is not
    real = [c for c in sccs if len({m for m in c if not any(o.startswith(m + ".")
                                                             for o in c)}) > 1]
    assert not real, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in real)


def test_no_import_error_fallbacks_for_own_modules() -> None:
    bad = []
    for mod, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            catches = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if not any("ImportError" in c or "ModuleNotFoundError" in c for c in catches):
                continue
            for stmt in node.body:
                for sub in ast.walk(stmt):
                    own = (isinstance(sub, ast.ImportFrom) and (sub.level > 0 or (
                        sub.module or "").startswith("bpfkit"))) or (
                        isinstance(sub, ast.Import)
                        and any(a.name.startswith("bpfkit") for a in sub.names))
                    if own:
                        bad.append(f"{mod}:{node.lineno}")
    assert not bad, "except ImportError around bpfkit imports: " + ", ".join(bad)


@pytest.mark.parametrize("module, layer", [
    ("bpfkit.host.kallsyms", L2), ("bpfkit.trace.parser", L1), ("bpfkit.trace.codegen", L5),
    ("bpfkit.tools.some_future_tool", L6), ("bpfkit.btf.codec", L1), ("bpfkit", L0),
])
def test_layer_map_is_by_prefix(module: str, layer: int) -> None:
    assert layer_of(module) == layer
