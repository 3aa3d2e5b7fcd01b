"""The evidence store's bounded retention (bridge/evidence.py, migration
0010): an item is served until its retention ends, counted from the last
receipt that named it; over the byte limit the least recently named go
first; only a SHA-256 in hex is ever looked up. Time-stamp serials never
repeat, across workers too. SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from bridge.evidence import EvidenceStore, Item
from bridge.store import Store, next_tsa_serial, prune_evidence

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path, database_url):
    """SQLite, and PostgreSQL in a private schema when BRIDGECA_TEST_POSTGRES_URL is set."""
    store = Store.open(database_url or f"sqlite:///{tmp_path / 'evidence.db'}", create=True)
    yield store
    store.close()


def evidence(store, days=10.0, max_bytes=1 << 20, content_max=64):
    return EvidenceStore(store, SimpleNamespace(evidence_retention_days=days, evidence_max_bytes=max_bytes,
                                                evidence_content_max_bytes=content_max))


def test_kept_until_retention_ends_counted_from_the_last_naming(store):
    kept = evidence(store)
    crl, leaf = Item("crl", b"crl bytes"), Item("certificate", b"leaf bytes")
    kept.keep([crl, leaf, crl], now=T0)
    record = kept.get(crl.sha256, now=T0 + timedelta(days=9))
    assert record is not None and record.data == b"crl bytes" and record.kind == "crl"
    assert kept.get(crl.sha256.upper(), now=T0) is not None  # hex in either case
    kept.keep([crl], now=T0 + timedelta(days=5))  # named again: kept longer
    assert kept.get(leaf.sha256, now=T0 + timedelta(days=11)) is None
    assert kept.get(crl.sha256, now=T0 + timedelta(days=11)) is not None
    assert kept.get(crl.sha256, now=T0 + timedelta(days=16)) is None
    for bad in ("", "0" * 63, "g" * 64, "../" + "0" * 61):
        assert kept.get(bad, now=T0) is None


def test_byte_limit_drops_the_least_recently_named(store):
    kept = evidence(store)
    items = [Item("certificate", bytes([i]) * 400) for i in range(3)]
    for i, item in enumerate(items):
        kept.keep([item], now=T0 + timedelta(minutes=i))
    prune_evidence(store, now=T0 + timedelta(minutes=5), max_bytes=800)
    assert kept.get(items[0].sha256, now=T0) is None
    assert all(kept.get(item.sha256, now=T0) is not None for item in items[1:])
    # Expired items go at the next write, whatever the byte count.
    kept.keep([Item("ocsp", b"o")], now=T0 + timedelta(days=30))
    assert all(kept.get(item.sha256, now=T0) is None for item in items)
    assert kept.get(hashlib.sha256(b"o").hexdigest(), now=T0 + timedelta(days=30)) is not None


def test_time_stamp_serials_are_unique_and_increasing(store):
    serials = [next_tsa_serial(store) for _ in range(3)]
    assert serials == sorted(set(serials)) and serials[0] >= 1


def test_two_workers_time_stamp_serials_never_meet(store):
    from bridge.tsa import SERIAL_BLOCK, TimeStampAuthority

    workers = [TimeStampAuthority(keys=None, store=store, policy="1.2.3") for _ in range(2)]  # type: ignore[arg-type]
    seen = [w._next_serial() for _ in range(SERIAL_BLOCK + 3) for w in workers]
    assert len(set(seen)) == len(seen)
    assert next_tsa_serial(store) > max(seen)  # a reservation after theirs
