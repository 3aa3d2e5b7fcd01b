"""An audit log rewritten by someone with database access, and state rows
edited behind its back: ``bridgeca audit verify --checkpoints`` (checkpoints
signed by the bridge key and kept elsewhere, here a file) finds each, exit 1,
one line per finding. The rewrites keep the hash chain self-consistent
(every later hash recomputed, the counter adjusted), so the chain alone
passes them. On SQLite and PostgreSQL (the ``bridge`` fixture)."""
from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa

from api.cli import main as bridgeca_main
from bridge import checkpoints
from bridge.audit import entry_hash
from bridge.service import BridgeCA

from .members import der, make_member


def _run_verify(home, checkpoints_file, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    args = ["audit", "verify", "--home", str(home)]
    if checkpoints_file is not None:
        args += ["--checkpoints", str(checkpoints_file)]
    status = bridgeca_main(args)
    return status, capsys.readouterr().out.strip().splitlines()


class Database:
    """Direct SQL on the bridge's database, as an intruder would have it."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url)

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def run(self, *statements: tuple[str, dict] | str) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                sql, params = (statement, {}) if isinstance(statement, str) else statement
                conn.execute(sa.text(sql), params)

    def log(self) -> list[dict]:
        return [dict(r._mapping) for r in self.rows("SELECT seq, at, actor, action, details, prev_hash, entry_hash FROM audit_log ORDER BY seq")]

    def write_log(self, entries: list[dict]) -> None:
        """Replace the whole log by ``entries`` (renumbered, every hash recomputed) and set the counter to match."""
        prev = "0" * 64
        rebuilt = []
        for seq, e in enumerate(entries, start=1):
            digest = entry_hash(seq, e["at"], e["actor"], e["action"], e["details"], prev)
            rebuilt.append({**e, "seq": seq, "prev_hash": prev, "entry_hash": digest})
            prev = digest
        statements = ["DELETE FROM audit_log"]
        statements += [("INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, entry_hash) "
                        "VALUES (:seq, :at, :actor, :action, :details, :prev_hash, :entry_hash)", e) for e in rebuilt]
        statements.append(("UPDATE counter SET value = :n WHERE name = 'audit'", {"n": len(rebuilt)}))
        self.run(*statements)


@pytest.fixture
def federation(bridge, tmp_path):
    """A bridge with members, a keyCompromise revocation, tokens, and its
    checkpoints saved to a file (as an auditor keeps them); closed, so the
    commands below open the home as an operator would."""
    ca = bridge
    members = {}
    for code in ("HK", "GD", "MO"):
        member = make_member(code)
        enrollment = ca.enroll(name=f"{code} CA", jurisdiction=code, root_certificate=der(member.root),
                               policy_mappings=member.mappings())["id"]
        members[code] = ca.approve(enrollment, actor="admin:1")
    revoked = ca.revoke(members["HK"]["serial"], "keyCompromise", actor="admin:1")
    token = ca.create_token("platform", actor="admin:1")
    token_id, _ = ca.principal(token)
    ca.revoke_token(token_id, actor="admin:1")
    ca.store.checkpoint_head()
    document = checkpoints.publication(ca)
    assert document["checkpoints"] and document["checkpoints"][-1]["entries"] == ca.store.audit_counter()
    saved = tmp_path / "checkpoints.json"
    saved.write_text(json.dumps(document))
    url = ca.store.url
    home = ca.settings.home
    return {"home": home, "checkpoints": saved, "db": Database(url), "hk_serial": revoked["serial"],
            "hk_enrollment": members["HK"]["id"], "token_id": token_id}


def _edit_and_rehash(db: Database) -> None:
    """(1) the keyCompromise revocation's entry edited, every later hash recomputed."""
    log = db.log()
    for e in log:
        if e["action"] == "certificate.revoke":
            e["details"] = e["details"].replace("keyCompromise", "superseded")
    db.write_log(log)


def _delete_tail(db: Database) -> None:
    """(2) the last three entries deleted and the counter lowered to match."""
    db.write_log(db.log()[:-3])


def _empty(db: Database) -> None:
    """(3) the log emptied, the counter set to 0."""
    db.write_log([])


def _reorder(db: Database) -> None:
    """(4) two entries swapped, every hash from there recomputed."""
    log = db.log()
    i = next(i for i, e in enumerate(log) if e["action"] == "certificate.revoke")
    log[i - 1], log[i] = log[i], log[i - 1]
    db.write_log(log)


def _insert(db: Database) -> None:
    """(4) a forged entry inserted in the middle, every later entry renumbered and rehashed."""
    log = db.log()
    forged = {**log[5], "actor": "admin:1", "action": "token.create",
              "details": json.dumps({"token_id": 999, "role": "admin", "hash_prefix": "00000000"}, sort_keys=True, separators=(",", ":"))}
    db.write_log(log[:6] + [forged] + log[6:])


REWRITES = [
    (_edit_and_rehash, "audit log rewritten between entries"),
    (_delete_tail, "audit log truncated"),
    (_empty, "audit log emptied"),
    (_reorder, "audit log rewritten between entries"),
    (_insert, "audit log rewritten between entries"),
]


def test_each_rewrite_is_found_against_the_checkpoints(federation, capsys):
    home, saved, db = federation["home"], federation["checkpoints"], federation["db"]
    status, out = _run_verify(home, saved, capsys)
    assert status == 0, out
    assert out[0].startswith("audit log intact") and out[1].startswith("checkpoints: ")
    assert out[2].startswith("state tables match the log: 3 cross-certificates")
    original_log = db.log()
    counter = db.rows("SELECT value FROM counter WHERE name = 'audit'")[0][0]

    for rewrite, finding in REWRITES:
        rewrite(db)
        # The rewritten chain is self-consistent: only the checkpoints (or the state) give it away.
        bridgeca_main(["audit", "verify", "--home", str(home), "--json"])
        chain = json.loads(capsys.readouterr().out)
        assert not any("link" in f or "altered" in f or "appended" in f for f in chain["findings"]), (rewrite.__name__, chain)
        status, out = _run_verify(home, saved, capsys)
        assert status == 1, (rewrite.__name__, out)
        assert all(line.startswith("TAMPERED: ") for line in out), out
        assert any(finding in line for line in out), (rewrite.__name__, out)
        assert len(out) == len(set(out))  # one line per finding
        # Put the log back exactly (same rows, same counter): verify passes again.
        db.run("DELETE FROM audit_log", *[
            ("INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, entry_hash) "
             "VALUES (:seq, :at, :actor, :action, :details, :prev_hash, :entry_hash)", e) for e in original_log
        ], ("UPDATE counter SET value = :n WHERE name = 'audit'", {"n": counter}))
        assert _run_verify(home, saved, capsys)[0] == 0, rewrite.__name__


def test_a_truncation_is_found_without_checkpoints_only_when_the_counter_is_left(federation, capsys):
    """Without checkpoints a deleted tail with the counter lowered passes the
    chain; the replay still sees that the revoked token's revocation is gone."""
    home, db = federation["home"], federation["db"]
    log = db.log()
    cut = next(i for i, e in enumerate(log) if e["action"] == "token.revoke")
    db.write_log(log[:cut])
    status, out = _run_verify(home, None, capsys)
    assert status == 1
    assert out == [f"TAMPERED: API token {federation['token_id']} is revoked in the state tables, but the audit log says not revoked"]


def test_an_unrevoked_cross_certificate_is_found_by_replay(federation, capsys):
    home, saved, db = federation["home"], federation["checkpoints"], federation["db"]
    serial, enrollment = federation["hk_serial"], federation["hk_enrollment"]
    db.run(("UPDATE cross_certificate SET status = 'issued', revoked_at = NULL, revocation_reason = NULL WHERE serial = :s",
            {"s": serial}),
           ("UPDATE enrollment SET status = 'active' WHERE id = :id", {"id": enrollment}))
    for source in (saved, None):  # the log is intact: with or without checkpoints, replay finds it
        status, out = _run_verify(home, source, capsys)
        assert status == 1, out
        assert f"TAMPERED: cross-certificate {serial} is issued in the state tables, but the audit log says revoked" in out[0]
        assert "keyCompromise" in out[0]
        assert f"TAMPERED: enrollment {enrollment} is active in the state tables, but the audit log says revoked" in out
        assert len(out) == 2


@pytest.mark.parametrize("edit, finding", [
    ("UPDATE cross_certificate SET revocation_reason = 'superseded' WHERE status = 'revoked'", "is revoked with reason superseded"),
    ("UPDATE cross_certificate SET revoked_at = :t WHERE status = 'revoked'", "was revoked at 2020-01-01"),
    ("UPDATE api_token SET revoked_at = NULL", "is not revoked in the state tables"),
    ("UPDATE api_token SET role = 'admin'", "has role admin in the state tables"),
    ("INSERT INTO api_token (role, token_hash, created_at) VALUES ('admin', :h, :t)", "never created it"),
    ("UPDATE blacklist_entry SET ended_at = :t", "is removed in the state tables"),
    ("DELETE FROM blacklist_entry", "is missing from the state tables"),
])
def test_edited_state_rows_are_found_by_replay(federation, capsys, edit, finding):
    from datetime import datetime, timezone

    federation["db"].run((edit, {"t": datetime(2020, 1, 1, tzinfo=timezone.utc), "h": "ab" * 32}))
    status, out = _run_verify(federation["home"], federation["checkpoints"], capsys)
    assert status == 1, out
    assert any(finding in line for line in out), out


def test_a_forged_checkpoint_is_refused(federation, capsys, tmp_path):
    home, saved = federation["home"], federation["checkpoints"]
    document = json.loads(saved.read_text())
    document["checkpoints"][-1]["head"] = "0" * 64
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    status, out = _run_verify(home, forged, capsys)
    assert status == 1
    assert any("its signature does not verify" in line for line in out), out

    # A checkpoint signed by another bridge's key proves nothing about this one.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BRIDGECA_DATABASE_URL", raising=False)  # its own SQLite database
        with BridgeCA.init(tmp_path / "other", base_url="https://other.example") as other:
            other.store.checkpoint_head()
            foreign = checkpoints.publication(other)
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    status, out = _run_verify(home, tmp_path / "foreign.json", capsys)
    assert status == 1 and any("that is not this bridge's" in line for line in out), out

    capsys.readouterr()
    assert bridgeca_main(["audit", "verify", "--home", str(home), "--checkpoints", str(tmp_path / "missing.json")]) == 2
    assert "cannot read checkpoints file" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("[1, 2")
    assert bridgeca_main(["audit", "verify", "--home", str(home), "--checkpoints", str(tmp_path / "junk.json")]) == 2


def test_checkpoints_every_n_entries(bridge, monkeypatch):
    from bridge.audit import checkpoint_message
    from bridge.signer import certificate_spki, verify_with_spki

    monkeypatch.setenv("BRIDGECA_AUDIT_CHECKPOINT_ENTRIES", "3")
    home = bridge.settings.home
    bridge.close()
    with BridgeCA.open(home) as ca:
        start = ca.store.audit_counter()
        for _ in range(4):
            ca.create_token("platform", actor="admin:1")
        rows = ca.store.audit_checkpoints()
        counts = [int(r.entries) for r in rows]
        # The first entry written with the key is signed at once, then every third.
        assert counts == [start + 1, start + 4], counts
        for row in rows:
            head = next(e for e in ca.store.audit_entries() if e.seq == row.entries).entry_hash
            assert row.head_hash == head
            assert verify_with_spki(certificate_spki(ca.certificate), row.algorithm, row.signature,
                                    checkpoint_message(int(row.entries), row.head_hash, row.at))
        assert ca.store.checkpoint_head() is None  # nothing new since: no second signature of the same head
        view = checkpoints.view(rows[-1])
        assert base64.b64decode(view["signature"]) == rows[-1].signature


def test_audit_show_and_export(federation, capsys):
    home = str(federation["home"])
    capsys.readouterr()
    assert bridgeca_main(["audit", "export", "--home", home]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert all(b["prev_hash"] == a["entry_hash"] for a, b in zip(lines, lines[1:], strict=False))
    assert bridgeca_main(["audit", "export", "--home", home, "--action", "certificate.revoke"]) == 0
    revokes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["details"]["serial"] for e in revokes] == [federation["hk_serial"]]
    assert bridgeca_main(["audit", "show", "--home", home, "--actor", "admin:1", "--action", "token.", "--limit", "1"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 1 and "token.create" in shown[0] and "admin:1" in shown[0]
    assert bridgeca_main(["audit", "show", "--home", home, "--since", "2999-01-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == ""
    assert bridgeca_main(["audit", "show", "--home", home, "--since", "last tuesday"]) == 2
    assert "--since" in capsys.readouterr().err
