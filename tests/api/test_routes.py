"""Every route of the contract (INTERFACE.md, HTTP API) through FastAPI's
TestClient over a real bridge home: status, media type and body shape, and
each JSON body checked against the response model the route declares in
OpenAPI (api/schemas.py), so the documentation cannot drift from the answers."""
from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp

from api import schemas
from tests.bridge.members import BRIDGE_HIGH, BRIDGE_MEDIUM, make_member, pem

from .conftest import assert_problem

ANY_POLICY = "2.5.29.32.0"


def verified(model, body):
    """The body validates against the route's declared response model (and is returned)."""
    model.model_validate(body)
    return body


def json_of(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    return response.json()


def chain(fed, role: str = "platform", **body):
    return verified(schemas.VerificationResultModel, json_of(fed.client.post("/v1/verify/chain", headers=fed.h(role), json=body)))


def subjects(result) -> list[str]:
    return [entry["subject"] for entry in result["path"]]


# --------------------------------------------------------------------------- health


def test_health(federation):
    r = federation.client.get("/v1/health")
    assert verified(schemas.Health, json_of(r)) == {"status": "ok"}


# --------------------------------------------------------------------------- verify/chain


def test_chain_from_the_bridge_with_a_bridge_policy(federation):
    hk = federation.members["HK"]
    result = chain(federation, **federation.chain_body("HK", policies=[BRIDGE_MEDIUM]))
    assert result["valid"] is True and result["error"] is None
    assert result["policies"] == [BRIDGE_MEDIUM]
    bridge_subject = federation.ca.certificate.subject.rfc4514_string()
    assert subjects(result) == [hk.leaf.subject.rfc4514_string(), hk.issuing.subject.rfc4514_string(),
                                hk.root.subject.rfc4514_string(), bridge_subject]
    assert result["path"][0]["sha256"] == hk.leaf.fingerprint(hashes.SHA256()).hex()
    assert result["path"][0]["serial"] == format(hk.leaf.serial_number, "x")
    # auto: the cross-certificate is checked against the bridge's CRL; the member's
    # certificates name no CRL/OCSP source, so they are not checked; the anchor has no entry.
    # The anchor's entry too says it was not checked (it is trusted as it is).
    assert [e.get("revocation") for e in result["path"]] == ["not_checked", "not_checked", "good", "not_checked"]
    assert "CRL" in result["path"][2]["revocation_source"]
    assert result["revocation"] == "partial"


def test_chain_from_a_member_root_with_that_members_policy(federation):
    gd, hk = federation.members["GD"], federation.members["HK"]
    result = chain(federation, **federation.chain_body("HK", trust_anchor=federation.ids["GD"], policies=[gd.policy]))
    assert result["valid"] is True, result["error"]
    assert result["policies"] == [gd.policy]
    # leaf -> HK issuing -> HK root (cross-certificate) -> bridge (reverse certificate from GD) -> GD root
    assert subjects(result)[2] == hk.root.subject.rfc4514_string()
    assert subjects(result)[3] == federation.ca.certificate.subject.rfc4514_string()
    assert subjects(result)[-1] == gd.root.subject.rfc4514_string()
    assert result["path"][3]["revocation"] == "good"  # the published reverse certificate, from the bridge's records


def test_require_explicit_policy_defaults_to_true_when_policies_are_named(federation):
    body = federation.chain_body("HK", policies=[BRIDGE_HIGH])  # HK maps only BRIDGE_MEDIUM
    result = chain(federation, **body)
    assert result["valid"] is False
    assert result["error"]["code"] == "policy_required"
    assert isinstance(result["error"]["certificate"], int) and result["error"]["message"]
    relaxed = chain(federation, **body, require_explicit_policy=False)
    assert relaxed["valid"] is True and relaxed["policies"] == []
    # anyPolicy alone requires nothing
    assert chain(federation, **federation.chain_body("HK", policies=[ANY_POLICY]))["valid"] is True


def test_member_policy_is_not_valid_from_the_bridge_without_a_mapping(federation):
    gd = federation.members["GD"]
    result = chain(federation, **federation.chain_body("HK", policies=[gd.policy]))
    assert result["valid"] is False and result["error"]["code"] == "policy_required"


def test_revocation_modes(federation):
    off = chain(federation, **federation.chain_body("HK", revocation="off"))
    assert off["valid"] is True and off["revocation"] == "not_checked"
    assert all(e.get("revocation") in (None, "not_checked") for e in off["path"])
    required = chain(federation, **federation.chain_body("HK", revocation="require"))
    assert required["valid"] is False and required["error"]["code"] == "revocation_unknown"
    auto = chain(federation, **federation.chain_body("HK", revocation="auto"))
    assert auto["valid"] is True and auto["revocation"] == "partial"


def test_chain_at_a_time_before_the_cross_certificate(federation):
    result = chain(federation, **federation.chain_body("HK", at="2001-01-01T00:00:00Z"))
    # The bridge, the trust anchor, is not valid yet either, and is checked first.
    assert result["valid"] is False and result["error"]["code"] == "anchor_invalid"
    assert result["error"]["certificate"] == len(result["path"]) - 1
    result = chain(federation, **federation.chain_body("HK", at="2001-01-01T00:00:00Z"), anchor_constraints=False)
    assert result["valid"] is False and result["error"]["code"] in ("not_yet_valid", "no_path")


def test_an_invalid_chain_is_a_200_with_valid_false(federation):
    lone = make_member("MO")  # never enrolled
    result = chain(federation, certificate=pem(lone.leaf).decode(), intermediates=[pem(lone.issuing).decode()])
    assert result["valid"] is False and result["error"]["code"] == "no_path"


def test_pending_member_cannot_be_the_trust_anchor(federation):
    view = federation.enroll(make_member("SZ"))
    r = federation.client.post("/v1/verify/chain", headers=federation.h("platform"),
                               json=federation.chain_body("HK", trust_anchor=view["id"]))
    assert_problem(r, 422, "issuer_not_active")


def test_admin_may_verify(federation):
    assert chain(federation, role="admin", **federation.chain_body("GD"))["valid"] is True


# --------------------------------------------------------------------------- lifecycle, on SQLite and PostgreSQL


def test_lifecycle_revoke_a_cross_certificate(fresh_federation):
    fed = fresh_federation
    c = fed.client
    body = fed.chain_body("HK", policies=[BRIDGE_MEDIUM])
    assert chain(fed, **body)["valid"] is True
    # issuer view lists the cross-certificate as issued
    view = verified(schemas.IssuerView, json_of(c.get(f"/v1/issuers/{fed.ids['HK']}", headers=fed.h("admin"))))
    assert view["status"] == "active"
    assert [(x["serial"], x["status"]) for x in view["cross_certificates"]] == [(fed.serials["HK"], "issued")]

    r = c.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    result = verified(schemas.RevokeResult, json_of(r))
    assert result["serial"] == fed.serials["HK"] and result["status"] == "revoked" and result["reason"] == "keyCompromise"
    assert result["crl_number"] >= 2

    after = chain(fed, **body)
    assert after["valid"] is False and after["error"]["code"] == "revoked"
    assert after["error"]["certificate"] == 2 and after["path"][2]["revocation"] == "revoked"
    # GD is untouched
    assert chain(fed, **fed.chain_body("GD"))["valid"] is True

    again = c.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    assert_problem(again, 409)

    view = json_of(c.get(f"/v1/issuers/{fed.ids['HK']}", headers=fed.h("admin")))
    assert view["cross_certificates"][0]["status"] == "revoked"
    assert view["cross_certificates"][0]["revocation_reason"] == "keyCompromise"

    # the CRL lists it, the issued-by bundle drops it
    crl = x509.load_der_x509_crl(c.get("/v1/crl").content)
    assert crl.get_revoked_certificate_by_serial_number(int(fed.serials["HK"], 16)) is not None
    bundle = pkcs7.load_der_pkcs7_certificates(c.get("/v1/ca/issued-by-bridge.p7c").content)
    assert [format(b.serial_number, "x") for b in bundle] == [fed.serials["GD"]]


def test_revoke_without_a_body_uses_unspecified(fresh_federation):
    fed = fresh_federation
    r = fed.client.post(f"/v1/cross-certificates/{fed.serials['GD']}/revoke", headers=fed.h("admin"))
    assert verified(schemas.RevokeResult, json_of(r))["reason"] == "unspecified"


def test_revoke_accepts_colon_separated_upper_case_serials(fresh_federation):
    fed = fresh_federation
    serial = fed.serials["GD"]
    text = serial if len(serial) % 2 == 0 else "0" + serial
    colons = ":".join(text[i:i + 2] for i in range(0, len(text), 2)).upper()
    r = fed.client.post(f"/v1/cross-certificates/{colons}/revoke", headers=fed.h("admin"), json={"reason": "superseded"})
    assert json_of(r)["serial"] == serial


# --------------------------------------------------------------------------- issuers


def test_enroll_list_show_approve_reverse(federation):
    c = federation.client
    sz = make_member("SZ")
    r = c.post("/v1/issuers", headers=federation.h("issuer"), json={
        "name": "Shenzhen Route Test CA", "jurisdiction": "SZ", "root_certificate": pem(sz.root).decode(),
        "policy_mappings": sz.mappings(), "permitted_subtrees": [{"type": "directoryName", "value": "C=CN"}],
        "excluded_subtrees": [{"type": "dNSName", "value": "forbidden.example"}], "path_length": 1,
    })
    view = verified(schemas.IssuerView, json_of(r, 201))
    assert view["status"] == "pending" and view["jurisdiction"] == "SZ" and view["cross_certificates"] == []
    assert view["policy_mappings"] == sz.mappings()
    assert view["permitted_subtrees"] == [{"type": "directoryName", "value": "C=CN"}]
    assert view["path_length"] == 1
    assert x509.load_pem_x509_certificate(view["root_certificate"].encode()) == sz.root

    listed = json_of(c.get("/v1/issuers", headers=federation.h("issuer")))
    for item in listed:
        verified(schemas.IssuerView, item)
    assert view["id"] in [item["id"] for item in listed]
    shown = verified(schemas.IssuerView, json_of(c.get(f"/v1/issuers/{view['id']}", headers=federation.h("platform"))))
    assert shown["id"] == view["id"] and shown["status"] == "pending"

    approved = verified(schemas.ApprovedIssuerView, json_of(c.post(f"/v1/issuers/{view['id']}/approve", headers=federation.h("admin"))))
    assert approved["status"] == "active"
    cross = x509.load_pem_x509_certificate(approved["cross_certificate"].encode())
    assert format(cross.serial_number, "x") == approved["serial"]
    assert cross.issuer == federation.ca.certificate.subject and cross.subject == sz.root.subject
    assert cross.public_key() == sz.root.public_key()
    assert_problem(c.post(f"/v1/issuers/{view['id']}/approve", headers=federation.h("admin")), 409)

    reverse = sz.reverse_certificate(federation.ca.certificate)
    r = c.post(f"/v1/issuers/{view['id']}/reverse-certificate", headers=federation.h("issuer"),
               json={"certificate": pem(reverse).decode()})
    uploaded = verified(schemas.ReverseCertificateView, json_of(r, 201))
    assert uploaded["id"] == view["id"] and uploaded["sha256"] == reverse.fingerprint(hashes.SHA256()).hex()
    bundle = pkcs7.load_der_pkcs7_certificates(c.get("/v1/ca/issued-to-bridge.p7c").content)
    assert reverse in bundle
    # now SZ is a trust anchor for platforms
    federation.members["SZ"], federation.ids["SZ"] = sz, view["id"]
    assert chain(federation, **federation.chain_body("GD", trust_anchor=view["id"], policies=[sz.policy]))["valid"] is True


def test_admin_may_enroll_and_upload(federation):
    mo = make_member("MO")
    view = federation.enroll(mo, role="admin")
    r = federation.client.post(f"/v1/issuers/{view['id']}/reverse-certificate", headers=federation.h("admin"),
                               json={"certificate": pem(mo.reverse_certificate(federation.ca.certificate)).decode()})
    assert json_of(r, 201)["id"] == view["id"]


def test_enroll_rejections(federation):
    hk = federation.members["HK"]
    c = federation.client
    again = c.post("/v1/issuers", headers=federation.h("issuer"), json={
        "name": "HK again", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()})
    assert_problem(again, 409, "already_enrolled")
    leaf = c.post("/v1/issuers", headers=federation.h("issuer"), json={
        "name": "a leaf", "jurisdiction": "HK", "root_certificate": pem(hk.leaf).decode(), "policy_mappings": hk.mappings()})
    assert_problem(leaf, 422, "not_self_signed")
    wrong_reverse = c.post(f"/v1/issuers/{federation.ids['HK']}/reverse-certificate", headers=federation.h("issuer"),
                           json={"certificate": pem(hk.leaf).decode()})
    assert_problem(wrong_reverse, 422)


# --------------------------------------------------------------------------- publication


def test_ca_certificate_pem_and_der(federation):
    c = federation.client
    r = c.get("/v1/ca/certificate")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-pem-file")
    assert x509.load_pem_x509_certificate(r.content) == federation.ca.certificate
    assert "accept" in r.headers["vary"].lower()
    r = c.get("/v1/ca/certificate", headers={"Accept": "application/pkix-cert"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-cert"
    assert r.content == federation.ca.certificate.public_bytes(serialization.Encoding.DER)


def test_crl(federation):
    before = dt.datetime.now(dt.timezone.utc)
    r = federation.client.get("/v1/crl")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(r.content)
    bridge = federation.ca.certificate
    assert crl.issuer == bridge.subject and crl.is_signature_valid(bridge.public_key())
    max_age = int(r.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= (crl.next_update_utc - before).total_seconds()


@pytest.mark.parametrize("route,expected", [("issued-by-bridge.p7c", "cross"), ("issued-to-bridge.p7c", "reverse")])
def test_p7c_bundles(federation, route, expected):
    r = federation.client.get(f"/v1/ca/{route}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkcs7-mime"
    certs = pkcs7.load_der_pkcs7_certificates(r.content)
    bridge = federation.ca.certificate
    for code in ("HK", "GD"):
        m = federation.members[code]
        if expected == "cross":
            assert any(c.subject == m.root.subject and c.issuer == bridge.subject for c in certs)
        else:
            assert any(c.issuer == m.root.subject and c.subject == bridge.subject for c in certs)
    if expected == "cross":
        assert {format(c.serial_number, "x") for c in certs} >= {federation.serials["HK"], federation.serials["GD"]}


def _ocsp_request(cross: x509.Certificate, bridge: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cross, bridge, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _check_ocsp(r, bridge, serial: int) -> ocsp.OCSPResponse:
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    response = ocsp.load_der_ocsp_response(r.content)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.serial_number == serial
    key = bridge.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    max_age = int(r.headers["cache-control"].split("max-age=")[1])
    assert max_age <= (response.next_update_utc - response.this_update_utc).total_seconds()
    return response


def test_ocsp_post_and_get_good_then_revoked(fresh_federation):
    fed = fresh_federation
    c = fed.client
    bridge = fed.ca.certificate
    serial = int(fed.serials["HK"], 16)
    view = json_of(c.get(f"/v1/issuers/{fed.ids['HK']}", headers=fed.h("admin")))
    cross = x509.load_pem_x509_certificate(view["cross_certificates"][0]["certificate"].encode())
    request = _ocsp_request(cross, bridge, nonce=b"0123456789abcdef")

    post = _check_ocsp(c.post("/v1/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"}), bridge, serial)
    assert post.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert post.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"

    plain = _ocsp_request(cross, bridge)
    encoded = quote(base64.b64encode(plain).decode(), safe="")  # RFC 6960 A.1: url-encoding of the base64
    get = _check_ocsp(c.get(f"/v1/ocsp/{encoded}"), bridge, serial)
    assert get.certificate_status == ocsp.OCSPCertStatus.GOOD

    assert json_of(c.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"),
                          json={"reason": "cessationOfOperation"}))["status"] == "revoked"
    get = _check_ocsp(c.get(f"/v1/ocsp/{encoded}"), bridge, serial)
    assert get.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert get.revocation_reason == x509.ReasonFlags.cessation_of_operation
    post = _check_ocsp(c.post("/v1/ocsp", content=plain, headers={"Content-Type": "application/ocsp-request"}), bridge, serial)
    assert post.certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_ocsp_get_with_unescaped_base64(federation):
    """Clients that do not url-encode '/', '+' and '=' are answered too."""
    bridge = federation.ca.certificate
    view = json_of(federation.client.get(f"/v1/issuers/{federation.ids['GD']}", headers=federation.h("admin")))
    cross = x509.load_pem_x509_certificate(view["cross_certificates"][0]["certificate"].encode())
    for nonce in (b"", b"\xff" * 8, b"\xfb\xef\xbe" * 3):
        request = _ocsp_request(cross, bridge, nonce or None)
        raw = base64.b64encode(request).decode()
        response = _check_ocsp(federation.client.get(f"/v1/ocsp/{raw}"), bridge, cross.serial_number)
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_for_a_certificate_the_bridge_did_not_issue(federation):
    hk = federation.members["HK"]
    request = ocsp.OCSPRequestBuilder().add_certificate(hk.issuing, hk.root, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    r = federation.client.post("/v1/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert r.headers["cache-control"] == "no-store"
