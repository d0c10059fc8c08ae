"""The layer rule, checked: the import contract in pyproject.toml, no import cycle inside any
package, and documentation that cites only files that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``edges`` closes (each as the path, first node repeated)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


def cycles_within_packages(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Import cycles among the modules of each sub-package of ``package`` (and of ``package`` itself)."""
    found = []
    for pkg in sorted(graph.find_children(package)) + [package]:
        members = {m for m in graph.modules if m.rsplit(".", 1)[0] == pkg}
        found += _cycles({m: {n for n in graph.find_modules_directly_imported_by(m) if n in members} for m in members})
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.sub.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.sub.a", imported="pkg.sub.b")
    graph.add_import(importer="pkg.sub.b", imported="pkg.sub.c")
    assert cycles_within_packages(graph, "pkg") == []
    graph.add_import(importer="pkg.sub.c", imported="pkg.sub.a")
    assert cycles_within_packages(graph, "pkg") == [["pkg.sub.a", "pkg.sub.b", "pkg.sub.c", "pkg.sub.a"]]


def test_no_import_cycle_inside_a_package():
    """TYPE_CHECKING imports count too: a cycle hidden behind one is still a knot."""
    assert cycles_within_packages(grimp.build_graph("dckd_cli"), "dckd_cli") == []


def test_the_layer_contract_holds():
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 kept, 0 broken" in done.stdout


def test_docs_cite_files_that_exist():
    cited = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        cited |= {(doc.name, m) for m in re.findall(r"`([\w./-]+\.py)`", doc.read_text())}
    sources = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("**/*.py") if ".venv" not in p.parts}
    names = {Path(s).name for s in sources}
    missing = []
    for doc, path in sorted(cited):
        if "/" in path:
            ok = path in sources or f"dckd_cli/{path}" in sources or any(s.endswith(f"/{path}") for s in sources)
        else:
            ok = path in names
        if not ok:
            missing.append(f"{doc}: {path}")
    assert missing == []
