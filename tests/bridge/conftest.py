"""Fixtures for the bridge tests: a passphrase, a bridge home, the database
URLs to run against (SQLite always; PostgreSQL when BRIDGECA_TEST_POSTGRES_URL
is set, each test in its own schema so others sharing the server are untouched),
and a SoftHSM2 token."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
POSTGRES_ENV = "BRIDGECA_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _bridge_env(monkeypatch):
    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", PASSPHRASE)
    for var in ("BRIDGECA_DATABASE_URL", "BRIDGECA_BASE_URL", "BRIDGECA_HOME", "BRIDGECA_PKCS11_PIN"):
        monkeypatch.delenv(var, raising=False)


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    return url


@contextlib.contextmanager
def postgres_schema(prefix: str = "bridgeca_test"):
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards
    (skips without BRIDGECA_TEST_POSTGRES_URL). Shared with tests/api."""
    import sqlalchemy as sa

    base = postgres_url_or_skip()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        engine.dispose()
        pytest.fail(f"{POSTGRES_ENV} is set but the server refused a new schema: {exc}")
    try:
        yield sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def postgres_schema_url():
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """None for the home's SQLite file, else a PostgreSQL URL in a private schema."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def bridge_home(tmp_path, database_url, monkeypatch):
    if database_url:
        monkeypatch.setenv("BRIDGECA_DATABASE_URL", database_url)
    return tmp_path / "bridge"


@pytest.fixture
def bridge(bridge_home):
    from bridge.service import BridgeCA

    ca = BridgeCA.init(bridge_home, base_url="https://bridge.gd.example")
    yield ca
    ca.close()


# --------------------------------------------------------------------------- SoftHSM2

SOFTHSM_SO_PIN = "87654321"
SOFTHSM_PIN = "12345678"


@pytest.fixture(scope="session")
def softhsm_module() -> str:
    script = REPO / "scripts" / "ensure_softhsm.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    module = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not module or not Path(module).exists():
        pytest.skip(f"SoftHSM2 is not installed and could not be installed: {result.stderr.strip()[-300:]}")
    if shutil.which("softhsm2-util") is None:
        pytest.skip("softhsm2-util not found on PATH")
    return module


@pytest.fixture(scope="session")
def softhsm_token(softhsm_module, tmp_path_factory):
    """One initialised token for the session: (module, label, pin).

    Session-wide because a PKCS#11 module reads its configuration once per
    process (C_Initialize); tests use distinct key labels on it.
    """
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"bridge-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", SOFTHSM_PIN, "--so-pin", SOFTHSM_SO_PIN],
        check=True, capture_output=True,
    )
    return softhsm_module, label, SOFTHSM_PIN
