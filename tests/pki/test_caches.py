"""What a reused Verifier remembers (validated CA chains, the policy outcome
per leaf policy set, whole results) never changes an answer: each test asks
the same questions in an order that would expose a cache answering for the
wrong certificate, time or inputs."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

import tests.pkibuilder as pb
from pki import Verifier
from tests.pki.test_revocation import NOW, Ca
from tests.pki.test_revocation import der as rev_der

P1 = "1.3.6.1.4.1.32473.9.1"
P2 = "1.3.6.1.4.1.32473.9.2"


def _chain():
    anchor = pb.root("Cache Root")
    ca1 = pb.intermediate(anchor, "Cache CA 1", policies=[pb.ANY_POLICY])
    ca2 = pb.intermediate(ca1, "Cache CA 2", policies=[P1, P2], not_after=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    return anchor, ca1, ca2


def _verifier(anchor, ca1, ca2):
    return Verifier(anchors=[pb.der(anchor.cert)], untrusted=[pb.der(ca1.cert), pb.der(ca2.cert)])


def test_a_leaf_with_an_unknown_critical_extension_does_not_poison_its_neighbours():
    anchor, ca1, ca2 = _chain()
    v = _verifier(anchor, ca1, ca2)
    warm = pb.leaf(ca2, "warm", policies=[P1])
    assert v.verify(pb.der(warm), at=pb.AT).valid  # the CA chain is now cached
    odd = pb.leaf(ca2, "odd", policies=[P1], extra=[(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.32473.9.99"), b"\x05\x00"), True)])
    plain = pb.leaf(ca2, "plain", policies=[P1])
    r_odd = v.verify(pb.der(odd), at=pb.AT)
    assert r_odd.error.code == "unknown_critical_extension" and r_odd.error.index == 0
    r_plain = v.verify(pb.der(plain), at=pb.AT)
    assert r_plain.valid and r_plain.policies == frozenset({P1})


def test_policy_outcomes_are_per_leaf_policy_set():
    anchor, ca1, ca2 = _chain()
    v = _verifier(anchor, ca1, ca2)
    p1 = pb.leaf(ca2, "p1", policies=[P1])
    p2 = pb.leaf(ca2, "p2", policies=[P2])
    none = pb.leaf(ca2, "none", policies=None)
    for _ in range(2):  # second round: every outcome from the memo
        assert v.verify(pb.der(p1), at=pb.AT, policies=[P1], explicit_policy=True).valid
        r2 = v.verify(pb.der(p2), at=pb.AT, policies=[P1], explicit_policy=True)
        assert r2.error.code == "policy_required"
        r3 = v.verify(pb.der(none), at=pb.AT, policies=[P1], explicit_policy=True)
        assert r3.error.code == "policy_required"
        assert v.verify(pb.der(p2), at=pb.AT).policies == frozenset({P2})


def test_cached_chains_and_results_respect_the_validation_time():
    anchor, ca1, ca2 = _chain()
    v = _verifier(anchor, ca1, ca2)
    leaf = pb.leaf(ca2, "timed", policies=[P1])
    assert v.verify(pb.der(leaf), at=pb.AT).valid
    later = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)  # after Cache CA 2 expired
    r = v.verify(pb.der(leaf), at=later)
    assert not r.valid and r.error.code == "expired" and r.error.index == 1
    other = pb.leaf(ca2, "timed 2", policies=[P1])
    r = v.verify(pb.der(other), at=later)
    assert not r.valid and r.error.code == "expired"
    assert v.verify(pb.der(other), at=pb.AT).valid


def test_a_bad_signature_is_not_remembered_as_good():
    anchor, ca1, ca2 = _chain()
    v = _verifier(anchor, ca1, ca2)
    good = pb.leaf(ca2, "good", policies=[P1])
    assert v.verify(pb.der(good), at=pb.AT).valid
    impostor = pb.CA(ca2.name, pb.new_key(), ca2.cert)  # same name, another key
    forged = pb.leaf(impostor, "forged", policies=[P1])
    r = v.verify(pb.der(forged), at=pb.AT)
    assert not r.valid and r.error.code == "signature_invalid"
    r = v.verify(pb.der(forged), at=pb.AT)  # and again, from the caches
    assert not r.valid and r.error.code == "signature_invalid"


def test_verify_without_search_answers_only_the_cheap_case_and_as_verify_would():
    anchor, ca1, ca2 = _chain()
    v = _verifier(anchor, ca1, ca2)
    first, second = pb.der(pb.leaf(ca2, "first", policies=[P1])), pb.der(pb.leaf(ca2, "second", policies=[P1]))
    assert v.verify_without_search(first, at=pb.AT) is None  # no chain known yet: a search is needed
    assert v.verify(first, at=pb.AT).valid
    quick = v.verify_without_search(second, at=pb.AT)
    assert quick is not None and quick.valid
    fresh = _verifier(anchor, ca1, ca2).verify(second, at=pb.AT)
    assert quick.to_dict() == fresh.to_dict()
    late = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)  # ca2 has expired: a failure, explained by verify
    assert v.verify_without_search(pb.der(pb.leaf(ca2, "third", policies=[P1])), at=late) is None
    assert v.verify(pb.der(pb.leaf(ca2, "third", policies=[P1])), at=late).error.code == "expired"


def test_a_past_time_question_gets_the_same_answer_cold_and_warm():
    """The root's CRL about the CA runs out 10 seconds after NOW; asked 30
    seconds later, the CA's status is unknown. A Verifier that answered at NOW
    first (its known chain and answers warm) must answer the later question
    as a fresh one does, for the leaf it saw and for a new one."""
    root = Ca("Cold Warm Root")
    sub = Ca("Cold Warm Sub", root)
    crls = [root.crl(next_update=NOW + dt.timedelta(seconds=10)), sub.crl()]
    seen, new = rev_der(sub.issue(cn="seen")), rev_der(sub.issue(cn="new"))
    later = NOW + dt.timedelta(seconds=30)

    def fresh():
        return Verifier([rev_der(root.cert)], [rev_der(sub.cert)], crls)

    warm = fresh()
    assert warm.verify(seen, at=NOW).valid
    assert warm.verify(seen, at=NOW).valid  # from the answers
    for leaf in (seen, new, seen):
        cold = fresh().verify(leaf, at=later)
        assert not cold.valid and cold.error.code == "revocation_unknown" and cold.error.index == 1
        assert warm.verify(leaf, at=later).to_dict() == cold.to_dict()
        assert warm.verify_without_search(leaf, at=later) is None
    # and back at NOW, warm and cold still agree
    assert warm.verify(new, at=NOW).to_dict() == fresh().verify(new, at=NOW).to_dict()


def test_an_invalid_answer_is_given_again_without_validation():
    anchor, ca1, ca2 = _chain()
    v = _verifier(anchor, ca1, ca2)
    assert v.verify(pb.der(pb.leaf(ca2, "first", policies=[P1])), at=pb.AT).valid
    late = pb.der(pb.leaf(ca2, "late", policies=[P1], not_after=pb.AT - dt.timedelta(days=1)))
    first = v.verify(late, at=pb.AT)
    assert first.error.code == "expired" and first.error.index == 0
    assert v.verify_without_search(late, at=pb.AT) is first
    assert v.verify(late, at=pb.AT) is first
