"""Long-term validation in the core (issue 12): a past validation time uses
the freshest revocation information; a certificate revoked after that time
passes when the time is proven (``poe``, or now) and is INDETERMINATE /
REVOKED_NO_POE (REVOKED_CA_NO_POE for a CA) when the time is only claimed;
revoked at or before it is TOTAL_FAILED / REVOKED. Answers never depend on
what was asked before."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from pki import Verifier

from .test_revocation import NOW, Ca, der

REVOKED_AT = NOW - dt.timedelta(days=2)  # test_revocation.Ca.crl's revocation date
BEFORE = NOW - dt.timedelta(days=10)
AFTER = NOW - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def world():
    root = Ca("LTV Root")
    sub = Ca("LTV Sub", root)
    leaf = sub.issue(cn="LTV signer")
    crls = [root.crl(), sub.crl([(leaf.serial_number, x509.ReasonFlags.key_compromise)])]
    return root, sub, leaf, crls


def verify(world, at, **kw):
    root, sub, leaf, crls = world
    v = kw.pop("verifier", None) or Verifier([der(root.cert)], [der(sub.cert)], crls)
    return v.verify(der(leaf), at=at, revocation="require", **kw)


def test_revoked_after_a_claimed_time_is_revoked_no_poe(world):
    r = verify(world, BEFORE)
    assert not r.valid and r.error.code == "revoked_no_poe" and r.error.index == 0
    d = r.to_dict()
    assert (d["indication"], d["sub_indication"]) == ("INDETERMINATE", "REVOKED_NO_POE")
    assert d["validation_time"] == BEFORE.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert d["path"][0]["revocation"] == "revoked" and d["path"][0]["revocation_reason"] == "keyCompromise"


def test_revoked_after_a_proven_time_passes_and_names_the_revocation(world):
    d = verify(world, BEFORE, poe=True).to_dict()
    assert d["valid"] and (d["indication"], d["sub_indication"]) == ("TOTAL_PASSED", None)
    entry = d["path"][0]
    assert entry["revocation"] == "good"
    assert entry["revocation_time"] == REVOKED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert entry["revocation_reason"] == "keyCompromise"


@pytest.mark.parametrize("poe", [False, True])
def test_revoked_before_the_time_is_total_failed(world, poe):
    d = verify(world, AFTER, poe=poe).to_dict()
    assert not d["valid"] and d["error"]["code"] == "revoked"
    assert (d["indication"], d["sub_indication"]) == ("TOTAL_FAILED", "REVOKED")


def test_a_ca_revoked_after_a_claimed_time_is_revoked_ca_no_poe():
    root = Ca("LTV Root 2")
    sub = Ca("LTV Sub 2", root)
    leaf = sub.issue(cn="LTV signer 2")
    v = Verifier([der(root.cert)], [der(sub.cert)], [root.crl([sub.cert.serial_number]), sub.crl()])
    r = v.verify(der(leaf), at=BEFORE, revocation="require")
    assert r.error.code == "revoked_no_poe" and r.error.index == 1
    assert r.indication() == ("INDETERMINATE", "REVOKED_CA_NO_POE")
    assert v.verify(der(leaf), at=BEFORE, revocation="require", poe=True).valid


def test_the_freshest_crl_decides():
    """An older CRL that does not list the certificate yet must not hide the newer one that does."""
    root = Ca("LTV Root 3")
    sub = Ca("LTV Sub 3", root)
    leaf = sub.issue(cn="LTV signer 3")
    old = sub.crl([], number=1, this_update=NOW - dt.timedelta(days=5))
    new = sub.crl([leaf.serial_number], number=2)
    for order in ([old, new], [new, old]):
        r = Verifier([der(root.cert)], [der(sub.cert)], [root.crl(), *order]).verify(der(leaf), at=AFTER, revocation="require")
        assert r.error.code == "revoked"


def test_answers_do_not_depend_on_what_was_asked_before(world):
    root, sub, leaf, crls = world
    cold = [verify(world, t, poe=p).to_dict() for t, p in ((BEFORE, False), (BEFORE, True), (AFTER, False))]
    v = Verifier([der(root.cert)], [der(sub.cert)], crls)
    # Warm: every question asked twice, in an order that fills every cache first.
    for _ in range(2):
        for t, p in ((BEFORE, True), (AFTER, False), (BEFORE, False), (NOW, True)):
            verify(world, t, poe=p, verifier=v)
    warm = [verify(world, t, poe=p, verifier=v).to_dict() for t, p in ((BEFORE, False), (BEFORE, True), (AFTER, False))]
    assert warm == cold
