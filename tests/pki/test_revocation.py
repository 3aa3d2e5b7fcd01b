"""CRL processing (RFC 5280 6.3) on CRLs made here with cryptography's
builder: loading checks, scope, reasons, delta CRLs, indirect CRLs, and which
CRL decided. PKITS covers the standard cases; these cover what PKITS does not
(and the shared helpers other revocation tests use)."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki import Verifier
from pki.crl import parse_crl
from pki.errors import InputError

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DER = serialization.Encoding.DER


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Revocation Tests"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Ca:
    """A CA with an EC key, able to issue certificates, CRLs and OCSP responses."""

    def __init__(self, cn: str, issuer: "Ca | None" = None, *, crl_sign: bool = True, extra=()) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = name(cn)
        self.cert = (issuer or self).issue(self, ca=True, crl_sign=crl_sign, extra=extra) if issuer else self._self_signed(crl_sign)

    def _self_signed(self, crl_sign: bool) -> x509.Certificate:
        return self._builder(self.name, self.key.public_key(), ca=True, crl_sign=crl_sign, serial=1).sign(self.key, hashes.SHA256())

    def _builder(self, subject, public_key, *, ca, crl_sign=True, serial=None, eku=None, nocheck=False, dps=None, aia=None, extra=()):
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=365))
            .not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=ca, crl_sign=ca and crl_sign, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
        )
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        if nocheck:
            b = b.add_extension(x509.OCSPNoCheck(), critical=False)
        if dps:
            b = b.add_extension(x509.CRLDistributionPoints(dps), critical=False)
        if aia:
            b = b.add_extension(x509.AuthorityInformationAccess(aia), critical=False)
        for ext, critical in extra:
            b = b.add_extension(ext, critical=critical)
        return b

    def issue(self, subject: "Ca | None" = None, *, cn: str = "leaf", ca=False, crl_sign=True, eku=None, nocheck=False,
              dps=None, aia=None, key=None, serial=None, extra=()) -> x509.Certificate:
        if subject is not None:
            subj_name, pub = subject.name, subject.key.public_key()
        else:
            subj_name, pub = name(cn), (key or ec.generate_private_key(ec.SECP256R1())).public_key()
        return self._builder(subj_name, pub, ca=ca, crl_sign=crl_sign, serial=serial, eku=eku, nocheck=nocheck,
                             dps=dps, aia=aia, extra=extra).sign(self.key, hashes.SHA256())

    def crl(self, revoked=(), *, number=1, this_update=None, next_update=None, extensions=(), key=None,
            issuer_name=None) -> bytes:
        """revoked: serials, or (serial, reason) / (serial, reason, entry_extensions) tuples."""
        this_update = this_update or NOW - dt.timedelta(hours=1)
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer_name or self.name)
            .last_update(this_update)
            .next_update(next_update or NOW + dt.timedelta(days=7))
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for ext, critical in extensions:
            b = b.add_extension(ext, critical=critical)
        for item in revoked:
            serial, reason, entry_ext = (item, None, ()) if isinstance(item, int) else (tuple(item) + (None, ()))[:3]
            rb = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - dt.timedelta(days=2))
            if reason is not None:
                rb = rb.add_extension(x509.CRLReason(reason), critical=False)
            for ext, critical in entry_ext or ():
                rb = rb.add_extension(ext, critical=critical)
            b = b.add_revoked_certificate(rb.build())
        return b.sign(key or self.key, hashes.SHA256()).public_bytes(DER)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(DER)


@pytest.fixture(scope="module")
def pki():
    root = Ca("Root")
    sub = Ca("Sub", root)
    return root, sub


def verify(root, chain, crls, leaf, at=NOW, revocation="require", **kw):
    v = Verifier([der(root.cert)], [der(c) for c in chain], crls, **kw)
    return v.verify(der(leaf), at=at, revocation=revocation)


def test_good_and_the_deciding_crl_is_named(pki):
    root, sub = pki
    leaf = sub.issue()
    r = verify(root, [sub.cert], [root.crl(), sub.crl([12345])], leaf)
    assert r.valid, r.to_dict()
    path = r.to_dict()["path"]
    assert path[0]["revocation"] == "good"
    assert path[0]["revocation_source"] == "CRL number 1 of CN=Sub,O=Revocation Tests"
    assert path[1]["revocation_source"] == "CRL number 1 of CN=Root,O=Revocation Tests"


def test_revoked_with_reason(pki):
    root, sub = pki
    leaf = sub.issue()
    r = verify(root, [sub.cert], [root.crl(), sub.crl([(leaf.serial_number, x509.ReasonFlags.key_compromise)])], leaf)
    assert not r.valid
    assert r.error.code == "revoked"
    assert "keyCompromise" in r.error.message and "CN=Sub" in r.error.message


def test_crl_signed_by_the_wrong_key_gives_unknown(pki):
    root, sub = pki
    leaf = sub.issue()
    forged = sub.crl([], key=ec.generate_private_key(ec.SECP256R1()))
    r = verify(root, [sub.cert], [root.crl(), forged], leaf)
    assert r.error.code == "revocation_unknown"
    assert "signature does not verify" in r.error.message


def test_stale_crl(pki):
    root, sub = pki
    leaf = sub.issue()
    old = sub.crl([], this_update=NOW - dt.timedelta(days=10), next_update=NOW - dt.timedelta(days=3))
    r = verify(root, [sub.cert], [root.crl(), old], leaf)
    assert r.error.code == "revocation_unknown"
    assert "out of date" in r.error.message


def test_crl_from_the_future_is_not_used(pki):
    root, sub = pki
    leaf = sub.issue()
    # After the time of the question (the real clock), not merely after the
    # validation time: a CRL issued after a past validation time is the
    # freshest information there is, and used (tests/pki/test_long_term.py).
    today = dt.datetime.now(dt.timezone.utc)
    future = sub.crl([], this_update=today + dt.timedelta(days=1), next_update=today + dt.timedelta(days=8))
    r = verify(root, [sub.cert], [root.crl(), future], leaf)
    assert r.error.code == "revocation_unknown"
    assert "issued after the time of the question" in r.error.message


def test_unknown_critical_crl_extension(pki):
    root, sub = pki
    leaf = sub.issue()
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    crl = sub.crl([], extensions=[(odd, True)])
    assert parse_crl(crl).unhandled_critical == ("1.3.6.1.4.1.55555.1",)
    r = verify(root, [sub.cert], [root.crl(), crl], leaf)
    assert r.error.code == "revocation_unknown"
    assert "unrecognised critical extension" in r.error.message


def test_duplicate_serial_is_a_defect(pki):
    _, sub = pki
    crl = parse_crl(sub.crl([7, 7]))
    assert crl.defect == "serial 7 is listed twice"


def test_malformed_crl_is_an_input_error():
    with pytest.raises(InputError):
        parse_crl(b"\x30\x03\x02\x01\x00")
    with pytest.raises(InputError):
        Verifier([der(Ca("X").cert)], [], [b"not a crl at all"])


def test_issuer_without_crlsign_cannot_sign_its_crl():
    root = Ca("Root NoCrlSign")
    sub = Ca("Sub NoCrlSign", root, crl_sign=False)
    leaf = sub.issue()
    r = verify(root, [sub.cert], [root.crl(), sub.crl([])], leaf)
    assert r.error.code == "revocation_unknown"
    assert "does not allow CRL signing" in r.error.message


def test_remove_from_crl_in_a_complete_crl_means_not_revoked(pki):
    root, sub = pki
    leaf = sub.issue()
    crl = sub.crl([(leaf.serial_number, x509.ReasonFlags.remove_from_crl)])
    assert verify(root, [sub.cert], [root.crl(), crl], leaf).valid


def _delta(ca: Ca, revoked, *, base: int, number: int, next_update=None) -> bytes:
    return ca.crl(revoked, number=number, next_update=next_update, extensions=[(x509.DeltaCRLIndicator(base), True)])


def test_delta_crl_revokes_and_is_named(pki):
    root, sub = pki
    leaf = sub.issue()
    crls = [root.crl(), sub.crl([], number=5), _delta(sub, [(leaf.serial_number, x509.ReasonFlags.superseded)], base=5, number=6)]
    r = verify(root, [sub.cert], crls, leaf)
    assert r.error.code == "revoked"
    assert "delta CRL number 6" in r.error.message


def test_delta_crl_remove_from_crl_lifts_a_hold(pki):
    root, sub = pki
    leaf = sub.issue()
    crls = [
        root.crl(),
        sub.crl([(leaf.serial_number, x509.ReasonFlags.certificate_hold)], number=5),
        _delta(sub, [(leaf.serial_number, x509.ReasonFlags.remove_from_crl)], base=5, number=6),
    ]
    r = verify(root, [sub.cert], crls, leaf)
    assert r.valid, r.to_dict()
    assert r.to_dict()["path"][0]["revocation_source"].endswith("with delta CRL number 6 of CN=Sub,O=Revocation Tests")


def test_delta_for_a_newer_base_is_ignored(pki):
    root, sub = pki
    leaf = sub.issue()
    # base CRL number 9 > complete CRL number 5: the delta does not apply
    crls = [root.crl(), sub.crl([], number=5), _delta(sub, [leaf.serial_number], base=9, number=10)]
    assert verify(root, [sub.cert], crls, leaf).valid


def test_stale_delta_makes_the_status_unknown(pki):
    root, sub = pki
    leaf = sub.issue()
    crls = [root.crl(), sub.crl([], number=5), _delta(sub, [], base=5, number=6, next_update=NOW - dt.timedelta(minutes=1))]
    r = verify(root, [sub.cert], crls, leaf)
    assert r.error.code == "revocation_unknown"
    assert "delta CRL number 6" in r.error.message


def test_delta_signed_by_another_key_is_refused(pki):
    root, sub = pki
    leaf = sub.issue()
    bad = sub.crl([], number=6, extensions=[(x509.DeltaCRLIndicator(5), True)], key=ec.generate_private_key(ec.SECP256R1()))
    r = verify(root, [sub.cert], [root.crl(), sub.crl([], number=5), bad], leaf)
    assert r.error.code == "revocation_unknown"
    assert "signature does not verify" in r.error.message


def _idp(**kw):
    args = dict(full_name=None, relative_name=None, only_contains_user_certs=False, only_contains_ca_certs=False,
                only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False)
    args.update(kw)
    return x509.IssuingDistributionPoint(**args)


def test_reason_coverage_needs_every_reason(pki):
    root, sub = pki
    leaf = sub.issue()
    compromise = frozenset({x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise})
    others = frozenset(set(x509.ReasonFlags) - compromise - {x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl})
    part1 = sub.crl([], number=1, extensions=[(_idp(only_some_reasons=compromise), True)])
    part2 = sub.crl([], number=2, extensions=[(_idp(only_some_reasons=others), True)])
    only_one = verify(root, [sub.cert], [root.crl(), part1], leaf)
    assert only_one.error.code == "revocation_unknown"
    assert "do not cover the reasons" in only_one.error.message
    both = verify(root, [sub.cert], [root.crl(), part1, part2], leaf)
    assert both.valid, both.to_dict()
    assert ";" in both.to_dict()["path"][0]["revocation_source"]  # both CRLs decided


def test_distribution_point_matching(pki):
    root, sub = pki
    url = "http://crl.example/sub.crl"
    leaf = sub.issue(dps=[x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)])
    matching = sub.crl([], extensions=[(_idp(full_name=[x509.UniformResourceIdentifier(url)]), True)])
    other = sub.crl([], extensions=[(_idp(full_name=[x509.UniformResourceIdentifier("http://crl.example/other.crl")]), True)])
    assert verify(root, [sub.cert], [root.crl(), matching], leaf).valid
    r = verify(root, [sub.cert], [root.crl(), other], leaf)
    assert r.error.code == "revocation_unknown"
    assert "distribution point" in r.error.message


def test_only_contains_ca_certs_does_not_cover_an_end_entity(pki):
    root, sub = pki
    leaf = sub.issue()
    crl = sub.crl([], extensions=[(_idp(only_contains_ca_certs=True), True)])
    r = verify(root, [sub.cert], [root.crl(), crl], leaf)
    assert r.error.code == "revocation_unknown"
    assert "CA certificates only" in r.error.message


def test_indirect_crl_with_certificate_issuer_entries(pki):
    root, sub = pki
    # A separate CRL issuer, certified by the root with cRLSign, publishes
    # the CRL for Sub's certificates.
    crl_issuer = Ca("CRL Issuer", root)
    dp = x509.DistributionPoint([x509.UniformResourceIdentifier("http://crl.example/indirect.crl")], None, None,
                                [x509.DirectoryName(crl_issuer.name)])
    good_leaf = sub.issue(dps=[dp])
    bad_leaf = sub.issue(dps=[dp])
    entries = [(bad_leaf.serial_number, x509.ReasonFlags.key_compromise,
                [(x509.CertificateIssuer([x509.DirectoryName(sub.name)]), True)])]
    idp = _idp(full_name=[x509.UniformResourceIdentifier("http://crl.example/indirect.crl")], indirect_crl=True)
    indirect = crl_issuer.crl(entries, extensions=[(idp, True)])
    crls = [root.crl(), indirect]
    good = verify(root, [sub.cert, crl_issuer.cert], crls, good_leaf)
    assert good.valid, good.to_dict()
    assert good.to_dict()["path"][0]["revocation_source"] == "CRL number 1 of CN=CRL Issuer,O=Revocation Tests"
    bad = verify(root, [sub.cert, crl_issuer.cert], crls, bad_leaf)
    assert bad.error.code == "revoked"
    # without the CRL issuer's certificate, the indirect CRL cannot be trusted
    missing = verify(root, [sub.cert], crls, good_leaf)
    assert missing.error.code == "revocation_unknown"


def test_big_crl_is_indexed_once(pki):
    _, sub = pki
    crl = parse_crl(sub.crl(range(1, 2001)))
    assert len(crl.entries) == 2000
    assert crl.lookup(crl.issuer_key, 1500) is not None
    assert crl.lookup(crl.issuer_key, 2001) is None
