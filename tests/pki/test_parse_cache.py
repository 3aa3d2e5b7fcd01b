"""The parse cache (extension values decoded once, by their exact DER) gives
the very Certificate a plain parse gives, defects included: every field of
every PKITS and demo certificate is compared, and hand-made defects are
parsed after the cache learnt their well-formed neighbours."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509

import tests.pkibuilder as pb
from pki import Verifier
from pki.certificate import Certificate, parse_certificate
from pki.errors import InputError
from pki.loading import load_certificates
from pki.parse_cache import ParseCache

REPO = Path(__file__).resolve().parents[2]
FIELDS = [f.name for f in dataclasses.fields(Certificate) if not f.name.startswith("_")]


def _parse(data: bytes, cache: ParseCache | None):
    try:
        return parse_certificate(data, cache)
    except InputError as exc:
        return f"InputError: {exc}"


def assert_same(plain, cached, label: str) -> None:
    if isinstance(plain, str) or isinstance(cached, str):
        assert plain == cached, label
        return
    for name in FIELDS:
        assert getattr(plain, name) == getattr(cached, name), f"{label}: {name}"


def test_every_pkits_and_demo_certificate_parses_the_same_through_the_cache(pkits_dir):
    ders = [p.read_bytes() for p in sorted((pkits_dir / "certs").glob("*.crt"))]
    for p in sorted((REPO / "certs").rglob("*.pem")):
        try:
            ders.extend(c.der for c in load_certificates(p.read_bytes()))
        except InputError:
            continue  # keys and CRLs live there too
    assert len(ders) > 400
    cache = ParseCache()
    for round_ in ("cold", "warm"):
        for i, der in enumerate(ders):
            assert_same(_parse(der, None), _parse(der, cache), f"{round_} certificate {i}")
    assert cache.extensions  # the second round did read from it


@pytest.fixture(scope="module")
def chain():
    anchor = pb.root("Parse Root")
    ca = pb.intermediate(anchor, "Parse CA", policies=[pb.ANY_POLICY])
    return anchor, ca


def _warm_verifier(anchor, ca) -> Verifier:
    v = Verifier(anchors=[pb.der(anchor.cert)], untrusted=[pb.der(ca.cert)])
    for i in range(3):  # the CA's leaves' extension values are now cached
        assert v.verify(pb.der(pb.leaf(ca, f"warm {i}")), at=pb.AT).valid
    return v


def _edited_leaf(ca, edit) -> bytes:
    return pb.resign(pb.der(pb.leaf(ca, "edited")), ca.key, edit)


def _replace(oid: str, new: bytes):
    return lambda exts: [new if pb.extension_oid(e) == oid else e for e in exts]


DEFECTS = {
    "duplicate extension": lambda exts: exts + [exts[0]],
    "keyUsage that is not a BIT STRING": _replace("2.5.29.15", pb.raw_extension("2.5.29.15", b"\x05\x00", True)),
    "certificatePolicies naming a policy twice": lambda exts: [e for e in exts if pb.extension_oid(e) != "2.5.29.32"] + [
        pb.raw_extension("2.5.29.32", pb.tlv(0x30, pb.tlv(0x30, b"\x06\x03\x2a\x03\x04") * 2))],
    "subjectKeyIdentifier that is not an OCTET STRING": _replace(
        "2.5.29.14", pb.raw_extension("2.5.29.14", pb.tlv(0x02, b"\x01"))),
    "subjectKeyIdentifier twice": lambda exts: exts + [e for e in exts if pb.extension_oid(e) == "2.5.29.14"],
    "subjectKeyIdentifier with trailing bytes": _replace(
        "2.5.29.14", pb.raw_extension("2.5.29.14", pb.tlv(0x04, b"\x01\x02") + b"\x00")),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_defect_is_found_when_its_neighbours_are_cached(chain, defect):
    anchor, ca = chain
    v = _warm_verifier(anchor, ca)
    bad = _edited_leaf(ca, DEFECTS[defect])
    plain = _parse(bad, None)
    assert_same(plain, _parse(bad, v._parse_cache), defect)
    result = v.verify(bad, at=pb.AT)
    assert not result.valid
    assert result.error.code == "malformed_certificate" and result.error.index == 0
    assert v.verify(pb.der(pb.leaf(ca, "after")), at=pb.AT).valid


@pytest.mark.parametrize("key_id", [b"", b"\x01", bytes(range(20)), bytes(range(32)), bytes(range(110)), bytes(200)])
def test_subject_key_identifiers_of_any_length_read_as_cryptography_reads_them(chain, key_id):
    anchor, ca = chain
    v = _warm_verifier(anchor, ca)
    for critical in (False, True):
        leaf = _edited_leaf(ca, _replace("2.5.29.14", pb.raw_extension("2.5.29.14", pb.tlv(0x04, key_id), critical)))
        plain, cached = _parse(leaf, None), _parse(leaf, v._parse_cache)
        assert_same(plain, cached, f"{len(key_id)} bytes, critical={critical}")
        assert cached.subject_key_id == key_id
        assert v.verify(leaf, at=pb.AT, profile="rfc5280").valid
        # RFC 5280 4.2.1.2: conforming CAs mark it non-critical.
        assert v.verify(leaf, at=pb.AT).valid is not critical


def test_the_cache_is_bounded():
    cache = ParseCache(extension_size=8)
    anchor = pb.root("Bound Root")
    for i in range(20):
        ca = pb.intermediate(anchor, f"Bound CA {i}", policies=[f"1.3.6.1.4.1.32473.9.{i}"])
        parse_certificate(pb.der(pb.leaf(ca, "leaf", policies=[f"1.3.6.1.4.1.32473.9.{i}"])), cache)
        assert len(cache.extensions) <= 8 and len(cache.extension_blocks) <= 8


_LOOKALIKE = b"\x06\x03\x55\x1d\x0e\x04\x16\x04\x14" + bytes(20)


@pytest.mark.parametrize("where", ["before", "after"])
def test_subject_key_identifier_lookalike_bytes_elsewhere_change_nothing(chain, where):
    anchor, ca = chain
    v = _warm_verifier(anchor, ca)
    odd = pb.raw_extension("1.3.6.1.4.1.32473.9.77", pb.tlv(0x30, _LOOKALIKE))
    for i in range(3):  # the second and third read the block cache
        edit = (lambda exts: [odd] + exts) if where == "before" else (lambda exts: exts + [odd])
        leaf = pb.resign(pb.der(pb.leaf(ca, f"lookalike {i}")), ca.key, edit)
        plain, cached = _parse(leaf, None), _parse(leaf, v._parse_cache)
        assert_same(plain, cached, f"{where} {i}")
        assert cached.subject_key_id != bytes(20)
        assert v.verify(leaf, at=pb.AT).valid


def _name_variants():
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    A = x509.NameAttribute
    tricky = ['a,b', 'a+b', 'say "hi"', 'back\\slash', '<tag>', 'semi;colon', '#hash', ' lead', 'trail ', ' ',
              '广东省数字证书认证中心', 'Macau 澳門', 'x' * 64, 'nul\0char', '=equals=']
    names = [x509.Name([A(NameOID.COMMON_NAME, value)]) for value in tricky]
    names.append(x509.Name([A(NameOID.COUNTRY_NAME, "CN"), A(NameOID.STATE_OR_PROVINCE_NAME, "Guangdong"),
                            A(NameOID.LOCALITY_NAME, "Shenzhen"), A(NameOID.ORGANIZATION_NAME, "Org, Inc."),
                            A(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit"), A(NameOID.STREET_ADDRESS, "1 Road"),
                            A(NameOID.DOMAIN_COMPONENT, "example"), A(NameOID.USER_ID, "u1"),
                            A(NameOID.EMAIL_ADDRESS, "a@example.org"), A(NameOID.SERIAL_NUMBER, "123"),
                            A(ObjectIdentifier("1.3.6.1.4.1.32473.1"), "private attribute"),
                            A(NameOID.COMMON_NAME, "last")]))
    names.append(x509.Name([x509.RelativeDistinguishedName([A(NameOID.COMMON_NAME, "two"), A(NameOID.USER_ID, "valued")])]))
    names.append(x509.Name([A(NameOID.COMMON_NAME, "bmp 字", _type=_ASN1Type.BMPString)]))
    names.append(x509.Name([A(NameOID.COMMON_NAME, "universal", _type=_ASN1Type.UniversalString)]))
    names.append(x509.Name([A(NameOID.ORGANIZATION_NAME, "teletex", _type=_ASN1Type.T61String)]))
    return names


def test_subject_rendering_from_cached_rdns_is_cryptographys(pkits_dir, chain):
    from pki.names import render

    anchor, ca = chain
    cache = ParseCache()
    ders = [p.read_bytes() for p in sorted((pkits_dir / "certs").glob("*.crt"))]
    ders += [pb.der(pb.leaf(ca, n)) for n in _name_variants()]
    for round_ in ("cold", "warm"):
        for i, der in enumerate(ders):
            try:
                plain = parse_certificate(der)
            except InputError:
                continue
            cached = parse_certificate(der, cache)
            assert cached.subject_text == render(plain.subject), f"{round_} {i}: {render(plain.subject)!r}"
            assert cached.issuer_text == render(plain.issuer), f"{round_} {i}"


def test_the_rdn_caches_are_bounded(chain):
    anchor, ca = chain
    cache = ParseCache(rdn_size=16)
    for i in range(40):
        cert = parse_certificate(pb.der(pb.leaf(ca, f"leaf {i}")), cache)
        assert cert.subject_text.startswith(f"CN=leaf {i}")
        assert len(cache._good_rdns) <= 16 and len(cache._rdn_texts) <= 16


def _san_variants(ca):
    import ipaddress

    from cryptography.x509.oid import NameOID, ObjectIdentifier

    G = x509
    plain = [
        [G.DNSName("www.example.org")],
        [G.DNSName("a.example"), G.DNSName("b.example"), G.RFC822Name("someone@example.org")],
        [G.UniformResourceIdentifier("https://example.org/path?q=1")],
        [G.IPAddress(ipaddress.ip_address("192.0.2.7")), G.IPAddress(ipaddress.ip_address("2001:db8::1"))],
        [G.DNSName("")],
        [G.DirectoryName(G.Name([G.NameAttribute(NameOID.COMMON_NAME, "dir")]))],  # left to cryptography
        [G.RegisteredID(ObjectIdentifier("1.3.6.1.4.1.32473.5")), G.DNSName("mixed.example")],
        [G.OtherName(ObjectIdentifier("1.3.6.1.4.1.32473.6"), b"\x0c\x02hi")],
    ]
    leaves = [pb.der(pb.leaf(ca, f"san {i}", san=names)) for i, names in enumerate(plain)]
    raw = [
        pb.tlv(0x30, pb.tlv(0x82, b"critical.example")),  # below, marked critical
        pb.tlv(0x30, b""),  # no names at all
        pb.tlv(0x30, pb.tlv(0x82, "d\u00e9j\u00e0.example".encode())),  # not IA5
        pb.tlv(0x30, pb.tlv(0x87, bytes(8))),  # an IP address of 8 octets
    ]
    for i, value in enumerate(raw):
        ext = pb.raw_extension("2.5.29.17", value, critical=(i == 0))
        leaves.append(pb.resign(pb.der(pb.leaf(ca, f"raw san {i}")), ca.key,
                                lambda exts, ext=ext: [e for e in exts if pb.extension_oid(e) != "2.5.29.17"] + [ext]))
    explicit_false = pb.tlv(0x30, b"\x06\x03\x55\x1d\x11\x01\x01\x00" + pb.tlv(0x04, pb.tlv(0x30, pb.tlv(0x82, b"f.example"))))
    leaves.append(pb.resign(pb.der(pb.leaf(ca, "explicit false")), ca.key, lambda exts: exts + [explicit_false]))
    twice = pb.raw_extension("2.5.29.17", pb.tlv(0x30, pb.tlv(0x82, b"twice.example")))
    leaves.append(pb.resign(pb.der(pb.leaf(ca, "san twice")), ca.key, lambda exts: exts + [twice, twice]))
    return leaves


def test_subject_alt_names_read_here_are_cryptographys(chain):
    anchor, ca = chain
    v = _warm_verifier(anchor, ca)
    leaves = _san_variants(ca)
    for round_ in ("cold", "warm"):
        for i, der in enumerate(leaves):
            plain, cached = _parse(der, None), _parse(der, v._parse_cache)
            assert_same(plain, cached, f"{round_} SAN variant {i}")
    # the well-formed ones validate; the defects are reported as such
    assert all(v.verify(der, at=pb.AT).valid for der in leaves[:4])
    assert v.verify(leaves[-1], at=pb.AT).error.code == "malformed_certificate"  # SAN twice
    assert _parse(leaves[-2], v._parse_cache).startswith("InputError")  # explicit FALSE: not DER
