"""/v1/verify/chain answers a question it answered before on the event loop,
from the Verifier's result cache (no thread hop, no parse). That answer must
be the very one the full path gives, and must stop being given as soon as
the epoch moves: a revocation through this process at once, one made through
another process (the store directly) once the epoch poll is due."""
from __future__ import annotations

from tests.bridge.members import BRIDGE_MEDIUM

from .conftest import make_federation
from .test_routes import chain


def _options(body: dict) -> dict:
    return dict(intermediates=body["intermediates"], trust_anchor="bridge", policies=body.get("policies", []),
                require_explicit_policy=None, inhibit_policy_mapping=False, inhibit_any_policy=False,
                at=None, revocation="auto")


def test_a_repeated_question_is_answered_from_the_cache_with_the_same_answer(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK", policies=[BRIDGE_MEDIUM])
    assert service.cached_chain(body["certificate"], **_options(body)) is None  # never asked yet
    answers = [chain(fed, **body) for _ in range(4)]
    assert answers[0]["valid"] is True
    assert all(a == answers[0] for a in answers)
    cached = service.cached_chain(body["certificate"], **_options(body))
    if cached is None:  # the epoch poll fell due between the calls: ask once more, then it is fresh
        chain(fed, **body)
        cached = service.cached_chain(body["certificate"], **_options(body))
    assert cached == answers[0]
    # Other questions about the same leaf are not answered by it.
    other = dict(_options(body), policies=["1.3.6.1.4.1.32473.77.1.2"])
    assert service.cached_chain(body["certificate"], **other) is None


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
    assert service.cached_chain(body["certificate"], **_options(body)) is None
    after = chain(fed, **body)
    assert after["valid"] is False and after["error"]["code"] == "revoked"
    # and the revoked answer is what is cached from now on
    assert chain(fed, **body) == after
