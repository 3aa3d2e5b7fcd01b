"""Reading certificate inputs: DER, PEM (one or several blocks) and PKCS#7
certs-only bundles (DER or PEM), sniffed from their first bytes, into parsed
``Certificate`` objects. ``pem_blocks`` is shared with the CRL and OCSP
readers.
"""
from __future__ import annotations

import base64
import re
from typing import Iterable

from asn1crypto import cms as asn1_cms

from .certificate import Certificate, parse_certificate
from .errors import InputError
from .parse_cache import ParseCache

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----\s*(.*?)-----END \1-----", re.S)


_NOT_BASE64 = bytes(b for b in range(256) if not (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "+/=")))


_PEM_LABEL = re.compile(rb"[A-Z0-9 #]+")


def _one_pem_block(data: bytes) -> list[tuple[str, bytes]] | None:
    """What ``pem_blocks`` gives for the usual input, one block and nothing
    before it, found with a few searches instead of the regular expression
    (which costs as much as parsing the certificate); None otherwise."""
    if not data.startswith(b"-----BEGIN "):
        return None
    label_end = data.find(b"-----", 11)
    if label_end <= 11 or not _PEM_LABEL.fullmatch(data, 11, label_end):
        return None
    label = data[11:label_end]
    end = data.find(b"-----END " + label + b"-----", label_end + 5)
    if end < 0 or data.find(b"-----BEGIN", label_end) >= 0:
        return None
    try:
        return [(label.decode(), base64.b64decode(data[label_end + 5 : end].translate(None, _NOT_BASE64), validate=True))]
    except ValueError:
        raise InputError(f"bad base64 in PEM block {label.decode()}") from None


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    one = _one_pem_block(data)
    if one is not None:
        return one
    blocks = []
    for match in _PEM.finditer(data):
        label = match.group(1).decode()
        body = match.group(2).translate(None, _NOT_BASE64)
        # Header lines (Proc-Type: ...) would contain ':'; certificates carry none.
        try:
            blocks.append((label, base64.b64decode(body, validate=True)))
        except ValueError:
            raise InputError(f"bad base64 in PEM block {label}") from None
    return blocks


def _pkcs7_certificates(data: bytes) -> list[bytes]:
    try:
        info = asn1_cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise InputError("PKCS#7 content is not SignedData")
        certs = info["content"]["certificates"]
        return [c.chosen.dump() for c in certs] if certs.native is not None else []
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"not a readable PKCS#7 bundle: {exc}") from None


def looks_like_pkcs7(der: bytes) -> bool:
    # ContentInfo starts with SEQUENCE { OID 1.2.840.113549.1.7.2 ...
    return b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" in der[:24]


def load_certificates(data: bytes | str, what: str = "input", names: ParseCache | None = None,
                      der_sha256: bytes | None = None) -> list[Certificate]:
    """Certificates from PEM (one or several blocks), DER, or a PKCS#7
    certs-only bundle (DER or PEM). ``der_sha256``: the digest of ``data``,
    if known, used when ``data`` is one DER certificate."""
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    if data[:1] == b"\x30" and not looks_like_pkcs7(data):
        try:  # DER: the hot path
            return [parse_certificate(data, names, der_sha256)]
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    if not data.strip():
        raise InputError(f"{what}: empty")
    ders: list[bytes] = []
    if b"-----BEGIN" in data:
        blocks = pem_blocks(data)
        if not blocks:
            raise InputError(f"{what}: no complete PEM block")
        for label, body in blocks:
            if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
                ders.append(body)
            elif label in ("PKCS7", "CMS"):
                ders.extend(_pkcs7_certificates(body))
            else:
                raise InputError(f"{what}: unexpected PEM block {label}")
    elif looks_like_pkcs7(data):
        ders.extend(_pkcs7_certificates(data))
    else:
        ders.append(data)
    out = []
    for i, d in enumerate(ders):
        try:
            out.append(parse_certificate(d, names))
        except InputError as exc:
            label = what if len(ders) == 1 else f"{what} (certificate {i + 1})"
            raise InputError(f"{label}: {exc}") from None
    if not out:
        raise InputError(f"{what}: no certificate found")
    return out


def load_certificate(data: bytes | str | Certificate, what: str = "certificate", names: ParseCache | None = None,
                     der_sha256: bytes | None = None) -> Certificate:
    if isinstance(data, Certificate):
        return data
    certs = load_certificates(data, what, names, der_sha256)
    if len(certs) != 1:
        raise InputError(f"{what}: expected one certificate, found {len(certs)}")
    return certs[0]


def load_many(items: Iterable[bytes | str | Certificate], what: str, names: ParseCache | None = None) -> list[Certificate]:
    out: list[Certificate] = []
    for i, item in enumerate(items):
        if isinstance(item, Certificate):
            out.append(item)
        else:
            out.extend(load_certificates(item, f"{what} {i + 1}", names))
    return out
