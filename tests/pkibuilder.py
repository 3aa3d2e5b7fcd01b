"""Real test PKI, built in code with cryptography (and asn1crypto where
cryptography has no builder): CAs, cross-certificates with policyMappings,
policyConstraints, nameConstraints, leaves, CRLs, and hand-made defects.

Keys are ECDSA P-256 unless asked otherwise; validity times are fixed, so a
test that validates at ``AT`` gives the same answer on any day.
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2034, 1, 1, tzinfo=dt.timezone.utc)
AT = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)

POLICY_MAPPINGS = ObjectIdentifier("2.5.29.33")
ANY_POLICY = "2.5.29.32.0"

_serials = itertools.count(0x1000)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str, o: str | None = None, c: str | None = "CN") -> x509.Name:
    attrs = []
    if c:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, c))
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def policy_mappings_extension(mappings: Iterable[tuple[str, str]]) -> x509.UnrecognizedExtension:
    """policyMappings (RFC 5280 4.2.1.5): (issuerDomainPolicy, subjectDomainPolicy) pairs."""
    value = asn1_x509.PolicyMappings(
        [{"issuer_domain_policy": i, "subject_domain_policy": s} for i, s in mappings]
    )
    return x509.UnrecognizedExtension(POLICY_MAPPINGS, value.dump())


def dn_subtree(n: x509.Name) -> x509.DirectoryName:
    return x509.DirectoryName(n)


@dataclass
class CA:
    """A CA: a name, a key, and the certificate that carries them (self-signed
    unless it was made by ``intermediate``)."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def public_key(self):
        return self.key.public_key()

    @property
    def der(self) -> bytes:
        return der(self.cert)

    @property
    def pem(self) -> bytes:
        return pem(self.cert)


def build(
    subject: x509.Name,
    public_key,
    issuer: x509.Name,
    issuer_key,
    *,
    ca: bool | None = True,
    path_length: int | None = None,
    policies: Sequence[str] | None = None,
    mappings: Sequence[tuple[str, str]] | None = None,
    require_explicit_policy: int | None = None,
    inhibit_policy_mapping: int | None = None,
    inhibit_any_policy: int | None = None,
    permitted: Sequence[x509.GeneralName] | None = None,
    excluded: Sequence[x509.GeneralName] | None = None,
    san: Sequence[x509.GeneralName] | None = None,
    key_usage: str | None = "auto",
    ski: bool = True,
    aki: bytes | None | str = "auto",
    serial: int | None = None,
    not_before: dt.datetime = NOT_BEFORE,
    not_after: dt.datetime = NOT_AFTER,
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """One certificate. ``ca=None`` omits basicConstraints. ``aki="auto"``
    names the issuer key's identifier; bytes set it; None omits it."""
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else next(_serials))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    if key_usage == "auto":
        key_usage = "ca" if ca else "ee"
    if key_usage == "ca":
        b = b.add_extension(_key_usage(cert_sign=True), critical=True)
    elif key_usage == "ee":
        b = b.add_extension(_key_usage(cert_sign=False), critical=True)
    if ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if aki == "auto":
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    elif aki is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    if policies is not None:
        b = b.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(p), None) for p in policies]),
            critical=False,
        )
    if mappings:
        b = b.add_extension(policy_mappings_extension(mappings), critical=True)
    if require_explicit_policy is not None or inhibit_policy_mapping is not None:
        b = b.add_extension(x509.PolicyConstraints(require_explicit_policy, inhibit_policy_mapping), critical=True)
    if inhibit_any_policy is not None:
        b = b.add_extension(x509.InhibitAnyPolicy(inhibit_any_policy), critical=True)
    if permitted is not None or excluded is not None:
        b = b.add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded), critical=True)
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(issuer_key, hashes.SHA256())


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def root(subject: x509.Name | str, *, key=None, policies: Sequence[str] | None = (ANY_POLICY,), **kw) -> CA:
    """A self-signed CA (a trust anchor or a member root)."""
    subject = name(subject) if isinstance(subject, str) else subject
    key = key or new_key()
    cert = build(subject, key.public_key(), subject, key, policies=policies, **kw)
    return CA(subject, key, cert)


def intermediate(issuer: CA, subject: x509.Name | str, *, key=None, **kw) -> CA:
    """A CA certified by ``issuer`` (its certificate is the issuer's)."""
    subject = name(subject) if isinstance(subject, str) else subject
    key = key or new_key()
    cert = build(subject, key.public_key(), issuer.name, issuer.key, **kw)
    return CA(subject, key, cert)


def cross_certify(issuer: CA, subject: CA, **kw) -> x509.Certificate:
    """A cross-certificate: ``subject``'s name and key, signed by ``issuer``."""
    return build(subject.name, subject.public_key, issuer.name, issuer.key, **kw)


def leaf(issuer: CA, subject: x509.Name | str, *, key=None, **kw) -> x509.Certificate:
    subject = name(subject) if isinstance(subject, str) else subject
    key = key or new_key()
    kw.setdefault("ca", False)
    return build(subject, key.public_key(), issuer.name, issuer.key, **kw)


def crl(
    issuer: CA,
    revoked: Iterable[int | x509.Certificate] = (),
    *,
    this_update: dt.datetime = NOT_BEFORE,
    next_update: dt.datetime = NOT_AFTER,
    number: int = 1,
) -> x509.CertificateRevocationList:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key), critical=False)
    )
    for item in revoked:
        serial = item.serial_number if isinstance(item, x509.Certificate) else item
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update + dt.timedelta(days=1))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return b.sign(issuer.key, hashes.SHA256())


def der(obj) -> bytes:
    if isinstance(obj, CA):
        obj = obj.cert
    return obj.public_bytes(serialization.Encoding.DER)


def pem(obj) -> bytes:
    if isinstance(obj, CA):
        obj = obj.cert
    return obj.public_bytes(serialization.Encoding.PEM)


# --- hand-made DER, for defects cryptography's builder refuses ----------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _len(len(body)) + body


def _read(data: bytes, pos: int) -> tuple[int, int, int]:
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def split(data: bytes) -> list[bytes]:
    """The TLVs inside one constructed TLV (each returned whole)."""
    _, start, end = _read(data, 0)
    out, pos = [], start
    while pos < end:
        _, _, nxt = _read(data, pos)
        out.append(data[pos:nxt])
        pos = nxt
    return out


def der_integer(value: int) -> bytes:
    length = max(1, (value.bit_length() + 8) // 8)
    return tlv(0x02, value.to_bytes(length, "big", signed=True))


def raw_extension(oid: str, value: bytes, critical: bool = False) -> bytes:
    from asn1crypto.core import ObjectIdentifier as Asn1Oid

    body = Asn1Oid(oid).dump() + (b"\x01\x01\xff" if critical else b"") + tlv(0x04, value)
    return tlv(0x30, body)


def basic_constraints_raw(path_len: int) -> bytes:
    """basicConstraints {cA TRUE, pathLenConstraint path_len}, any integer."""
    return raw_extension("2.5.29.19", tlv(0x30, b"\x01\x01\xff" + der_integer(path_len)), critical=True)


def resign(cert_der: bytes, issuer_key, edit_extensions) -> bytes:
    """Re-encode a certificate's TBS with ``edit_extensions(list of extension
    TLVs) -> list`` applied, and sign it again with ``issuer_key``."""
    tbs, sig_alg, _ = split(cert_der)
    fields = split(tbs)
    for i, f in enumerate(fields):
        if f[0] == 0xA3:
            exts = split(split(f)[0])  # [3] EXPLICIT { SEQUENCE OF Extension }
            new = edit_extensions(list(exts))
            fields[i] = tlv(0xA3, tlv(0x30, b"".join(new)))
            break
    else:
        fields.append(tlv(0xA3, tlv(0x30, b"".join(edit_extensions([])))))
    new_tbs = tlv(0x30, b"".join(fields))
    signature = issuer_key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, new_tbs + sig_alg + tlv(0x03, b"\x00" + signature))


def extension_oid(ext_tlv: bytes) -> str:
    from asn1crypto.core import ObjectIdentifier as Asn1Oid

    first = split(ext_tlv)[0]
    return Asn1Oid.load(first).dotted


@dataclass
class Member:
    """A member of the federation: its root, its issuing CA, its policies."""

    code: str
    root: CA
    issuing: CA
    policies: tuple[str, ...]
    leaves: dict[str, x509.Certificate] = field(default_factory=dict)


@dataclass
class Federation:
    bridge: CA
    bridge_policies: tuple[str, ...]
    members: dict[str, Member]
    cross: dict[str, x509.Certificate]  # bridge -> member root
    reverse: dict[str, x509.Certificate]  # member root -> bridge

    def untrusted(self, *extra) -> list[bytes]:
        out = [pem(c) for c in self.cross.values()] + [pem(c) for c in self.reverse.values()]
        out += [pem(m.issuing.cert) for m in self.members.values()]
        return out + [pem(e) for e in extra]


ARC = "1.3.6.1.4.1.99999"
BRIDGE_MEDIUM = f"{ARC}.1.1"
BRIDGE_HIGH = f"{ARC}.1.2"


def federation(
    members: Sequence[tuple[str, str]] = (("A", "Guangdong"), ("B", "Hong Kong")),
    *,
    cross_options: dict[str, dict] | None = None,
    reverse_mapped: dict[str, Sequence[str]] | None = None,
) -> Federation:
    """A bridge and members. Member X (index k) owns policies
    ``ARC.(10+k).1`` (medium) and ``ARC.(10+k).2`` (high). The bridge's
    cross-certificate to X maps bridge medium -> X medium and bridge high ->
    X high; X's reverse certificate maps back the levels listed in
    ``reverse_mapped[X]`` (default both). ``cross_options[X]`` adds keyword
    arguments (name constraints, path length) to the cross-certificate."""
    cross_options = cross_options or {}
    reverse_mapped = reverse_mapped or {}
    bridge = root(name("GD Bridge CA", "Guangdong Cross-Certification Platform"), policies=(BRIDGE_MEDIUM, BRIDGE_HIGH))
    bridge_policies = (BRIDGE_MEDIUM, BRIDGE_HIGH)
    out: dict[str, Member] = {}
    cross: dict[str, x509.Certificate] = {}
    reverse: dict[str, x509.Certificate] = {}
    for k, (code, org) in enumerate(members):
        medium, high = f"{ARC}.{10 + k}.1", f"{ARC}.{10 + k}.2"
        member_root = root(name(f"{code} Root CA", org), policies=(medium, high))
        issuing = intermediate(member_root, name(f"{code} Issuing CA", org), policies=(medium, high), path_length=0)
        m = Member(code, member_root, issuing, (medium, high))
        m.leaves["medium"] = leaf(issuing, name(f"{code} person medium", org), policies=(medium,))
        m.leaves["high"] = leaf(issuing, name(f"{code} person high", org), policies=(high,))
        out[code] = m
        cross[code] = cross_certify(
            bridge, member_root,
            policies=bridge_policies,
            mappings=[(BRIDGE_MEDIUM, medium), (BRIDGE_HIGH, high)],
            **cross_options.get(code, {}),
        )
        levels = reverse_mapped.get(code, ("medium", "high"))
        pairs = {"medium": (medium, BRIDGE_MEDIUM), "high": (high, BRIDGE_HIGH)}
        reverse[code] = cross_certify(
            member_root, bridge,
            policies=tuple(pairs[level][0] for level in levels),
            mappings=[pairs[level] for level in levels],
        )
    return Federation(bridge, bridge_policies, out, cross, reverse)
