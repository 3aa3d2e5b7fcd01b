"""The revocation source's knobs come from the one settings object
(BRIDGECA_REVOCATION_* in the environment, or config.json)."""
from __future__ import annotations

import datetime as dt

import pytest

from .conftest import make_federation


def test_the_service_fetches_with_the_configured_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGECA_REVOCATION_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("BRIDGECA_REVOCATION_TOTAL_TIMEOUT", "4")
    monkeypatch.setenv("BRIDGECA_REVOCATION_FAILURE_TTL_SECONDS", "0")
    monkeypatch.setenv("BRIDGECA_REVOCATION_CACHE_BYTES", "1048576")
    monkeypatch.setenv("BRIDGECA_REVOCATION_CACHE_ENTRIES", "17")
    monkeypatch.setenv("BRIDGECA_REVOCATION_MIN_FRESH_SECONDS", "5")
    fed = make_federation(tmp_path / "home", codes=())
    source = fed.app.state.verification._source
    assert (source.limits.connect_timeout, source.limits.total_timeout) == (1.5, 4.0)
    assert source.failure_ttl == dt.timedelta(0)
    assert source.max_cached_bytes == 1 << 20
    assert source.max_cached == 17 and source.min_fresh == dt.timedelta(seconds=5)
    assert source.limits.allow_private_addresses is False  # the default: refused
    monkeypatch.setenv("BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES", "true")
    allowed = make_federation(tmp_path / "home2", codes=()).app.state.verification._source
    assert allowed.limits.allow_private_addresses is True


def test_the_defaults(tmp_path):
    source = make_federation(tmp_path / "home", codes=()).app.state.verification._source
    assert (source.limits.connect_timeout, source.limits.total_timeout) == (3.0, 10.0)
    assert source.failure_ttl == dt.timedelta(seconds=30)


def test_a_negative_value_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGECA_REVOCATION_FAILURE_TTL_SECONDS", "-1")
    from bridge.errors import BridgeError

    with pytest.raises(BridgeError) as caught:
        make_federation(tmp_path / "home", codes=())
    assert caught.value.code == "invalid_settings" and "revocation_failure_ttl_seconds" in caught.value.message
