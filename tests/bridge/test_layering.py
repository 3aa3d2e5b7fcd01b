"""The layering rules ARCHITECTURE.md states, read from the source (AST, no
imports, well under a second):

- imports go one way, api -> bridge -> pki: pki imports neither bridge nor
  api, bridge does not import api;
- domain errors carry a kind, never an HTTP status: no HTTP status in bridge/
  (no BridgeError built with a number, no ``status=``/``status_code=``, no web
  framework), and in api/ only problems.py turns a domain error into a status
  (no other module re-wraps a caught error's ``code`` in a Problem, chooses a
  status by an error's kind or code, or keeps a table of codes to statuses);
- the store's rows stay in bridge/store.py: no module imports one of its
  SQLModel table classes, nor sqlmodel/sqlalchemy/alembic (migrations aside).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "bridge" / "store.py"
PROBLEMS = ROOT / "api" / "problems.py"
MIGRATIONS = ROOT / "bridge" / "migrations"
DATABASE_LIBRARIES = ("sqlmodel", "sqlalchemy", "alembic")
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
ERROR_CLASSES = {"BridgeError", "TrustListError"}


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if MIGRATIONS not in p.parents)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _imports(path: Path, tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names imported) for every import, relative ones resolved."""
    package = path.relative_to(ROOT).parent.parts
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ((node.module,) if node.module else ()))
            else:
                module = node.module or ""
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_layering_checks_see_what_they_look_for():
    """The checks below find nothing; this shows they would find something."""
    sample = ast.parse("from ..store import Enrollment\nraise BridgeError('x', 'y', 404)\n")
    fake = ROOT / "bridge" / "sub" / "m.py"
    assert _imports(fake, sample)[0][1:] == ("bridge.store", ["Enrollment"])
    assert _status_errors(fake, sample) and "Enrollment" in _table_classes()


def test_imports_go_one_way():
    wrong = []
    for package, forbidden in (("pki", {"bridge", "api"}), ("bridge", {"api"})):
        for path in _modules(package):
            wrong += [f"{_name(path)}:{line} imports {module}" for line, module, names in _imports(path, _tree(path))
                      if _top(module) in forbidden or (module == "" and set(names) & forbidden)]
    assert wrong == []


def _status_errors(path: Path, tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if callee in ERROR_CLASSES:
                kind = node.args[2] if len(node.args) > 2 else next((k.value for k in node.keywords if k.arg in ("kind", "status")), None)
                if isinstance(kind, ast.Constant) and not isinstance(kind.value, str):
                    found.append(f"{_name(path)}:{node.lineno} {callee} with the status {kind.value!r}")
            found += [f"{_name(path)}:{node.lineno} passes {k.arg}=" for k in node.keywords if k.arg in ("status_code", "http_status")]
        elif isinstance(node, ast.Attribute) and node.attr in ("status_code", "http_status"):
            found.append(f"{_name(path)}:{node.lineno} uses .{node.attr}")
        elif isinstance(node, ast.FunctionDef) and "http" in node.name and "status" in node.name:
            found.append(f"{_name(path)}:{node.lineno} defines {node.name}")
    return found


def test_no_http_status_in_the_bridge():
    wrong = []
    for path in _modules("bridge"):
        tree = _tree(path)
        wrong += _status_errors(path, tree)
        wrong += [f"{_name(path)}:{line} imports {module}" for line, module, _ in _imports(path, tree)
                  if _top(module) in WEB_FRAMEWORKS]
    assert wrong == []


def _is_status(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and 400 <= node.value <= 599


def _mapping_errors(path: Path, tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Problem" and len(node.args) > 1:
            code = node.args[1]
            if isinstance(code, ast.Attribute) and code.attr == "code":  # a caught error's code, given a status here
                found.append(f"{_name(path)}:{node.lineno} re-wraps {ast.unparse(code)} in a Problem")
        elif isinstance(node, (ast.If, ast.IfExp)):
            test = {n.attr for n in ast.walk(node.test) if isinstance(n, ast.Attribute)}
            branches = node.body + node.orelse if isinstance(node, ast.If) else [node.body, node.orelse]
            if test & {"kind", "code"} and any(_is_status(n) for b in branches for n in ast.walk(b)):
                found.append(f"{_name(path)}:{node.lineno} chooses a status by an error's {' or '.join(sorted(test & {'kind', 'code'}))}")
        elif isinstance(node, ast.Dict) and node.values and all(_is_status(v) for v in node.values):
            found.append(f"{_name(path)}:{node.lineno} keeps a table of statuses")
        elif isinstance(node, ast.Name) and node.id == "STATUS_OF_KIND":
            found.append(f"{_name(path)}:{node.lineno} uses STATUS_OF_KIND")
    return found


def test_only_problems_py_maps_domain_errors_to_statuses():
    wrong = []
    for path in _modules("api"):
        if path != PROBLEMS:
            wrong += _mapping_errors(path, _tree(path))
    assert wrong == []
    assert _mapping_errors(PROBLEMS, _tree(PROBLEMS))  # where the mapping is, the check sees it


def _table_classes() -> set[str]:
    return {node.name for node in ast.walk(_tree(STORE)) if isinstance(node, ast.ClassDef)
            and any(k.arg == "table" for k in node.keywords)}


def test_no_table_row_leaves_the_store():
    tables = _table_classes()
    assert {"Enrollment", "CrossCertificate", "ApiToken", "Proposal"} <= tables
    wrong = []
    for package in ("pki", "bridge", "api"):
        for path in _modules(package):
            if path == STORE:
                continue
            for line, module, names in _imports(path, _tree(path)):
                if module == "bridge.store" and set(names) & tables:
                    wrong.append(f"{_name(path)}:{line} imports the table(s) {sorted(set(names) & tables)}")
                if _top(module) in DATABASE_LIBRARIES:
                    wrong.append(f"{_name(path)}:{line} imports {module}")
    assert wrong == []


def test_the_store_hands_out_records():
    """Every public Store method that returns something of a table's says so
    with a record type (bridge/records.py), never the table class."""
    tables = _table_classes()
    store = next(n for n in _tree(STORE).body if isinstance(n, ast.ClassDef) and n.name == "Store")
    wrong = []
    for method in store.body:
        if isinstance(method, ast.FunctionDef) and not method.name.startswith("_") and method.returns is not None:
            named = {n.id for n in ast.walk(method.returns) if isinstance(n, ast.Name)}
            named |= {n.value for n in ast.walk(method.returns) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            if named & tables:
                wrong.append(f"Store.{method.name} returns {ast.unparse(method.returns)}")
    assert wrong == []


def test_every_kind_has_one_status():
    from api.problems import STATUS_OF_KIND
    from bridge.errors import KINDS, BridgeError

    assert set(STATUS_OF_KIND) == set(KINDS)
    assert STATUS_OF_KIND["malformed"] == 400 and STATUS_OF_KIND["invalid"] == 422  # INTERFACE.md's split
    try:
        BridgeError("not_found", "no such thing", 404)  # type: ignore[arg-type]  # an old caller's status
    except ValueError as exc:
        assert "404" in str(exc)
    else:
        raise AssertionError("a status given as the kind was taken")
