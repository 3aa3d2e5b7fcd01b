"""CMS work is bounded (issue 11): signer infos, certificates in the message,
(signer info, candidate certificate) pairs and signature attempts count
against one Budget per ``verify_cms`` call, and a hostile message gets a
``budget_exceeded`` result, never an exception or minutes of CPU.

The messages are real SignedData made with asn1crypto over certificates made
with cryptography (tests/pkibuilder.py). "Twins" are distinct certificates
that share one issuer and serial number, so that every SignerInfo naming that
issuer and serial matches every twin: the shape that made the signer search
quadratic. Speed is measured in benchmarks/bench_cms_hostile.py, not here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import tests.pkibuilder as pb
from pki import Verifier
from pki import cms as C
from pki.budget import DEFAULT_LIMITS, Limits
from pki.errors import BUDGET_EXCEEDED

DATA = b"a contract, signed\n"
TWIN_SERIAL = 0x7E57


def garbage_signature(i: int) -> bytes:
    """A well-formed ECDSA signature (DER r, s) that verifies under no key:
    well-formed, so that each attempt costs a real verification."""
    r = int.from_bytes(hashlib.sha256(b"r%d" % i).digest(), "big") >> 1
    s = int.from_bytes(hashlib.sha256(b"s%d" % i).digest(), "big") >> 1
    return encode_dss_signature(r | 1, s | 1)


def signer_info(cert_der: bytes, key: ec.EllipticCurvePrivateKey | None, data: bytes = DATA, *,
                signature: bytes | None = None) -> asn1_cms.SignerInfo:
    """A SignerInfo naming ``cert_der`` by issuer and serial, with
    content-type and message-digest signed attributes, signed by ``key``
    (or carrying ``signature`` as is)."""
    acert = asn1_x509.Certificate.load(cert_der)
    attrs = asn1_cms.CMSAttributes([
        {"type": "content_type", "values": ["data"]},
        {"type": "message_digest", "values": [hashlib.sha256(data).digest()]},
    ])
    if signature is None:
        signature = key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
    return asn1_cms.SignerInfo({
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": acert.issuer, "serial_number": acert.serial_number}},
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": attrs,
        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
        "signature": signature,
    })


def signed_data(cert_ders, signer_infos, data: bytes = DATA) -> bytes:
    signed = asn1_cms.SignedData({
        "version": "v1",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "data", "content": data},
        "certificates": [asn1_x509.Certificate.load(d) for d in cert_ders],
        "signer_infos": list(signer_infos),
    })
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


@dataclass
class World:
    anchor: pb.CA
    ca: pb.CA
    signer_der: bytes  # issued with serial TWIN_SERIAL
    signer_key: ec.EllipticCurvePrivateKey
    twins: list[bytes]  # other certificates with the signer's issuer and serial
    valid: bytes  # a valid message: one SignerInfo, signer and CA certificates

    def verifier(self, **kw) -> Verifier:
        return Verifier([self.anchor.der], **kw)

    def hostile(self, n_certificates: int, n_signer_infos: int) -> bytes:
        """``n_certificates`` twins and ``n_signer_infos`` SignerInfos naming
        their issuer and serial, each with a garbage signature."""
        sis = [signer_info(self.twins[0], None, signature=garbage_signature(i)) for i in range(n_signer_infos)]
        return signed_data(self.twins[:n_certificates], sis)


def make_world(n_twins: int = 400) -> World:
    anchor = pb.root("CMS Budget Root")
    ca = pb.intermediate(anchor, "CMS Budget Issuing CA")
    key = pb.new_key()
    signer = pb.der(pb.leaf(ca, "CMS Budget Signer", key=key, serial=TWIN_SERIAL))
    # One key for every twin: distinct certificates (their subjects differ)
    # are what the search compares, and keys are slow to make.
    twin_key = pb.new_key()
    twins = [pb.der(pb.leaf(ca, f"Twin {i}", key=twin_key, serial=TWIN_SERIAL)) for i in range(n_twins)]
    valid = signed_data([signer, ca.der], [signer_info(signer, key)])
    return World(anchor, ca, signer, key, twins, valid)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def assert_budget_exceeded(r: C.SignatureResult, what: str) -> None:
    assert r.valid is False
    assert r.error is not None and r.error.code == BUDGET_EXCEEDED, r.error
    assert what in r.error.message, r.error.message
    out = json.loads(json.dumps(r.to_dict()))
    assert out["valid"] is False and out["error"]["code"] == BUDGET_EXCEEDED


def test_valid_message_under_the_limits(world):
    r = C.verify_cms(world.valid, world.verifier(), at=pb.AT)
    assert r.valid, r.to_dict()
    assert r.signer["sha256"] == hashlib.sha256(world.signer_der).hexdigest()


def test_400_by_400_hostile_message_is_budget_exceeded(world):
    msg = world.hostile(400, 400)
    assert len(msg) > 200_000  # the 224 KB body
    assert_budget_exceeded(C.verify_cms(msg, world.verifier(), at=pb.AT), "CMS signer infos")


def test_too_many_signer_infos(world):
    n = DEFAULT_LIMITS.cms_signer_infos
    si = signer_info(world.signer_der, world.signer_key)
    at_limit = signed_data([world.signer_der, world.ca.der], [si] * n)
    assert C.verify_cms(at_limit, world.verifier(), at=pb.AT).valid
    over = signed_data([world.signer_der, world.ca.der], [si] * (n + 1))
    assert_budget_exceeded(C.verify_cms(over, world.verifier(), at=pb.AT), "CMS signer infos")


def test_too_many_certificates_in_the_message(world):
    n = DEFAULT_LIMITS.cms_certificates
    si = signer_info(world.signer_der, world.signer_key)
    # Distinct certificates with other serials: no extra candidates, only bulk.
    others = [pb.der(pb.leaf(world.ca, f"Bulk {i}")) for i in range(n - 1)]
    at_limit = signed_data([world.signer_der, world.ca.der] + others[: n - 2], [si])
    assert C.verify_cms(at_limit, world.verifier(), at=pb.AT).valid
    over = signed_data([world.signer_der, world.ca.der] + others, [si])
    assert_budget_exceeded(C.verify_cms(over, world.verifier(), at=pb.AT), "certificates in the CMS message")


def test_intermediates_given_count_with_the_message(world):
    v = world.verifier(limits=Limits(cms_certificates=3))
    assert C.verify_cms(world.valid, v, at=pb.AT, intermediates=[world.ca.der]).valid  # 2 + 1
    r = C.verify_cms(world.valid, v, at=pb.AT, intermediates=[world.ca.der, world.twins[0]])  # 2 + 2
    assert_budget_exceeded(r, "certificates in the CMS message")


def test_candidate_pairs(world):
    """Valid SignerInfos (one repeated) whose identifier also matches twenty
    twins: each SignerInfo is 21 pairs, however soon its signature verifies.
    (DER sorts the certificate SET, so where the signer falls among its twins
    is not ours to choose; the signature-check limit is left at its default
    to stay out of the way.)"""
    si = signer_info(world.signer_der, world.signer_key)
    certs = [world.signer_der, world.ca.der] + world.twins[:20]
    v = world.verifier(limits=Limits(cms_candidate_pairs=42))
    assert C.verify_cms(signed_data(certs, [si] * 2), v, at=pb.AT).valid  # 42 pairs
    r = C.verify_cms(signed_data(certs, [si] * 3), v, at=pb.AT)  # 63 pairs
    assert_budget_exceeded(r, "more than 42 (signer info, candidate certificate) pairs")


def test_default_pair_limit_with_many_signer_infos(world):
    """Under the default limits, 4 valid SignerInfos times 21 candidates (84
    pairs) is refused, though each SignerInfo alone would do."""
    si = signer_info(world.signer_der, world.signer_key)
    certs = [world.signer_der, world.ca.der] + world.twins[:20]
    assert C.verify_cms(signed_data(certs, [si] * 3), world.verifier(), at=pb.AT).valid
    r = C.verify_cms(signed_data(certs, [si] * 4), world.verifier(), at=pb.AT)
    assert_budget_exceeded(r, "candidate certificate) pairs")


def test_signature_attempts(world):
    """One SignerInfo with a garbage signature and as many twins as the pair
    limit allows: each is a signature verification, and those are counted
    too (the pair limit raised here, so that the signature limit decides)."""
    v = world.verifier(limits=Limits(cms_candidate_pairs=1000, signature_checks=40))
    under = C.verify_cms(world.hostile(40, 1), v, at=pb.AT)
    assert under.error.code == C.SIGNATURE_INVALID, under.error
    assert_budget_exceeded(C.verify_cms(world.hostile(41, 1), v, at=pb.AT), "more than 40 signature checks")


def test_default_pair_limit_bounds_signature_attempts(world):
    """Under the default limits one SignerInfo may cost at most
    cms_candidate_pairs signature verifications, fewer than signature_checks."""
    assert DEFAULT_LIMITS.cms_candidate_pairs <= DEFAULT_LIMITS.signature_checks
    n = DEFAULT_LIMITS.cms_candidate_pairs
    under = C.verify_cms(world.hostile(n, 1), world.verifier(), at=pb.AT)
    assert under.error.code == C.SIGNATURE_INVALID, under.error
    over = C.verify_cms(world.hostile(n + 1, 1), world.verifier(), at=pb.AT)
    assert_budget_exceeded(over, "candidate certificate) pairs")


def test_limits_come_from_the_verifier(world):
    si = signer_info(world.signer_der, world.signer_key)
    two = signed_data([world.signer_der, world.ca.der], [si, si])
    assert C.verify_cms(two, world.verifier(), at=pb.AT).valid
    r = C.verify_cms(two, world.verifier(limits=Limits(cms_signer_infos=1)), at=pb.AT)
    assert_budget_exceeded(r, "more than 1 CMS signer infos")


def test_budget_is_per_call(world):
    """Counters start afresh each call: many valid calls on one Verifier
    never add up to budget_exceeded."""
    v = world.verifier(limits=Limits(cms_signer_infos=1, cms_candidate_pairs=1, signature_checks=DEFAULT_LIMITS.signature_checks))
    for _ in range(5):
        assert C.verify_cms(world.valid, v, at=pb.AT).valid


def test_signer_search_is_an_index_not_a_scan(world, monkeypatch):
    """Thirty signers, each with its own certificate, in one message: each
    name is normalised once (certificates' issuers once per distinct issuer,
    each SignerInfo's issuer once), not once per (SignerInfo, certificate)."""
    signers = []
    for i in range(30):
        key = pb.new_key()
        signers.append((pb.der(pb.leaf(world.ca, f"Co-signer {i}", key=key)), key))
    msg = signed_data([d for d, _ in signers] + [world.ca.der], [signer_info(d, k) for d, k in signers])
    calls = []
    original = C._name_match_key
    monkeypatch.setattr(C, "_name_match_key", lambda name: calls.append(1) or original(name))
    r = C.verify_cms(msg, world.verifier(), at=pb.AT)
    assert r.valid, r.to_dict()
    assert len(calls) <= 2 + 30  # two distinct issuers (the CA's and the anchor's) + 30 SignerInfos


def test_one_chain_verification_per_signer(world):
    """A SignerInfo repeated: its signer's chain is verified once per call."""
    si = signer_info(world.signer_der, world.signer_key)
    msg = signed_data([world.signer_der, world.ca.der], [si] * 10)
    v = _CountingVerifier([world.anchor.der])
    assert C.verify_cms(msg, v, at=pb.AT).valid
    assert len(v.verify_calls) == 1


def test_first_failing_signer_info_ends_the_call(world):
    """A garbage SignerInfo before valid ones: the answer is its failure, and
    nothing after it is verified."""
    good = signer_info(world.signer_der, world.signer_key)
    # DER sorts a SET OF by encoding: the shortest SignerInfo comes first, so
    # the garbage one carries the shortest well-formed ECDSA signature (r = s = 1).
    bad = signer_info(world.signer_der, None, signature=bytes.fromhex("3006020101020101"))
    msg = signed_data([world.signer_der, world.ca.der], [good] * 5 + [bad])
    first = asn1_cms.ContentInfo.load(msg)["content"]["signer_infos"][0]
    assert bytes(first["signature"]) == bytes.fromhex("3006020101020101")
    v = _CountingVerifier([world.anchor.der])
    r = C.verify_cms(msg, v, at=pb.AT)
    assert r.error is not None and r.error.code == C.SIGNATURE_INVALID
    assert v.verify_calls == []


class _CountingVerifier(Verifier):
    """A Verifier that records each chain verification asked of it (a
    subclass: pki's Verifier may be compiled, and its methods then cannot be
    patched on an instance)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verify_calls: list[tuple] = []

    def verify(self, *args, **kwargs):
        self.verify_calls.append(args)
        return super().verify(*args, **kwargs)
