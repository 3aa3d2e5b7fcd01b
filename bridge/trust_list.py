"""Our federation, published as an ETSI TS 119 612 v2.4.1 trusted list.

Three layers, each usable alone (bridge/trust_lists.py reads lists; this
module writes them):

- ``collect_content(ca)`` reads the bridge's members into plain values
  (``TrustListContent``): one trust service provider per member, one service
  per enrolled root, its status periods (``member_status_history`` is the
  one place that reads them) and the member policy OIDs the bridge
  recognises. ``content.digest()`` is what "a change" means for the
  sequence number.
- ``build_xml`` / ``sign_xml`` and ``build_json`` are pure: content plus
  (sequence number, issue time, next update) in, bytes out. ``sign_xml``
  takes any ``XmlSigner`` (the bridge's, through its authority; or a
  ``PrivateKeySigner`` for a list somebody else operates, as tests do).
- ``TrustListPublisher`` keeps the current signed documents per revocation
  epoch; a moved epoch re-reads the content, and only a changed digest (or a
  list past half its validity) issues a new list, stored so that every
  worker and every server on the database serves the same bytes.

Choices, with the reasons:

- Signature: XAdES baseline B (EN 319 132-1) enveloped in the list, as TS
  119 612 clause 5.7 asks: SigningTime, SigningCertificateV2 and a
  DataObjectFormat in signed properties, exclusive C14N, SHA-256 (SHA-384
  with a P-384 key). It is built here over lxml's C14N rather than by
  signxml, because signxml needs the private key object and the bridge's
  keys never leave their signer (PKCS#11 tokens cannot hand one out); the
  canonical SignedInfo is signed by ``BridgeAuthority.sign_document`` like
  any other signed object. Software and PKCS#11 keys (ECDSA P-256/P-384,
  RSA-3072) sign alike. XML-DSig defines no SM2 algorithm and relying
  parties' tools (xmlsec, signxml, DSS) have none, so a dual-key bridge signs
  with its ECDSA/RSA key and an SM2-only bridge refuses with
  ``trust_list_unsignable`` (the JSON form is still published, signed by
  ``sign_detached``).
- TSLType ``http://uri.etsi.org/TrstSvc/TrustedList/TSLType/CNlist``: TS 119
  612 clause 5.3.3 / annex D.6 give non-EU schemes ``CClist`` with CC their
  territory; EUgeneric would claim an EU member state's list.
  StatusDeterminationApproach and the community rules follow the same
  pattern (``CNdetermination``, ``schemerules/CN``).
- Services are ``CA/PKC``: members' CAs issue certificates that are not EU
  qualified certificates. The bridge knows each member's root only (members
  enroll roots; their issuing CAs are below them and not registered), so
  each service's digital identity is the root certificate the member
  enrolled.
- Status: ``granted`` while a member is active; ``withdrawn`` once it is
  revoked, withdrawn or expired. TS 119 612 has no suspension status: a
  suspended member is ``withdrawn`` (what a relying party must do: stop
  trusting) with an AdditionalServiceInformation ``SUSPENDED`` marking it
  as reversible; reinstated, it is ``granted`` again and the history shows
  both periods.
- The recognised policy OIDs are a Qualifications extension (the TS 119 612
  5.5.9.2 mechanism that names certificates by their policy: a CriteriaList
  with a PolicySet of PolicyIdentifiers, urn:oid: URNs) with a qualifier of
  our own, ``RECOGNISED_POLICIES``; it is not critical, so tools that know
  only the EU qualifiers still read the service.
- Each provider's jurisdiction is its postal address (country, region,
  locality) and a non-critical TSPInformationExtension ``bca:Jurisdiction``
  with the code the member enrolled with.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

TSL_NS = "http://uri.etsi.org/02231/v2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
SIE_NS = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
BCA_NS = "urn:bridgeca:trust-list"  # our own extension elements (non-critical)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

TSL_TAG = "http://uri.etsi.org/19612/TSLTag"
TSL_VERSION = 6  # TS 119 612 v2.x lists are version 6 (5 was v1/v2.1 before 2024)
HISTORICAL_INFORMATION_PERIOD = 65535  # "kept for ever", as EU lists write it
SERVICE_TYPE_PKC = "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
STATUS_URI = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"
GRANTED, WITHDRAWN = "granted", "withdrawn"
# AdditionalServiceInformation URI of a withdrawn service that is suspended (see the module docstring).
SUSPENDED = "urn:bridgeca:trust-list:suspended"
# Qualifier of the Qualifications extension listing the member policies the bridge recognises.
RECOGNISED_POLICIES = "urn:bridgeca:trust-list:recognised-policies"

C14N_EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
DIGEST_URIS = {"sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
               "sha384": "http://www.w3.org/2001/04/xmldsig-more#sha384"}
# key type -> (SignatureMethod, digest, ECDSA coordinate bytes or None for RSA)
SIGNATURE_METHODS = {
    "ec-p256": ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", "sha256", 32),
    "ec-p384": ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", "sha384", 48),
    "rsa-3072": ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "sha256", None),
}
XML_MEDIA_TYPE = "application/xml"
JSON_FORMAT = "bridgeca-trust-list/1"

# Jurisdiction code -> (ISO 3166 country, region, locality in English, locality in Chinese).
JURISDICTIONS = {
    "GD": ("CN", "Guangdong", "Guangzhou", "广东省"),
    "SZ": ("CN", "Guangdong", "Shenzhen", "深圳市"),
    "HK": ("HK", None, "Hong Kong", "香港特别行政区"),
    "MO": ("MO", None, "Macao", "澳门特别行政区"),
}


class TrustListUnsignable(Exception):
    """The bridge has no key an XML-DSig relying party can check (an SM2-only bridge)."""


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class StatusPeriod:
    status: str  # GRANTED or WITHDRAWN
    since: dt.datetime
    suspended: bool = False
    reason: str = ""

    @property
    def uri(self) -> str:
        return STATUS_URI + self.status


@dataclass(frozen=True)
class ListedService:
    """One service: a CA certificate (a member root), its status periods (oldest first; the last is current)."""

    service_id: str
    names: tuple[tuple[str, str], ...]  # (language, name)
    certificates: tuple[bytes, ...]  # DER; the first is the service's certificate
    periods: tuple[StatusPeriod, ...]
    policies: tuple[str, ...] = ()  # recognised certificate policy OIDs
    policy_mappings: tuple[tuple[str, str], ...] = ()  # (member policy, bridge policy)
    service_type: str = SERVICE_TYPE_PKC

    @property
    def current(self) -> StatusPeriod:
        return self.periods[-1]


@dataclass(frozen=True)
class ListedProvider:
    names: tuple[tuple[str, str], ...]
    jurisdiction: str
    information_uri: str
    services: tuple[ListedService, ...]
    organisation: str = ""  # first address line


@dataclass(frozen=True)
class SchemeInformation:
    operator_names: tuple[tuple[str, str], ...]
    scheme_names: tuple[tuple[str, str], ...]
    territory: str
    information_uri: str
    distribution_points: tuple[str, ...]
    operator_uri: str

    @property
    def tsl_type(self) -> str:
        return f"http://uri.etsi.org/TrstSvc/TrustedList/TSLType/{self.territory}list"

    @property
    def status_determination(self) -> str:
        return f"http://uri.etsi.org/TrstSvc/TrustedList/StatusDetn/{self.territory}determination"

    @property
    def community_rules(self) -> tuple[str, ...]:
        return (f"http://uri.etsi.org/TrstSvc/TrustedList/schemerules/{self.territory}",)


@dataclass(frozen=True)
class TrustListContent:
    """Everything a list says but its sequence number, issue time, next update and signature."""

    scheme: SchemeInformation
    providers: tuple[ListedProvider, ...]
    signer_sha256: str = ""  # of the signing certificate: a new bridge key is a new list

    def to_dict(self) -> dict:
        def plain(value):
            if isinstance(value, dt.datetime):
                return _iso(value)
            if isinstance(value, bytes):
                return base64.b64encode(value).decode("ascii")
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))

    def digest(self) -> str:
        """SHA-256 of the content: a change of any member, status, certificate or scheme field changes it."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _language(text: str) -> str:
    """zh for a name written in Chinese characters, else en."""
    return "zh" if any(unicodedata.name(c, "").startswith("CJK") for c in text) else "en"


def _names(*candidates: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for text in candidates:
        text = " ".join((text or "").split())
        if text and all(text != t for _, t in found):
            found.append((_language(text), text))
    # Chinese first where known: TS 119 612 5.1.4 wants English present; order is free.
    return tuple(sorted(found, key=lambda item: item[0] != "zh"))


def _attribute(name: x509.Name, oid) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


# --------------------------------------------------------------------------- reading the bridge


def member_status_history(store, enrollment) -> list[tuple[str, dt.datetime, str]]:
    """(enrollment status, since, reason) of one enrollment, oldest first.

    The one place that reads a member's history: the member_status table
    (migration 0005) when it has rows, else derived from the approval and
    revocation times of its cross-certificates (enrollments from before that
    table, or stores without it)."""
    rows = store.status_history(enrollment.id) if hasattr(store, "status_history") else []
    history = [(r.status, r.at, r.reason or "") for r in rows]
    if history and not (len(history) == 1 and history[0][2] == "recorded before status history"):
        return history
    derived: list[tuple[str, dt.datetime, str]] = []
    crosses = store.cross_certificates(statuses=("issued", "held", "revoked"), enrollment_id=enrollment.id)
    for cross in sorted(crosses, key=lambda c: c.issued_at or enrollment.created_at):
        derived.append(("active", cross.issued_at or enrollment.created_at, "approved"))
    ended = [c for c in crosses if c.status == "revoked" and c.revoked_at is not None]
    if derived and enrollment.status not in ("active", "suspended") and ended:
        last = max(ended, key=lambda c: c.revoked_at)
        derived.append((enrollment.status, last.revoked_at, last.revocation_reason or ""))
    elif derived and enrollment.status not in ("active",):
        derived.append((enrollment.status, enrollment.updated_at, ""))
    return derived or history


def status_periods(history: Sequence[tuple[str, dt.datetime, str]]) -> tuple[StatusPeriod, ...]:
    """A member's enrollment statuses as list statuses. Pending and rejected
    are not on the list (never recognised); a change to the same list status
    (a renewal: active to active) is not a new period."""
    periods: list[StatusPeriod] = []
    for status, since, reason in history:
        if status == "active":
            period = StatusPeriod(GRANTED, since, reason=reason)
        elif status == "suspended":
            period = StatusPeriod(WITHDRAWN, since, suspended=True, reason=reason)
        elif status in ("revoked", "withdrawn", "expired") and periods:
            period = StatusPeriod(WITHDRAWN, since, reason=reason)
        else:
            continue
        if periods and (periods[-1].status, periods[-1].suspended) == (period.status, period.suspended):
            continue
        periods.append(period)
    return tuple(periods)


def scheme_information(settings, bridge_certificate: x509.Certificate) -> SchemeInformation:
    base = settings.base_url.rstrip("/")
    organisation = _attribute(bridge_certificate.subject, x509.oid.NameOID.ORGANIZATION_NAME)
    english = settings.trust_list_operator_name_en or organisation or bridge_certificate.subject.rfc4514_string()
    operator = _names(settings.trust_list_operator_name_zh, english)
    return SchemeInformation(
        operator_names=operator,
        scheme_names=_names(f"{settings.trust_list_territory}: {settings.trust_list_operator_name_zh}跨境互认信任列表",
                            f"{settings.trust_list_territory}: trusted list of the certification authorities {english} "
                            "recognises (cross-certified members)"),
        territory=settings.trust_list_territory,
        information_uri=settings.trust_list_information_uri or f"{base}/docs",
        distribution_points=(f"{base}/v1/trust-list.xml",),
        operator_uri=base + "/",
    )


def collect_content(ca) -> TrustListContent:
    """The bridge's members as a list: one provider per member name, one
    service per root it enrolled that was ever active."""
    store, base = ca.store, ca.settings.base_url.rstrip("/")
    providers: dict[str, list] = {}
    for record in store.list_enrollments():
        periods = status_periods(member_status_history(store, record))
        if not periods:
            continue
        root = x509.load_der_x509_certificate(record.root_der)
        mappings = tuple((m["member_policy"], m["bridge_policy"]) for m in json.loads(record.policy_mappings))
        service = ListedService(
            service_id=record.id,
            names=_names(_attribute(root.subject, x509.oid.NameOID.COMMON_NAME) or record.root_subject),
            certificates=(record.root_der,),
            periods=periods,
            policies=tuple(dict.fromkeys(member for member, _ in mappings)),
            policy_mappings=mappings,
        )
        providers.setdefault(record.member, []).append((record, root, service))
    listed = []
    for member in sorted(providers):
        entries = providers[member]
        record, root, _ = entries[-1]  # the newest enrollment speaks for the member
        listed.append(ListedProvider(
            names=_names(member),
            jurisdiction=record.jurisdiction,
            information_uri=f"{base}/v1/register#{entries[0][0].id}",
            services=tuple(service for _, _, service in entries),
            organisation=_attribute(root.subject, x509.oid.NameOID.ORGANIZATION_NAME) or member,
        ))
    signer = ca.authority.document_key().certificate if ca.authority.can_sign_documents() else ca.certificate
    return TrustListContent(
        scheme=scheme_information(ca.settings, ca.certificate),
        providers=tuple(listed),
        signer_sha256=hashlib.sha256(signer.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


# --------------------------------------------------------------------------- XML


def _el(parent, tag: str, text: str | None = None, ns: str = TSL_NS, **attributes):
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", {k: v for k, v in attributes.items()})
    if text is not None:
        element.text = text
    return element


def _international(parent, tag: str, names: Sequence[tuple[str, str]]):
    holder = _el(parent, tag)
    for lang, text in names:
        _el(holder, "Name", text, **{XML_LANG: lang})
    return holder


def _uris(parent, tag: str, uris: Sequence[str], lang: str = "en"):
    holder = _el(parent, tag)
    for uri in uris:
        _el(holder, "URI", uri, **{XML_LANG: lang})
    return holder


def _address(parent, tag: str, addresses: Sequence[dict], electronic: Sequence[str]):
    holder = _el(parent, tag)
    postal = _el(holder, "PostalAddresses")
    for address in addresses:
        item = _el(postal, "PostalAddress", **{XML_LANG: address["lang"]})
        _el(item, "StreetAddress", address["street"])
        _el(item, "Locality", address["locality"])
        if address.get("region"):
            _el(item, "StateOrProvince", address["region"])
        _el(item, "CountryName", address["country"])
    _uris(holder, "ElectronicAddress", electronic)
    return holder


def provider_addresses(provider: ListedProvider) -> list[dict]:
    """The provider's postal addresses (English, and Chinese where the jurisdiction is known)."""
    country, region, locality, locality_zh = JURISDICTIONS.get(
        provider.jurisdiction, (provider.jurisdiction if len(provider.jurisdiction) == 2 else "CN", None, provider.jurisdiction, None))
    addresses = [{"lang": "en", "street": provider.organisation, "locality": locality, "region": region, "country": country}]
    if locality_zh:
        addresses.append({"lang": "zh", "street": provider.organisation, "locality": locality_zh,
                          "region": "广东省" if region == "Guangdong" and locality_zh != "广东省" else None, "country": country})
    return addresses


def _ski(der: bytes) -> bytes:
    certificate = x509.load_der_x509_certificate(der)
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        from .signer import certificate_spki, key_identifier

        return key_identifier(certificate_spki(certificate))


def _service_extensions(parent, service: ListedService, period: StatusPeriod) -> None:
    if not service.policies and not period.suspended:
        return
    extensions = _el(parent, "ServiceInformationExtensions")
    if service.policies:
        qualifications = etree.SubElement(_el(extensions, "Extension", Critical="false"), f"{{{SIE_NS}}}Qualifications",
                                          nsmap={"tsie": SIE_NS, "xades": XADES_NS})
        element = _el(qualifications, "QualificationElement", ns=SIE_NS)
        _el(_el(element, "Qualifiers", ns=SIE_NS), "Qualifier", ns=SIE_NS, uri=RECOGNISED_POLICIES)
        criteria = etree.SubElement(element, f"{{{SIE_NS}}}CriteriaList", {"assert": "atLeastOne"})
        policy_set = _el(criteria, "PolicySet", ns=SIE_NS)
        for oid in service.policies:
            identifier = _el(policy_set, "PolicyIdentifier", ns=SIE_NS)
            _el(identifier, "Identifier", f"urn:oid:{oid}", ns=XADES_NS, Qualifier="OIDAsURN")
        _el(criteria, "Description", "certificate policies of this member that the bridge recognises "
                                     "(mapped to the bridge's own by its cross-certificate)", ns=SIE_NS)
    if period.suspended:
        info = _el(_el(extensions, "Extension", Critical="false"), "AdditionalServiceInformation")
        _el(info, "URI", SUSPENDED, **{XML_LANG: "en"})
        _el(info, "InformationValue", "suspended" + (f": {period.reason}" if period.reason else "") + "; reversible")


def _service_identity(parent, service: ListedService, *, full: bool) -> None:
    identity = _el(parent, "ServiceDigitalIdentity")
    if full:
        for der in service.certificates:
            _el(_el(identity, "DigitalId"), "X509Certificate", base64.b64encode(der).decode("ascii"))
    certificate = x509.load_der_x509_certificate(service.certificates[0])
    _el(_el(identity, "DigitalId"), "X509SubjectName", certificate.subject.rfc4514_string())
    _el(_el(identity, "DigitalId"), "X509SKI", base64.b64encode(_ski(service.certificates[0])).decode("ascii"))


def build_xml(content: TrustListContent, sequence: int, issued_at: dt.datetime, next_update: dt.datetime) -> etree._Element:
    """The unsigned list (TrustServiceStatusList), indented."""
    scheme = content.scheme
    root = etree.Element(f"{{{TSL_NS}}}TrustServiceStatusList", {"TSLTag": TSL_TAG}, nsmap={None: TSL_NS})
    info = _el(root, "SchemeInformation")
    _el(info, "TSLVersionIdentifier", str(TSL_VERSION))
    _el(info, "TSLSequenceNumber", str(sequence))
    _el(info, "TSLType", scheme.tsl_type)
    _international(info, "SchemeOperatorName", scheme.operator_names)
    operator_name = dict(scheme.operator_names)
    _address(info, "SchemeOperatorAddress", [
        {"lang": "en", "street": operator_name.get("en", ""), "locality": "Guangzhou", "region": "Guangdong", "country": scheme.territory},
        {"lang": "zh", "street": operator_name.get("zh", operator_name.get("en", "")), "locality": "广州市", "region": "广东省",
         "country": scheme.territory},
    ], [scheme.operator_uri])
    _international(info, "SchemeName", scheme.scheme_names)
    _uris(info, "SchemeInformationURI", [scheme.information_uri])
    _el(info, "StatusDeterminationApproach", scheme.status_determination)
    _uris(info, "SchemeTypeCommunityRules", scheme.community_rules)
    _el(info, "SchemeTerritory", scheme.territory)
    notice = _el(info, "PolicyOrLegalNotice")
    _el(notice, "TSLLegalNotice", "本列表列出本桥接认证机构交叉认证的成员认证机构及其状态，不是欧盟合格信任服务列表。", **{XML_LANG: "zh"})
    _el(notice, "TSLLegalNotice", "This list names the member certification authorities this bridge CA cross-certifies, with "
                                  "their status; it is not an EU trusted list of qualified trust services.", **{XML_LANG: "en"})
    _el(info, "HistoricalInformationPeriod", str(HISTORICAL_INFORMATION_PERIOD))
    _el(info, "ListIssueDateTime", _iso(issued_at))
    _el(_el(info, "NextUpdate"), "dateTime", _iso(next_update))
    distribution = _el(info, "DistributionPoints")
    for uri in scheme.distribution_points:
        _el(distribution, "URI", uri)
    if content.providers:
        providers = _el(root, "TrustServiceProviderList")
        for provider in content.providers:
            tsp = _el(providers, "TrustServiceProvider")
            tsp_info = _el(tsp, "TSPInformation")
            _international(tsp_info, "TSPName", provider.names)
            _address(tsp_info, "TSPAddress", provider_addresses(provider), [provider.information_uri])
            _uris(tsp_info, "TSPInformationURI", [provider.information_uri])
            jurisdiction = _el(_el(tsp_info, "TSPInformationExtensions"), "Extension", Critical="false")
            etree.SubElement(jurisdiction, f"{{{BCA_NS}}}Jurisdiction", nsmap={"bca": BCA_NS}).text = provider.jurisdiction
            services = _el(tsp, "TSPServices")
            for service in provider.services:
                item = _el(services, "TSPService")
                current = service.current
                information = _el(item, "ServiceInformation")
                _el(information, "ServiceTypeIdentifier", service.service_type)
                _international(information, "ServiceName", service.names)
                _service_identity(information, service, full=True)
                _el(information, "ServiceStatus", current.uri)
                _el(information, "StatusStartingTime", _iso(current.since))
                _service_extensions(information, service, current)
                if len(service.periods) > 1:
                    history = _el(item, "ServiceHistory")
                    for period in reversed(service.periods[:-1]):  # newest first, as TS 119 612 5.5.10 lists them
                        instance = _el(history, "ServiceHistoryInstance")
                        _el(instance, "ServiceTypeIdentifier", service.service_type)
                        _international(instance, "ServiceName", service.names)
                        _service_identity(instance, service, full=False)
                        _el(instance, "ServiceStatus", period.uri)
                        _el(instance, "StatusStartingTime", _iso(period.since))
                        _service_extensions(instance, service, period)
    etree.indent(root, space=" ")
    return root


class XmlSigner(Protocol):
    """What signs a list: a certificate, its key type (SIGNATURE_METHODS), and
    ``sign(data)`` returning a DER ECDSA or a PKCS#1 v1.5 RSA signature over
    ``data`` with the key type's hash."""

    certificate: x509.Certificate
    key_type: str

    def sign(self, data: bytes) -> bytes: ...


@dataclass
class PrivateKeySigner:
    """An XmlSigner over a private key held by the caller: for lists others
    operate (tests write a Hong Kong list with it). The bridge never uses it:
    its keys stay behind its signer (``AuthorityDocumentSigner``)."""

    key: PrivateKeyTypes = field(repr=False)
    certificate: x509.Certificate

    @property
    def key_type(self) -> str:
        from .signer import key_type_of

        return key_type_of(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        algorithm = hashes.SHA384() if self.key_type == "ec-p384" else hashes.SHA256()
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(algorithm))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), algorithm)
        raise TrustListUnsignable(f"cannot sign a trust list with a {type(self.key).__name__}")


class AuthorityDocumentSigner:
    """The bridge's XmlSigner: its ECDSA/RSA key, through BridgeAuthority.sign_document."""

    def __init__(self, authority) -> None:
        if not authority.can_sign_documents():
            raise TrustListUnsignable("this bridge has only an SM2 key, and XML-DSig (and every XAdES verifier relying "
                                      "parties use) defines no SM2 signature: give it an ECDSA or RSA key "
                                      "(bridgeca init --second-key-type) to publish the XML trust list")
        self._authority = authority
        key = authority.document_key()
        self.certificate, self.key_type = key.certificate, key.key_type

    def sign(self, data: bytes) -> bytes:
        return self._authority.sign_document(data)


def _c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _digest(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode("ascii")


def sign_xml(root: etree._Element, signer: XmlSigner, signing_time: dt.datetime) -> bytes:
    """Enveloped XAdES-B-B signature of ``root`` (built by build_xml, unsigned); the signed document's bytes."""
    if signer.key_type not in SIGNATURE_METHODS:
        raise TrustListUnsignable(f"no XML-DSig signature method for a {signer.key_type} key")
    method, digest_name, coordinate = SIGNATURE_METHODS[signer.key_type]
    digest_uri = DIGEST_URIS[digest_name]
    # URI="" with the enveloped transform: the document without the Signature, which is not there yet.
    document_digest = _digest(digest_name, _c14n(root))
    certificate_der = signer.certificate.public_bytes(serialization.Encoding.DER)

    ds = lambda parent, tag, text=None, **a: _el(parent, tag, text, ns=DS_NS, **a)  # noqa: E731
    xa = lambda parent, tag, text=None, **a: _el(parent, tag, text, ns=XADES_NS, **a)  # noqa: E731
    signature = etree.SubElement(root, f"{{{DS_NS}}}Signature", {"Id": "signature"}, nsmap={"ds": DS_NS})
    signed_info = ds(signature, "SignedInfo")
    ds(signed_info, "CanonicalizationMethod", Algorithm=C14N_EXCLUSIVE)
    ds(signed_info, "SignatureMethod", Algorithm=method)
    reference = ds(signed_info, "Reference", Id="reference-list", URI="")
    transforms = ds(reference, "Transforms")
    ds(transforms, "Transform", Algorithm=ENVELOPED)
    ds(transforms, "Transform", Algorithm=C14N_EXCLUSIVE)
    ds(reference, "DigestMethod", Algorithm=digest_uri)
    ds(reference, "DigestValue", document_digest)
    properties_reference = ds(signed_info, "Reference", Type=SIGNED_PROPERTIES_TYPE, URI="#signed-properties")
    ds(ds(properties_reference, "Transforms"), "Transform", Algorithm=C14N_EXCLUSIVE)
    ds(properties_reference, "DigestMethod", Algorithm=digest_uri)
    properties_digest = ds(properties_reference, "DigestValue")
    value = ds(signature, "SignatureValue", Id="signature-value")
    ds(ds(ds(signature, "KeyInfo"), "X509Data"), "X509Certificate", base64.b64encode(certificate_der).decode("ascii"))

    qualifying = etree.SubElement(ds(signature, "Object"), f"{{{XADES_NS}}}QualifyingProperties", {"Target": "#signature"},
                                  nsmap={"xades": XADES_NS})
    signed_properties = xa(qualifying, "SignedProperties", Id="signed-properties")
    signature_properties = xa(signed_properties, "SignedSignatureProperties")
    xa(signature_properties, "SigningTime", _iso(signing_time))
    cert = xa(xa(signature_properties, "SigningCertificateV2"), "Cert")
    cert_digest = xa(cert, "CertDigest")
    ds(cert_digest, "DigestMethod", Algorithm=digest_uri)
    ds(cert_digest, "DigestValue", _digest(digest_name, certificate_der))
    parsed = asn1_x509.Certificate.load(certificate_der)
    issuer_serial = asn1_cms.IssuerSerial({
        "issuer": [asn1_x509.GeneralName({"directory_name": parsed.issuer})], "serial": parsed.serial_number})
    xa(cert, "IssuerSerialV2", base64.b64encode(issuer_serial.dump()).decode("ascii"))
    data_format = xa(xa(signed_properties, "SignedDataObjectProperties"), "DataObjectFormat", ObjectReference="#reference-list")
    xa(data_format, "MimeType", "text/xml")

    properties_digest.text = _digest(digest_name, _c14n(signed_properties))
    raw = signer.sign(_c14n(signed_info))
    if coordinate is not None:  # XML-DSig ECDSA (RFC 4050 / XMLDSig 1.1): r || s, not DER
        r, s = decode_dss_signature(raw)
        raw = r.to_bytes(coordinate, "big") + s.to_bytes(coordinate, "big")
    value.text = base64.b64encode(raw).decode("ascii")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --------------------------------------------------------------------------- JSON


def build_json(content: TrustListContent, sequence: int, issued_at: dt.datetime, next_update: dt.datetime) -> bytes:
    """The JSON equivalent of the XML list (same fields, snake_case), UTF-8; its detached CMS signature signs these bytes."""
    scheme = content.scheme
    document = {
        "format": JSON_FORMAT,
        "equivalent_of": "ETSI TS 119 612 v2.4.1 trusted list (the same list as XML: distribution_points)",
        "scheme_information": {
            "tsl_version_identifier": TSL_VERSION,
            "tsl_sequence_number": sequence,
            "tsl_type": scheme.tsl_type,
            "scheme_operator_name": dict(scheme.operator_names),
            "scheme_name": dict(scheme.scheme_names),
            "scheme_information_uri": scheme.information_uri,
            "status_determination_approach": scheme.status_determination,
            "scheme_type_community_rules": list(scheme.community_rules),
            "scheme_territory": scheme.territory,
            "historical_information_period": HISTORICAL_INFORMATION_PERIOD,
            "list_issue_date_time": _iso(issued_at),
            "next_update": _iso(next_update),
            "distribution_points": list(scheme.distribution_points),
        },
        "trust_service_providers": [
            {
                "name": dict(provider.names),
                "jurisdiction": provider.jurisdiction,
                "address": provider_addresses(provider),
                "information_uri": provider.information_uri,
                "services": [
                    {
                        "id": service.service_id,
                        "service_type_identifier": service.service_type,
                        "service_name": dict(service.names),
                        "digital_identities": [
                            {"x509_certificate": base64.b64encode(der).decode("ascii"),
                             "subject": x509.load_der_x509_certificate(der).subject.rfc4514_string(),
                             "x509_ski": base64.b64encode(_ski(der)).decode("ascii"),
                             "sha256": hashlib.sha256(der).hexdigest()}
                            for der in service.certificates
                        ],
                        **_period_json(service.current),
                        "recognised_policies": list(service.policies),
                        "policy_mappings": [{"member_policy": m, "bridge_policy": b} for m, b in service.policy_mappings],
                        "history": [_period_json(p) for p in reversed(service.periods[:-1])],
                    }
                    for service in provider.services
                ],
            }
            for provider in content.providers
        ],
    }
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _period_json(period: StatusPeriod) -> dict:
    return {"service_status": period.uri, "status": "suspended" if period.suspended else period.status,
            "status_starting_time": _iso(period.since), "reason": period.reason}


# --------------------------------------------------------------------------- publishing


@dataclass(frozen=True)
class PublishedTrustList:
    sequence: int
    content_sha256: str
    issued_at: dt.datetime
    next_update: dt.datetime
    xml: bytes | None  # None: an SM2-only bridge (see xml_problem)
    json: bytes
    json_signature: bytes  # detached CMS SignedData over ``json``, DER
    xml_problem: str | None = None

    @property
    def refresh_at(self) -> dt.datetime:
        """Re-issued once half its validity has passed (as the CRL is), so a cached copy never outlives NextUpdate."""
        return self.issued_at + (self.next_update - self.issued_at) / 2


def issue(ca, content: TrustListContent, sequence: int, now: dt.datetime) -> PublishedTrustList:
    """Build and sign both forms of one list."""
    issued_at = now.astimezone(dt.timezone.utc).replace(microsecond=0)
    next_update = issued_at + dt.timedelta(hours=ca.settings.trust_list_next_update_hours)
    xml, problem = None, None
    try:
        xml = sign_xml(build_xml(content, sequence, issued_at, next_update), AuthorityDocumentSigner(ca.authority), issued_at)
    except TrustListUnsignable as exc:
        problem = str(exc)
    document = build_json(content, sequence, issued_at, next_update)
    return PublishedTrustList(sequence, content.digest(), issued_at, next_update, xml, document,
                              ca.authority.sign_detached(document, issued_at), problem)


class TrustListPublisher:
    """The current list of one bridge, per revocation epoch.

    Every trust change bumps the epoch (store.py), so a request that sees a
    new epoch re-reads the content; a digest equal to the stored list's keeps
    that list (same bytes, same sequence number: a token revocation moves the
    epoch but not the list), a different one issues the next number. The
    store serialises issuers, so two workers seeing the same change sign
    once between them."""

    def __init__(self, ca) -> None:
        self._ca = ca
        self._lock = threading.Lock()
        self._current: PublishedTrustList | None = None
        self._epoch: int | None = None
        self.last_build_seconds: float | None = None

    def current(self, epoch: int | None = None) -> PublishedTrustList:
        epoch = self._ca.store.epoch() if epoch is None else epoch
        now = dt.datetime.now(dt.timezone.utc)
        current = self._current
        if current is not None and self._epoch == epoch and now < current.refresh_at:
            return current
        with self._lock:
            if self._current is not None and self._epoch == epoch and now < self._current.refresh_at:
                return self._current
            content = collect_content(self._ca)
            digest = content.digest()

            def build(sequence: int, at: dt.datetime) -> PublishedTrustList:
                started = time.perf_counter()
                published = issue(self._ca, content, sequence, at)
                self.last_build_seconds = time.perf_counter() - started
                return published

            row = self._ca.store.publish_trust_list(
                actor="bridgeca", content_sha256=digest, build=build, now=now.replace(microsecond=0))
            self._current = PublishedTrustList(row.sequence, row.content_sha256, row.issued_at, row.next_update, row.xml,
                                               row.json_document, row.json_signature, row.xml_problem)
            self._epoch = epoch
            return self._current


_PUBLISHERS_LOCK = threading.Lock()


def publisher_of(ca) -> TrustListPublisher:
    """The publisher of one BridgeCA (made on first use)."""
    with _PUBLISHERS_LOCK:
        publisher = getattr(ca, "_trust_list_publisher", None)
        if publisher is None:
            publisher = TrustListPublisher(ca)
            ca._trust_list_publisher = publisher
        return publisher
