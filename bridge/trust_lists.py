"""Others' ETSI TS 119 612 trusted lists: reading, checking, and trusting them.

Three layers, each usable alone:

- ``parse_trust_list`` reads a list (TSL versions 5 and 6; a list of lists
  too) into plain values: scheme operator, territory, sequence number, issue
  time, next update, every trust service provider and service with its
  digital identities, status, status history and service information
  extensions, and the pointers to other lists with their mutual-recognition
  (EU MRA) equivalences.
- ``check_schema`` and ``check_signature`` judge a list: against the XSD when
  a schema directory is configured (else structural checks only, and the
  result says so), and its enveloped XML-DSig / XAdES signature at the list's
  own ListIssueDateTime (a list stays authentic after its signer's
  certificate expires; what matters is whether the certificate was valid
  when the list was issued), by a signer an administrator allowed.
- ``TrustListRegistry`` keeps registered lists and every accepted version in
  the store, fetches them (through revocation_source.http_fetch, with its
  address checks), and answers which service, with which status at a given
  time, recognises a certificate path.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import BridgeError

TSL_NS = "http://uri.etsi.org/02231/v2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
TSLX_NS = "http://uri.etsi.org/02231/v2/additionaltypes#"
SIE_NS = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
MRA_NS = "http://ec.europa.eu/tools/lotl/mra/schema/v2#"
XML_NS = "http://www.w3.org/XML/1998/namespace"
SCHEMA_FILE = "ts_119612v020401_xsd.xsd"
CATALOG_FILE = "catalog.xml"

STATUS_PREFIX = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"
# TS 119 612 5.5.4 and its annex: the statuses under which a service's
# certificates are trusted (the EU's current ones, and the pre-eIDAS ones a
# list's history may still carry). Every other status (withdrawn,
# supervisionceased, accreditationrevoked, deprecatedatnationallevel, ...)
# means the service is not recognised from its starting time on.
RECOGNISED_STATUSES = frozenset(STATUS_PREFIX + s for s in (
    "granted", "recognisedatnationallevel", "undersupervision", "supervisionincessation", "accredited",
    "setbynationallaw",
))

MAX_LIST_BYTES = 16 * 1024 * 1024


# Codes of a request that cannot be read (the others: a list refused on its merits).
_MALFORMED = frozenset({"invalid_request", "invalid_mapping", "invalid_signer_certificate", "invalid_base64"})
_CONFLICT = frozenset({"not_fetchable", "stale_sequence_number"})


class TrustListError(BridgeError):
    """A list that cannot be read or is refused: a stable ``code``, a plain message, the kind its code implies."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, "malformed" if code in _MALFORMED else "conflict" if code in _CONFLICT else "invalid")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class DigitalIdentity:
    certificates: tuple[bytes, ...] = ()  # DER
    subject_names: tuple[str, ...] = ()
    skis: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class StatusPeriod:
    status: str  # the list's URI
    start: dt.datetime
    service_type: str
    name: str


@dataclass(frozen=True)
class Service:
    tsp: str
    name: str
    service_type: str
    status: str
    status_start: dt.datetime
    identity: DigitalIdentity
    history: tuple[StatusPeriod, ...] = ()  # ServiceHistoryInstance, as listed (newest first by convention)
    qualifiers: tuple[str, ...] = ()
    additional_information: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()  # PolicyIdentifier values of the Qualifications criteria

    def periods(self) -> list[StatusPeriod]:
        """Current status and history, oldest first."""
        current = StatusPeriod(self.status, self.status_start, self.service_type, self.name)
        return sorted((current, *self.history), key=lambda p: p.start)

    def status_at(self, when: dt.datetime) -> StatusPeriod | None:
        """The status in force at ``when``: the period with the latest start not after it (None before the first)."""
        found = None
        for period in self.periods():
            if period.start <= when:
                found = period
        return found


@dataclass(frozen=True)
class Equivalence:
    """One TrustServiceEquivalenceInformation of an EU MRA extension: how the
    pointed (third-country) party's service types, statuses and qualifiers
    map onto the pointing party's."""

    legal_identifier: str
    status: str
    start: dt.datetime | None
    service_types: tuple[tuple[str, str], ...]  # (pointed, pointing)
    recognised_statuses: tuple[tuple[str, str], ...]
    unrecognised_statuses: tuple[tuple[str, str], ...]
    qualifiers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Pointer:
    location: str
    territory: str | None
    tsl_type: str | None
    mime_type: str | None
    certificates: tuple[bytes, ...]
    equivalences: tuple[Equivalence, ...] = ()


@dataclass(frozen=True)
class TrustList:
    version: int
    sequence_number: int
    tsl_type: str
    operator_names: dict[str, str]
    territory: str
    issued: dt.datetime
    next_update: dt.datetime | None
    providers: tuple[str, ...]
    services: tuple[Service, ...]
    pointers: tuple[Pointer, ...]
    equivalences: tuple[Equivalence, ...] = ()  # the list's own MRA extension (in its scheme information)

    @property
    def operator(self) -> str:
        return self.operator_names.get("en") or next(iter(self.operator_names.values()), "")

    def summary(self) -> dict:
        return {
            "version": self.version, "sequence_number": self.sequence_number, "tsl_type": self.tsl_type,
            "operator": self.operator, "operator_names": self.operator_names, "territory": self.territory,
            "issued": _iso(self.issued), "next_update": _iso(self.next_update),
            "providers": len(self.providers), "services": len(self.services), "pointers": len(self.pointers),
            "history_entries": sum(len(s.history) for s in self.services),
            "mra_equivalences": len(self.equivalences) + sum(len(p.equivalences) for p in self.pointers),
        }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


# --------------------------------------------------------------------------- parsing


def _parser():
    from lxml import etree

    # No DTDs, no entities, no network: a list is data from outside.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True, remove_pis=True)


def load_xml(data: bytes):
    from lxml import etree

    if len(data) > MAX_LIST_BYTES:
        raise TrustListError("trust_list_too_large", f"the list is {len(data)} bytes; at most {MAX_LIST_BYTES} are read")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise TrustListError("malformed_trust_list", f"not well-formed XML: {exc}") from None
    if root.tag != f"{{{TSL_NS}}}TrustServiceStatusList":
        raise TrustListError("malformed_trust_list", f"the root element is {root.tag}, not a TS 119 612 TrustServiceStatusList")
    return root


def _t(name: str, ns: str = TSL_NS) -> str:
    return f"{{{ns}}}{name}"


@overload
def _text(element, path: str) -> str | None: ...
@overload
def _text(element, path: str, required: str) -> str: ...
def _text(element, path: str, required: str | None = None) -> str | None:
    """The element's stripped text; with ``required`` (its name for the message), malformed_trust_list when it is
    missing."""
    found = element.find(path, {"t": TSL_NS, "ds": DS_NS, "x": TSLX_NS, "s": SIE_NS, "m": MRA_NS})
    value = found.text.strip() if found is not None and found.text else None
    if value is None and required:
        raise TrustListError("malformed_trust_list", f"{required} is missing")
    return value


_NS = {"t": TSL_NS, "ds": DS_NS, "x": TSLX_NS, "s": SIE_NS, "m": MRA_NS}


def _all(element, path: str) -> list:
    return element.findall(path, _NS)


@overload
def parse_time(text: str, what: str) -> dt.datetime: ...
@overload
def parse_time(text: str | None, what: str) -> dt.datetime | None: ...
def parse_time(text: str | None, what: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TrustListError("malformed_trust_list", f"{what} {text!r} is not an xsd:dateTime") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _names(element) -> dict[str, str]:
    names: dict[str, str] = {}
    if element is None:
        return names
    for name in _all(element, "t:Name"):
        lang = name.get(f"{{{XML_NS}}}lang") or ""
        names.setdefault(lang, (name.text or "").strip())
    return names


def _first_name(element) -> str:
    names = _names(element)
    return names.get("en") or next(iter(names.values()), "")


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise TrustListError("malformed_trust_list", f"{what} is not base64") from None


def _identity(element) -> DigitalIdentity:
    certs, subjects, skis = [], [], []
    if element is not None:
        for digital_id in _all(element, "t:DigitalId"):
            for child in digital_id:
                if child.tag == _t("X509Certificate"):
                    certs.append(_b64(child.text, "an X509Certificate"))
                elif child.tag == _t("X509SubjectName"):
                    subjects.append((child.text or "").strip())
                elif child.tag == _t("X509SKI"):
                    skis.append(_b64(child.text, "an X509SKI"))
    return DigitalIdentity(tuple(certs), tuple(subjects), tuple(skis))


def _extensions(element) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    qualifiers, info, policies = [], [], []
    if element is not None:
        for q in _all(element, ".//s:Qualifier"):
            if q.get("uri"):
                qualifiers.append(q.get("uri"))
        for uri in _all(element, ".//t:AdditionalServiceInformation/t:URI"):
            info.append((uri.text or "").strip())
        # PolicyIdentifier holds a XAdES ObjectIdentifierType; lists write
        # its Identifier in the XAdES or in the additional-types namespace.
        for ident in [e for p in _all(element, ".//s:PolicyIdentifier") for e in p if isinstance(e.tag, str) and e.tag.endswith("}Identifier")]:
            value = (ident.text or "").strip()
            if value.startswith("urn:oid:"):
                value = value[len("urn:oid:"):]
            if value and value not in policies:
                policies.append(value)
    return tuple(qualifiers), tuple(info), tuple(policies)


def _pairs(element, pointing: str, pointed: str, leaf: str) -> list[tuple[str, str]]:
    """(pointed, pointing) value pairs of an MRA equivalence list."""
    pairs: list[tuple[str, str]] = []
    for item in element:
        left = [(e.text or e.get("uri") or "").strip() for e in _all(item, f"m:{pointing}//{leaf}")]
        right = [(e.text or e.get("uri") or "").strip() for e in _all(item, f"m:{pointed}//{leaf}")]
        pairs.extend((b, a) for a in left for b in right)
    return pairs


def _equivalences(element) -> tuple[Equivalence, ...]:
    found = []
    for info in _all(element, ".//m:TrustServiceEquivalenceInformation"):
        types: list[tuple[str, str]] = []
        for eq in _all(info, "m:TrustServiceTSLTypeEquivalenceList"):
            pointing = [(e.text or "").strip() for e in _all(eq, "m:TrustServiceTSLTypeListPointingParty//t:ServiceTypeIdentifier")]
            pointed = [(e.text or "").strip() for e in _all(eq, "m:TrustServiceTSLTypeListPointedParty//t:ServiceTypeIdentifier")]
            types.extend((b, a) for a in pointing for b in pointed)
        valid, invalid = [], []
        for status_list in _all(info, "m:TrustServiceTSLStatusEquivalenceList"):
            for eq in _all(status_list, "m:TrustServiceTSLStatusValidEquivalence"):
                valid.extend(_pairs([eq], "TrustServiceTSLStatusListPointingParty", "TrustServiceTSLStatusListPointedParty", "t:ServiceStatus"))
            for eq in _all(status_list, "m:TrustServiceTSLStatusInvalidEquivalence"):
                invalid.extend(_pairs([eq], "TrustServiceTSLStatusListPointingParty", "TrustServiceTSLStatusListPointedParty", "t:ServiceStatus"))
        qualifiers = []
        for eq in _all(info, ".//m:QualifierEquivalence"):
            a, b = eq.find("m:QualifierPointingParty", _NS), eq.find("m:QualifierPointedParty", _NS)
            if a is not None and b is not None:
                qualifiers.append((b.get("uri", ""), a.get("uri", "")))
        found.append(Equivalence(
            legal_identifier=_text(info, "m:TrustServiceLegalIdentifier") or "",
            status=_text(info, "m:TrustServiceEquivalenceStatus") or "",
            start=parse_time(_text(info, "m:TrustServiceEquivalenceStatusStartingTime"), "TrustServiceEquivalenceStatusStartingTime"),
            service_types=tuple(types), recognised_statuses=tuple(valid), unrecognised_statuses=tuple(invalid),
            qualifiers=tuple(qualifiers),
        ))
    return tuple(found)


def parse_trust_list(data: bytes | None = None, *, root=None) -> TrustList:
    """The list's content. ``root``: an already parsed (for instance the
    signature-verified) element instead of ``data``."""
    if root is None:
        if data is None:
            raise TypeError("parse_trust_list needs data or root")
        root = load_xml(data)
    info = root.find("t:SchemeInformation", _NS)
    if info is None:
        raise TrustListError("malformed_trust_list", "SchemeInformation is missing")
    try:
        version = int(_text(info, "t:TSLVersionIdentifier", "TSLVersionIdentifier"))
        sequence = int(_text(info, "t:TSLSequenceNumber", "TSLSequenceNumber"))
    except ValueError:
        raise TrustListError("malformed_trust_list", "TSLVersionIdentifier and TSLSequenceNumber must be integers") from None
    if version not in (3, 4, 5, 6):
        raise TrustListError("unsupported_trust_list", f"TSL version {version} is not read (versions 3 to 6 are)")
    if sequence < 1:
        raise TrustListError("malformed_trust_list", f"TSLSequenceNumber {sequence} is not positive")
    issued = parse_time(_text(info, "t:ListIssueDateTime", "ListIssueDateTime"), "ListIssueDateTime")
    next_update = parse_time(_text(info, "t:NextUpdate/t:dateTime"), "NextUpdate")
    providers, services = [], []
    for tsp in _all(root, "t:TrustServiceProviderList/t:TrustServiceProvider"):
        tsp_name = _first_name(tsp.find("t:TSPInformation/t:TSPName", _NS))
        providers.append(tsp_name)
        for svc in _all(tsp, "t:TSPServices/t:TSPService"):
            si = svc.find("t:ServiceInformation", _NS)
            if si is None:
                raise TrustListError("malformed_trust_list", f"a service of {tsp_name!r} has no ServiceInformation")
            name = _first_name(si.find("t:ServiceName", _NS))
            history = []
            for h in _all(svc, "t:ServiceHistory/t:ServiceHistoryInstance"):
                history.append(StatusPeriod(
                    status=_text(h, "t:ServiceStatus", "ServiceHistoryInstance/ServiceStatus"),
                    start=parse_time(_text(h, "t:StatusStartingTime", "ServiceHistoryInstance/StatusStartingTime"), "StatusStartingTime"),
                    service_type=_text(h, "t:ServiceTypeIdentifier") or "",
                    name=_first_name(h.find("t:ServiceName", _NS)) or name,
                ))
            qualifiers, additional, policies = _extensions(si.find("t:ServiceInformationExtensions", _NS))
            services.append(Service(
                tsp=tsp_name, name=name,
                service_type=_text(si, "t:ServiceTypeIdentifier", f"ServiceTypeIdentifier of {name!r}"),
                status=_text(si, "t:ServiceStatus", f"ServiceStatus of {name!r}"),
                status_start=parse_time(_text(si, "t:StatusStartingTime", f"StatusStartingTime of {name!r}"), "StatusStartingTime"),
                identity=_identity(si.find("t:ServiceDigitalIdentity", _NS)),
                history=tuple(history), qualifiers=qualifiers, additional_information=additional, policies=policies,
            ))
    pointers = []
    for p in _all(info, "t:PointersToOtherTSL/t:OtherTSLPointer"):
        certs: list[bytes] = []
        for sdi in _all(p, "t:ServiceDigitalIdentities/t:ServiceDigitalIdentity"):
            certs.extend(_identity(sdi).certificates)
        extra = p.find("t:AdditionalInformation", _NS)
        pointers.append(Pointer(
            location=_text(p, "t:TSLLocation") or "",
            territory=_text(p, "t:AdditionalInformation/t:OtherInformation/t:SchemeTerritory"),
            tsl_type=_text(p, "t:AdditionalInformation/t:OtherInformation/t:TSLType"),
            mime_type=_text(p, "t:AdditionalInformation/t:OtherInformation/x:MimeType"),
            certificates=tuple(certs),
            equivalences=_equivalences(extra) if extra is not None else (),
        ))
    own_mra = info.find("t:SchemeExtensions", _NS)
    return TrustList(
        version=version, sequence_number=sequence, tsl_type=_text(info, "t:TSLType") or "",
        operator_names=_names(info.find("t:SchemeOperatorName", _NS)),
        territory=_text(info, "t:SchemeTerritory", "SchemeTerritory"),
        issued=issued, next_update=next_update, providers=tuple(providers), services=tuple(services),
        pointers=tuple(pointers), equivalences=_equivalences(own_mra) if own_mra is not None else (),
    )


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class SchemaResult:
    checked: str  # "xsd": against the TS 119 612 schema; "structural": the reader's own checks only
    valid: bool
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"checked": self.checked, "valid": self.valid, "errors": list(self.errors)}


_SCHEMAS: dict[str, object] = {}
_SCHEMAS_LOCK = threading.Lock()


def _schema(directory: Path):
    """The TS 119 612 XMLSchema of ``directory``, its imports resolved through
    the directory's catalog.xml by an lxml resolver (not XML_CATALOG_FILES,
    which libxml2 reads once per process, before any setting could change
    it), never from the network."""
    from lxml import etree

    key = str(Path(directory).resolve())
    with _SCHEMAS_LOCK:
        if key in _SCHEMAS:
            return _SCHEMAS[key]
        base = Path(key)
        mapping: dict[str, str] = {}
        catalog = base / CATALOG_FILE
        if catalog.exists():
            for entry in etree.parse(str(catalog), _parser()).getroot():
                if isinstance(entry.tag, str) and entry.get("name") and entry.get("uri"):
                    mapping[entry.get("name")] = str(base / entry.get("uri"))

        class _Catalog(etree.Resolver):
            def resolve(self, url, pubid, context):
                local = mapping.get(url)
                return self.resolve_filename(local, context) if local else None

        parser = _parser()
        parser.resolvers.add(_Catalog())
        try:
            schema = etree.XMLSchema(etree.parse(str(base / SCHEMA_FILE), parser))
        except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
            raise TrustListError("schema_unavailable", f"cannot load {base / SCHEMA_FILE}: {exc}") from None
        _SCHEMAS[key] = schema
        return schema


def check_schema(root, schema_dir: Path | str | None) -> SchemaResult:
    """XSD validation when ``schema_dir`` is given; otherwise the reader's
    structural checks (parse_trust_list) are all there is, and the result says so."""
    if schema_dir is None:
        return SchemaResult("structural", True)
    schema = _schema(Path(schema_dir))
    if schema.validate(root.getroottree() if hasattr(root, "getroottree") else root):
        return SchemaResult("xsd", True)
    return SchemaResult("xsd", False, tuple(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:10]))


# --------------------------------------------------------------------------- signature


@dataclass(frozen=True)
class SignatureResult:
    """What the enveloped signature says. ``status``: ``valid``;
    ``digest_mismatch`` (a reference's digest no longer matches: the list was
    changed after signing); ``signature_invalid``; ``signer_not_valid_at_issue``
    (the certificate was not valid at ListIssueDateTime); ``signer_not_allowed``
    (a valid signature, by a certificate no administrator allowed);
    ``unsigned``; ``malformed_signature``."""

    status: str
    at: dt.datetime | None
    signer_subject: str | None = None
    signer_sha256: str | None = None
    detail: str = ""
    cryptographic: str | None = None  # "ok", "digest_mismatch", "signature_invalid": the math alone, whatever the time
    signer_allowed: bool | None = None  # None: no allowed set was given

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def to_dict(self) -> dict:
        return {"status": self.status, "valid": self.valid, "at": _iso(self.at), "signer": self.signer_subject,
                "signer_sha256": self.signer_sha256, "signer_allowed": self.signer_allowed,
                "cryptographic": self.cryptographic, "detail": self.detail}


def _signing_certificate(root) -> x509.Certificate | None:
    node = root.find("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if node is None:
        return None
    return x509.load_der_x509_certificate(_b64(node.text, "the signature's X509Certificate"))


def check_signature(data: bytes, issued: dt.datetime | None, allowed: list[bytes] | None = None):
    """(SignatureResult, the signed root element or None). The signed element
    is what signxml verified (the references' content): callers read the list
    from it, never from the raw document, so nothing outside the signature is
    believed."""
    from signxml import SignatureConfiguration, XMLVerifier
    from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature

    root = load_xml(data)
    if root.find("ds:Signature", _NS) is None:
        return SignatureResult("unsigned", issued, detail="the list carries no enveloped ds:Signature"), None
    try:
        cert = _signing_certificate(root)
    except (TrustListError, ValueError) as exc:
        return SignatureResult("malformed_signature", issued, detail=f"the signing certificate cannot be read: {exc}"), None
    if cert is None:
        return SignatureResult("malformed_signature", issued, detail="the signature names no X509Certificate"), None
    der = cert.public_bytes(Encoding.DER)
    subject, digest = cert.subject.rfc4514_string(), hashlib.sha256(der).hexdigest()
    allowed_set = {hashlib.sha256(a).hexdigest() for a in allowed} if allowed is not None else None
    is_allowed = None if allowed_set is None else digest in allowed_set
    # The math first, at a time the certificate was valid (so signxml judges
    # the digests and the signature value only); the time is judged below.
    at = issued or cert.not_valid_before_utc
    inside = min(max(at, cert.not_valid_before_utc), cert.not_valid_after_utc)
    references = len(root.findall("ds:Signature/ds:SignedInfo/ds:Reference", _NS))
    config = SignatureConfiguration(verification_time=inside, expect_references=references or 1, require_x509=True)

    def result(status: str, *, detail: str = "", cryptographic: str | None = None) -> SignatureResult:
        return SignatureResult(status, at=issued, signer_subject=subject, signer_sha256=digest, detail=detail,
                               cryptographic=cryptographic, signer_allowed=is_allowed)

    try:
        verified = XMLVerifier().verify(data, x509_cert=cert, expect_config=config, ignore_ambiguous_key_info=True,
                                        parser=_parser())
    except InvalidDigest as exc:
        return result("digest_mismatch", cryptographic="digest_mismatch", detail=str(exc)), None
    except InvalidSignature as exc:
        return result("signature_invalid", cryptographic="signature_invalid", detail=str(exc)), None
    except (InvalidInput, InvalidCertificate) as exc:
        return result("malformed_signature", detail=str(exc)), None
    except Exception as exc:  # signxml raises assorted errors on hostile input
        return result("malformed_signature", detail=f"{type(exc).__name__}: {exc}"), None
    signed = verified[0].signed_xml if isinstance(verified, list) else verified.signed_xml
    if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
        return result("signer_not_valid_at_issue", cryptographic="ok",
                      detail=f"the signer's certificate is valid from {_iso(cert.not_valid_before_utc)} to "
                             f"{_iso(cert.not_valid_after_utc)}, the list was issued at {_iso(at)}"), None
    if is_allowed is False:
        return result("signer_not_allowed", cryptographic="ok",
                      detail=f"{subject} is not among the certificates allowed to sign this list"), None
    return result("valid", cryptographic="ok"), signed


@dataclass(frozen=True)
class Reading:
    """One list read and judged."""

    trust_list: TrustList
    schema: SchemaResult
    signature: SignatureResult
    sha256: str

    @property
    def acceptable(self) -> bool:
        return self.signature.valid and self.schema.valid

    def to_dict(self) -> dict:
        return {**self.trust_list.summary(), "sha256": self.sha256, "schema": self.schema.to_dict(),
                "signature": self.signature.to_dict(), "acceptable": self.acceptable}


def read_trust_list(data: bytes, *, allowed: list[bytes] | None = None, schema_dir: Path | str | None = None) -> Reading:
    root = load_xml(data)
    claimed = parse_trust_list(root=root)
    schema = check_schema(root, schema_dir)
    signature, signed = check_signature(data, claimed.issued, allowed)
    # Trust only what the signature covers: read the list again from the
    # verified element (the whole list, when the reference is URI="").
    trust_list = parse_trust_list(root=signed) if signed is not None and signed.tag == root.tag else claimed
    return Reading(trust_list, schema, signature, hashlib.sha256(data).hexdigest())


def service_view(service: Service) -> dict:
    certs: list[dict[str, str | None]] = []
    for der in service.identity.certificates:
        try:
            c = x509.load_der_x509_certificate(der)
            certs.append({"subject": c.subject.rfc4514_string(), "sha256": hashlib.sha256(der).hexdigest()})
        except ValueError:
            certs.append({"subject": None, "sha256": hashlib.sha256(der).hexdigest()})
    return {
        "tsp": service.tsp, "name": service.name, "type": service.service_type, "status": service.status,
        "status_start": _iso(service.status_start), "certificates": certs,
        "subject_names": list(service.identity.subject_names), "skis": [s.hex() for s in service.identity.skis],
        "history": [{"status": p.status, "start": _iso(p.start), "type": p.service_type} for p in service.history],
        "qualifiers": list(service.qualifiers), "additional_information": list(service.additional_information),
        "policies": list(service.policies),
    }


# --------------------------------------------------------------------------- recognition

# Service types whose certificates may anchor a path (TS 119 612 5.5.1.1),
# after a list's own types are mapped onto these.
CA_SERVICE_TYPES = frozenset({
    "http://uri.etsi.org/TrstSvc/Svctype/CA/QC", "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC",
    "http://uri.etsi.org/TrstSvc/Svctype/NationalRootCA-QC",
})


@dataclass(frozen=True)
class Mapping:
    """Mutual recognition, held as data (one per registered list, in the spirit
    of the EU MRA extension): the foreign list's service types and statuses
    onto TS 119 612's own, and its policy prefixes onto the bridge's policies.
    JSON: {"service_types": {foreign: ours}, "statuses": {foreign: ours},
    "policies": [{"prefix": OID, "bridge_policy": OID}]}."""

    service_types: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    policies: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, value: dict | str | None) -> "Mapping":
        data = json.loads(value) if isinstance(value, str) else (value or {})
        if not isinstance(data, dict) or set(data) - {"service_types", "statuses", "policies"}:
            raise TrustListError("invalid_mapping", "a mapping has service_types, statuses and policies only")
        types, statuses = data.get("service_types") or {}, data.get("statuses") or {}
        if not all(isinstance(d, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in d.items())
                   for d in (types, statuses)):
            raise TrustListError("invalid_mapping", "service_types and statuses map URIs (strings) to URIs")
        policies = []
        for item in data.get("policies") or []:
            if not isinstance(item, dict) or set(item) != {"prefix", "bridge_policy"} or not all(
                    isinstance(v, str) and _is_oid(v) for v in item.values()):
                raise TrustListError("invalid_mapping", "each policies entry is {\"prefix\": OID, \"bridge_policy\": OID}")
            policies.append((item["prefix"], item["bridge_policy"]))
        return cls(dict(types), dict(statuses), tuple(policies))

    @classmethod
    def from_equivalence(cls, equivalence: Equivalence) -> "Mapping":
        """The mapping an EU MRA equivalence states (pointed party onto pointing party)."""
        statuses = dict(equivalence.recognised_statuses) | dict(equivalence.unrecognised_statuses)
        return cls(dict(equivalence.service_types), statuses, ())

    def to_json(self) -> dict:
        return {"service_types": self.service_types, "statuses": self.statuses,
                "policies": [{"prefix": p, "bridge_policy": b} for p, b in self.policies]}

    def bridge_policy(self, oid: str) -> str:
        for prefix, bridge in self.policies:
            if policy_matches(oid, prefix):
                return bridge
        return oid


def _is_oid(text: str) -> bool:
    parts = text.split(".")
    return len(parts) >= 2 and all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts) and len(text) <= 200


def policy_matches(oid: str, listed: str) -> bool:
    """A listed policy OID recognises itself and every OID under it: Hong
    Kong's policies share a prefix and differ in trailing version arcs
    (a leaf under <prefix>.2012.1.0 is recognised by a listing of <prefix>)."""
    return oid == listed or oid.startswith(listed + ".")


class ListView:
    """One accepted version of a registered list, indexed for recognition."""

    def __init__(self, list_id: str, name: str, version_id: int, trust_list: TrustList, mapping: Mapping) -> None:
        self.list_id, self.name, self.version_id = list_id, name, version_id
        self.trust_list, self.mapping = trust_list, mapping
        self._by_sha256: dict[bytes, list[Service]] = {}
        self._by_ski: dict[bytes, list[Service]] = {}
        for service in trust_list.services:
            for der in service.identity.certificates:
                self._by_sha256.setdefault(hashlib.sha256(der).digest(), []).append(service)
            for ski in service.identity.skis:
                self._by_ski.setdefault(ski, []).append(service)

    def service_type(self, service_type: str) -> str:
        return self.mapping.service_types.get(service_type, service_type)

    def status(self, status: str) -> str:
        return self.mapping.statuses.get(status, status)

    def anchors(self) -> list[bytes]:
        """Certificates of the CA services, whatever their current status: a
        path through a withdrawn one is then answered as withdrawn (with its
        dates), not as "no path"."""
        seen, anchors = set(), []
        for service in self.trust_list.services:
            if self.service_type(service.service_type) not in CA_SERVICE_TYPES and not any(
                    self.service_type(p.service_type) in CA_SERVICE_TYPES for p in service.history):
                continue
            for der in service.identity.certificates:
                if der not in seen:
                    seen.add(der)
                    anchors.append(der)
        return anchors

    def services_for(self, certificate) -> list[Service]:
        """The services a path certificate is (pki Certificate): by the listed
        certificate, else by a listed SKI (a list that gives only SKI and name)."""
        found = self._by_sha256.get(certificate.sha256)
        if found:
            return found
        if certificate.subject_key_id is not None:
            return self._by_ski.get(certificate.subject_key_id, [])
        return []


def recognise(view: ListView, result, when: dt.datetime, requested_policies) -> dict:
    """``result`` (a pki VerificationResult of a path anchored on the list's
    certificates) as a result object with ``recognition``: every listed
    service on the path must be in a recognised status at ``when`` (its status
    history decides; a withdrawn issuing CA is not rescued by a granted root),
    the leaf's policies must fall under the nearest service's listed policy
    prefixes when it lists any, and ``policies`` are mapped into the bridge's
    domain. Error codes: ``service_withdrawn`` (a status that is not a
    recognised one at ``when``), ``not_recognised`` (no listed service on the
    path, or none listed yet at ``when``), ``policy_not_recognised``,
    ``policy_required`` (none of the requested bridge policies)."""
    answer = result.to_dict()
    tl = view.trust_list
    list_info = {"id": view.list_id, "name": view.name, "sequence_number": tl.sequence_number,
                 "territory": tl.territory, "operator": tl.operator, "issued": _iso(tl.issued)}
    answer["recognition"] = None
    if not result.valid:
        return answer

    def fail(code: str, message: str, index: int | None) -> dict:
        answer.update(valid=False, policies=[], error={"code": code, "message": message, "certificate": index})
        return answer

    matched: list[tuple[int, Service, StatusPeriod | None]] = []
    for index, certificate in enumerate(result.path):
        for service in view.services_for(certificate):
            matched.append((index, service, service.status_at(when)))
    if not matched:
        return fail("not_recognised", f"no service of trust list {view.list_id} is on the path", len(result.path) - 1)
    recognised: list[tuple[int, Service, StatusPeriod]] = []
    for index, service, period in matched:
        if period is None:
            return fail("not_recognised", f"{service.name!r} was not yet on the list at {_iso(when)} (listed from "
                                          f"{_iso(service.periods()[0].start)})", index)
        if view.status(period.status) not in RECOGNISED_STATUSES:
            return fail("service_withdrawn", f"{service.name!r} is {period.status.rsplit('/', 1)[-1]} since "
                                             f"{_iso(period.start)}, according to list {view.list_id} "
                                             f"(sequence number {tl.sequence_number}); validation time {_iso(when)}", index)
        recognised.append((index, service, period))
    index, service, period = min(recognised, key=lambda m: m[0])
    leaf_policies = sorted(result.policies or ())
    matching = leaf_policies
    matched_prefix = None
    if service.policies:
        matching = [oid for oid in leaf_policies if any(policy_matches(oid, listed) for listed in service.policies)]
        if not matching:
            return fail("policy_not_recognised", f"the certificate's policies ({', '.join(leaf_policies) or 'none'}) are not "
                                                 f"under those {service.name!r} is listed with ({', '.join(service.policies)})", 0)
        matched_prefix = next(listed for listed in service.policies if policy_matches(matching[0], listed))
    mapped = sorted({view.mapping.bridge_policy(oid) for oid in matching})
    wanted = [p for p in (requested_policies or ()) if p != "2.5.29.32.0"]
    if wanted and not set(wanted) & set(mapped):
        return fail("policy_required", f"none of the requested policies ({', '.join(wanted)}) is among the recognised "
                                       f"ones ({', '.join(mapped) or 'none'})", 0)
    answer["policies"] = mapped
    answer["recognition"] = {
        "list": list_info,
        "service": {"name": service.name, "type": service.service_type, "type_mapped": view.service_type(service.service_type),
                    "tsp": service.tsp, "certificate": index},
        "status": period.status, "status_mapped": view.status(period.status), "status_since": _iso(period.start),
        "validation_time": _iso(when), "policy_prefix": matched_prefix,
        "foreign_policies": matching,
    }
    return answer


# --------------------------------------------------------------------------- registry


def _certificate_ders(items) -> list[bytes]:
    ders = []
    for item in items:
        data = item.encode() if isinstance(item, str) else bytes(item)
        try:
            cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
        except ValueError:
            raise TrustListError("invalid_signer_certificate", "an allowed signer is not a PEM or DER certificate") from None
        ders.append(cert.public_bytes(Encoding.DER))
    return ders


class TrustListRegistry:
    """Registered external lists: registration, fetching (cached until
    NextUpdate or the refresh interval, failures remembered), versions kept
    through the store, and the accepted version for recognition."""

    def __init__(self, store, settings) -> None:
        self._store = store
        self._settings = settings
        self._lock = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._failures: dict[str, tuple[float, str]] = {}  # list id -> (monotonic until, message)
        self._views: dict[tuple[str, int], ListView] = {}

    # -- settings
    def _schema_dir(self):
        return getattr(self._settings, "trust_list_schema_dir", None)

    def _limits(self):
        from .revocation_source import FetchLimits

        s = self._settings
        return FetchLimits(connect_timeout=s.revocation_connect_timeout, total_timeout=s.revocation_total_timeout,
                           allow_private_addresses=s.revocation_allow_private_addresses)

    # -- registration
    def check_registration(self, *, url: str | None, xml: bytes | None, allowed_signers, mapping=None):
        """What ``register`` checks before it keeps anything: (allowed signer
        DERs, mapping, the upload's reading or None). Also run before a
        registration is proposed under two-person control."""
        if (url is None) == (xml is None):
            raise TrustListError("invalid_request", "give either url or xml")
        if url is not None and not url.startswith("http://"):
            # The fetcher (revocation_source.http_fetch) speaks plain HTTP: a list is authentic by its signature.
            raise TrustListError("invalid_request", "url must be an http:// URL")
        allowed = _certificate_ders(allowed_signers)
        if not allowed:
            raise TrustListError("invalid_request", "at least one certificate allowed to sign the list is required")
        checked_mapping = Mapping.from_json(mapping)
        reading = self._judge(xml, allowed) if xml is not None else None  # an upload is refused before anything is kept
        return allowed, checked_mapping, reading

    def register(self, *, name: str, url: str | None, xml: bytes | None, allowed_signers, mapping=None,
                 actor: str) -> dict:
        allowed, checked_mapping, reading = self.check_registration(url=url, xml=xml, allowed_signers=allowed_signers,
                                                                    mapping=mapping)
        row = self._store.add_external_trust_list(
            actor=actor, name=name, url=url, allowed_signers=json.dumps([base64.b64encode(d).decode() for d in allowed]),
            mapping=json.dumps(checked_mapping.to_json(), sort_keys=True))
        outcome = None
        if reading is not None and xml is not None:  # an upload (reading is None exactly when xml is)
            outcome = self._keep(row.id, xml, reading, source="upload", actor=actor)
        else:
            outcome = self.fetch(row.id, actor=actor, force=True, raise_errors=False)
        return {**self.view(row.id), "outcome": outcome}

    def _allowed(self, row) -> list[bytes]:
        return [base64.b64decode(d) for d in json.loads(row.allowed_signers)]

    def _judge(self, xml: bytes, allowed: list[bytes]) -> Reading:
        reading = read_trust_list(xml, allowed=allowed, schema_dir=self._schema_dir())
        if not reading.signature.valid:
            raise TrustListError("trust_list_signature_invalid",
                                 f"the list's signature is {reading.signature.status}: {reading.signature.detail}".rstrip(": "))
        if not reading.schema.valid:
            raise TrustListError("trust_list_schema_invalid", "the list does not validate against the TS 119 612 schema: "
                                 + "; ".join(reading.schema.errors[:3]))
        return reading

    def _keep(self, list_id: str, xml: bytes, reading: Reading, *, source: str, actor: str) -> dict:
        from .store import Conflict

        tl = reading.trust_list
        try:
            version, new = self._store.add_trust_list_version(
                actor=actor, list_id=list_id, sequence_number=tl.sequence_number, issued_at=tl.issued,
                next_update=tl.next_update, xml=xml, sha256=reading.sha256,
                signature=json.dumps(reading.signature.to_dict()), schema_check=json.dumps(reading.schema.to_dict()),
                source=source)
        except Conflict as exc:
            raise TrustListError(exc.code, str(exc)) from None
        return {"accepted": new, "sequence_number": tl.sequence_number, "unchanged": not new,
                "signature": reading.signature.status, "schema": reading.schema.checked}

    def upload(self, list_id: str, xml: bytes, *, actor: str) -> dict:
        row = self._store.external_trust_list(list_id)
        return self._keep(list_id, xml, self._judge(xml, self._allowed(row)), source="upload", actor=actor)

    # -- fetching
    def _due(self, row) -> bool:
        latest = self._store.latest_trust_list_version(row.id)
        if latest is None:
            return True
        now = dt.datetime.now(dt.timezone.utc)
        if latest.next_update is not None and now >= latest.next_update:
            return True
        last = row.last_fetch_at or latest.accepted_at
        return (now - last).total_seconds() >= self._settings.trust_list_refresh_seconds

    def fetch(self, list_id: str, *, actor: str = "bridgeca", force: bool = False, raise_errors: bool = True) -> dict:
        """Fetch now (``force``) or when due; a failure is remembered for
        trust_list_failure_ttl_seconds (no new attempt meanwhile unless forced)."""
        from .revocation_source import FetchError, http_fetch

        row = self._store.external_trust_list(list_id)
        if row.url is None:
            raise TrustListError("not_fetchable", f"trust list {list_id} is uploaded, not fetched: it has no URL")
        with self._lock:
            lock = self._fetch_locks.setdefault(list_id, threading.Lock())
        with lock:
            if not force:
                failure = self._failures.get(list_id)
                if failure is not None and time.monotonic() < failure[0]:
                    return {"accepted": False, "error": failure[1], "remembered": True}
                if not self._due(self._store.external_trust_list(list_id)):
                    return {"accepted": False, "unchanged": True, "fetched": False}
            try:
                xml = http_fetch(row.url, max_bytes=MAX_LIST_BYTES, limits=self._limits())
                outcome = self._keep(list_id, xml, self._judge(xml, self._allowed(row)), source="fetch", actor=actor)
            except (FetchError, TrustListError) as exc:
                message = str(exc) if isinstance(exc, FetchError) else f"{row.url}: {exc.code}: {exc.message}"
                self._failures[list_id] = (time.monotonic() + self._settings.trust_list_failure_ttl_seconds, message)
                self._store.record_trust_list_fetch_failure(list_id, message)
                if raise_errors:
                    raise TrustListError(getattr(exc, "code", "fetch_failed"), message) from None
                return {"accepted": False, "error": message}
            self._failures.pop(list_id, None)
            return {**outcome, "fetched": True}

    # -- reading
    def current(self, list_id: str, *, may_fetch: bool = True) -> ListView:
        """The newest accepted version, fetched first when due (a failed
        fetch falls back on the kept version). Refused when there is none, or
        when it is past its NextUpdate by more than the stale grace."""
        row = self._store.external_trust_list(list_id)
        if may_fetch and row.url is not None and self._due(row):
            self.fetch(list_id, raise_errors=False)
        latest = self._store.latest_trust_list_version(list_id)
        if latest is None:
            raise TrustListError("trust_list_unavailable", f"trust list {list_id} has no accepted version yet"
                                 + (f" (last fetch: {row.last_fetch_error})" if row.last_fetch_error else ""))
        if latest.next_update is not None:
            late = (dt.datetime.now(dt.timezone.utc) - latest.next_update).total_seconds()
            if late > self._settings.trust_list_stale_grace_seconds:
                raise TrustListError("trust_list_stale", f"trust list {list_id} (sequence number {latest.sequence_number}) "
                                     f"was due for renewal at {_iso(latest.next_update)} and no newer version was accepted")
        key = (list_id, latest.id)
        with self._lock:
            view = self._views.get(key)
        if view is None:
            view = ListView(list_id, row.name, latest.id, parse_trust_list(latest.xml), Mapping.from_json(row.mapping))
            with self._lock:
                self._views = {k: v for k, v in self._views.items() if k[0] != list_id}
                self._views[key] = view
        return view

    def view(self, list_id: str) -> dict:
        row = self._store.external_trust_list(list_id)
        versions = self._store.trust_list_versions(list_id)
        latest = None
        if versions:
            tl = parse_trust_list(versions[0].xml)
            latest = {**tl.summary(), "signature": json.loads(versions[0].signature),
                      "schema": json.loads(versions[0].schema_check)}
        return {
            "id": row.id, "name": row.name, "url": row.url, "created_at": _iso(row.created_at), "created_by": row.created_by,
            "allowed_signers": [x509.load_der_x509_certificate(d).subject.rfc4514_string() for d in self._allowed(row)],
            "mapping": json.loads(row.mapping), "last_fetch_at": _iso(row.last_fetch_at),
            "last_fetch_error": row.last_fetch_error, "trust_anchor": f"list:{row.id}", "latest": latest,
            "versions": [{"sequence_number": v.sequence_number, "issued": _iso(v.issued_at), "next_update": _iso(v.next_update),
                          "sha256": v.sha256, "accepted_at": _iso(v.accepted_at), "source": v.source,
                          "signature": json.loads(v.signature).get("status")} for v in versions],
        }

    def views(self) -> list[dict]:
        return [self.view(r.id) for r in self._store.external_trust_lists()]

    def services(self, list_id: str) -> list[dict]:
        """The newest kept version's services, stale or not (this shows; it recognises nothing)."""
        self._store.external_trust_list(list_id)
        latest = self._store.latest_trust_list_version(list_id)
        return [service_view(s) for s in parse_trust_list(latest.xml).services] if latest is not None else []
