"""The audit chain, and the bridgeca commands that run against a real home."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from api.cli import main as bridgeca_main
from bridge.service import BridgeCA

from .conftest import PASSPHRASE, REPO
from .members import der, make_member


def _populated_home(tmp_path):
    home = tmp_path / "bridge"
    with BridgeCA.init(home) as ca:
        member = make_member("GD")
        view = ca.approve(ca.enroll(name="GD", jurisdiction="GD", root_certificate=der(member.root), policy_mappings=member.mappings())["id"])
        ca.revoke(view["serial"], "keyCompromise")
        assert ca.verify_audit().intact
    return home


def _copy_home(home, target):
    shutil.copytree(home, target)
    return target


def test_every_event_is_in_the_chain_in_order(tmp_path):
    home = _populated_home(tmp_path)
    with BridgeCA.open(home) as ca:
        entries = ca.store.audit_entries()
    assert [e.action for e in entries] == [
        "bridge.init", "key.use", "crl.issue",
        # The TSA and receipt keys, certified by the bridge at init.
        "service_key.certify", "service_key.certify",
        "enrollment.submit", "key.use", "certificate.issue", "enrollment.approve",
        # A keyCompromise revocation lists the root key in the same transaction.
        "certificate.revoke", "blacklist.auto", "key.use", "crl.issue",
    ]
    assert all(e.prev_hash == p.entry_hash for p, e in zip(entries, entries[1:], strict=False))
    assert all(e.actor for e in entries)


def test_audit_verify_command_passes_on_an_intact_home(tmp_path, capsys):
    home = _populated_home(tmp_path)
    assert bridgeca_main(["audit", "verify", "--home", str(home)]) == 0
    assert "intact: 13 entries" in capsys.readouterr().out


@pytest.mark.parametrize(
    "tamper, finding",
    [
        ("UPDATE audit_log SET details = replace(details, 'keyCompromise', 'superseded') WHERE action = 'certificate.revoke'", "was altered"),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4", "was altered"),
        ("DELETE FROM audit_log WHERE seq = 5", "missing"),
        ("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)", "were appended"),
    ],
)
def test_audit_verify_command_fails_on_a_tampered_copy(tmp_path, capsys, tamper, finding):
    home = _populated_home(tmp_path)
    copy = _copy_home(home, tmp_path / "copy")
    with sqlite3.connect(copy / "bridge.db") as conn:
        assert conn.execute(tamper).rowcount == 1
    assert bridgeca_main(["audit", "verify", "--home", str(copy)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("TAMPERED") and finding in out[0]
    # The original is untouched and still verifies.
    assert bridgeca_main(["audit", "verify", "--home", str(home)]) == 0


def test_rehashing_an_edited_entry_still_breaks_the_next_link(tmp_path, capsys):
    from bridge.audit import entry_hash

    home = _copy_home(_populated_home(tmp_path), tmp_path / "copy")
    with sqlite3.connect(home / "bridge.db") as conn:
        seq, at, actor, action, details, prev = conn.execute(
            "SELECT seq, at, actor, action, details, prev_hash FROM audit_log WHERE seq = 10"
        ).fetchone()
        details = details.replace("keyCompromise", "superseded")
        conn.execute("UPDATE audit_log SET details = ?, entry_hash = ? WHERE seq = 10",
                     (details, entry_hash(seq, at, actor, action, details, prev)))
    assert bridgeca_main(["audit", "verify", "--home", str(home)]) == 1
    assert "entry 11 does not link" in capsys.readouterr().out


def _run(args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGECA_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_the_real_commands_in_a_subprocess(tmp_path):
    home = tmp_path / "home"
    env = {"BRIDGECA_KEY_PASSPHRASE": PASSPHRASE}
    init = _run(["init", "--home", str(home), "--key-type", "ec-p384", "--base-url", "https://bridge.gd.example"], env)
    assert init.returncode == 0, init.stderr
    assert "ec-p384" in init.stdout and (home / "config.json").exists()
    assert "PRIVATE KEY" not in init.stdout + init.stderr

    token = _run(["token", "create", "--home", str(home), "--role", "issuer"], env)
    assert token.returncode == 0, token.stderr
    value = token.stdout.strip().splitlines()[-1]
    assert value.startswith("bca_") and len(value) > 40
    with BridgeCA.open(home) as ca:
        assert ca.authenticate(value) == "issuer"

    # audit verify needs no key: no passphrase in its environment.
    assert _run(["audit", "verify", "--home", str(home)]).returncode == 0
    copy = _copy_home(home, tmp_path / "copy")
    with sqlite3.connect(copy / "bridge.db") as conn:
        conn.execute("UPDATE audit_log SET action = 'token.revoke' WHERE action = 'token.create'")
    tampered = _run(["audit", "verify", "--home", str(copy)])
    assert tampered.returncode == 1 and "TAMPERED" in tampered.stdout

    no_passphrase = _run(["init", "--home", str(tmp_path / "other"), "--base-url", "https://bridge.gd.example"])
    assert no_passphrase.returncode == 1
    assert "BRIDGECA_KEY_PASSPHRASE" in no_passphrase.stderr and "Traceback" not in no_passphrase.stderr
    assert not (tmp_path / "other" / "bridge.db").exists()
    assert not (tmp_path / "other" / "config.json").exists()

    bad_role = _run(["token", "create", "--home", str(home), "--role", "root"], env)
    assert bad_role.returncode == 2
    missing_home = _run(["audit", "verify", "--home", str(tmp_path / "nowhere")])
    assert missing_home.returncode == 2 and "not a bridge home" in missing_home.stderr
