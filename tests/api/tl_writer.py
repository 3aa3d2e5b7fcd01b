"""A test helper that writes an ETSI TS 119 612 list (schema-valid against
v2.4.1) and signs it, enveloped, with signxml: Hong Kong's list in the
recognition tests, written independently of bridgeca's own publisher."""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import serialization

TSL = "http://uri.etsi.org/02231/v2#"
STATUS = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"
CA_PKC = "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"


@dataclass
class ListedService:
    name: str
    certificate: object  # cryptography x509.Certificate
    status: str  # "granted", "withdrawn", ...
    since: dt.datetime
    history: list[tuple[str, dt.datetime]] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    service_type: str = CA_PKC


def _t(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(text: str) -> str:
    return f'<Name xml:lang="en">{escape(text)}</Name>'


def _address(country: str) -> str:
    return (f'<PostalAddresses><PostalAddress xml:lang="en"><StreetAddress>1 Test Road</StreetAddress>'
            f'<Locality>Test</Locality><CountryName>{country}</CountryName></PostalAddress></PostalAddresses>'
            f'<ElectronicAddress><URI xml:lang="en">mailto:tl@example.{country.lower()}</URI></ElectronicAddress>')


def _service(s: ListedService) -> str:
    der = base64.b64encode(s.certificate.public_bytes(serialization.Encoding.DER)).decode()
    identity = f"<ServiceDigitalIdentity><DigitalId><X509Certificate>{der}</X509Certificate></DigitalId></ServiceDigitalIdentity>"
    extensions = ""
    if s.policies:
        policies = "".join(
            f'<ns5:PolicySet><ns5:PolicyIdentifier><ns4:Identifier>{p}</ns4:Identifier></ns5:PolicyIdentifier></ns5:PolicySet>'
            for p in s.policies)
        extensions = (
            '<ServiceInformationExtensions><Extension Critical="true"><ns5:Qualifications><ns5:QualificationElement>'
            '<ns5:Qualifiers><ns5:Qualifier uri="http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/QCForESig"/></ns5:Qualifiers>'
            f'<ns5:CriteriaList assert="atLeastOne">{policies}</ns5:CriteriaList>'
            '</ns5:QualificationElement></ns5:Qualifications></Extension></ServiceInformationExtensions>')
    history = ""
    if s.history:
        history = "<ServiceHistory>" + "".join(
            f"<ServiceHistoryInstance><ServiceTypeIdentifier>{s.service_type}</ServiceTypeIdentifier>"
            f"<ServiceName>{_name(s.name)}</ServiceName>{identity}<ServiceStatus>{STATUS}{status}</ServiceStatus>"
            f"<StatusStartingTime>{_t(start)}</StatusStartingTime></ServiceHistoryInstance>"
            for status, start in sorted(s.history, key=lambda h: h[1], reverse=True)) + "</ServiceHistory>"
    return (f"<TSPService><ServiceInformation><ServiceTypeIdentifier>{s.service_type}</ServiceTypeIdentifier>"
            f"<ServiceName>{_name(s.name)}</ServiceName>{identity}<ServiceStatus>{STATUS}{s.status}</ServiceStatus>"
            f"<StatusStartingTime>{_t(s.since)}</StatusStartingTime>{extensions}</ServiceInformation>{history}</TSPService>")


def write_list(*, territory: str, operator: str, tsp: str, sequence: int, issued: dt.datetime,
               next_update: dt.datetime, services: list[ListedService], signer_key, signer_cert) -> bytes:
    body = (
        f'<TrustServiceStatusList xmlns="{TSL}" xmlns:ns4="http://uri.etsi.org/01903/v1.3.2#" '
        'xmlns:ns5="http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#" '
        'Id="tsl" TSLTag="http://uri.etsi.org/19612/TSLTag"><SchemeInformation>'
        f"<TSLVersionIdentifier>6</TSLVersionIdentifier><TSLSequenceNumber>{sequence}</TSLSequenceNumber>"
        "<TSLType>http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric</TSLType>"
        f"<SchemeOperatorName>{_name(operator)}</SchemeOperatorName>"
        f"<SchemeOperatorAddress>{_address(territory)}</SchemeOperatorAddress>"
        f"<SchemeName>{_name(territory + ': recognised certification authorities')}</SchemeName>"
        f'<SchemeInformationURI><URI xml:lang="en">https://tl.example.{territory.lower()}/</URI></SchemeInformationURI>'
        "<StatusDeterminationApproach>http://uri.etsi.org/TrstSvc/TrustedList/StatusDetn/EUappropriate</StatusDeterminationApproach>"
        f"<SchemeTerritory>{territory}</SchemeTerritory>"
        '<PolicyOrLegalNotice><TSLLegalNotice xml:lang="en">test list</TSLLegalNotice></PolicyOrLegalNotice>'
        "<HistoricalInformationPeriod>65535</HistoricalInformationPeriod>"
        f"<ListIssueDateTime>{_t(issued)}</ListIssueDateTime><NextUpdate><dateTime>{_t(next_update)}</dateTime></NextUpdate>"
        "</SchemeInformation><TrustServiceProviderList><TrustServiceProvider><TSPInformation>"
        f"<TSPName>{_name(tsp)}</TSPName><TSPAddress>{_address(territory)}</TSPAddress>"
        f'<TSPInformationURI><URI xml:lang="en">https://ca.example.{territory.lower()}/</URI></TSPInformationURI>'
        "</TSPInformation><TSPServices>" + "".join(_service(s) for s in services) +
        "</TSPServices></TrustServiceProvider></TrustServiceProviderList></TrustServiceStatusList>"
    )
    from lxml import etree
    from signxml import XMLSigner, methods

    root = etree.fromstring(body.encode())
    signed = XMLSigner(method=methods.enveloped, signature_algorithm="ecdsa-sha256", digest_algorithm="sha256",
                       c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#").sign(
        root, key=signer_key, cert=[signer_cert.public_bytes(serialization.Encoding.PEM).decode()])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
