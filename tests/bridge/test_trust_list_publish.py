"""Our federation as a signed ETSI TS 119 612 list (bridge/trust_list.py), on
SQLite and PostgreSQL: it validates against ETSI's v2.4.1 schema offline
(../shared, through its XML catalog), its XAdES signature verifies with
Debian's xmlsec1 and with signxml (tools we did not write) and fails after
one changed byte, the sequence number moves with the content and only with
it, revocations and suspensions appear as status history, and the JSON
form's detached CMS signature verifies with openssl and fails after one
changed byte."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bridge.trust_list import GRANTED, RECOGNISED_POLICIES, STATUS_URI, SUSPENDED, WITHDRAWN

from .members import make_member, pem

REPO = Path(__file__).resolve().parents[2]
ETSI = REPO.parent / "shared" / "conformance" / "etsi-tl" / "xsd"
NS = {"t": "http://uri.etsi.org/02231/v2#", "ds": "http://www.w3.org/2000/09/xmldsig#",
      "s": "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#",
      "x": "http://uri.etsi.org/01903/v1.3.2#", "bca": "urn:bridgeca:trust-list"}

# Validation in a child process: libxml2 reads XML_CATALOG_FILES once per
# process, and no_network keeps it from ever fetching a schema.
VALIDATE = """
import sys
from lxml import etree
parser = etree.XMLParser(no_network=True)
schema = etree.XMLSchema(etree.parse(sys.argv[1], parser))
ok = schema.validate(etree.parse(sys.argv[2], parser))
print("valid" if ok else "\\n".join(str(e) for e in schema.error_log))
"""


def join(ca, code: str) -> tuple[str, object]:
    member = make_member(code)
    view = ca.enroll(name=f"{member.display} Demo CA", jurisdiction=code, root_certificate=pem(member.root).decode(),
                     policy_mappings=member.mappings(), actor="issuer")
    approved = ca.approve(view["id"], actor="admin")
    return view["id"], member, approved["serial"]


def schema_errors(path: Path) -> str:
    if not (ETSI / "ts_119612v020401_xsd.xsd").exists():
        pytest.skip(f"the ETSI schemas are not at {ETSI}")
    env = {**os.environ, "XML_CATALOG_FILES": str(ETSI / "catalog.xml")}
    done = subprocess.run([sys.executable, "-c", VALIDATE, str(ETSI / "ts_119612v020401_xsd.xsd"), str(path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def xmlsec1(path: Path, bridge_pem: Path) -> subprocess.CompletedProcess:
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 is not installed (.ci/run installs Debian's xmlsec1)")
    return subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(bridge_pem),
                           "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", str(path)],
                          capture_output=True, text=True, timeout=60)


def signxml_verify(data: bytes, bridge_pem: bytes):
    from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

    # Two references: the list (enveloped) and the XAdES signed properties.
    return XAdESVerifier().verify(data, x509_cert=bridge_pem.decode(), expect_config=XAdESSignatureConfiguration(expect_references=2))


def services(xml: bytes) -> dict[str, etree._Element]:
    """The listed services by the SHA-256 of their certificate."""
    import hashlib

    root = etree.fromstring(xml)
    found = {}
    for service in root.iterfind(".//t:TSPService", NS):
        der = base64.b64decode(service.findtext("t:ServiceInformation/t:ServiceDigitalIdentity/t:DigitalId/t:X509Certificate", namespaces=NS))
        found[hashlib.sha256(der).hexdigest()] = service
    return found


def sha256(certificate: x509.Certificate) -> str:
    import hashlib

    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@pytest.fixture
def federation(bridge):
    ids = {code: join(bridge, code) for code in ("HK", "GD")}
    return bridge, ids


def test_the_list_validates_offline_and_verifies_with_xmlsec1_and_signxml(federation, tmp_path):
    ca, ids = federation
    published = ca.published_trust_list()
    path, bridge_pem = tmp_path / "trust-list.xml", tmp_path / "bridge.pem"
    path.write_bytes(published.xml)
    bridge_pem.write_text(ca.certificate_pem())

    assert schema_errors(path) == "valid"
    done = xmlsec1(path, bridge_pem)
    assert done.returncode == 0 and "OK" in done.stderr + done.stdout, done.stderr
    results = signxml_verify(published.xml, bridge_pem.read_bytes())
    assert len(results) == 2

    root = etree.fromstring(published.xml)
    assert root.findtext("t:SchemeInformation/t:TSLVersionIdentifier", namespaces=NS) == "6"
    assert root.findtext("t:SchemeInformation/t:TSLSequenceNumber", namespaces=NS) == str(published.sequence)
    assert root.findtext("t:SchemeInformation/t:TSLType", namespaces=NS) == "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/CNlist"
    assert root.findtext("t:SchemeInformation/t:SchemeTerritory", namespaces=NS) == "CN"
    languages = {n.get("{http://www.w3.org/XML/1998/namespace}lang") for n in root.iterfind("t:SchemeInformation/t:SchemeOperatorName/t:Name", NS)}
    assert languages == {"zh", "en"}
    assert len(root.findall(".//t:TrustServiceProvider", NS)) == 2
    listed = services(published.xml)
    for code, (_enrollment_id, member, _serial) in ids.items():
        service = listed[sha256(member.root)]
        info = service.find("t:ServiceInformation", NS)
        assert info.findtext("t:ServiceTypeIdentifier", namespaces=NS) == "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
        assert info.findtext("t:ServiceStatus", namespaces=NS) == STATUS_URI + GRANTED
        assert service.find("t:ServiceHistory", NS) is None  # granted since approval: nothing before
        qualifier = info.find(".//s:Qualifier", NS)
        assert qualifier.get("uri") == RECOGNISED_POLICIES
        assert [e.text for e in info.iterfind(".//s:PolicyIdentifier/x:Identifier", NS)] == [f"urn:oid:{member.policy}"]
        provider = service.getparent().getparent()
        assert provider.findtext(".//bca:Jurisdiction", namespaces=NS) == code
        assert provider.xpath("string(.//t:PostalAddress[@xml:lang='en']/t:CountryName)", namespaces=NS) == ("HK" if code == "HK" else "CN")


@pytest.mark.parametrize("where, old, new", [
    ("a provider's name", b"Hong Kong Demo CA</Name>", b"Hong Kong Demo CB</Name>"),
    ("the sequence number", b"<TSLSequenceNumber>1<", b"<TSLSequenceNumber>2<"),
    ("the XAdES signing time", b"<xades:SigningTime>2", b"<xades:SigningTime>1"),
])
def test_one_changed_byte_fails_verification(federation, tmp_path, where, old, new):
    ca, _ = federation
    xml = ca.published_trust_list().xml
    assert xml.count(old) == 1, where
    damaged = xml.replace(old, new)
    assert sum(a != b for a, b in zip(xml, damaged, strict=True)) == 1
    path, bridge_pem = tmp_path / "damaged.xml", tmp_path / "bridge.pem"
    path.write_bytes(damaged)
    bridge_pem.write_text(ca.certificate_pem())
    assert xmlsec1(path, bridge_pem).returncode != 0
    from signxml.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        signxml_verify(damaged, bridge_pem.read_bytes())


def test_the_sequence_number_moves_with_the_content_and_only_with_it(federation, bridge_home):
    from bridge.service import BridgeCA

    ca, ids = federation
    first = ca.published_trust_list()
    # A token revocation moves the epoch (every process forgets its token
    # cache) but not the list: same number, same signed bytes.
    token_id = ca.principal(ca.create_token("platform"))[0]
    before = ca.store.epoch()
    ca.revoke_token(token_id)
    assert ca.store.epoch() > before
    again = ca.published_trust_list()
    assert (again.sequence, again.xml, again.json) == (first.sequence, first.xml, first.json)

    _enrollment, hk, serial = ids["HK"]
    ca.revoke(serial, "keyCompromise")
    revoked = ca.published_trust_list()
    assert revoked.sequence == first.sequence + 1
    assert revoked.content_sha256 != first.content_sha256
    service = services(revoked.xml)[sha256(hk.root)]
    assert service.findtext("t:ServiceInformation/t:ServiceStatus", namespaces=NS) == STATUS_URI + WITHDRAWN
    history = service.findall("t:ServiceHistory/t:ServiceHistoryInstance", NS)
    assert [h.findtext("t:ServiceStatus", namespaces=NS) for h in history] == [STATUS_URI + GRANTED]
    granted_at = history[0].findtext("t:StatusStartingTime", namespaces=NS)
    withdrawn_at = service.findtext("t:ServiceInformation/t:StatusStartingTime", namespaces=NS)
    assert granted_at <= withdrawn_at
    # History instances name the service by subject and key identifier (TS 119 612 5.6.3).
    assert history[0].findtext(".//t:X509SubjectName", namespaces=NS) == hk.root.subject.rfc4514_string()

    # Another process on the same database serves the very same list, without signing again.
    other = BridgeCA.open(bridge_home)
    try:
        theirs = other.published_trust_list()
        assert (theirs.sequence, theirs.xml, theirs.json_signature) == (revoked.sequence, revoked.xml, revoked.json_signature)
    finally:
        other.close()
    issues = [e for e in ca.store.audit_entries() if e.action == "trust_list.issue"]
    assert len(issues) == 2


def test_a_suspension_is_withdrawn_marked_reversible_then_granted_again(federation):
    ca, ids = federation
    enrollment_id, gd, _serial = ids["GD"]
    ca.suspend(enrollment_id, reason="audit pending", actor="admin")
    suspended = services(ca.published_trust_list().xml)[sha256(gd.root)]
    info = suspended.find("t:ServiceInformation", NS)
    assert info.findtext("t:ServiceStatus", namespaces=NS) == STATUS_URI + WITHDRAWN
    assert info.findtext(".//t:AdditionalServiceInformation/t:URI", namespaces=NS) == SUSPENDED

    ca.reinstate(enrollment_id, reason="audit passed", actor="admin")
    published = ca.published_trust_list()
    reinstated = services(published.xml)[sha256(gd.root)]
    assert reinstated.findtext("t:ServiceInformation/t:ServiceStatus", namespaces=NS) == STATUS_URI + GRANTED
    history = reinstated.findall("t:ServiceHistory/t:ServiceHistoryInstance", NS)
    # Newest first: the suspension, then the first grant.
    assert [h.findtext("t:ServiceStatus", namespaces=NS) for h in history] == [STATUS_URI + WITHDRAWN, STATUS_URI + GRANTED]
    assert history[0].findtext(".//t:AdditionalServiceInformation/t:URI", namespaces=NS) == SUSPENDED

    import json

    document = json.loads(published.json)
    listed = [s for p in document["trust_service_providers"] for s in p["services"] if s["id"] == enrollment_id][0]
    assert listed["status"] == "granted"
    assert [h["status"] for h in listed["history"]] == ["suspended", "granted"]


def test_the_json_signature_verifies_with_openssl_and_fails_after_one_changed_byte(federation, tmp_path):
    import json

    ca, ids = federation
    published = ca.published_trust_list()
    document = json.loads(published.json)
    assert document["scheme_information"]["tsl_sequence_number"] == published.sequence
    assert {p["jurisdiction"] for p in document["trust_service_providers"]} == {"HK", "GD"}
    content, signature, bridge_pem = tmp_path / "trust-list.json", tmp_path / "trust-list.json.p7s", tmp_path / "bridge.pem"
    content.write_bytes(published.json)
    signature.write_bytes(published.json_signature)
    bridge_pem.write_text(ca.certificate_pem())
    command = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature), "-content", str(content),
               "-CAfile", str(bridge_pem), "-purpose", "any", "-out", os.devnull]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Verification successful" in done.stderr
    damaged = bytearray(published.json)
    damaged[published.json.index(b'"HK"') + 1] ^= 0x01  # "HK" -> "IK"
    content.write_bytes(bytes(damaged))
    assert subprocess.run(command, capture_output=True, text=True, timeout=60).returncode != 0


def test_an_sm2_only_bridge_refuses_the_xml_but_publishes_the_signed_json(tmp_path, monkeypatch):
    from bridge.service import BridgeCA
    from pki.sm2 import sm2_available

    if not sm2_available():
        pytest.skip("this libcrypto has no SM2")
    ca = BridgeCA.init(tmp_path / "sm2", key_type="sm2", base_url="https://bridge.gd.example")
    try:
        published = ca.published_trust_list()
        assert published.xml is None
        assert "SM2" in published.xml_problem
        assert json_loads(published.json)["scheme_information"]["tsl_sequence_number"] == 1
        assert published.json_signature
    finally:
        ca.close()


def json_loads(data: bytes):
    import json

    return json.loads(data)


def test_a_pkcs11_bridge_signs_the_list_on_its_token(softhsm_token, tmp_path, monkeypatch):
    """The SignedInfo is signed on the token (the key never leaves it), and xmlsec1 accepts the result."""
    import uuid

    from bridge.service import BridgeCA

    module, token_label, pin = softhsm_token
    monkeypatch.setenv("BRIDGECA_PKCS11_PIN", pin)
    ca = BridgeCA.init(tmp_path / "hsm", signer="pkcs11", pkcs11_module=module, pkcs11_token_label=token_label,
                       pkcs11_key_label=f"tl-{uuid.uuid4().hex[:8]}", base_url="https://bridge.gd.example")
    try:
        join(ca, "MO")
        published = ca.published_trust_list()
        path, bridge_pem = tmp_path / "trust-list.xml", tmp_path / "bridge.pem"
        path.write_bytes(published.xml)
        bridge_pem.write_text(ca.certificate_pem())
        done = xmlsec1(path, bridge_pem)
        assert done.returncode == 0, done.stderr
        assert schema_errors(path) == "valid"
    finally:
        ca.close()
