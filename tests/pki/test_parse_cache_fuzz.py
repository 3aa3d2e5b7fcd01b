"""Differential fuzzing of the parse cache: leaves whose extension block is
damaged at random (bytes changed, inserted or removed, seeded so every run
is the same) parse to the same Certificate, or the same error, through a
warm ParseCache as through the plain parse. The cache's shortcuts (values by
exact DER, the block but its subjectKeyIdentifier, subjectAltName read here)
must never change a verdict, whatever the bytes."""
from __future__ import annotations

import random

import pytest
from cryptography import x509

import tests.pkibuilder as pb
from pki.parse_cache import ParseCache

from .test_parse_cache import _parse, assert_same

ROUNDS = 3000


def _extension_block(der: bytes) -> tuple[int, int]:
    """(start, end) of the [3] extensions element inside the certificate DER."""
    tbs = pb.split(der)[0]
    offset = der.index(tbs)
    pos = 0
    for field in pb.split(tbs):
        pos = tbs.index(field, pos)
        if field[0] == 0xA3:
            return offset + pos, offset + pos + len(field)
    raise AssertionError("no extensions")


def _mutate(der: bytes, rng: random.Random) -> bytes:
    start, end = _extension_block(der)
    data = bytearray(der)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(start, min(end, len(data)))
        choice = rng.random()
        if choice < 0.6:
            data[at] = rng.randrange(256)
        elif choice < 0.8:
            data[at] ^= 1 << rng.randrange(8)
        elif choice < 0.9:
            data.insert(at, rng.randrange(256))
        else:
            del data[at]
    return bytes(data)


@pytest.fixture(scope="module")
def leaves():
    import ipaddress

    anchor = pb.root("Fuzz Root")
    ca = pb.intermediate(anchor, "Fuzz CA", policies=[pb.ANY_POLICY])
    eku = (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    out = [pb.der(pb.leaf(ca, f"plain {i}")) for i in range(3)]
    out += [pb.der(pb.leaf(ca, f"san {i}", san=[x509.DNSName(f"h{i}.example"), x509.RFC822Name(f"u{i}@example.org"),
                                                 x509.IPAddress(ipaddress.ip_address("192.0.2.1"))], extra=[eku]))
            for i in range(3)]
    return out


def test_damaged_extension_blocks_parse_alike_with_and_without_the_cache(leaves):
    rng = random.Random(20261124)
    cache = ParseCache()
    for der in leaves:  # warm: every original extension value, and the blocks, are cached
        assert not isinstance(_parse(der, cache), str)
        assert not isinstance(_parse(der, cache), str)
    outcomes = {"parsed": 0, "defect": 0, "refused": 0}
    for i in range(ROUNDS):
        damaged = _mutate(rng.choice(leaves), rng)
        plain, cached = _parse(damaged, None), _parse(damaged, cache)
        assert_same(plain, cached, f"round {i}: {damaged.hex()}")
        kind = "refused" if isinstance(plain, str) else "defect" if plain.defect else "parsed"
        outcomes[kind] += 1
    # the damage reached every kind of outcome, so each path of the cache ran
    assert all(count > 50 for count in outcomes.values()), outcomes


def test_random_subject_names_render_as_cryptography_renders_them():
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    from pki.certificate import parse_certificate
    from pki.names import render

    rng = random.Random(7)
    alphabet = 'abcXYZ019 ,+"\\<>;#=\0\n\t-._/:()\'' + "广东澳門香港éß€"
    oids = [NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.LOCALITY_NAME,
            NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT, NameOID.SERIAL_NUMBER, NameOID.TITLE]
    anchor = pb.root("Render Root")
    ca = pb.intermediate(anchor, "Render CA", policies=[pb.ANY_POLICY])
    cache = ParseCache()
    for i in range(300):
        attributes = []
        for _ in range(rng.randint(1, 4)):
            oid = rng.choice(oids)
            ascii_only = oid in (NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT)
            pool = alphabet[:32] if ascii_only else alphabet
            value = "".join(rng.choice(pool) for _ in range(rng.randint(1, 20)))
            kind = _ASN1Type.IA5String if ascii_only else rng.choice([_ASN1Type.UTF8String, _ASN1Type.BMPString])
            attributes.append(x509.NameAttribute(oid, value, _type=kind))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, f"n{i}"))
        der = pb.der(pb.leaf(ca, x509.Name(attributes)))
        for _ in range(2):  # cold, then from the RDN cache
            cached = parse_certificate(der, cache)
            assert cached.subject_text == render(parse_certificate(der).subject), repr(attributes)


def test_the_one_block_pem_path_reads_what_the_regular_expression_reads():
    import base64

    from pki import loading as C
    from pki.errors import InputError

    def by_regex(data: bytes):  # the general reader, the one-block shortcut left out
        blocks = []
        for match in C._PEM.finditer(data):
            label = match.group(1).decode()
            try:
                blocks.append((label, base64.b64decode(match.group(2).translate(None, C._NOT_BASE64), validate=True)))
            except ValueError:
                raise InputError(f"bad base64 in PEM block {label}") from None
        return blocks

    def outcome(read, data):
        try:
            return read(data)
        except InputError as exc:
            return str(exc)

    body = base64.encodebytes(bytes(range(256)) * 3)
    block = b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
    cases = [block, block.replace(b"\n", b"\r\n") + b"trailing text", b"text before\n" + block, block + block,
             block[:-26], block.replace(b"END CERTIFICATE", b"END X509 CRL"), block.replace(b"CERTIFICATE", b"X509 CRL"),
             b"-----BEGIN CERTIFICATE-----\nAAA*\n-----END CERTIFICATE-----\n",
             b"-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n",
             b"-----BEGIN certificate-----\nAAAA\n-----END certificate-----\n", b"-----BEGIN -----\nAAAA\n-----END -----\n",
             b"-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n",
             b"-----BEGIN CERTIFICATE----------END CERTIFICATE-----"]
    rng = random.Random(3)
    for _ in range(ROUNDS):
        damaged = bytearray(rng.choice(cases[:3]))
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.choice(b"-ABCDE \n=+/#x")
        cases.append(bytes(damaged))
    for data in cases:
        assert outcome(C.pem_blocks, data) == outcome(by_regex, data), data[:80]
