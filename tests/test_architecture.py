"""The import graph shows the architecture: the contract package imports none of ours; kernels import only the
contract; the engine only the contract and kernels; no product package imports the lab; no import circles.
Every import counts, also the ones inside functions."""
import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("contract", "planner", "engine", "kernels", "web", "lab")
ALLOWED = {  # package -> packages of ours it may import
    "contract": set(),
    "kernels": {"contract"},
    "engine": {"contract", "kernels"},
    "planner": {"contract"},
    "web": {"contract", "planner"},
    "lab": {"contract", "planner", "engine", "kernels"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative
                anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] in OURS}


def graph() -> nx.DiGraph:
    mods = {module_name(p): p for pkg in OURS for p in (ROOT / pkg).rglob("*.py")}
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        for imp in imports(path):
            target = imp
            while target and target not in mods:  # `from a.b import name` names a module or an attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                g.add_edge(name, target)
    return g


@pytest.fixture(scope="module")
def G():
    return graph()


def test_each_package_imports_only_what_the_layering_allows(G):
    bad = [(a, b) for a, b in G.edges if b.split(".")[0] not in ALLOWED[a.split(".")[0]] | {a.split(".")[0]}]
    assert not bad, "\n".join(f"{a} imports {b}" for a, b in bad)


def test_no_import_circles(G):
    # a package's __init__ re-exporting its own modules is not a circle of meaning
    h = G.copy()
    h.remove_edges_from([(a, b) for a, b in G.edges if b.startswith(a + ".")])
    cycles = list(nx.simple_cycles(h))
    assert not cycles, cycles[:5]


def test_the_contract_needs_neither_torch_nor_simpy():
    third = set()
    for p in (ROOT / "contract").rglob("*.py"):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                third |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                third.add((node.module or "").split(".")[0])
    assert not third & {"torch", "simpy", "cupy", "streamlit"}, third
