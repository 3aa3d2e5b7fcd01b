"""How many times one request validates a path (issue 17): once for a new
leaf under a CA chain that validated before, not at all for a question asked
before, valid or not. A request is what the service does for one
POST /v1/verify/chain: ``verify_without_search`` (the bounded case), then,
only when that has no answer, ``verify``. Counted by the Verifier's own
``path_validations`` (pki/verifier.py may be compiled, so the count cannot
come from patching its module)."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pki import Verifier
from tests.pki.test_revocation import NOW, Ca, der, name


@pytest.fixture(scope="module")
def world():
    root = Ca("Counted Root")
    sub = Ca("Counted Sub", root)
    revoked = sub.issue(cn="revoked")
    crls = [root.crl(), sub.crl([(revoked.serial_number, x509.ReasonFlags.key_compromise)])]
    return root, sub, revoked, crls


def request(v: Verifier, leaf: bytes, **options):
    """One request as the service makes it."""
    answer = v.verify_without_search(leaf, **options)
    return answer if answer is not None else v.verify(leaf, **options)


def counted(v: Verifier, ask, *args, **kwargs):
    """``ask(*args, **kwargs)`` and the paths ``v`` validated meanwhile."""
    before = v.path_validations
    result = ask(*args, **kwargs)
    return result, v.path_validations - before


@pytest.mark.parametrize("revocation", ["off", "require"])
def test_a_new_leaf_under_a_known_chain_is_validated_once_and_a_repeat_not_at_all(world, revocation):
    root, sub, _, crls = world
    v = Verifier([der(root.cert)], [der(sub.cert)], crls)
    options = dict(at=NOW, revocation=revocation)
    first, n = counted(v, request, v, der(sub.issue(cn="first")), **options)
    assert first.valid and n == 1  # no chain known yet: the search's first path validates
    for how in (request, Verifier.verify):
        leaf = der(sub.issue(cn=f"new via {how.__name__}"))
        result, n = counted(v, how, v, leaf, **options)
        assert result.valid and n == 1, how
        again, n = counted(v, how, v, leaf, **options)
        assert again.to_dict() == result.to_dict() and n == 0, how


@pytest.mark.parametrize("case", ["expired", "revoked"])
def test_a_leaf_that_fails_under_a_known_chain_is_validated_once_and_a_repeat_not_at_all(world, case):
    root, sub, revoked, crls = world
    v = Verifier([der(root.cert)], [der(sub.cert)], crls)
    assert request(v, der(sub.issue(cn="warm")), at=NOW, revocation="require").valid
    if case == "expired":
        leaf, options = der(_expired_leaf(sub)), dict(at=NOW, revocation="off")
    else:
        leaf, options = der(revoked), dict(at=NOW, revocation="require")
    assert request(v, der(sub.issue(cn="warm 2")), **options).valid  # the chain's state under these options
    # The first request: verify_without_search validates the known path and
    # it fails; verify, which explains the failure, does not validate it again.
    first, n = counted(v, request, v, leaf, **options)
    assert not first.valid and first.error.code == case and first.error.index == 0
    assert n == 1
    again, n = counted(v, request, v, leaf, **options)
    assert again.to_dict() == first.to_dict() and n == 0
    # verify alone, on a fresh Verifier with the chain known
    w = Verifier([der(root.cert)], [der(sub.cert)], crls)
    assert w.verify(der(sub.issue(cn="warm")), **options).valid
    alone, n = counted(w, w.verify, leaf, **options)
    assert alone.to_dict() == first.to_dict() and n == 1
    again, n = counted(w, w.verify, leaf, **options)
    assert again.to_dict() == first.to_dict() and n == 0


def _expired_leaf(sub: Ca) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateBuilder().subject_name(name("expired leaf")).issuer_name(sub.name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=30)).not_valid_after(NOW - dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(sub.key.public_key()), critical=False)
            .sign(sub.key, hashes.SHA256()))
