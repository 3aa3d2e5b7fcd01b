"""Just enough DER to slice a signed object into its parts.

cryptography parses the fields; this gives the exact bytes that were signed
(TBS), the raw SubjectPublicKeyInfo (which cryptography cannot hand back for
keys it cannot load, such as DSA keys that inherit their parameters or SM2
keys) and the raw signature AlgorithmIdentifier.
"""
from __future__ import annotations

from .errors import InputError


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, content_start, end) of the TLV at ``offset``."""
    try:
        tag = data[offset]
        first = data[offset + 1]
    except IndexError:
        raise InputError("truncated DER") from None
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise InputError("unsupported DER length")
        if pos + count > len(data):
            raise InputError("truncated DER")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise InputError("truncated DER")
    if tag & 0x1F == 0x1F:
        raise InputError("high tag numbers are not expected here")
    return tag, pos, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The TLVs inside a constructed value: (tag, tlv_start, content_start, end).

    ``read_tlv`` inlined: certificates are walked on the hot path, and a call
    per element is most of the cost of the walk."""
    out: list[tuple[int, int, int, int]] = []
    append = out.append
    pos = start
    size = len(data)
    while pos < end:
        if pos + 2 > size:
            raise InputError("truncated DER")
        tag = data[pos]
        first = data[pos + 1]
        if first < 0x80:
            content = pos + 2
            nxt = content + first
        else:
            count = first & 0x7F
            if count == 0 or count > 4:
                raise InputError("unsupported DER length")
            content = pos + 2 + count
            if content > size:
                raise InputError("truncated DER")
            nxt = content + int.from_bytes(data[pos + 2 : content], "big")
        if nxt > size:
            raise InputError("truncated DER")
        if tag & 0x1F == 0x1F:
            raise InputError("high tag numbers are not expected here")
        append((tag, pos, content, nxt))
        pos = nxt
    if pos != end:
        raise InputError("DER length mismatch")
    return out


def split_signed(der: bytes) -> tuple[bytes, bytes, bytes]:
    """Split Certificate / CertificateList into (tbs DER, signatureAlgorithm DER,
    signature bits)."""
    tag, start, end = read_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise InputError("not a DER SEQUENCE (or trailing data)")
    parts = children(der, start, end)
    if len(parts) != 3 or parts[0][0] != 0x30 or parts[1][0] != 0x30 or parts[2][0] != 0x03:
        raise InputError("not a signed X.509 structure")
    tbs = der[parts[0][1] : parts[0][3]]
    alg = der[parts[1][1] : parts[1][3]]
    bits = der[parts[2][2] : parts[2][3]]
    if not bits or bits[0] != 0:
        # A signature is a whole number of octets; anything else cannot
        # verify, but the object is still readable (PKITS 4.1.2 flips this byte).
        return tbs, alg, b""
    return tbs, alg, bits[1:]


def tbs_certificate_fields(tbs: bytes) -> list[tuple[int, int, int, int]]:
    tag, start, end = read_tlv(tbs, 0)
    return children(tbs, start, end)


def certificate_spki(tbs: bytes) -> tuple[bytes, int, int]:
    """The SubjectPublicKeyInfo of a TBSCertificate and its (start, end)."""
    fields = tbs_certificate_fields(tbs)
    index = 6 if fields and fields[0][0] == 0xA0 else 5  # [0] version is optional
    if len(fields) <= index or fields[index][0] != 0x30:
        raise InputError("TBSCertificate has no SubjectPublicKeyInfo")
    _, s, _, e = fields[index]
    return tbs[s:e], s, e


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def sequence(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + encode_length(len(body)) + body


def decode_oid(body: bytes) -> str:
    if not body:
        raise InputError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if body[-1] & 0x80:
        raise InputError("truncated OBJECT IDENTIFIER")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def algorithm_identifier(alg_der: bytes) -> tuple[str, bytes | None]:
    """(OID, parameters DER or None when absent) of an AlgorithmIdentifier."""
    tag, start, end = read_tlv(alg_der, 0)
    parts = children(alg_der, start, end)
    if tag != 0x30 or not parts or parts[0][0] != 0x06:
        raise InputError("malformed AlgorithmIdentifier")
    oid = decode_oid(alg_der[parts[0][2] : parts[0][3]])
    params = alg_der[parts[1][1] : parts[1][3]] if len(parts) > 1 else None
    return oid, params


def spki_parts(spki: bytes) -> tuple[str, bytes | None, bytes]:
    """(algorithm OID, parameters DER or None, public key bits) of a SubjectPublicKeyInfo."""
    tag, start, end = read_tlv(spki, 0)
    parts = children(spki, start, end)
    if tag != 0x30 or len(parts) != 2 or parts[1][0] != 0x03:
        raise InputError("malformed SubjectPublicKeyInfo")
    oid, params = algorithm_identifier(spki[parts[0][1] : parts[0][3]])
    bits = spki[parts[1][2] : parts[1][3]]
    return oid, params, bits[1:]


_STRING_TAGS = frozenset({0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A, 0x1C, 0x1E, 0x03, 0x04, 0x02})


def check_name(name_der: bytes) -> None:
    """Check that a Name is well-formed DER (RDNSequence of SETs of
    AttributeTypeAndValue with a string value): cheaper than decoding it, and
    enough to know that decoding it later cannot fail on structure."""
    tag, start, end = read_tlv(name_der, 0)
    if tag != 0x30 or end != len(name_der):
        raise InputError("malformed Name")
    for _, rdn_tlv_start, _, rdn_end in children(name_der, start, end):
        check_rdn(name_der, rdn_tlv_start, rdn_end)


def check_rdn(data: bytes, start: int = 0, end: int | None = None) -> None:
    """One RelativeDistinguishedName (the TLV at ``data[start:end]``)."""
    rdn_tag, rdn_start, rdn_end = read_tlv(data, start)
    if rdn_tag != 0x31 or rdn_start == rdn_end or rdn_end != (len(data) if end is None else end):
        raise InputError("malformed RelativeDistinguishedName")
    for atv_tag, _, atv_start, atv_end in children(data, rdn_start, rdn_end):
        if atv_tag != 0x30:
            raise InputError("malformed AttributeTypeAndValue")
        parts = children(data, atv_start, atv_end)
        if len(parts) != 2 or parts[0][0] != 0x06 or parts[1][0] not in _STRING_TAGS:
            raise InputError("malformed AttributeTypeAndValue")
