"""Every sample list of ../shared/conformance/etsi-tl/samples/ read by
bridge/trust_lists.py, with what each yields written here: scheme, counts,
status history, schema (the shared XSD, offline through its catalog) and the
signature at the list's ListIssueDateTime. Three samples were edited after
signing (DSS test data): their digests no longer match, and that is what
the reader must say."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from bridge.trust_lists import (
    RECOGNISED_STATUSES,
    Mapping,
    TrustListError,
    check_signature,
    load_xml,
    parse_trust_list,
    policy_matches,
    read_trust_list,
)

ETSI = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "etsi-tl"
SAMPLES = ETSI / "samples"
XSD = ETSI / "xsd"

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is not there")

# file: (TSL version, sequence number, territory, ListIssueDateTime, NextUpdate, providers, services, pointers,
#        ServiceHistoryInstances, MRA equivalences, signature status at issue time)
EXPECTED = {
    "tlv5.xml": (5, 49, "FI", "2024-11-14T08:11:01Z", "2025-05-14T07:11:01Z", 1, 19, 1, 14, 0, "valid"),
    "tlv6.xml": (6, 49, "FI", "2024-11-14T08:11:01Z", "2025-05-14T07:11:01Z", 1, 19, 1, 14, 0, "valid"),
    "lotl.xml": (4, 108, "EU", "2015-02-08T23:00:00Z", "2015-07-05T22:00:00Z", 0, 0, 51, 0, 0, "valid"),
    # Edited after signing: reference 0 (the list itself) no longer matches its digest.
    "mra/mra-lotl.xml": (5, 6, "EU", "2022-06-27T09:30:08Z", "2032-06-27T09:30:08Z", 0, 0, 44, 0, 1, "digest_mismatch"),
    "mra/tc-tl.xml": (5, 1, "TC", "2020-05-17T01:00:00Z", "2020-11-15T00:00:00Z", 1, 1, 0, 0, 0, "digest_mismatch"),
    "mra/be-tl.xml": (5, 1, "BE", "2020-05-17T01:00:00Z", "2020-10-01T01:00:00Z", 1, 1, 1, 0, 0, "valid"),
    "mra/mra-tl-zz.xml": (5, 4, "ZZ", "2022-06-08T11:37:21Z", "2032-06-08T11:37:21Z", 1, 1, 1, 0, 1, "digest_mismatch"),
}


def _embedded_signer(data: bytes) -> bytes:
    import base64

    root = load_xml(data)
    node = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    return base64.b64decode("".join(node.text.split()))


def test_all_seven_samples_are_listed():
    found = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.xml"))
    assert found == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name):
    version, seq, territory, issued, next_update, tsps, services, pointers, history, mra, signature = EXPECTED[name]
    data = (SAMPLES / name).read_bytes()
    reading = read_trust_list(data, allowed=[_embedded_signer(data)], schema_dir=XSD)
    summary = reading.to_dict()
    assert (summary["version"], summary["sequence_number"], summary["territory"]) == (version, seq, territory)
    assert (summary["issued"], summary["next_update"]) == (issued, next_update)
    assert (summary["providers"], summary["services"], summary["pointers"]) == (tsps, services, pointers)
    assert summary["history_entries"] == history
    assert summary["mra_equivalences"] == mra
    assert summary["schema"] == {"checked": "xsd", "valid": True, "errors": []}
    assert reading.signature.status == signature, reading.signature.detail
    assert reading.signature.to_dict()["at"] == issued  # judged at the list's own issue time
    assert reading.acceptable == (signature == "valid")
    assert reading.sha256 == hashlib.sha256(data).hexdigest()


def test_finnish_list_services_and_history():
    tl = parse_trust_list((SAMPLES / "tlv5.xml").read_bytes())
    assert tl.operator == "Finnish Transport and Communications Agency Traficom"
    first = tl.services[0]
    assert first.name == "VRK Gov. CA for Citizen Qualified Certificates"
    assert first.service_type == "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
    assert first.status.endswith("/withdrawn")
    assert len(first.identity.certificates) == 1 and len(first.history) == 2
    assert "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/QCForESig" in first.qualifiers
    # Before it was withdrawn, the history says what it was: a recognised status.
    withdrawn = first.status_start
    before = first.status_at(withdrawn - dt.timedelta(days=1))
    assert before is not None and before.status in RECOGNISED_STATUSES
    assert first.status_at(withdrawn).status.endswith("/withdrawn")
    # Services listed by X509SKI and X509SubjectName are read too.
    assert sum(len(s.identity.skis) for s in tl.services) > 0
    assert sum(len(s.identity.subject_names) for s in tl.services) > 0
    # v5 and v6 of the same list say the same things.
    v6 = parse_trust_list((SAMPLES / "tlv6.xml").read_bytes())
    assert [(s.name, s.status, s.status_start) for s in v6.services] == [(s.name, s.status, s.status_start) for s in tl.services]


def test_mra_mappings():
    """The EU MRA extension: the third country's (ZZ) service types and statuses onto the EU's, both ways."""
    lotl = parse_trust_list((SAMPLES / "mra/mra-lotl.xml").read_bytes())
    (eq,) = [e for p in lotl.pointers for e in p.equivalences]
    assert eq.legal_identifier == "QCForESig"
    assert eq.status == "http://ec.europa.eu/tools/lotl/mra/enacted"
    assert eq.service_types == (("http://zz-trusted-list.go.zz/TrstSvc/Svctype/CA/QC/for-eSig", "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"),)
    assert len(eq.qualifiers) == 8
    mapping = Mapping.from_equivalence(eq)
    assert mapping.statuses["http://zz-trusted-list.go.zz/TrstSvc/TrustedList/Svcstatus/granted"] == \
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
    assert mapping.statuses["http://zz-trusted-list.go.zz/TrstSvc/TrustedList/Svcstatus/withdrawn"].endswith("/withdrawn")
    zz = parse_trust_list((SAMPLES / "mra/mra-tl-zz.xml").read_bytes())
    (service,) = zz.services
    assert service.policies == ("1.3.6.1.4.1.314159.1.2",)
    assert service.qualifiers == ("http://zz-trusted-list.go.zz/TrstSvc/TrustedList/SvcInfoExt/QCWithQSCD",)
    # The ZZ list's own pointer states the same agreement from its side (EU types onto ZZ's).
    (zz_eq,) = [e for p in zz.pointers for e in p.equivalences]
    assert zz_eq.service_types == (("http://uri.etsi.org/TrstSvc/Svctype/CA/QC", "http://zz-trusted-list.go.zz/TrstSvc/Svctype/CA/QC/for-eSig"),)


def test_signature_needs_an_allowed_signer():
    data = (SAMPLES / "tlv5.xml").read_bytes()
    other = _embedded_signer((SAMPLES / "mra/be-tl.xml").read_bytes())
    result, signed = check_signature(data, parse_trust_list(data).issued, allowed=[other])
    assert result.status == "signer_not_allowed" and result.cryptographic == "ok" and signed is None


def test_signature_is_judged_at_issue_time():
    """tc-tl.xml's signer certificate starts a day after the list's
    ListIssueDateTime: besides its digest, its time is wrong, and a digest
    repaired would still not make it valid (checked on be-tl.xml moved back in time)."""
    data = (SAMPLES / "mra/be-tl.xml").read_bytes()
    signer = _embedded_signer(data)
    from cryptography import x509

    not_before = x509.load_der_x509_certificate(signer).not_valid_before_utc
    result, _ = check_signature(data, not_before - dt.timedelta(days=1), allowed=[signer])
    assert result.status == "signer_not_valid_at_issue" and result.cryptographic == "ok"


def test_edited_list_fails_digest_and_schema():
    data = (SAMPLES / "mra/be-tl.xml").read_bytes()
    edited = data.replace(b"<TSLSequenceNumber>1</TSLSequenceNumber>", b"<TSLSequenceNumber>2</TSLSequenceNumber>")
    assert edited != data
    reading = read_trust_list(edited, allowed=[_embedded_signer(data)], schema_dir=XSD)
    assert reading.signature.status == "digest_mismatch" and not reading.acceptable
    broken = data.replace(b"<SchemeTerritory>BE</SchemeTerritory>", b"<SchemeTerritory>BE</SchemeTerritory><Bogus/>", 1)
    schema = read_trust_list(broken, schema_dir=XSD).schema
    assert schema.checked == "xsd" and not schema.valid and schema.errors
    # Without a schema directory only the structural checks run, and the result says so.
    assert read_trust_list(data).schema.checked == "structural"


@pytest.mark.parametrize("data, code", [
    (b"not xml", "malformed_trust_list"),
    (b"<a/>", "malformed_trust_list"),
    (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#">&e;</TrustServiceStatusList>',
     "malformed_trust_list"),
])
def test_refuses_what_is_not_a_list(data, code):
    with pytest.raises(TrustListError) as caught:
        parse_trust_list(data)
    assert caught.value.code == code


def test_policy_prefix():
    prefix = "2.16.344.8.2.2008.810.2"
    assert policy_matches(prefix + ".2012.1.0", prefix)
    assert policy_matches(prefix, prefix)
    assert not policy_matches("2.16.344.8.2.2008.810.21", prefix)


# --------------------------------------------------------------------------- bridgeca trust-list


def _cli(capsys, *argv):
    from api.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_verify_exit_codes(capsys, tmp_path):
    code, out, err = _cli(capsys, "trust-list", "verify", str(SAMPLES / "tlv6.xml"), "--schema-dir", str(XSD), "--json")
    result = json.loads(out)
    assert code == 0 and result["signature"]["status"] == "valid" and result["schema"]["checked"] == "xsd"
    code, out, _ = _cli(capsys, "trust-list", "verify", str(SAMPLES / "mra/mra-lotl.xml"), "--json")
    assert code == 1 and json.loads(out)["signature"]["status"] == "digest_mismatch"
    assert json.loads(out)["schema"]["checked"] == "structural"
    other = tmp_path / "other.der"
    other.write_bytes(_embedded_signer((SAMPLES / "mra/be-tl.xml").read_bytes()))
    code, out, _ = _cli(capsys, "trust-list", "verify", str(SAMPLES / "tlv5.xml"), "--signer", str(other), "--json")
    assert code == 1 and json.loads(out)["signature"]["status"] == "signer_not_allowed"
    junk = tmp_path / "junk.xml"
    junk.write_bytes(b"<html/>")
    code, out, err = _cli(capsys, "trust-list", "verify", str(junk))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "trust-list", "verify", str(tmp_path / "missing.xml"))
    assert code == 2 and "cannot read" in err


def test_cli_register_show_list_fetch(capsys, tmp_path):
    from api.cli import main

    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url"]) == 0
    capsys.readouterr()
    be = SAMPLES / "mra/be-tl.xml"
    signer = tmp_path / "be-signer.der"
    signer.write_bytes(_embedded_signer(be.read_bytes()))
    code, out, err = _cli(capsys, "trust-list", "register", "--home", str(home), "--name", "BE", "--file", str(be),
                          "--signer", str(signer), "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["outcome"]["accepted"] is True and view["latest"]["territory"] == "BE"
    code, out, _ = _cli(capsys, "trust-list", "list", "--home", str(home), "--json")
    assert [v["id"] for v in json.loads(out)] == [view["id"]]
    code, out, _ = _cli(capsys, "trust-list", "show", view["id"], "--home", str(home), "--services", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["versions"][0]["sequence_number"] == 1 and shown["services"][0]["name"] == "CAQC service"
    code, _, err = _cli(capsys, "trust-list", "fetch", view["id"], "--home", str(home))
    assert code == 1 and "not_fetchable" in err  # an uploaded list has no URL
    # An edited list (digest no longer matches) is refused at registration; nothing is kept.
    code, _, err = _cli(capsys, "trust-list", "register", "--home", str(home), "--name", "ZZ",
                        "--file", str(SAMPLES / "mra/mra-tl-zz.xml"), "--signer", str(signer))
    assert code == 1 and "trust_list_signature_invalid" in err
    code, _, err = _cli(capsys, "trust-list", "register", "--home", str(home), "--name", "x", "--url", "ftp://x/",
                        "--signer", str(signer))
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, out, _ = _cli(capsys, "trust-list", "list", "--home", str(home), "--json")
    assert len(json.loads(out)) == 1
    assert main(["audit", "verify", "--home", str(home)]) == 0
