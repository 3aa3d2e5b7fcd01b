"""A seeded generator of certificate chains, each with at most one defect, for
the differential test against pyca/cryptography's verifier and
pyhanko-certvalidator (tests/pki/test_differential.py).

Every chain is made of real certificates (cryptography's builder; a few
defects the builder refuses are made by re-encoding the signed TBS). Keys are
ECDSA P-256 derived from the seed, so a seed gives the same names, keys and
topology on every run (ECDSA signatures themselves are randomised, which no
verdict depends on).

A chain's relying party asks one question, the same of every engine: is the
leaf good at ``AT`` for TLS server authentication of ``SERVER_NAME``
(extendedKeyUsage serverAuth, keyUsage digitalSignature)? Clean leaves meet
pyca's web PKI profile (subjectAltName with the name, EKU serverAuth, AKI), so
that pyca refuses a chain only for its defect or for a rule of its own.

Reproduce one chain: ``generate(seed)[index]``, or ``make_chain(seed, index)``.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from tests.pkibuilder import der_integer, split, tlv

AT = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2034, 1, 1, tzinfo=dt.timezone.utc)
PAST = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # an expired certificate's notAfter
FUTURE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # a not-yet-valid certificate's notBefore
SERVER_NAME = "leaf.example.com"
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
UNKNOWN_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.99999.77.1")
NAME_CONSTRAINTS = ObjectIdentifier("2.5.29.30")

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def key_usage(*, digital_signature=False, content_commitment=False, key_agreement=False,
              key_cert_sign=False, crl_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=content_commitment,
        key_encipherment=False, data_encipherment=False, key_agreement=key_agreement,
        key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False, decipher_only=False,
    )


CA_KEY_USAGE = key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True)
EE_KEY_USAGE = key_usage(digital_signature=True)


@dataclass
class Spec:
    """One certificate to make: ``subject`` and ``key`` certified by the
    certificate labelled ``issuer`` (None: self-signed)."""

    label: str
    subject: x509.Name
    key: ec.EllipticCurvePrivateKey
    issuer: str | None
    serial: int
    ca: bool | None = True  # None: no basicConstraints
    path_length: int | None = None
    key_usage: x509.KeyUsage | None = None
    ski: bool = True
    ski_critical: bool = False
    aki: bool = True
    aki_critical: bool = False
    san: list | None = None
    eku: list | None = None
    not_before: dt.datetime = NOT_BEFORE
    not_after: dt.datetime = NOT_AFTER
    extra: list = field(default_factory=list)  # (ExtensionType, critical)
    issuer_name: x509.Name | None = None  # overrides the issuer's subject
    signing_key: ec.EllipticCurvePrivateKey | None = None  # overrides the issuer's key
    raw_serial: int | None = None  # any integer, written into the DER after signing


@dataclass
class Chain:
    seed: int
    index: int
    topology: str
    defect: str
    target: str | None  # label of the certificate the defect is in
    specs: dict[str, Spec]
    anchor: str
    leaf: str
    untrusted: list[str]
    ders: dict[str, bytes] = field(default_factory=dict)
    common: tuple[str, ...] = ()  # labels on every path from the leaf to the anchor

    @property
    def anchor_der(self) -> bytes:
        return self.ders[self.anchor]

    @property
    def leaf_der(self) -> bytes:
        return self.ders[self.leaf]

    @property
    def twin_der(self) -> bytes:
        """A clean leaf under the leaf's issuer (the defect, if in a CA, is its too)."""
        return self.ders["twin"]

    @property
    def untrusted_ders(self) -> list[bytes]:
        return [self.ders[label] for label in self.untrusted]

    @property
    def reproducer(self) -> str:
        return f"make_chain(seed={self.seed}, index={self.index})  # {self.topology}, defect {self.defect} in {self.target}"


# --- topologies -------------------------------------------------------------


class _Maker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def key(self) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(self.rng.randrange(1, _P256_ORDER), ec.SECP256R1())

    def serial(self) -> int:
        return self.rng.getrandbits(120) | (1 << 120)  # 16 octets, positive

    def ca(self, label, subject, key, issuer, **kw) -> Spec:
        return Spec(label, subject, key, issuer, self.serial(), ca=True, key_usage=CA_KEY_USAGE, **kw)

    def leaf(self, label, issuer) -> Spec:
        return Spec(label, _name(f"Leaf {self.rng.randrange(10**6)}", "Example Servers"), self.key(), issuer,
                    self.serial(), ca=False, key_usage=EE_KEY_USAGE, san=[x509.DNSName(SERVER_NAME)],
                    eku=[ExtendedKeyUsageOID.SERVER_AUTH])


def _name(cn: str, o: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _linear(m: _Maker, depth: int) -> Chain:
    """anchor -> I1 -> ... -> I<depth> -> leaf"""
    anchor_key = m.key()
    specs = {"anchor": m.ca("anchor", _name("Differential Root CA", "Anchor Org"), anchor_key, None)}
    previous = "anchor"
    for k in range(1, depth + 1):
        specs[f"I{k}"] = m.ca(f"I{k}", _name(f"Differential CA {k}", "Anchor Org"), m.key(), previous)
        previous = f"I{k}"
    specs["leaf"] = m.leaf("leaf", previous)
    inter = [f"I{k}" for k in range(1, depth + 1)]
    return Chain(0, 0, f"linear-{depth}", "none", None, specs, "anchor", "leaf", inter,
                 common=tuple(["leaf"] + inter + ["anchor"]))


def _cross(m: _Maker, below: int) -> Chain:
    """A member root M cross-certified by the anchor (M's self-signed
    certificate is in the pool too: a dead end), then ``below`` CAs under M."""
    member_key = m.key()
    member = _name("Member Root CA", "Member Org")
    specs = {
        "anchor": m.ca("anchor", _name("Bridge CA", "Bridge Org"), m.key(), None),
        "M-self": m.ca("M-self", member, member_key, None),
        "M-cross": m.ca("M-cross", member, member_key, "anchor"),
    }
    previous = "M-cross"
    inter = ["M-self", "M-cross"]
    chain_cas = ["M-cross"]
    for k in range(1, below + 1):
        specs[f"I{k}"] = m.ca(f"I{k}", _name(f"Member Issuing CA {k}", "Member Org"), m.key(), previous)
        previous = f"I{k}"
        inter.append(f"I{k}")
        chain_cas.append(f"I{k}")
    specs["leaf"] = m.leaf("leaf", previous)
    m.rng.shuffle(inter)
    return Chain(0, 0, f"cross-{below}", "none", None, specs, "anchor", "leaf", inter,
                 common=tuple(["leaf"] + chain_cas[::-1] + ["anchor"]))


def _two_paths(m: _Maker) -> Chain:
    """Two paths to the anchor: M cross-certified by the anchor directly and
    by the anchor's subordinate B; the issuing CA I under M; the leaf."""
    member_key = m.key()
    member = _name("Member Root CA", "Member Org")
    specs = {
        "anchor": m.ca("anchor", _name("Bridge CA", "Bridge Org"), m.key(), None),
        "B": m.ca("B", _name("Bridge Sub CA", "Bridge Org"), m.key(), "anchor"),
        "M-cross": m.ca("M-cross", member, member_key, "anchor"),
        "M-cross-B": m.ca("M-cross-B", member, member_key, "B"),
        "I1": m.ca("I1", _name("Member Issuing CA", "Member Org"), m.key(), "M-cross"),
        "leaf": m.leaf("leaf", "I1"),
    }
    inter = ["B", "M-cross", "M-cross-B", "I1"]
    m.rng.shuffle(inter)
    return Chain(0, 0, "two-paths", "none", None, specs, "anchor", "leaf", inter, common=("leaf", "I1", "anchor"))


TOPOLOGIES: dict[str, Callable[[_Maker], Chain]] = {
    "linear-0": lambda m: _linear(m, 0),
    "linear-1": lambda m: _linear(m, 1),
    "linear-2": lambda m: _linear(m, 2),
    "linear-3": lambda m: _linear(m, 3),
    "cross-1": lambda m: _cross(m, 1),
    "cross-2": lambda m: _cross(m, 2),
    "two-paths": _two_paths,
}


# --- defects ----------------------------------------------------------------
# Each defect: (where it can go, how it changes the specs). "where" picks the
# certificate; a defect that needs a CA below the anchor is only put in
# topologies that have one on every path.


def _ca_below_anchor(chain: Chain, rng: random.Random) -> str | None:
    cas = [label for label in chain.common if label not in ("leaf", chain.anchor)]
    return rng.choice(cas) if cas else None


def _ca_issuing_ca(chain: Chain, rng: random.Random) -> str | None:
    """A CA below the anchor that issues another CA (on every path)."""
    cas = [label for label in chain.common if label not in ("leaf", chain.anchor)]
    issuers = [c for c in cas if any(chain.specs[o].issuer == c for o in cas)]
    return rng.choice(issuers) if issuers else None


def _leaf_or_ca(chain: Chain, rng: random.Random) -> str:
    return rng.choice([label for label in chain.common if label != chain.anchor])


def _anchor(chain: Chain, rng: random.Random) -> str:
    return chain.anchor


def _leaf(chain: Chain, rng: random.Random) -> str:
    return "leaf"


def _bad_ip_constraint() -> x509.UnrecognizedExtension:
    # permittedSubtrees { iPAddress 10.0.0.0 / 255.0.255.0 }: a mask that is not a prefix
    subtree = tlv(0x30, tlv(0x87, bytes([10, 0, 0, 0, 255, 0, 255, 0])))
    return x509.UnrecognizedExtension(NAME_CONSTRAINTS, tlv(0x30, tlv(0xA0, subtree)))


def _raw_dns_constraint(value: str) -> x509.UnrecognizedExtension:
    # permittedSubtrees { dNSName value }, as given (the builder refuses a wildcard)
    subtree = tlv(0x30, tlv(0x82, value.encode("ascii")))
    return x509.UnrecognizedExtension(NAME_CONSTRAINTS, tlv(0x30, tlv(0xA0, subtree)))


def _dns_constraint(value: str) -> x509.NameConstraints:
    return x509.NameConstraints(permitted_subtrees=[x509.DNSName(value)], excluded_subtrees=None)


def _set(**changes):
    def apply(spec: Spec, m: _Maker) -> Spec:
        return replace(spec, **changes)
    return apply


def _add(ext, critical: bool):
    def apply(spec: Spec, m: _Maker) -> Spec:
        return replace(spec, extra=spec.extra + [(ext, critical)])
    return apply


def _wrong_key(spec: Spec, m: _Maker) -> Spec:
    return replace(spec, signing_key=m.key())


def _renamed_issuer(spec: Spec, m: _Maker) -> Spec:
    return replace(spec, issuer_name=_name("Some Other CA", "Elsewhere"))


def _pathlen_zero(spec: Spec, m: _Maker) -> Spec:
    return replace(spec, path_length=0)


def _not_a_ca(spec: Spec, m: _Maker) -> Spec:
    # cA false or no basicConstraints, and no keyUsage: keyCertSign in a
    # non-CA would be a second defect (RFC 5280 4.2.1.3).
    return replace(spec, ca=m.rng.choice([False, None]), path_length=None, key_usage=None)


def _avoidable_cross(chain: Chain, rng: random.Random) -> str | None:
    """The anchor's direct cross-certificate, where a second path (through
    the anchor's subordinate B) avoids it."""
    return "M-cross" if "M-cross-B" in chain.specs else None


DEFECTS: dict[str, tuple[Callable, Callable]] = {
    "none": (_leaf, lambda s, m: s),
    # validity (RFC 5280 6.1.3 (a)(2); the anchor's under anchor constraints)
    "anchor_expired": (_anchor, _set(not_after=PAST)),
    "anchor_not_yet_valid": (_anchor, _set(not_before=FUTURE)),
    "intermediate_expired": (_ca_below_anchor, _set(not_after=PAST)),
    "intermediate_not_yet_valid": (_ca_below_anchor, _set(not_before=FUTURE)),
    "leaf_expired": (_leaf, _set(not_after=PAST)),
    "leaf_not_yet_valid": (_leaf, _set(not_before=FUTURE)),
    # the anchor as a certificate (RFC 5937)
    "anchor_no_basic_constraints": (_anchor, _set(ca=None)),
    "anchor_ca_false": (_anchor, _set(ca=False)),
    "anchor_no_key_cert_sign": (_anchor, _set(key_usage=key_usage(digital_signature=True, crl_sign=True))),
    "anchor_unknown_critical_extension": (_anchor, _add(x509.UnrecognizedExtension(UNKNOWN_EXTENSION, b"\x05\x00"), True)),
    "anchor_name_constraints_violated": (_anchor, _add(_dns_constraint("permitted.example"), True)),
    # RFC 5280 section 4 well-formedness
    "ee_without_aki": (_leaf, _set(aki=False)),
    "aki_critical": (_leaf_or_ca, _set(aki_critical=True)),
    "ee_ski_critical": (_leaf, _set(ski_critical=True)),
    "ca_ski_critical": (_ca_below_anchor, _set(ski_critical=True)),
    "ca_without_ski": (_ca_below_anchor, _set(ski=False)),
    "serial_zero": (_leaf_or_ca, _set(raw_serial=0)),
    "serial_negative": (_leaf_or_ca, _set(raw_serial=-0x1234567)),
    "serial_over_20_octets": (_leaf_or_ca, _set(raw_serial=(1 << 167) | 0x1234567)),
    "empty_subject_noncritical_san": (_leaf, _set(subject=x509.Name([]))),
    "ee_key_cert_sign": (_leaf, _set(key_usage=key_usage(digital_signature=True, key_cert_sign=True))),
    "aia_critical": (_leaf_or_ca, _add(x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.example/"))]), True)),
    "ee_name_constraints": (_leaf, _add(_dns_constraint(SERVER_NAME), True)),
    "nc_dns_wildcard": (_ca_below_anchor, _add(_raw_dns_constraint("*.example.com"), True)),
    "nc_dns_leading_period": (_ca_below_anchor, _add(_raw_dns_constraint(".example.com"), True)),
    "nc_ip_mask_not_prefix": (_ca_below_anchor, _add(_bad_ip_constraint(), True)),
    "san_invalid_email": (_leaf, _set(san=[x509.DNSName(SERVER_NAME), x509.RFC822Name("no-at-sign.example.com")])),
    # RFC 5280 6.1
    "intermediate_not_ca": (_ca_below_anchor, _not_a_ca),
    "path_length_exceeded": (_ca_issuing_ca, _pathlen_zero),
    "bad_signature": (_leaf_or_ca, _wrong_key),
    "name_chaining_mismatch": (_leaf_or_ca, _renamed_issuer),
    # purposes (the relying party asks for serverAuth and digitalSignature)
    "eku_leaf_email_protection": (_leaf, _set(eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])),
    "eku_ca_restricting": (_ca_below_anchor, _set(eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])),
    "ku_without_digital_signature": (_leaf, _set(key_usage=key_usage(key_agreement=True))),
    # not defects of the chain: one of two paths is expired, the other good;
    # a leaf named by its subject alone (no subjectAltName) or without
    # extendedKeyUsage (RFC 5280 4.2.1.12: unrestricted), which RFC 5280
    # allows and pyca's web PKI profile does not
    "avoidable_expired_cross": (_avoidable_cross, _set(not_after=PAST)),
    "peer_profile_no_san": (_leaf, _set(san=None, subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))),
    "peer_profile_no_eku": (_leaf, _set(eku=None)),
}

# Kinds whose chain is valid all the same.
VALID_KINDS = frozenset({"none", "avoidable_expired_cross", "peer_profile_no_san", "peer_profile_no_eku"})


def make_chain(seed: int, index: int) -> Chain:
    """Chain ``index`` of the run seeded ``seed``: the defect kind goes round
    the list (every kind as often as any other), the topology and the
    certificate with the defect are drawn."""
    rng = random.Random(f"{seed}/{index}")
    kinds = list(DEFECTS)
    defect = kinds[index % len(kinds)]
    where, change = DEFECTS[defect]
    m = _Maker(rng)
    names = list(TOPOLOGIES)
    rng.shuffle(names)
    for topology in names:
        chain = TOPOLOGIES[topology](m)
        target = where(chain, rng)
        if target is not None:
            break
    else:  # pragma: no cover - every defect fits some topology
        raise AssertionError(f"no topology takes {defect}")
    chain.seed, chain.index, chain.defect, chain.target = seed, index, defect, target
    # A clean sibling of the leaf, under the same issuer, made before the
    # defect: verified first, it teaches a Verifier the CA chain (its caches).
    clean = chain.specs["leaf"]
    chain.specs["twin"] = replace(clean, label="twin", key=m.key(), serial=m.serial(),
                                  subject=_name(f"Twin {m.rng.randrange(10**6)}", "Example Servers"))
    chain.specs[target] = change(chain.specs[target], m)
    if target == "leaf":
        chain.specs["twin"] = replace(chain.specs["twin"], issuer=chain.specs["leaf"].issuer)
    chain.ders = {label: build(spec, chain.specs) for label, spec in chain.specs.items()}
    return chain


def generate(seed: int, count: int) -> list[Chain]:
    return [make_chain(seed, i) for i in range(count)]


# --- building -----------------------------------------------------------------


def build(spec: Spec, specs: dict[str, Spec]) -> bytes:
    issuer = specs[spec.issuer] if spec.issuer is not None else spec
    issuer_key = issuer.key
    b = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(spec.issuer_name or issuer.subject)
        .public_key(spec.key.public_key())
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if spec.ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=spec.ca, path_length=spec.path_length if spec.ca else None), critical=True)
    if spec.key_usage is not None:
        b = b.add_extension(spec.key_usage, critical=True)
    if spec.ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(spec.key.public_key()), critical=spec.ski_critical)
    if spec.aki:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=spec.aki_critical)
    if spec.san is not None:
        b = b.add_extension(x509.SubjectAlternativeName(spec.san), critical=False)
    if spec.eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(spec.eku), critical=False)
    for ext, critical in spec.extra:
        b = b.add_extension(ext, critical=critical)
    signing_key = spec.signing_key or issuer_key
    cert = b.sign(signing_key, hashes.SHA256())
    out = cert.public_bytes(serialization.Encoding.DER)
    if spec.raw_serial is not None:
        out = _with_serial(out, spec.raw_serial, signing_key)
    return out


def _with_serial(cert_der: bytes, serial: int, signing_key) -> bytes:
    """The certificate with another serialNumber (any integer, which the
    builder refuses: zero, negative, over 20 octets), signed again."""
    tbs, sig_alg, _ = split(cert_der)
    fields = split(tbs)
    assert fields[0][0] == 0xA0 and fields[1][0] == 0x02  # [0] version, serialNumber
    fields[1] = _integer(serial)
    new_tbs = tlv(0x30, b"".join(fields))
    signature = signing_key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, new_tbs + sig_alg + tlv(0x03, b"\x00" + signature))


def _integer(value: int) -> bytes:
    if value >= 0:
        return der_integer(value)
    length = (value.bit_length() + 8) // 8
    return tlv(0x02, value.to_bytes(length, "big", signed=True))
