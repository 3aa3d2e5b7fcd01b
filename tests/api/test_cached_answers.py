"""/v1/verify/chain answers on the event loop (VerificationService.quick_chain)
a question it answered before, or a new leaf under a CA chain that validated
before, when nothing needs fetching. That answer must be the very one the
full path gives, and must stop being given as soon as the epoch moves: a
revocation through this process at once, one made through another process
(the store directly) once the epoch poll is due."""
from __future__ import annotations

from tests.bridge.members import BRIDGE_MEDIUM

from .conftest import make_federation
from .test_routes import chain


def _options(body: dict) -> dict:
    return dict(intermediates=body["intermediates"], trust_anchor="bridge", policies=body.get("policies", []),
                require_explicit_policy=None, inhibit_policy_mapping=False, inhibit_any_policy=False,
                at=None, revocation="auto")


def _timeless(answer: dict | None) -> dict | None:
    """An answer but its validation_time: two questions about now, asked a
    moment apart, may fall in two different seconds."""
    return None if answer is None else {k: v for k, v in answer.items() if k != "validation_time"}


def test_a_repeated_question_is_answered_from_the_cache_with_the_same_answer(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK", policies=[BRIDGE_MEDIUM])
    assert service.quick_chain(body["certificate"], **_options(body)) is None  # never asked yet
    answers = [chain(fed, **body) for _ in range(4)]
    assert answers[0]["valid"] is True
    assert all(a == answers[0] for a in answers)
    cached = service.quick_chain(body["certificate"], **_options(body))
    if cached is None:  # the epoch poll fell due between the calls: ask once more, then it is fresh
        chain(fed, **body)
        cached = service.quick_chain(body["certificate"], **_options(body))
    assert cached == answers[0]
    # Another question about the same leaf gets its own answer, the full path's.
    from bridge.verification import VerificationService

    other = dict(_options(body), policies=["1.3.6.1.4.1.32473.77.1.2"], require_explicit_policy=False)
    assert _timeless(service.quick_chain(body["certificate"], **other)) == _timeless(
        VerificationService(fed.ca).verify_chain(body["certificate"], **other))


def test_a_revocation_through_this_process_is_seen_at_once(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    body = fed.chain_body("HK")
    for _ in range(3):
        assert chain(fed, **body)["valid"] is True
    r = fed.client.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    after = chain(fed, **body)
    assert after["valid"] is False and after["error"]["code"] == "revoked"


def test_a_revocation_through_another_process_ends_the_cached_answer_when_the_poll_is_due(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK")
    for _ in range(3):
        assert chain(fed, **body)["valid"] is True
    fed.ca.revoke(fed.serials["HK"], "keyCompromise", actor="admin:other-process")  # no invalidate(): as another process
    service._epoch_read_at = float("-inf")  # the poll interval has passed
    assert service.known_epoch() is None
    assert service.quick_chain(body["certificate"], **_options(body)) is None
    after = chain(fed, **body)
    assert after["valid"] is False and after["error"]["code"] == "revoked"
    # and the revoked answer is what is cached from now on
    assert chain(fed, **body) == after


def _leaf(fed, code: str, cn: str, *, crl_url: str | None = None, expired: bool = False) -> str:
    import datetime as dt

    from cryptography import x509 as cx509

    from tests.bridge.members import ec_key, issue, name, pem

    m = fed.members[code]
    extra = []
    if crl_url:
        dp = cx509.DistributionPoint([cx509.UniformResourceIdentifier(crl_url)], None, None, None)
        extra.append((cx509.CRLDistributionPoints([dp]), False))
    cert = issue(m.issuing, m.issuing_key, name("HK", f"{m.display} Example Org", cn), ec_key().public_key(),
                 ca=False, policies=[m.policy], extra=extra)
    if expired:  # the same leaf, its validity moved 30 days back and 1 day long, signed again
        from cryptography.hazmat.primitives import hashes

        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
        builder = (cx509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
                   .public_key(cert.public_key()).serial_number(cert.serial_number)
                   .not_valid_before(start).not_valid_after(start + dt.timedelta(days=1)))
        for ext in cert.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        cert = builder.sign(m.issuing_key, hashes.SHA256())
    return pem(cert).decode()


def test_a_new_leaf_under_a_known_chain_is_answered_on_the_loop_as_the_thread_would(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK")
    first = _leaf(fed, "HK", "first leaf")
    assert chain(fed, **dict(body, certificate=first))["valid"] is True  # the CA chain is now known
    second = _leaf(fed, "HK", "second leaf")
    quick = service.quick_chain(second, **_options(body))
    if quick is None:  # the epoch poll fell due between the calls
        assert chain(fed, **dict(body, certificate=_leaf(fed, "HK", "poll")))["valid"] is True
        quick = service.quick_chain(second, **_options(body))
    assert quick is not None and quick["valid"] is True
    # the thread's full verification (a fresh service, nothing cached) agrees
    from bridge.verification import VerificationService

    assert _timeless(VerificationService(fed.ca).verify_chain(second, **_options(body))) == _timeless(quick)


def test_what_needs_a_search_or_fails_goes_to_the_thread(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK")
    assert chain(fed, **body)["valid"] is True
    expired = _leaf(fed, "HK", "expired leaf", expired=True)
    assert chain(fed, **dict(body, certificate=_leaf(fed, "HK", "fresh poll")))["valid"] is True
    assert service.quick_chain(expired, **_options(body)) is None
    answer = chain(fed, **dict(body, certificate=expired))
    assert answer["valid"] is False and answer["error"]["code"] == "expired"
    # a leaf from an issuer the bridge never saw: no known chain
    stranger = fed.chain_body("HK")
    from tests.bridge.members import make_member, pem

    other = make_member("GD")
    assert service.quick_chain(pem(other.leaf).decode(), **dict(_options(stranger), intermediates=[pem(other.issuing).decode()])) is None


def test_a_leaf_whose_crl_is_not_cached_goes_to_the_thread_and_its_fetch_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES", "true")  # a connection failure, not a refusal
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK")
    assert chain(fed, **body)["valid"] is True
    dead = _leaf(fed, "HK", "leaf with a dead CRL server", crl_url="http://127.0.0.1:9/hk.crl")
    assert chain(fed, **dict(body, certificate=_leaf(fed, "HK", "fresh poll")))["valid"] is True
    assert service.quick_chain(dead, **_options(body)) is None  # the CRL would have to be fetched
    through_thread = chain(fed, **dict(body, certificate=dead))  # fetches, fails, remembers the failure
    assert through_thread["valid"] is False and through_thread["error"]["code"] == "revocation_unknown"
    assert through_thread["path"][0]["revocation"] == "unknown"
    # A failure is never answered on the loop (the thread explains it), even
    # once the fetch failure is remembered and nothing needs fetching.
    assert chain(fed, **dict(body, certificate=_leaf(fed, "HK", "fresh poll 2")))["valid"] is True
    assert service.quick_chain(dead, **_options(body)) is None
    again = chain(fed, **dict(body, certificate=dead))
    # The same answer, but for its message: the first names the fetch's own
    # failure (the leaf is validated once per request), a later one the
    # remembered failure.
    assert {k: v for k, v in again.items() if k not in ("error", "validation_time")} == {
        k: v for k, v in through_thread.items() if k not in ("error", "validation_time")}
    assert again["error"]["code"] == "revocation_unknown" and again["error"]["certificate"] == 0
    assert "remembered failure" in again["error"]["message"]
