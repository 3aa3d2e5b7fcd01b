"""No exception but ``InputError`` ever escapes the verification core
(issue 11), whatever the bytes.

A small real bridge PKI is made once (tests/pkibuilder.py: bridge anchor,
cross-certificate to a member root, the member's issuing CA and a leaf; a CRL
from each CA, an OCSP response for the leaf, a CMS SignedData and a raw
signature by the leaf). Hypothesis then damages one input at a time, as DER:
bit flips, byte changes, insertions, deletions, truncation, corrupted length
fields, swapped, duplicated, dropped or transplanted TLVs, and chosen
INTEGER / time / OID / BOOLEAN / BIT STRING values. Half the time a signed
object's to-be-signed part is damaged and then signed again with the right
key, so the damage gets past the signature check into path validation,
revocation and CMS processing.

The damaged inputs go to ``pki.Verifier(...)``, ``Verifier.verify``,
``pki.cms.verify_cms`` and ``pki.cms.verify_raw_signature``. Each call
either raises ``InputError`` (or a subclass) or returns a result that is well
formed: ``valid`` a bool, an error with a code exactly when invalid, and
``to_dict()`` that ``json.dumps`` takes. Last, ``bridgeca verify`` on damaged
files never exits 3.

Runs are derandomized (the same examples on every run and in CI) and keep no
example database. ``BRIDGECA_FUZZ_SCALE=10`` multiplies every example count,
and ``BRIDGECA_FUZZ_RANDOM=1`` draws new examples each run: for a longer hunt.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import tests.pkibuilder as pb
from pki import Verifier
from pki.cms import SignatureResult, verify_cms, verify_raw_signature
from pki.crl import load_crls
from pki.errors import InputError
from pki.loading import load_certificate
from pki.ocsp import load_ocsp_responses
from pki.verifier import VerificationResult

SCALE = float(os.environ.get("BRIDGECA_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("BRIDGECA_FUZZ_RANDOM") == "1"
AT = pb.AT
DATA = b"bridgeca fuzz: a document to sign\n"


def fuzz_settings(examples: int):
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        # Building a Verifier per example is the point, not a slow strategy.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# Examples run per test, so that the last test can check the total a full run reaches.
RUN: dict[str, int] = {}
PLANNED: dict[str, int] = {}
# How far the damaged inputs got, by test: "input_error", "valid", or the
# result's error code.
OUTCOMES: dict[str, dict[str, int]] = {}


def outcome(name: str, what: str) -> None:
    table = OUTCOMES.setdefault(name, {})
    table[what] = table.get(what, 0) + 1


def count(name: str) -> None:
    RUN[name] = RUN.get(name, 0) + 1


# --- DER surgery -------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    start: int  # the tag byte
    body: int  # first content byte
    end: int
    tag: int
    parent: int  # index in the node list, -1 at the top


def _header(data: bytes, pos: int, limit: int):
    if pos + 2 > limit:
        return None
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:  # high tag numbers: none in these inputs
        return None
    body = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80 or first > 0x84:
        return None
    else:
        n = first & 0x7F
        if body + n > limit:
            return None
        length = int.from_bytes(data[body:body + n], "big")
        body += n
    if body + length > limit:
        return None
    return tag, body, body + length


@functools.lru_cache(maxsize=256)
def walk(data: bytes) -> list[Node]:
    """(Cached: the base inputs and donors are walked again and again; the
    list is never changed by its users.) Every TLV that parses, outermost first, including DER wrapped in
    OCTET STRINGs and BIT STRINGs (extension values, keys, signatures,
    OCSP's BasicOCSPResponse). Damaged regions are skipped, not fatal."""
    nodes: list[Node] = []

    def children(start: int, end: int, parent: int, depth: int, speculative: bool) -> bool:
        saved = len(nodes)
        pos = start
        while pos < end:
            h = _header(data, pos, end)
            if h is None:
                if speculative:
                    del nodes[saved:]
                return False
            tag, body, stop = h
            idx = len(nodes)
            nodes.append(Node(pos, body, stop, tag, parent))
            if depth < 24 and stop > body:
                if tag & 0x20:
                    children(body, stop, idx, depth + 1, False)
                elif tag == 0x04:
                    children(body, stop, idx, depth + 1, True)
                elif tag == 0x03 and stop - body > 2 and data[body] == 0:
                    children(body + 1, stop, idx, depth + 1, True)
            pos = stop
        return True

    children(0, len(data), -1, 0, False)
    return nodes


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def replace(data: bytes, nodes: list[Node], i: int, new: bytes) -> bytes:
    """``data`` with node ``i`` replaced by ``new``, every enclosing length
    re-encoded: the damage stays local and the rest still parses."""
    n = nodes[i]
    start, end = n.start, n.end
    while n.parent >= 0:
        p = nodes[n.parent]
        content = data[p.body:start] + new + data[end:p.end]
        # A BIT STRING's unused-bits octet sits before its child, in content.
        new = data[p.start:p.start + 1] + _length(len(content)) + content
        start, end = p.start, p.end
        n = p
    return data[:start] + new + data[end:]


INTERESTING_INTEGERS = (
    b"", b"\x00", b"\x01", b"\xff", b"\x80", b"\x00\x00\x01", b"\x7f" + b"\xff" * 20, b"\x00" + b"\xff" * 20,
    b"\x01" + b"\x00" * 8, b"\x80" + b"\x00" * 7, b"\x00\x80", b"\xff\xff\xff\xff",
)
INTERESTING_TIMES = (
    b"", b"250601000000Z", b"491231235959Z", b"500101000000Z", b"991231235959Z", b"000101000000Z",
    b"20250601000000Z", b"20250601000000.5Z", b"250601000000+0100", b"2506010000Z", b"99999999999999Z",
    b"20340101000000Z", b"19491231235959Z", b"not a time",
)
INTERESTING_OIDS = tuple(
    asn1_core.ObjectIdentifier(o).dump()[2:]
    for o in (
        "2.5.29.32.0", "2.5.29.19", "2.5.29.30", "2.5.29.15", "2.5.29.37", "2.5.29.17", "2.5.29.33", "2.5.29.36",
        "2.5.29.54", "2.5.29.35", "2.5.29.14", "2.5.29.31", "2.5.29.46", "2.5.29.20", "2.5.29.27", "2.5.29.28",
        "2.5.29.21", "2.5.29.29", "1.3.6.1.5.5.7.1.1", "1.2.840.10045.2.1", "1.2.840.113549.1.1.1",
        "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.10",
        "1.3.101.112", "1.3.101.113", "1.2.840.10040.4.1", "1.2.840.10040.4.3", "1.2.156.10197.1.301",
        "1.2.156.10197.1.501", "1.2.156.10197.1.401", "1.2.840.10045.3.1.7", "1.3.132.0.34",
        "1.2.840.113549.1.7.1", "1.2.840.113549.1.7.2", "1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4",
        "1.2.840.113549.1.9.5", "1.3.6.1.5.5.7.48.1.1", "1.3.6.1.5.5.7.48.1.2", "1.3.6.1.5.5.7.48.1.5",
        "1.3.6.1.5.5.7.3.9", "2.5.4.3", "2.5.4.6", "1.2.840.113549.1.9.1", "2.16.840.1.101.3.4.2.1",
        "2.16.840.1.101.3.4.2.3", "1.3.14.3.2.26", "1.2.3.4.5.6.7.8.9",
    )
) + (b"", b"\x80", b"\x2a\x86", b"\x2a\x80\x01", b"\xff" * 12)

BYTE_OPS = ("flip", "set", "insert", "delete", "truncate", "length", "retag")
# Damage that keeps every enclosing length right: it gets past the DER
# parsers to the checks behind them, so it is drawn three times as often.
STRUCTURE_OPS = ("swap", "duplicate", "drop", "graft", "integer", "time", "oid", "boolean", "bitstring")
OPS = BYTE_OPS + STRUCTURE_OPS * 3

# One to three damages, drawn as one byte string (each Hypothesis draw has
# a cost of its own, larger than a small example's): per damage 18 bytes,
# an operation, two numbers that pick places, and up to 8 bytes to use.
DAMAGE_SIZE = 18
damages = st.binary(min_size=DAMAGE_SIZE, max_size=3 * DAMAGE_SIZE)


def decode_damages(raw: bytes) -> list[tuple[str, int, int, bytes]]:
    out = []
    for i in range(0, len(raw) - DAMAGE_SIZE + 1, DAMAGE_SIZE):
        chunk = raw[i:i + DAMAGE_SIZE]
        out.append((OPS[chunk[0] % len(OPS)], int.from_bytes(chunk[1:5], "big"), int.from_bytes(chunk[5:9], "big"),
                    chunk[10:11 + chunk[9] % 8]))
    return out


class Case:
    """One example's choices, from two draws: the damages, and one number
    that every choice takes its digits from (zero, where Hypothesis shrinks
    to, picks the first option of each)."""

    def __init__(self, data) -> None:
        self._data = data
        self.damages = decode_damages(data.draw(damages, label="damages"))
        self._number = data.draw(st.integers(0, 2**64 - 1), label="choices")

    def pick(self, options):
        options = list(options)
        self._number, i = divmod(self._number, len(options))
        chosen = options[i]
        note(f"picked {chosen if not isinstance(chosen, bytes) else f'<{len(chosen)} bytes>'!r}")
        return chosen

    def flag(self) -> bool:
        return self.pick((False, True))

    def more_damages(self) -> list[tuple[str, int, int, bytes]]:
        return decode_damages(self._data.draw(damages, label="more damages"))


def _pick(nodes: list[Node], a: int, tags: tuple[int, ...] | None = None) -> int | None:
    chosen = [i for i, n in enumerate(nodes) if tags is None or n.tag in tags]
    return chosen[a % len(chosen)] if chosen else None


def apply_one(data: bytes, op: str, a: int, b: int, blob: bytes, donors: tuple[bytes, ...]) -> bytes:
    if not data:
        return blob
    pos = a % len(data)
    if op == "flip":
        return data[:pos] + bytes([data[pos] ^ (1 << (b % 8))]) + data[pos + 1:]
    if op == "set":
        return data[:pos] + blob[:1] + data[pos + 1:]
    if op == "insert":
        return data[:pos] + blob + data[pos:]
    if op == "delete":
        return data[:pos] + data[pos + 1 + b % 8:]
    if op == "truncate":
        return data[:pos]
    nodes = walk(data)
    if not nodes:
        return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]
    if op == "length":  # the length field alone: enclosing lengths now disagree
        n = nodes[a % len(nodes)]
        size = n.end - n.body
        field = (_length(size + 1), _length(max(size - 1, 0)), b"\x00", b"\x80", b"\x82" + size.to_bytes(2, "big"),
                 b"\x84\xff\xff\xff\xff", b"\x85\x00\x00\x00\x00\x01", blob[:1])[b % 8]
        return data[:n.start + 1] + field + data[n.body:]
    if op == "swap":  # two TLVs of one parent change places: enclosing lengths still hold
        i = a % len(nodes)
        siblings = [j for j, m in enumerate(nodes) if m.parent == nodes[i].parent and j != i]
        if not siblings:
            return replace(data, nodes, i, data[nodes[i].start:nodes[i].end] * 2)
        j = siblings[b % len(siblings)]
        x, y = sorted((nodes[i], nodes[j]), key=lambda n: n.start)
        return data[:x.start] + data[y.start:y.end] + data[x.end:y.start] + data[x.start:x.end] + data[y.end:]
    if op == "duplicate":  # a repeated extension, attribute, certificate, response ...
        i = a % len(nodes)
        return replace(data, nodes, i, data[nodes[i].start:nodes[i].end] * 2)
    if op == "drop":
        return replace(data, nodes, a % len(nodes), b"")
    if op == "graft":  # a TLV from another input of this PKI in its place
        donor = donors[b % len(donors)] if donors else data
        dnodes = walk(donor)
        d = dnodes[(b >> 8) % len(dnodes)]
        return replace(data, nodes, a % len(nodes), donor[d.start:d.end])
    if op == "retag":
        n = nodes[a % len(nodes)]
        tag = (0x30, 0x31, 0x04, 0x03, 0x02, 0x05, 0x06, 0x0C, 0x13, 0x16, 0x17, 0x18, 0xA0, 0xA3, 0x80, blob[0])[b % 16]
        return data[:n.start] + bytes([tag]) + data[n.start + 1:]
    values = {
        "integer": ((0x02, 0x0A), INTERESTING_INTEGERS),
        "time": ((0x17, 0x18), INTERESTING_TIMES),
        "oid": ((0x06,), INTERESTING_OIDS),
        "boolean": ((0x01,), (b"", b"\x00", b"\x01", b"\xff", b"\xff\xff")),
        "bitstring": ((0x03,), (b"", b"\x00", b"\x07\x80", b"\x08\xff", b"\x00" + blob, b"\x01\x01\xfe", b"\x00\xff\xff")),
    }
    tags, choices = values[op]
    i = _pick(nodes, a, tags)
    if i is None:
        return data[:pos] + blob[:1] + data[pos + 1:]
    tag = data[nodes[i].start]
    return replace(data, nodes, i, bytes([tag]) + _length(len(choices[b % len(choices)])) + choices[b % len(choices)])


def mutate(data: bytes, ops, donors: tuple[bytes, ...] = ()) -> bytes:
    for op, a, b, blob in ops:
        data = apply_one(data, op, a, b, blob, donors)
    return data


def sign(key: ec.EllipticCurvePrivateKey, tbs: bytes) -> bytes:
    # Deterministic (RFC 6979), so that an example gives the same bytes on
    # every run and a failure replays.
    return key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def resign(signed_der: bytes, key, ops, donors=()) -> bytes:
    """A certificate or CRL whose to-be-signed part is damaged, then signed
    again by ``key`` (the signature algorithm left as it was)."""
    tbs, alg, _ = pb.split(signed_der)[:3]
    new_tbs = mutate(tbs, ops, donors)
    return pb.tlv(0x30, new_tbs + alg + pb.tlv(0x03, b"\x00" + sign(key, new_tbs)))


def resign_ocsp(response_der: bytes, key, ops, donors=()) -> bytes:
    """An OCSP response whose tbsResponseData is damaged and signed again."""
    status, wrapper = pb.split(response_der)
    oid, octets = pb.split(pb.split(wrapper)[0])
    _, start, end = pb._read(octets, 0)
    tbs, alg, _, *rest = pb.split(octets[start:end])
    new_tbs = mutate(tbs, ops, donors)
    basic = pb.tlv(0x30, new_tbs + alg + pb.tlv(0x03, b"\x00" + sign(key, new_tbs)) + b"".join(rest))
    return pb.tlv(0x30, status + pb.tlv(0xA0, pb.tlv(0x30, oid + pb.tlv(0x04, basic))))


def resign_cms(cms_der: bytes, key, ops, donors=()) -> bytes:
    """A SignedData whose first SignerInfo's signed attributes are damaged
    and signed again by the signer's key (RFC 5652 5.4: over the SET OF).
    ``key``: an ECDSA key, or a function that signs."""
    attrs, attrs_node, sig_node = _signer_info_nodes(cms_der)
    new_attrs = mutate(attrs, ops, donors)
    signer = key if callable(key) else (lambda message: sign(key, message))
    new_signature = pb.tlv(0x04, signer(b"\x31" + new_attrs[1:]))
    # The signature comes after the attributes: replacing it first leaves
    # the attributes' node where it was.
    out = replace(cms_der, walk(cms_der), sig_node, new_signature)
    return replace(out, walk(out), attrs_node, new_attrs)


@functools.lru_cache(maxsize=8)
def _signer_info_nodes(cms_der: bytes) -> tuple[bytes, int, int]:
    """The first SignerInfo's signed attributes (DER) and the indexes of
    their node and of the signature's node in ``walk(cms_der)``."""
    si = asn1_cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
    attrs, signature = si["signed_attrs"].dump(), si["signature"].dump()
    nodes = walk(cms_der)

    def index(blob: bytes) -> int:
        at = cms_der.index(blob)
        return next(i for i, n in enumerate(nodes) if n.start == at and n.end - n.start == len(blob))

    return attrs, index(attrs), index(signature)


def as_pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    import base64

    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN " + label.encode() + b"-----\n" + lines + b"\n-----END " + label.encode() + b"-----\n"


# --- the base PKI, made once -------------------------------------------------------


@dataclass
class World:
    bridge: pb.CA
    root: pb.CA  # member root, cross-certified by the bridge
    issuing: pb.CA
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: bytes
    cross: bytes
    issuing_cert: bytes
    bundle: bytes  # certs-only PKCS#7: cross-certificate and issuing CA
    crls: dict[str, bytes]  # by signer: bridge, root, issuing
    ocsp: bytes  # the leaf's status, signed by the issuing CA
    cms: bytes  # attached SignedData by the leaf (cryptography's builder)
    cms_detached: bytes
    raw_signature: bytes  # ECDSA over DATA by the leaf's key
    policy: str  # the member's medium policy, the leaf's
    bridge_policy: str

    @property
    def donors(self) -> tuple[bytes, ...]:
        return (self.leaf, self.cross, self.issuing_cert, self.bridge.der, self.ocsp, self.cms, *self.crls.values())

    def verifier(self, *, anchors=None, untrusted=None, crls=(), ocsp_responses=()) -> Verifier:
        """A new Verifier. The inputs left undamaged go in parsed (Verifier
        takes parsed objects too): parsing them again in every example
        would only slow the run, and the damaged one goes in as bytes."""
        certs, parsed_crls, responses = _parsed()
        return Verifier(
            anchors=[certs.get(a, a) for a in anchors] if anchors is not None else [certs[self.bridge.der]],
            untrusted=[certs.get(u, u) for u in untrusted] if untrusted is not None
            else [certs[self.cross], certs[self.issuing_cert]],
            crls=[parsed_crls.get(c, c) for c in crls],
            ocsp_responses=[responses.get(o, o) for o in ocsp_responses],
        )


@functools.cache
def world() -> World:
    fed = pb.federation(members=(("A", "Guangdong"),))
    member = fed.members["A"]
    leaf_key = pb.new_key()
    medium = member.policies[0]
    leaf = pb.leaf(
        member.issuing, pb.name("A signer", "Guangdong"), key=leaf_key, policies=(medium,),
        san=[x509.RFC822Name("signer@a.example"), x509.DNSName("signer.a.example")],
        extra=[(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)],
    )
    cross = fed.cross["A"]
    issuing_cert = member.issuing.cert
    crls = {
        "bridge": pb.der(pb.crl(fed.bridge, [0x0BAD])),
        "root": pb.der(pb.crl(member.root, [0x0BAD])),
        "issuing": pb.der(pb.crl(member.issuing, [0x0BAD, 0x0BEEF])),
    }
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(cert=leaf, issuer=issuing_cert, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
                      this_update=AT - dt.timedelta(hours=1), next_update=AT + dt.timedelta(hours=12),
                      revocation_time=None, revocation_reason=None)
        .responder_id(ocsp.OCSPResponderEncoding.NAME, issuing_cert)
        .add_extension(x509.OCSPNonce(b"\x01" * 16), critical=False)
        .sign(member.issuing.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )

    def signed(detached: bool) -> bytes:
        b = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(leaf, leaf_key, hashes.SHA256())
        b = b.add_certificate(issuing_cert)
        options = [pkcs7.PKCS7Options.Binary] + ([pkcs7.PKCS7Options.DetachedSignature] if detached else [])
        return b.sign(serialization.Encoding.DER, options)

    return World(
        bridge=fed.bridge, root=member.root, issuing=member.issuing, leaf_key=leaf_key, leaf=pb.der(leaf),
        cross=pb.der(cross), issuing_cert=pb.der(issuing_cert),
        bundle=pkcs7.serialize_certificates([cross, issuing_cert], serialization.Encoding.DER),
        crls=crls, ocsp=response, cms=signed(False), cms_detached=signed(True),
        raw_signature=leaf_key.sign(DATA, ec.ECDSA(hashes.SHA256())),
        policy=medium, bridge_policy=pb.BRIDGE_MEDIUM,
    )


@functools.cache
def _parsed() -> tuple[dict, dict, dict]:
    """The undamaged inputs, parsed once, by their bytes: certificates,
    CRLs, OCSP responses. (One table per kind: damage can turn an OCSP
    response into a certificate's exact bytes, by grafting.)"""
    w = world()
    certs = {d: load_certificate(d) for d in (w.bridge.der, w.cross, w.issuing_cert, w.leaf)}
    crls = {d: load_crls(d)[0] for d in w.crls.values()}
    return certs, crls, {w.ocsp: load_ocsp_responses(w.ocsp)[0]}


# --- what a returned result must look like -----------------------------------------


def check_chain_result(r) -> None:
    assert isinstance(r, VerificationResult), type(r)
    assert isinstance(r.valid, bool)
    assert (r.error is None) == r.valid, r
    if r.error is not None:
        assert isinstance(r.error.code, str) and r.error.code
    d = r.to_dict()
    assert d["valid"] is r.valid
    json.dumps(d)


def check_signature_result(r) -> None:
    assert isinstance(r, SignatureResult), type(r)
    assert isinstance(r.valid, bool)
    assert (r.error is None) == r.valid, r
    if r.valid:
        assert r.chain is not None and r.chain.valid
    if r.chain is not None:
        check_chain_result(r.chain)
    d = r.to_dict()
    assert d["valid"] is r.valid
    json.dumps(d)


# Escapes found in files this test's author may not change, each reproduced
# by an xfail test below (strict: it fails loudly once fixed, and then the
# entry goes): (file under pki/, exception class name, words of its message)
# -> that test's name. Until then the fuzzing counts them and goes on
# looking for others.
KNOWN_ESCAPES: dict[tuple[str, str, str], str] = {}


def known_escape(exc: BaseException) -> str | None:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/pki/" in f.filename.replace("\\", "/")]
    if not frames:
        return None
    for (file, kind, words), name in KNOWN_ESCAPES.items():
        if Path(frames[-1].filename).name == file and type(exc).__name__ == kind and words in str(exc):
            return name
    return None


def run(name: str, call, check) -> None:
    """The property: InputError, or a well-formed result. Anything else
    propagates, and Hypothesis reports the smallest example that raises it.
    Counted here, where a damaged input is really fed (Hypothesis also
    starts examples it abandons while drawing)."""
    count(name)
    try:
        result = call()
    except InputError:
        outcome(name, "input_error")
        return
    except Exception as exc:
        known = known_escape(exc) if name != "regression" else None
        if known is None:
            raise
        outcome(name, f"known escape: {known}")
        return
    check(result)
    outcome(name, "valid" if result.valid else result.error.code)


def options(case: Case, w: World) -> dict:
    """verify's keywords."""
    return {
        "at": case.pick([AT, AT + dt.timedelta(days=4000), "2025-06-01T00:00:00.5Z"]),
        "policies": case.pick([None, [w.bridge_policy], [w.policy], ["2.5.29.32.0"]]),
        "explicit_policy": case.flag(),
        "inhibit_policy_mapping": case.flag(),
        "inhibit_any_policy": case.flag(),
        "revocation": case.pick(["auto", "require", "off"]),
    }


def damaged(case: Case, base: bytes, key, *, resign_with=resign) -> bytes:
    """``base`` damaged by the drawn operations, signed again two times in three."""
    ops = case.damages
    note(f"damages: {ops}")
    if key is not None and case.pick(range(3)) > 0:
        out = resign_with(base, key, ops, world().donors)
    else:
        out = mutate(base, ops, world().donors)
    note(f"damaged input (hex): {out.hex()}")
    return out


def maybe_pem(case: Case, der: bytes, label: str = "CERTIFICATE") -> bytes:
    return as_pem(der, label) if case.pick(range(10)) == 0 else der


# --- the properties ----------------------------------------------------------------


def test_base_pki_is_valid():
    """The undamaged inputs verify, with CRLs and OCSP required: the damage
    below starts from inputs that reach every stage."""
    w = world()
    v = w.verifier(crls=list(w.crls.values()), ocsp_responses=[w.ocsp])
    r = v.verify(w.leaf, at=AT, revocation="require", policies=[w.bridge_policy], explicit_policy=True)
    assert r.valid, r.to_dict()
    assert [e["revocation"] for e in r.to_dict()["path"][:-1]] == ["good"] * 3
    assert len(r.path) == 4
    assert verify_cms(w.cms, w.verifier(), at=AT).valid
    assert verify_cms(w.cms_detached, w.verifier(), at="signing-time", content=DATA).valid
    assert verify_raw_signature(w.leaf, w.raw_signature, DATA, w.verifier(), at=AT).valid
    assert w.verifier(untrusted=[w.bundle]).verify(w.leaf, at=AT).valid


def test_surgery_keeps_lengths_consistent():
    """``replace`` re-encodes every enclosing length: a duplicated extension
    still parses as DER (cryptography reads it and refuses the duplicate)."""
    w = world()
    tbs = pb.split(w.leaf)[0]
    nodes = walk(tbs)
    ext = next(i for i, n in enumerate(nodes) if n.tag == 0x30 and nodes[n.parent].tag == 0x30
               and n.parent >= 0 and nodes[nodes[n.parent].parent].tag == 0xA3)
    doubled = replace(tbs, nodes, ext, tbs[nodes[ext].start:nodes[ext].end] * 2)
    cert = pb.tlv(0x30, doubled + pb.split(w.leaf)[1] + pb.tlv(0x03, b"\x00" + sign(w.issuing.key, doubled)))
    assert len(walk(cert)) == len(walk(w.leaf)) + (len(walk(tbs[nodes[ext].start:nodes[ext].end])))
    with pytest.raises(x509.DuplicateExtension):
        _ = x509.load_der_x509_certificate(cert).extensions


PLANNED["leaf"] = 1100


@fuzz_settings(PLANNED["leaf"])
@given(st.data())
def test_damaged_leaf(data):
    case = Case(data)
    w = world()
    leaf = maybe_pem(case, damaged(case, w.leaf, w.issuing.key))
    with_revocation = case.flag()
    opts = options(case, w)

    def call():
        v = w.verifier(crls=list(w.crls.values()) if with_revocation else (),
                       ocsp_responses=[w.ocsp] if with_revocation else ())
        return v.verify(leaf, **opts)

    run("leaf", call, check_chain_result)


PLANNED["ca"] = 700


@fuzz_settings(PLANNED["ca"])
@given(st.data())
def test_damaged_intermediate_or_cross_certificate(data):
    case = Case(data)
    w = world()
    which = case.pick(["issuing", "cross", "bundle"])
    if which == "issuing":
        bad = damaged(case, w.issuing_cert, w.root.key)
        untrusted = [w.cross, bad]
    elif which == "cross":
        bad = damaged(case, w.cross, w.bridge.key)
        untrusted = [bad, w.issuing_cert]
    else:
        bad = damaged(case, w.bundle, None)
        untrusted = [bad]
    per_call = case.flag()
    # The damaged CA certificate as the target too: a CA asked about itself.
    target = case.pick([w.leaf, w.leaf, bad])
    with_revocation = case.flag()
    opts = options(case, w)

    def call():
        crls = list(w.crls.values()) if with_revocation else ()
        if per_call:
            return w.verifier(untrusted=[], crls=crls).verify(target, intermediates=untrusted, **opts)
        return w.verifier(untrusted=untrusted, crls=crls).verify(target, **opts)

    run("ca", call, check_chain_result)


PLANNED["anchor"] = 500


@fuzz_settings(PLANNED["anchor"])
@given(st.data())
def test_damaged_anchor(data):
    case = Case(data)
    w = world()
    anchor = maybe_pem(case, damaged(case, w.bridge.der, w.bridge.key))
    target = case.pick([w.leaf, w.leaf, w.cross])
    opts = options(case, w)
    run("anchor", lambda: w.verifier(anchors=[anchor]).verify(target, **opts), check_chain_result)


PLANNED["crl"] = 650


@fuzz_settings(PLANNED["crl"])
@given(st.data())
def test_damaged_crl(data):
    case = Case(data)
    w = world()
    signer = case.pick(["bridge", "root", "issuing"])
    keys = {"bridge": w.bridge.key, "root": w.root.key, "issuing": w.issuing.key}
    crl = maybe_pem(case, damaged(case, w.crls[signer], keys[signer]), "X509 CRL")
    crls = [crl] + [c for name, c in w.crls.items() if name != signer]
    opts = options(case, w)
    run("crl", lambda: w.verifier(crls=crls).verify(w.leaf, **opts), check_chain_result)


PLANNED["ocsp"] = 650


@fuzz_settings(PLANNED["ocsp"])
@given(st.data())
def test_damaged_ocsp_response(data):
    case = Case(data)
    w = world()
    response = damaged(case, w.ocsp, w.issuing.key, resign_with=resign_ocsp)
    with_crls = case.flag()
    opts = options(case, w)
    crls = list(w.crls.values()) if with_crls else [w.crls["bridge"], w.crls["root"]]
    run("ocsp", lambda: w.verifier(crls=crls, ocsp_responses=[response]).verify(w.leaf, **opts), check_chain_result)


PLANNED["cms"] = 1000


@fuzz_settings(PLANNED["cms"])
@given(st.data())
def test_damaged_cms(data):
    case = Case(data)
    w = world()
    detached = case.flag()
    base = w.cms_detached if detached else w.cms
    message = damaged(case, base, w.leaf_key, resign_with=resign_cms)
    content = case.pick([None, DATA, DATA + b"!"]) if not detached else DATA
    if case.pick(range(10)) == 0:
        message = as_pem(message, "CMS")
    at = case.pick([AT, None, "signing-time", "2025-06-01T00:00:00Z"])
    opts = options(case, w)
    del opts["at"]

    # The signer's chain with CRLs now and then: revocation is the other
    # tests' subject. One Verifier for all examples, as the service keeps
    # one: the message is what is damaged here, and the chain's signatures,
    # checked once, would otherwise cost more than the rest of an example.
    with_crls = case.pick(range(4)) == 0

    def call():
        return verify_cms(message, reused_verifier(with_crls), content=content, at=at, **opts)

    run("cms", call, check_signature_result)


PLANNED["raw"] = 300


@fuzz_settings(PLANNED["raw"])
@given(st.data())
def test_damaged_raw_signature(data):
    case = Case(data)
    w = world()
    what = case.pick(["certificate", "signature", "both"])
    cert = damaged(case, w.leaf, w.issuing.key) if what != "signature" else w.leaf
    signature = mutate(w.raw_signature, case.more_damages()) if what != "certificate" else w.raw_signature
    algorithm = case.pick([None, "ecdsa-with-SHA256", "ES256", "ES384", "ed25519", "rsa-sha256",
                           "PS256", "sm2", "dsa-with-sha256", "1.2.3.4", "1.2.840.10045.4.3.2"])
    at = case.pick([AT, None, "2025-06-01T00:00:00Z"])

    def call():
        return verify_raw_signature(cert, signature, DATA, reused_verifier(False), algorithm=algorithm, at=at,
                                    intermediates=[w.issuing_cert])

    run("raw", call, check_signature_result)


PLANNED["cache"] = 400


@fuzz_settings(PLANNED["cache"])
@given(st.data())
def test_damaged_inputs_through_one_long_lived_verifier(data):
    """The service keeps one Verifier per anchor: damaged leaves and messages
    pass through the same caches (parse cache, known chains, results) as the
    good ones, which must keep verifying."""
    case = Case(data)
    w = world()
    v = shared_verifier()
    if case.flag():
        message = damaged(case, w.cms, w.leaf_key, resign_with=resign_cms)
        run("cache", lambda: verify_cms(message, v, at=AT), check_signature_result)
    else:
        leaf = damaged(case, w.leaf, w.issuing.key)
        run("cache", lambda: v.verify(leaf, at=AT, revocation="require"), check_chain_result)
    good = v.verify(w.leaf, at=AT, revocation="require")
    assert good.valid, good.to_dict()


@functools.cache
def reused_verifier(with_crls: bool) -> Verifier:
    """One Verifier of undamaged inputs for the tests that damage messages
    and signatures only (CMS, raw, SM2)."""
    w = world()
    return w.verifier(crls=list(w.crls.values()) if with_crls else ())


@functools.cache
def shared_verifier() -> Verifier:
    w = world()
    return w.verifier(crls=list(w.crls.values()), ocsp_responses=[w.ocsp])


@functools.cache
def sm2_world():
    """An SM2 signer under the ECDSA issuing CA: its certificate (the leaf's
    TBSCertificate with an SM2 key put in, signed again), a raw SM2-with-SM3
    signature and a CMS SignedData (SM3 digest, SM2 signature) by it."""
    from asn1crypto import x509 as asn1_x509

    from bridge.sm2_keys import Sm2PrivateKey

    w = world()
    key = Sm2PrivateKey.generate()
    spki = key.public_key_spki_der()
    tbs = pb.split(w.leaf)[0]
    nodes = walk(tbs)
    fields = [i for i, n in enumerate(nodes) if n.parent == 0]
    spki_node = fields[6]  # version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    assert tbs[nodes[spki_node].start:nodes[spki_node].end].startswith(b"\x30\x59\x30\x13")
    new_tbs = replace(tbs, nodes, spki_node, spki)
    cert = pb.tlv(0x30, new_tbs + pb.split(w.leaf)[1] + pb.tlv(0x03, b"\x00" + sign(w.issuing.key, new_tbs)))
    h = hashes.Hash(hashes.SM3())
    h.update(DATA)
    attrs = asn1_cms.CMSAttributes([
        {"type": "content_type", "values": ["data"]},
        {"type": "message_digest", "values": [h.finalize()]},
    ])
    signer_info = asn1_cms.SignerInfo({
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": asn1_x509.Certificate.load(cert).issuer,
                                              "serial_number": asn1_x509.Certificate.load(cert).serial_number}},
        "digest_algorithm": {"algorithm": "1.2.156.10197.1.401"},
        "signed_attrs": attrs,
        "signature_algorithm": {"algorithm": "1.2.156.10197.1.501"},
        "signature": key.sign(attrs.dump()),
    })
    signed = asn1_cms.SignedData({
        "version": "v1", "digest_algorithms": [{"algorithm": "1.2.156.10197.1.401"}],
        "encap_content_info": {"content_type": "data", "content": DATA},
        "certificates": [asn1_x509.Certificate.load(cert)], "signer_infos": [signer_info],
    })
    cms = asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return key, cert, key.sign(DATA), cms


def _sm2_available() -> bool:
    from pki.sm2 import sm2_available

    return sm2_available()


@pytest.mark.skipif(not _sm2_available(), reason="the system libcrypto cannot do SM2/SM3")
def test_base_sm2_inputs_are_valid():
    w = world()
    _, cert, signature, cms = sm2_world()
    assert verify_raw_signature(cert, signature, DATA, w.verifier(), at=AT).valid
    r = verify_cms(cms, w.verifier(), at=AT)
    assert r.valid, r.to_dict()
    assert r.algorithm and "sm2" in r.algorithm.lower()


SM2_EXAMPLES = 300
if _sm2_available():  # else skipped, and not owed to the total
    PLANNED["sm2"] = SM2_EXAMPLES


@pytest.mark.skipif(not _sm2_available(), reason="the system libcrypto cannot do SM2/SM3")
@fuzz_settings(SM2_EXAMPLES)
@given(st.data())
def test_damaged_sm2(data):
    """SM2 goes through the system libcrypto by ctypes (pki/sm2.py): damaged
    keys, signatures and messages must come back as answers, not crashes."""
    case = Case(data)
    w = world()
    key, cert, signature, cms = sm2_world()
    what = case.pick(["certificate", "signature", "cms"])
    if what == "cms":
        message = damaged(case, cms, key.sign, resign_with=resign_cms)
        run("sm2", lambda: verify_cms(message, reused_verifier(False), at=AT), check_signature_result)
        return
    bad_cert = damaged(case, cert, w.issuing.key) if what == "certificate" else cert
    bad_signature = mutate(signature, case.more_damages()) if what == "signature" else signature
    algorithm = case.pick([None, "sm2", "ecdsa-with-SHA256"])
    run("sm2", lambda: verify_raw_signature(bad_cert, bad_signature, DATA, reused_verifier(False), algorithm=algorithm,
                                            at=AT),
        check_signature_result)


# --- the command line ----------------------------------------------------------------


@functools.cache
def cli_files() -> Path:
    w = world()
    home = Path(tempfile.mkdtemp(prefix="bridgeca-fuzz-"))
    for name, blob in {"leaf.der": w.leaf, "anchor.der": w.bridge.der, "cross.der": w.cross,
                       "issuing.der": w.issuing_cert, "ocsp.der": w.ocsp,
                       **{f"crl-{k}.der": v for k, v in w.crls.items()}}.items():
        (home / name).write_bytes(blob)
    return home


PLANNED["cli"] = 50


@fuzz_settings(PLANNED["cli"])
@given(st.data())
def test_cli_verify_never_exits_3(data):
    case = Case(data)
    from api.cli import main

    home = cli_files()
    which = case.pick(["leaf.der", "anchor.der", "cross.der", "issuing.der", "ocsp.der",
                                       "crl-issuing.der", "crl-bridge.der"])
    bad = damaged(case, (home / which).read_bytes(), None)
    digest = hashlib.sha256(bad).hexdigest()[:16]
    damaged_file = home / f"damaged-{digest}-{which}"
    damaged_file.write_bytes(bad)
    files = {name: str(home / name) for name in ("leaf.der", "anchor.der", "cross.der", "issuing.der", "ocsp.der",
                                                 "crl-issuing.der", "crl-bridge.der")}
    files[which] = str(damaged_file)
    crl_root = home / "crl-root.der"
    argv = ["verify", files["leaf.der"], "--anchor", files["anchor.der"], "--untrusted", files["cross.der"],
            "--untrusted", files["issuing.der"], "--crl", files["crl-issuing.der"], "--crl", files["crl-bridge.der"],
            "--crl", str(crl_root), "--ocsp", files["ocsp.der"], "--at", "2025-06-01T00:00:00Z", "--json"]
    if case.flag():
        argv += ["--revocation", "require"]
    count("cli")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    damaged_file.unlink()
    note(f"argv: {argv}\nstderr: {err.getvalue()}")
    assert code in (0, 1, 2), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("bridgeca: ")
    else:
        assert json.loads(out.getvalue())["valid"] is (code == 0)


def test_crl_entry_with_a_duplicate_extension():
    """Found by test_damaged_crl (fixed in pki/crl.py since): a CRL entry
    carrying crlReason twice made cryptography raise DuplicateExtension (not
    a ValueError) from ``revoked.extensions``, out of ``Verifier(crls=...)``.
    InputError, or the CRL kept with a defect and a well-formed result."""
    w = world()
    crl = w.crls["issuing"]
    tbs = pb.split(crl)[0]
    nodes = walk(tbs)
    reason = next(i for i, n in enumerate(nodes) if tbs[n.start:n.end].startswith(bytes.fromhex("300a0603551d15")))
    doubled = replace(tbs, nodes, reason, tbs[nodes[reason].start:nodes[reason].end] * 2)
    bad = pb.tlv(0x30, doubled + pb.split(crl)[1] + pb.tlv(0x03, b"\x00" + sign(w.issuing.key, doubled)))
    crls = [bad, w.crls["bridge"], w.crls["root"]]
    run("regression", lambda: w.verifier(crls=crls).verify(w.leaf, at=AT, revocation="require"), check_chain_result)


def test_bit_string_attribute_in_issuer_name():
    """Found by test_damaged_anchor (BRIDGECA_FUZZ_RANDOM=1), now an
    InputError (parse_certificate catches cryptography's TypeError): the anchor's
    issuer organizationName retagged from UTF8String (0x0C) to BIT STRING
    (0x03). cryptography parses the certificate, then ``cert.issuer``
    raises "TypeError: oid must be X500_UNIQUE_IDENTIFIER for BitString
    type" from pki/certificate.py (Certificate.issuer, reached from
    parse_certificate through issuer_key), out of ``Verifier(...)``."""
    w = world()
    der = w.bridge.der
    tbs = pb.split(der)[0]
    offset = der.index(tbs)
    nodes = walk(der)
    # The first organizationName value: the issuer's (issuer comes before subject).
    o_oid = bytes.fromhex("060355040a")
    at = der.index(o_oid, offset) + len(o_oid)
    assert der[at] == 0x0C and any(n.start == at for n in nodes)
    bad = der[:at] + b"\x03" + der[at + 1:]
    run("regression", lambda: Verifier([bad]).verify(w.leaf, at=AT), check_chain_result)
    with pytest.raises(InputError):
        Verifier([bad])


def test_examples_total():
    """A full run of this module tries at least 5,000 damaged inputs (issue
    11). Skipped when only some of the tests above were selected."""
    if not set(PLANNED) <= set(RUN):
        pytest.skip(f"only {sorted(RUN)} of {sorted(PLANNED)} ran")
    total = sum(RUN[name] for name in PLANNED)
    overall: dict[str, int] = {}
    print(f"\n{total} damaged inputs: {RUN}")
    for name, table in OUTCOMES.items():
        print(f"  {name:<7} {dict(sorted(table.items(), key=lambda kv: -kv[1]))}")
        for what, n in table.items():
            overall[what] = overall.get(what, 0) + n
    assert total >= 5000 * min(SCALE, 1), RUN
    # The damage must reach past the parsers: many inputs get a result, and
    # the results fail for many different reasons (re-signing at work).
    results = sum(n for what, n in overall.items() if what != "input_error")
    assert results >= 0.25 * sum(overall.values()), overall
    assert {"valid", "signature_invalid", "no_path", "revocation_unknown", "content_mismatch"} <= set(overall), overall
    assert len(overall) >= 10, overall
