"""After an epoch change, the requests in flight all find the verification
context stale; one of them builds the new one and the others use it."""
from __future__ import annotations

import threading

import bridge.verification as verification

from .conftest import make_federation
from .test_cached_answers import _options


def test_one_build_per_trust_anchor_when_many_requests_find_it_stale(tmp_path, monkeypatch):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    service = fed.app.state.verification
    body = fed.chain_body("HK")
    assert service.verify_chain(body["certificate"], **_options(body))["valid"] is True
    builds = []

    class CountingVerifier(verification.Verifier):
        def __init__(self, *args, **kwargs):
            builds.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(verification, "Verifier", CountingVerifier)
    service.invalidate()  # as after an approval or a revocation through this process
    start = threading.Barrier(16)
    results = []

    def ask():
        start.wait()
        results.append(service.verify_chain(body["certificate"], **_options(body)))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 16 and all(r["valid"] for r in results)
    assert len(builds) == 1, f"{len(builds)} contexts built for one epoch change"
