"""Signature time-stamps (RFC 3161, pki/timestamp.py) and the ESS
signing-certificate binding (pki/cms.py), in the core: a token that checks
out is the proof of existence the signer's chain is judged at; a bad one is
reported and the signature judged without it; a signing-certificate
attribute naming another certificate fails the signature."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from pki import Verifier
from pki.cms import verify_cms
from tests.bridge.members import der, ec_key, make_root, name
from tests.evidence_builder import TestTsa, add_time_stamp, issue_at, sign_cms

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SIGNED = NOW - dt.timedelta(days=90)
REVOKED = NOW - dt.timedelta(days=30)


def _crl(issuer, key, revoked: dict):
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
         .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(days=7))
         .add_extension(x509.CRLNumber(7), critical=False))
    for serial, when in revoked.items():
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
                                      .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
    from cryptography.hazmat.primitives import hashes
    return der(b.sign(key, hashes.SHA256()))


@pytest.fixture(scope="module")
def pki():
    root_key, root = make_root(name("HK", "Evidence", "TS Root"), not_before=NOW - dt.timedelta(days=200))
    ca_key = ec_key()
    ca = issue_at(root, root_key, name("HK", "Evidence", "TS Issuing CA"), ca_key.public_key(),
                  not_before=NOW - dt.timedelta(days=200), ca=True)
    signer_key = ec_key()
    signer = issue_at(ca, ca_key, name("HK", "Evidence", "TS Signer"), signer_key.public_key(),
                      not_before=NOW - dt.timedelta(days=150))
    tsa = TestTsa.issued_by(ca, ca_key)
    crls = [_crl(root, root_key, {}), _crl(ca, ca_key, {signer.serial_number: REVOKED})]
    verifier = Verifier([der(root)], [der(ca)], crls)
    cms = sign_cms(b"a contract", signer, signer_key, signing_time=SIGNED, certificates=[ca])
    return {"root": root, "ca": ca, "ca_key": ca_key, "signer": signer, "signer_key": signer_key, "tsa": tsa,
            "verifier": verifier, "cms": cms}


def test_a_time_stamp_before_the_revocation_proves_the_signature(pki):
    stamped = add_time_stamp(pki["cms"], pki["tsa"], SIGNED + dt.timedelta(minutes=1))
    d = verify_cms(stamped, pki["verifier"], at="signing-time", revocation="require").to_dict()
    assert (d["valid"], d["indication"], d["sub_indication"]) == (True, "TOTAL_PASSED", None)
    assert d["timestamp"]["status"] == "valid" and d["timestamp"]["tsa"].startswith("CN=Test Time-Stamping Authority")
    assert d["validation_time"] == d["timestamp"]["time"] == (SIGNED + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert d["chain"]["path"][0]["revocation_reason"] == "keyCompromise"
    # Without the time-stamp, the signing time is only the signer's claim.
    d = verify_cms(pki["cms"], pki["verifier"], at="signing-time", revocation="require").to_dict()
    assert (d["indication"], d["sub_indication"], d["error"]["code"]) == ("INDETERMINATE", "REVOKED_NO_POE", "revoked_no_poe")
    assert d["timestamp"] is None


def test_a_time_stamp_after_the_revocation_does_not_help(pki):
    stamped = add_time_stamp(pki["cms"], pki["tsa"], REVOKED + dt.timedelta(days=1))
    d = verify_cms(stamped, pki["verifier"], at="signing-time", revocation="require").to_dict()
    assert (d["indication"], d["sub_indication"], d["error"]["code"]) == ("TOTAL_FAILED", "REVOKED", "revoked")


def test_a_token_over_another_signature_is_reported_and_ignored(pki):
    other = pki["tsa"].token(b"some other signature value", SIGNED)
    stamped = add_time_stamp(pki["cms"], pki["tsa"], SIGNED, token=other)
    d = verify_cms(stamped, pki["verifier"], at="signing-time", revocation="require").to_dict()
    assert d["timestamp"]["status"] == "invalid" and d["timestamp"]["error"]["code"] == "timestamp_imprint_mismatch"
    assert d["sub_indication"] == "REVOKED_NO_POE"  # judged without the proof


def test_a_tsa_without_the_critical_time_stamping_purpose_is_not_believed(pki):
    loose = TestTsa.issued_by(pki["ca"], pki["ca_key"], critical_eku=False, name="Loose TSA")
    stamped = add_time_stamp(pki["cms"], loose, SIGNED + dt.timedelta(minutes=1))
    d = verify_cms(stamped, pki["verifier"], at="signing-time", revocation="require").to_dict()
    assert d["timestamp"]["status"] == "invalid" and d["timestamp"]["error"]["code"] == "timestamp_not_a_tsa"
    assert d["sub_indication"] == "REVOKED_NO_POE"


@pytest.mark.parametrize("damage", [b"\x30\x03\x02\x01\x01", b"\x04\x00"])
def test_a_damaged_token_is_reported_never_raised(pki, damage):
    # Put as an attribute value it must still be a ContentInfo to be encodable; damage the bytes after.
    token = pki["tsa"].token(b"x", SIGNED)
    stamped = add_time_stamp(pki["cms"], pki["tsa"], SIGNED, token=token)
    broken = stamped.replace(token[-40:], bytes(40))
    d = verify_cms(broken, pki["verifier"], at="signing-time", revocation="require").to_dict()
    assert d["timestamp"]["status"] == "invalid"
    assert d["valid"] is False and d["sub_indication"] == "REVOKED_NO_POE"


def test_the_signing_certificate_attribute_must_name_the_signer(pki):
    other = issue_at(pki["ca"], pki["ca_key"], name("HK", "Evidence", "Someone else"), pki["signer_key"].public_key(),
                     not_before=NOW - dt.timedelta(days=150))
    bad = sign_cms(b"a contract", pki["signer"], pki["signer_key"], certificates=[pki["ca"]], ess_certificate=other)
    d = verify_cms(bad, pki["verifier"], revocation="off").to_dict()
    assert d["error"]["code"] == "signing_certificate_mismatch"
    assert (d["indication"], d["sub_indication"]) == ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")
    good = sign_cms(b"a contract", pki["signer"], pki["signer_key"], certificates=[pki["ca"]])
    assert verify_cms(good, pki["verifier"], revocation="off").valid


def test_an_expired_signer_is_out_of_bounds_unless_a_time_stamp_proves_the_signature_older(pki):
    key = ec_key()
    expired = issue_at(pki["ca"], pki["ca_key"], name("HK", "Evidence", "TS Expired Signer"), key.public_key(),
                       not_before=NOW - dt.timedelta(days=150), days=60)
    signed = sign_cms(b"signed while valid", expired, key, signing_time=SIGNED - dt.timedelta(days=40),
                      certificates=[pki["ca"]])
    # Now, and nothing says when it was signed: it may predate the expiry (EN 319 102-1 5.2.6).
    d = verify_cms(signed, pki["verifier"], revocation="require").to_dict()
    assert (d["indication"], d["sub_indication"], d["error"]["code"]) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE", "expired")
    # A time asked for after the expiry: the answer to that question is final.
    d = verify_cms(signed, pki["verifier"], at=NOW, revocation="require").to_dict()
    assert (d["indication"], d["sub_indication"]) == ("TOTAL_FAILED", "EXPIRED")
    # Proven to exist while the certificate was valid: passes, though it has expired since.
    stamped = add_time_stamp(signed, pki["tsa"], SIGNED - dt.timedelta(days=40))
    d = verify_cms(stamped, pki["verifier"], revocation="require").to_dict()
    assert (d["valid"], d["indication"]) == (True, "TOTAL_PASSED"), d["error"]
