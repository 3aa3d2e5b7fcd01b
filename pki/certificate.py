"""Certificates parsed once into immutable objects.

Everything path building and validation read is extracted here, once, so the
hot path never re-parses. cryptography does the parsing (it is an order of
magnitude faster than a pure-Python parser); asn1crypto decodes the one
extension cryptography leaves opaque (policyMappings) and reads PKCS#7
bundles. Certificates whose key cryptography refuses to parse (a DSA key that
inherits its parameters, PKITS 4.1.5; SM2 keys) are parsed with a placeholder
key: the real SubjectPublicKeyInfo is kept byte for byte and interpreted by
the algorithm registry. What parsing learns across certificates is kept in
a ``ParseCache`` (pki/parse_cache.py); reading PEM/DER/PKCS#7 inputs is
pki/loading.py.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from mypy_extensions import mypyc_attr

from . import der as derlib
from .errors import InputError
from .names import NameKey, name_key, render
from .parse_cache import ParseCache

ANY_POLICY = "2.5.29.32.0"
POLICY_MAPPINGS_OID = "2.5.29.33"
OCSP_NOCHECK_OID = "1.3.6.1.5.5.7.48.1.5"

# Extensions whose criticality we honour (RFC 5280 6.1.3/6.1.4 process them, or
# they only name things). A critical extension outside this set fails 6.1.4 (o).
HANDLED_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS.dotted_string,
        ExtensionOID.KEY_USAGE.dotted_string,
        ExtensionOID.EXTENDED_KEY_USAGE.dotted_string,
        ExtensionOID.CERTIFICATE_POLICIES.dotted_string,
        POLICY_MAPPINGS_OID,
        ExtensionOID.POLICY_CONSTRAINTS.dotted_string,
        ExtensionOID.INHIBIT_ANY_POLICY.dotted_string,
        ExtensionOID.NAME_CONSTRAINTS.dotted_string,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME.dotted_string,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
        ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string,
        ExtensionOID.FRESHEST_CRL.dotted_string,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string,
        ExtensionOID.SUBJECT_INFORMATION_ACCESS.dotted_string,
        OCSP_NOCHECK_OID,
    }
)

# An Ed25519 SubjectPublicKeyInfo used only to let cryptography parse the other
# fields of a certificate whose real key it cannot load.
_PLACEHOLDER_SPKI = bytes.fromhex("302a300506032b6570032100") + bytes(32)


class KeyUsage(NamedTuple):
    digital_signature: bool = False
    content_commitment: bool = False
    key_encipherment: bool = False
    data_encipherment: bool = False
    key_agreement: bool = False
    key_cert_sign: bool = False
    crl_sign: bool = False



@mypyc_attr(native_class=False)  # built from a dict of fields (_build)
@dataclass(frozen=True, eq=False)
class Certificate:
    """One certificate, parsed once. Names and the public key are derived on
    first use (a leaf's subject is often never needed) and then kept."""

    der: bytes
    sha256: bytes
    tbs: bytes
    signature_algorithm: bytes  # DER AlgorithmIdentifier
    signature: bytes
    spki: bytes
    subject_der: bytes
    issuer_der: bytes
    version: int
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    subject_key_id: bytes | None = None
    authority_key_id: bytes | None = None
    is_ca: bool | None = None  # None: no basicConstraints
    path_length: int | None = None
    key_usage: KeyUsage | None = None
    extended_key_usage: tuple[str, ...] | None = None
    policies: tuple[str, ...] | None = None  # None: no certificatePolicies
    policy_information: tuple[x509.PolicyInformation, ...] = ()
    policy_mappings: tuple[tuple[str, str], ...] | None = None
    require_explicit_policy: int | None = None
    inhibit_policy_mapping: int | None = None
    inhibit_any_policy: int | None = None
    name_constraints: x509.NameConstraints | None = None
    subject_alt_names: tuple[x509.GeneralName, ...] | None = None
    crl_distribution_points: tuple[x509.DistributionPoint, ...] = ()
    freshest_crl: tuple[x509.DistributionPoint, ...] = ()
    ocsp_urls: tuple[str, ...] = ()
    ca_issuer_urls: tuple[str, ...] = ()
    ocsp_no_check: bool = False
    unhandled_critical: tuple[str, ...] = ()
    # Every extension marked critical, handled or not: the strict profile's
    # section-4 rules are about criticality (pki/profile.py).
    critical_extensions: frozenset[str] = frozenset()
    defect: str | None = None  # parses as DER but breaks RFC 5280 (duplicate extension, ...)
    # Always set by parse_certificate (the default only satisfies the dataclass).
    _x509: x509.Certificate = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    _names: ParseCache | None = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def _build(cls, state: dict) -> "Certificate":
        """Construct from a dict of fields (taken over, not copied) without
        the frozen dataclass's per-field setattr, the largest single cost of
        parsing a leaf; the instance stays frozen. Fields left out read
        their default from the class attribute the dataclass keeps for it."""
        obj = object.__new__(cls)
        if "_cache" not in state:
            state["_cache"] = {}
        object.__setattr__(obj, "__dict__", state)
        return obj

    def _derived(self, what: str, make):
        cache = self._cache
        value = cache.get(what, cache)
        if value is cache:
            value = make()
            cache[what] = value
        return value

    @property
    def subject(self) -> x509.Name:
        return self._derived("subject", self._decode_subject)

    def _decode_subject(self) -> x509.Name:
        try:
            return self._x509.subject
        except (ValueError, TypeError) as exc:
            # The structure was checked at parse time; a value cryptography
            # still refuses (an invalid PrintableString character, a BIT
            # STRING where a DirectoryString belongs) is shown as an empty
            # name rather than breaking a report, and remembered, so that a
            # check that needs the name (name constraints, the blocklist)
            # refuses it instead of seeing an empty one.
            self._cache["subject_defect"] = f"the subject cannot be decoded: {exc}"
            return x509.Name([])

    @property
    def subject_defect(self) -> str | None:
        """Why the subject could not be decoded, if it could not."""
        self.subject  # noqa: B018 - decodes it once
        return self._cache.get("subject_defect")

    @property
    def issuer(self) -> x509.Name:
        return self._derived("issuer", self._read_issuer)

    def _read_issuer(self) -> x509.Name:
        return self._x509.issuer

    # The name keys are read several times per verification: the cache is
    # looked at here, without _derived's call.
    @property
    def subject_key(self) -> NameKey:
        key = self._cache.get("subject_key")
        if key is None:
            key = self._cache["subject_key"] = self._name_key(self.subject_der, "subject")
        return key

    @property
    def issuer_key(self) -> NameKey:
        key = self._cache.get("issuer_key")
        if key is None:
            key = self._cache["issuer_key"] = self._name_key(self.issuer_der, "issuer")
        return key

    def _name_key(self, der: bytes, which: str) -> NameKey:
        if self._names is not None:
            return self._names.key(der, None, functools.partial(getattr, self, which))
        return name_key(getattr(self, which))

    @property
    def public_key_oid(self) -> str:
        return self._derived("public_key_oid", self._read_key_oid)

    def _read_key_oid(self) -> str:
        return derlib.spki_parts(self.spki)[0]

    @property
    def subject_text(self) -> str:
        return self._derived("subject_text", self._render_subject)

    def _render_subject(self) -> str:
        if self._names is not None:
            text = self._names.render(self.subject_der)
            if text is not None:
                return text
        return render(self.subject)

    @property
    def issuer_text(self) -> str:
        # Leaves of one CA share their issuer: rendered once per ParseCache.
        if self._names is not None:
            return self._names.text(self.issuer_der, self._render_issuer)
        return self._render_issuer()

    def _render_issuer(self) -> str:
        return render(self.issuer)

    @property
    def is_self_issued(self) -> bool:
        return self.subject_der == self.issuer_der or self.subject_key == self.issuer_key

    @property
    def identity(self) -> tuple[NameKey, bytes]:
        """(subject, key): cross-certificates of one CA share it, so loops are
        found by identity, not by certificate bytes."""
        return (self.subject_key, self.spki)

    def summary(self) -> dict:
        """The result object's path entry (a fresh dict each call; the
        rendering of the names is done once)."""
        return dict(self._derived("summary", self._summary))

    def path_entry(self) -> dict:
        """``summary()`` with ``"revocation": "not_checked"``: a result's path
        entry before what revocation checking found (a fresh dict each call,
        copied from one made once: a CA's entry is in every answer over it)."""
        entry = self._cache.get("path_entry")
        if entry is None:
            # Made directly, not from summary(): a new leaf's entry is made once, on the hot path.
            entry = self._cache["path_entry"] = {**self._summary(), "revocation": "not_checked"}
        return entry.copy()

    def _summary(self) -> dict:
        return {
            "subject": self.subject_text,
            "issuer": self.issuer_text,
            "serial": format(self.serial, "x") if self.serial >= 0 else "-" + format(-self.serial, "x"),
            "sha256": self.sha256.hex(),
        }

    def __repr__(self) -> str:
        return f"<Certificate subject={self.subject_text!r} serial={self.serial:x}>"


def parse_certificate(der: bytes, names: ParseCache | None = None, sha256: bytes | None = None) -> Certificate:
    """Parse one DER certificate; InputError when it is not one. ``sha256``:
    the digest of ``der`` when the caller has it already."""
    der = bytes(der)
    tbs, sig_alg, signature = derlib.split_signed(der)
    # split_signed checked the TBS's tag and length: its fields are walked
    # from the end of its header, without reading that header again.
    fields = derlib.children(tbs, 2 if tbs[1] < 0x80 else 2 + (tbs[1] & 0x7F), len(tbs))
    first = 1 if fields and fields[0][0] == 0xA0 else 0  # [0] version is optional
    if len(fields) < first + 6 or fields[first + 5][0] != 0x30:
        raise InputError("not a parseable X.509 certificate: TBSCertificate is incomplete")
    issuer_der = tbs[fields[first + 2][1] : fields[first + 2][3]]
    subject_der = tbs[fields[first + 4][1] : fields[first + 4][3]]
    spki_start, spki_end = fields[first + 5][1], fields[first + 5][3]
    spki = tbs[spki_start:spki_end]
    serial_field = fields[first]
    serial_first = tbs[serial_field[2]] if serial_field[2] < serial_field[3] else 0
    # cryptography warns (deprecation) about serials that are not positive;
    # silencing warnings costs more than the parse, so only for those.
    if serial_first == 0 or serial_first >= 0x80:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cert = _load(der, tbs, sig_alg, signature, spki_start, spki_end)
            return _from_cryptography(cert, der, tbs, sig_alg, signature, spki, subject_der, issuer_der, names,
                                      fields[-1] if fields[-1][0] == 0xA3 else None, sha256)
    try:  # _load's first attempt, without its call: the common case
        cert = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        cert = _load(der, tbs, sig_alg, signature, spki_start, spki_end)
    # A positive serial whose DER cryptography accepted: read from its bytes,
    # a fraction of the cost of cryptography's conversion to an int.
    serial = int.from_bytes(tbs[serial_field[2] : serial_field[3]], "big")
    return _from_cryptography(cert, der, tbs, sig_alg, signature, spki, subject_der, issuer_der, names,
                              fields[-1] if fields[-1][0] == 0xA3 else None, sha256, serial)


def _load(der: bytes, tbs: bytes, sig_alg: bytes, signature: bytes, spki_start: int, spki_end: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except x509.InvalidVersion as exc:
        raise InputError(f"not a parseable X.509 certificate: {exc}") from None
    except ValueError:
        # Retry with a placeholder key: the key is the registry's business.
        patched_tbs = tbs[:spki_start] + _PLACEHOLDER_SPKI + tbs[spki_end:]
        patched_tbs = _reencode_sequence(patched_tbs)
        bits = b"\x00" + signature
        patched = derlib.sequence(patched_tbs, sig_alg, b"\x03" + derlib.encode_length(len(bits)) + bits)
        try:
            return x509.load_der_x509_certificate(patched)
        except (ValueError, x509.InvalidVersion) as exc:
            raise InputError(f"not a parseable X.509 certificate: {exc}") from None


def _reencode_sequence(tbs_with_new_body: bytes) -> bytes:
    """Fix the outer SEQUENCE length after its contents changed size."""
    _, start, _ = _outer_header(tbs_with_new_body)
    return derlib.sequence(tbs_with_new_body[start:])


def _outer_header(data: bytes) -> tuple[int, int, int]:
    # The length field is stale, so compute the header size by hand.
    first = data[1]
    header = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[0], header, len(data)


def _from_cryptography(cert: x509.Certificate, der, tbs, sig_alg, signature, spki, subject_der, issuer_der, names,
                       extensions_field=None, sha256=None, serial=None) -> Certificate:
    decoded = None
    if names is not None and extensions_field is not None:
        decoded = _extensions_from_cache(tbs, extensions_field, cert, names)
    if decoded is None:
        decoded = _decode_extensions(cert)
    fields, unhandled, defect = decoded
    version = 1 if cert.version == x509.Version.v1 else 3
    try:
        if serial is None:
            serial = cert.serial_number
    except Exception as exc:  # pragma: no cover - cryptography parsed it
        raise InputError(f"bad serial number: {exc}") from None
    try:
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except ValueError as exc:
        raise InputError(f"not a parseable X.509 certificate: {exc}") from None
    state = fields  # a fresh dict: the extensions' fields
    state["der"] = der
    state["sha256"] = sha256 if sha256 is not None else hashlib.sha256(der).digest()
    state["tbs"] = tbs
    state["signature_algorithm"] = sig_alg
    state["signature"] = signature
    state["spki"] = spki
    state["subject_der"] = subject_der
    state["issuer_der"] = issuer_der
    state["version"] = version
    state["serial"] = serial
    state["not_before"] = not_before
    state["not_after"] = not_after
    state["unhandled_critical"] = tuple(unhandled)
    state["defect"] = defect
    state["_x509"] = cert
    state["_names"] = names
    result = Certificate._build(state)
    try:
        # Fail now, not in the middle of a search: cryptography decodes names
        # lazily. A name whose key is cached was decoded before.
        result.issuer_key  # noqa: B018
        if names is None:
            derlib.check_name(subject_der)
        elif not names.knows(subject_der):
            names.check_name(subject_der)
    except (ValueError, TypeError) as exc:  # cryptography raises TypeError for some attribute types
        raise InputError(f"not a parseable X.509 certificate: {exc}") from None
    return result


def _decode_extensions(cert: x509.Certificate) -> tuple[dict, list[str], str | None]:
    """(fields, unhandled critical OIDs, defect) from cryptography's decoding."""
    fields: dict = {}
    defect = None
    unhandled: list[str] = []
    critical: list[str] = []
    try:
        extensions = list(cert.extensions)
    except Exception as exc:  # duplicate or malformed extensions
        extensions = []
        defect = f"malformed extensions: {exc}"
    for ext in extensions:
        value = ext.value
        extractor = _EXTRACTORS.get(type(value))
        if extractor is not None:
            try:
                extractor(value, fields)
            except Exception as exc:
                defect = f"malformed {ext.oid.dotted_string} extension: {exc}"
        if ext.critical:
            oid = ext.oid.dotted_string
            critical.append(oid)
            if oid not in HANDLED_EXTENSIONS:
                unhandled.append(oid)
    fields["critical_extensions"] = frozenset(critical)
    return fields, unhandled, defect


# A non-critical subjectKeyIdentifier, the one extension that differs in
# every leaf: 30 L 06 03 551D0E 04 L' 04 L'' keyIdentifier, short lengths.
_SKI_HEAD = b"\x06\x03\x55\x1d\x0e\x04"
SUBJECT_ALT_NAME_OID = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string


def _extensions_from_cache(tbs: bytes, extensions_field, cert: x509.Certificate, cache: ParseCache):
    """The same (fields, unhandled, defect) as ``_decode_extensions``, from
    extension values decoded before (matched by their exact DER). None when
    the extensions must be decoded in full: a value not seen before, a
    duplicate, anything unexpected (the full decoding then names the defect).
    What it decodes in full, it remembers."""
    _, block_start, start, end = extensions_field
    # First, the whole block but its subjectKeyIdentifier, in one lookup: the
    # leaves of one CA differ in nothing else. The prefix fixes the walk up
    # to the cut (lengths included), so a hit is the same structure.
    at = tbs.find(_SKI_HEAD, start, end)
    if at > 0:
        ski_start = at - 2
        size = tbs[at - 1]
        ski_end = at - 2 + 2 + size
        if (tbs[ski_start] == 0x30 and 9 <= size < 0x80 and ski_end <= end and tbs[at + 6] == size - 7
                and tbs[at + 7] == 0x04 and tbs[at + 8] == size - 9):
            block = cache.extension_blocks.get((tbs[block_start:ski_start], tbs[ski_end:end]))
            if block is not None:
                fields = dict(block[0])
                fields["subject_key_id"] = tbs[at + 9 : ski_end]
                return fields, list(block[1]), None
    try:
        tag, seq_start, seq_end = derlib.read_tlv(tbs, start)
        if tag != 0x30 or seq_end != end:
            return None
        layout = derlib.children(tbs, seq_start, seq_end)
    except InputError:
        return None
    tlvs = [tbs[tlv_start:tlv_end] for _, tlv_start, _, tlv_end in layout]
    known = cache.extensions
    fields = {}
    unhandled: list[str] = []
    critical: list[str] = []
    seen: set[str] = set()
    ski_at = None
    for index, tlv in enumerate(tlvs):
        hit = known.get(tlv)
        if hit is None:
            length = len(tlv)
            if (length < 0x82 and tlv[1] == length - 2 and tlv[2:8] == _SKI_HEAD and length > 11
                    and tlv[8] == length - 9 and tlv[10] == length - 11 and tlv[9] == 0x04):
                hit = (_SKI_OID, False, (("subject_key_id", tlv[11:]),))
                ski_at = index
            else:
                hit = _subject_alt_name(tlv)
                if hit is None:
                    return _decode_and_remember(tlvs, cert, cache)
        oid = hit[0]
        if oid in seen:
            return None  # a duplicate: the full decoding reports it
        seen.add(oid)
        fields.update(hit[2])
        if hit[1]:
            critical.append(oid)
            if oid not in HANDLED_EXTENSIONS:
                unhandled.append(oid)
    # The SKI taken by its pattern above is non-critical, so the block's
    # critical set holds for every leaf that shares the rest of the block.
    fields["critical_extensions"] = frozenset(critical)
    if ski_at is not None:
        _, ski_start, _, ski_end = layout[ski_at]
        rest = {k: v for k, v in fields.items() if k != "subject_key_id"}
        cache.remember_extension_block((tbs[block_start:ski_start], tbs[ski_end:end]), (rest, tuple(unhandled)))
    return fields, unhandled, None


def _decode_and_remember(tlvs: list[bytes], cert: x509.Certificate, cache: ParseCache):
    """cryptography's decoding of every extension, each remembered by its
    DER; None when it fails (the caller's full decoding names the defect)."""
    try:
        extensions = list(cert.extensions)
    except Exception:
        return None
    if len(extensions) != len(tlvs):
        return None
    known = cache.extensions
    fields: dict = {}
    unhandled: list[str] = []
    critical: list[str] = []
    for tlv, ext in zip(tlvs, extensions, strict=True):
        hit = known.get(tlv)
        if hit is None:
            items: dict = {}
            extractor = _EXTRACTORS.get(type(ext.value))
            if extractor is not None:
                try:
                    extractor(ext.value, items)
                except Exception:
                    return None
            hit = (ext.oid.dotted_string, ext.critical, tuple(items.items()))
            if hit[0] not in _PER_CERTIFICATE_EXTENSIONS:
                cache.remember_extension(tlv, hit)
        fields.update(hit[2])
        if hit[1]:
            critical.append(hit[0])
            if hit[0] not in HANDLED_EXTENSIONS:
                unhandled.append(hit[0])
    fields["critical_extensions"] = frozenset(critical)
    return fields, unhandled, None


_SAN_OID_TLV = b"\x06\x03\x55\x1d\x11"
_CRITICAL_TRUE = b"\x01\x01\xff"
# GeneralName choices read here, as cryptography reads them (IA5String values).
_GENERAL_NAMES: dict[int, Callable[[str], x509.GeneralName]] = {
    0x81: x509.RFC822Name, 0x82: x509.DNSName, 0x86: x509.UniformResourceIdentifier}


def _subject_alt_name(tlv: bytes):
    """A subjectAltName of rfc822Name, dNSName, uniformResourceIdentifier and
    iPAddress entries, decoded as cryptography decodes it; None for anything
    else (other name forms, odd encodings), left to cryptography."""
    try:
        _, start, end = derlib.read_tlv(tlv, 0)
        parts = derlib.children(tlv, start, end)
        if len(parts) == 3:
            if tlv[parts[1][1] : parts[1][3]] != _CRITICAL_TRUE:
                return None
            critical = True
        elif len(parts) == 2:
            critical = False
        else:
            return None
        oid, value = parts[0], parts[-1]
        if tlv[oid[1] : oid[3]] != _SAN_OID_TLV or value[0] != 0x04:
            return None
        seq_tag, seq_start, seq_end = derlib.read_tlv(tlv, value[2])
        if seq_tag != 0x30 or seq_end != value[3]:
            return None
        names = []
        for tag, _, content_start, content_end in derlib.children(tlv, seq_start, seq_end):
            body = tlv[content_start:content_end]
            kind = _GENERAL_NAMES.get(tag)
            if kind is not None:
                names.append(kind(body.decode("ascii")))
            elif tag == 0x87 and len(body) in (4, 16):
                names.append(x509.IPAddress(ipaddress.ip_address(body)))
            else:
                return None
        if not names:
            return None
    except (InputError, ValueError):
        return None
    return (SUBJECT_ALT_NAME_OID, critical, (("subject_alt_names", tuple(names)),))


_SKI_OID = ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string


# Values that differ in every certificate: not worth remembering.
_PER_CERTIFICATE_EXTENSIONS = frozenset({SUBJECT_ALT_NAME_OID, ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string})


def _basic_constraints(v, f):
    f["is_ca"] = v.ca
    f["path_length"] = v.path_length


def _key_usage(v, f):
    f["key_usage"] = KeyUsage(
        digital_signature=v.digital_signature,
        content_commitment=v.content_commitment,
        key_encipherment=v.key_encipherment,
        data_encipherment=v.data_encipherment,
        key_agreement=v.key_agreement,
        key_cert_sign=v.key_cert_sign,
        crl_sign=v.crl_sign,
    )


def _certificate_policies(v, f):
    infos = tuple(v)
    oids = tuple(p.policy_identifier.dotted_string for p in infos)
    if len(set(oids)) != len(oids):
        raise ValueError("a policy appears twice in certificatePolicies")
    f["policies"] = oids
    f["policy_information"] = infos


def _policy_constraints(v, f):
    f["require_explicit_policy"] = v.require_explicit_policy
    f["inhibit_policy_mapping"] = v.inhibit_policy_mapping


def _authority_information_access(v, f):
    ocsp, ca_issuers = [], []
    for desc in v:
        if isinstance(desc.access_location, x509.UniformResourceIdentifier):
            if desc.access_method.dotted_string == "1.3.6.1.5.5.7.48.1":
                ocsp.append(desc.access_location.value)
            elif desc.access_method.dotted_string == "1.3.6.1.5.5.7.48.2":
                ca_issuers.append(desc.access_location.value)
    f["ocsp_urls"] = tuple(ocsp)
    f["ca_issuer_urls"] = tuple(ca_issuers)


def _unrecognized(v, f):
    if v.oid.dotted_string == POLICY_MAPPINGS_OID:
        mappings = asn1_x509.PolicyMappings.load(v.value)
        f["policy_mappings"] = tuple(
            (m["issuer_domain_policy"].dotted, m["subject_domain_policy"].dotted) for m in mappings
        )


# Dispatch on the exact type: cryptography's extension classes are ABCs, and
# a chain of isinstance checks costs more than the parse itself.
_EXTRACTORS: dict[type, Callable[[Any, dict], None]] = {
    x509.BasicConstraints: _basic_constraints,
    x509.KeyUsage: _key_usage,
    x509.ExtendedKeyUsage: lambda v, f: f.__setitem__("extended_key_usage", tuple(o.dotted_string for o in v)),
    x509.CertificatePolicies: _certificate_policies,
    x509.PolicyConstraints: _policy_constraints,
    x509.InhibitAnyPolicy: lambda v, f: f.__setitem__("inhibit_any_policy", v.skip_certs),
    x509.NameConstraints: lambda v, f: f.__setitem__("name_constraints", v),
    x509.SubjectAlternativeName: lambda v, f: f.__setitem__("subject_alt_names", tuple(v)),
    x509.SubjectKeyIdentifier: lambda v, f: f.__setitem__("subject_key_id", v.digest),
    x509.AuthorityKeyIdentifier: lambda v, f: f.__setitem__("authority_key_id", v.key_identifier),
    x509.CRLDistributionPoints: lambda v, f: f.__setitem__("crl_distribution_points", tuple(v)),
    x509.FreshestCRL: lambda v, f: f.__setitem__("freshest_crl", tuple(v)),
    x509.AuthorityInformationAccess: _authority_information_access,
    x509.OCSPNoCheck: lambda v, f: f.__setitem__("ocsp_no_check", True),
    x509.UnrecognizedExtension: _unrecognized,
}
