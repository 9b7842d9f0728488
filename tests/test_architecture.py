"""Layering (docs/architecture.md): each part of swimbench imports only the parts below it, so ops know
tensors, layers know a configuration, measurement knows layers, and reports and gates know result files.
Read from the source's import statements (those inside functions too; `if TYPE_CHECKING:` blocks, which
never run, excepted)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A part may import parts of a lower rank (and itself); `sweeps.spec`, the settings every
# layer above the designs reads, sits apart from the sweep runner and profiles above measurement.
RANKS = {
    "kernels": 0,
    "designs": 1, "mamba_ref": 1, "stats": 1, "distributed": 1,
    "config": 2,
    "layers": 3,
    "models": 4,
    "flops": 5, "sweeps.spec": 5,
    "measure": 6,
    "sweeps": 7, "results": 7,
    "gate": 8,
    "report": 9, "doctor": 9,
    "cli": 10,
    "__main__": 11,
}


def _modules() -> dict[str, Path]:
    mods = {}
    for base, pkg in ((ROOT / "swimbench", "swimbench"), (ROOT / "kernels", "swimbench.kernels")):
        for f in base.rglob("*.py"):
            parts = [p for p in f.relative_to(base).with_suffix("").parts if p != "__init__"]
            mods[".".join([pkg, *parts])] = f
    return mods


def _part(module: str) -> str:
    p = module.split(".")
    return "sweeps.spec" if p[1:3] == ["sweeps", "spec"] else p[1]


def _runtime_imports(tree: ast.AST):
    """Import nodes outside `if TYPE_CHECKING:` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]


def _edges() -> list[tuple[str, str, str]]:
    mods, out = _modules(), []
    for name, path in mods.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                targets = [a.name for a in node.names]
            for t in targets:
                t = t if t in mods else t.rsplit(".", 1)[0]
                if t in mods and t != "swimbench":
                    out.append((_part(name), _part(t), name))
    return out


def test_every_part_of_the_package_has_a_rank():
    assert {_part(m) for m in _modules() if m != "swimbench"} <= set(RANKS)


def test_no_part_imports_a_part_above_it():
    upward = sorted({f"{mod} ({a}, rank {RANKS[a]}) imports {b} (rank {RANKS[b]})"
                     for a, b, mod in _edges() if a != b and RANKS[b] >= RANKS[a]})
    assert upward == []


def test_the_ops_import_nothing_of_the_application():
    assert sorted({b for a, b, _ in _edges() if a == "kernels" and b != "kernels"}) == []


def test_the_check_sees_imports_it_must_refuse(tmp_path):
    """The parser catches the forms an upward import takes: relative, absolute and inside a function."""
    src = "from ..report import x\nimport swimbench.cli\n\ndef f():\n    from ..gate import y\n"
    tree = ast.parse(src)
    found = [ast.unparse(n) for n in _runtime_imports(tree)]
    assert found == ["from ..report import x", "import swimbench.cli", "from ..gate import y"]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..cli import z\n")
    assert [ast.unparse(n) for n in _runtime_imports(guarded)] == ["from typing import TYPE_CHECKING"]


def test_every_package_of_the_tree_ships():
    """A non-editable install holds every package of swimbench/ and kernels/ (pyproject.toml lists
    them by hand, because kernels/ ships as swimbench.kernels)."""
    try:
        import tomllib
    except ModuleNotFoundError:                 # Python 3.10
        import tomli as tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "swimbench").rglob("__init__.py")}
    found |= {"swimbench." + ".".join(p.parent.relative_to(ROOT).parts)
              for p in (ROOT / "kernels").rglob("__init__.py")}
    assert found - listed == set(), "packages missing from pyproject.toml"
