"""Safe defaults of a bridge home: ``bridgeca init`` needs a public base URL
and says what it put in certificates; the home remembers its database; its
files are the owner's alone; key files use a current KDF and old ones still
load; ``serve`` refuses what the settings refuse; ``--version``."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.cli import main
from bridge.errors import BridgeError
from bridge.service import BridgeCA
from bridge.signer import PBKDF2_ITERATIONS, SoftwareSigner, key_file_kdf

from .conftest import PASSPHRASE
from .members import make_member, pem

REPO = Path(__file__).resolve().parents[2]
PUBLIC = "https://bridge.gd.example"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --------------------------------------------------------------------------- the base URL


def test_init_refuses_to_run_without_a_base_url(tmp_path, capsys):
    assert main(["init", "--home", str(tmp_path / "b")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "base_url_required" in line and "--base-url" in line
    assert not (tmp_path / "b" / "config.json").exists()
    assert not (tmp_path / "b" / "bridge-key.p8").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000/", "https://LOCALHOST",
                                 "http://[::1]:8000", "http://127.1.2.3", "http://0.0.0.0:8000", "http://bridge.localhost"])
def test_init_refuses_a_loopback_base_url(tmp_path, capsys, url):
    assert main(["init", "--home", str(tmp_path / "b"), "--base-url", url]) == 2
    line = one_line(capsys.readouterr().err)
    assert "loopback_base_url" in line and "--allow-loopback-url" in line
    assert not (tmp_path / "b" / "config.json").exists()


@pytest.mark.parametrize("url", ["ftp://bridge.example", "bridge.example", "https://", "https://bridge.example/?x=1"])
def test_init_refuses_a_base_url_that_is_not_one(tmp_path, capsys, url):
    assert main(["init", "--home", str(tmp_path / "b"), "--base-url", url]) == 2
    assert "invalid_base_url" in one_line(capsys.readouterr().err)


def test_loopback_is_accepted_when_asked_for(tmp_path, capsys):
    assert main(["init", "--home", str(tmp_path / "b"), "--base-url", "http://127.0.0.1:8000", "--allow-loopback-url"]) == 0
    assert "CRL distribution point: http://127.0.0.1:8000/v1/crl" in capsys.readouterr().out


def test_init_prints_the_urls_it_puts_in_cross_certificates(tmp_path, capsys):
    home = tmp_path / "b"
    assert main(["init", "--home", str(home), "--base-url", PUBLIC + "/"]) == 0
    out = capsys.readouterr().out
    assert f"CRL distribution point: {PUBLIC}/v1/crl" in out
    assert f"OCSP:                   {PUBLIC}/v1/ocsp" in out
    assert f"CA issuers:             {PUBLIC}/v1/ca/issued-to-bridge.p7c" in out
    # ... and they are what an approved cross-certificate carries.
    member = make_member("HK")
    with BridgeCA.open(home) as ca:
        view = ca.approve(ca.enroll(name="Hong Kong", jurisdiction="HK", root_certificate=pem(member.root),
                                    policy_mappings=member.mappings())["id"])
    cross = x509.load_pem_x509_certificate(view["cross_certificate"].encode())
    points = cross.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in points for n in p.full_name] == [f"{PUBLIC}/v1/crl"]
    aia = {(d.access_method.dotted_string, d.access_location.value)
           for d in cross.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia == {("1.3.6.1.5.5.7.48.1", f"{PUBLIC}/v1/ocsp"), ("1.3.6.1.5.5.7.48.2", f"{PUBLIC}/v1/ca/issued-to-bridge.p7c")}


def test_init_json_and_the_base_url_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BRIDGECA_BASE_URL", "https://bridge.sz.example")
    assert main(["init", "--home", str(tmp_path / "b"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["crl_url"] == "https://bridge.sz.example/v1/crl"
    assert printed["ocsp_url"] == "https://bridge.sz.example/v1/ocsp"
    assert printed["ca_issuers_url"] == "https://bridge.sz.example/v1/ca/issued-to-bridge.p7c"
    assert printed["database"].startswith("sqlite:///")


# --------------------------------------------------------------------------- the database URL


def test_the_home_remembers_a_sqlite_database_given_by_url(tmp_path, monkeypatch):
    elsewhere = tmp_path / "db" / "bridge.sqlite"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("BRIDGECA_DATABASE_URL", f"sqlite:///{elsewhere}")
    home = tmp_path / "b"
    BridgeCA.init(home, base_url=PUBLIC).close()
    monkeypatch.delenv("BRIDGECA_DATABASE_URL")
    assert json.loads((home / "config.json").read_text())["database_url"] == f"sqlite:///{elsewhere}"
    with BridgeCA.open(home) as ca:
        assert ca.store.url == f"sqlite:///{elsewhere}"
    assert not (home / "bridge.db").exists()  # no stray SQLite file


def test_postgresql_home_used_without_the_variable(tmp_path, monkeypatch, capsys, postgres_schema_url):
    home = tmp_path / "b"
    monkeypatch.setenv("BRIDGECA_DATABASE_URL", postgres_schema_url)
    assert main(["init", "--home", str(home), "--base-url", PUBLIC]) == 0
    capsys.readouterr()
    monkeypatch.delenv("BRIDGECA_DATABASE_URL")

    assert main(["token", "create", "--home", str(home), "--role", "platform"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    with BridgeCA.open(home) as ca:
        assert ca.store.url.startswith("postgresql")
        assert ca.principal(token)[1] == "platform"
    assert main(["audit", "verify", "--home", str(home)]) == 0
    assert not (home / "bridge.db").exists()

    # The variable still wins: pointed at an empty SQLite file, the home is not found there.
    monkeypatch.setenv("BRIDGECA_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(BridgeError) as info:
        BridgeCA.open(home)
    assert "holds no bridge" in info.value.message


def test_a_home_without_its_database_is_refused_without_making_one(tmp_path, capsys):
    home = tmp_path / "b"
    BridgeCA.init(home, base_url=PUBLIC).close()
    (home / "bridge.db").unlink()
    with pytest.raises(BridgeError) as info:
        BridgeCA.open(home)
    assert info.value.code == "database_not_found" and "BRIDGECA_DATABASE_URL" in info.value.message
    assert main(["token", "list", "--home", str(home)]) == 2
    assert "database_not_found" in one_line(capsys.readouterr().err)
    assert not (home / "bridge.db").exists()


# --------------------------------------------------------------------------- file modes


def _modes(home: Path) -> dict[str, int]:
    return {str(p.relative_to(home)): stat.S_IMODE(p.stat().st_mode) for p in [home, *home.rglob("*")]}


def test_home_files_are_the_owners_alone(tmp_path):
    old = os.umask(0o022)  # the usual umask, which leaves new files world-readable
    try:
        home = tmp_path / "dual"
        with BridgeCA.init(home, base_url=PUBLIC, second_key_type="sm2") as ca:
            ca.create_token("admin")
    finally:
        os.umask(old)
    modes = _modes(home)
    assert {"config.json", "bridge.db", "bridge-key.p8", "bridge-cert.pem", "bridge-second-key.p8",
            "bridge-second-cert.pem", "bridge-links.pem"} <= set(modes)
    assert modes.pop(".") == 0o700
    assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}


def test_demo_tokens_file_is_private(tmp_path, bridge):
    from api import demo

    old = os.umask(0o022)
    try:
        tokens, new = demo._tokens(bridge, bridge.settings.home)
    finally:
        os.umask(old)
    path = bridge.settings.home / demo.TOKENS_FILE
    assert new and json.loads(path.read_text()) == tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --------------------------------------------------------------------------- the key's KDF


def test_new_keys_use_pbkdf2_sha256_at_600000(tmp_path):
    home = tmp_path / "b"
    BridgeCA.init(home, base_url=PUBLIC, key_type="rsa-3072").close()
    kdf, iterations = key_file_kdf((home / "bridge-key.p8").read_bytes())
    assert kdf == "pbkdf2-sha256" and iterations >= 600_000 == PBKDF2_ITERATIONS
    # The openssl CLI reads it too (no lock-in to this code).
    done = subprocess.run(["openssl", "pkey", "-in", str(home / "bridge-key.p8"), "-passin", f"pass:{PASSPHRASE}", "-noout"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_new_sm2_keys_too(tmp_path):
    from bridge.sm2_keys import Sm2Unavailable

    try:
        SoftwareSigner.generate(tmp_path / "sm2.p8", "sm2", PASSPHRASE)
    except Sm2Unavailable as exc:
        pytest.skip(f"no SM2 in the system libcrypto: {exc}")
    kdf, iterations = key_file_kdf((tmp_path / "sm2.p8").read_bytes())
    assert kdf == "pbkdf2-sha256" and iterations >= 600_000


def test_a_key_written_the_old_way_still_loads_and_signs(tmp_path):
    home = tmp_path / "b"
    BridgeCA.init(home, base_url=PUBLIC).close()
    key_path = home / "bridge-key.p8"
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=PASSPHRASE.encode())
    # What the code before wrote: cryptography's BestAvailableEncryption.
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    _kdf, iterations = key_file_kdf(key_path.read_bytes())
    assert iterations is not None and iterations < 600_000  # really the old, weak file
    with BridgeCA.open(home) as ca:
        issued = ca.issue_crl(actor="test")
        crl = x509.load_der_x509_crl(ca.current_crl())
        assert crl.is_signature_valid(ca.certificate.public_key())
        assert issued["crl_number"] >= 2


# --------------------------------------------------------------------------- serve, --version


def test_serve_refuses_a_body_limit_the_settings_refuse(bridge, bridge_home, capsys, monkeypatch):
    monkeypatch.delenv("BRIDGECA_MAX_BODY_BYTES", raising=False)
    assert main(["serve", "--home", str(bridge_home), "--port", "1", "--max-body-bytes", "500"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "--max-body-bytes" in line and "1024" in line
    assert "BRIDGECA_MAX_BODY_BYTES" not in os.environ  # nothing was handed on to workers


def test_serve_refusal_in_a_real_process(bridge, bridge_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGECA_")}
    env["BRIDGECA_KEY_PASSPHRASE"] = PASSPHRASE
    done = subprocess.run([sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", "serve", "--home",
                           str(bridge_home), "--port", "1", "--max-body-bytes", "500"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "--max-body-bytes" in one_line(done.stderr)


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bridgeca {version('bridgeca')}"
