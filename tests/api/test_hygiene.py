"""Hygiene of the issuer-facing routes (issue 13), through the real server on
SQLite and PostgreSQL:
- one reverse certificate per enrollment and bridge key: a new upload
  replaces the old, so after many uploads another member's invalid leaf
  still fails with its true reason, not budget_exceeded;
- a root name an active member holds under another key is refused (409)
  unless the enrollment declares itself that member's key rollover;
- a 409 never tells one issuer another issuer's enrollment id;
- token and role are decided before the body is read, on every route."""
from __future__ import annotations

import datetime as dt
import json
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from tests.bridge.members import BRIDGE_MEDIUM, LEAF_USAGE, ec_key, make_member, make_root, name, pem

from .test_blacklist_http import served  # noqa: F401  (the fixture: a real server per database)

UPLOADS = 120


def _expired_leaf(member):
    key = ec_key()
    now = dt.datetime.now(dt.timezone.utc)
    ski = member.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder().subject_name(name("CN", "Guangdong Example Org", "expired.gd.example"))
            .issuer_name(member.issuing.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(LEAF_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(member.policy), None)]), critical=False)
            .sign(member.issuing_key, hashes.SHA256()))


def test_many_reverse_uploads_replace_each_other(served):
    hk, gd = make_member("HK"), make_member("GD")
    hk_id, _ = served.join(hk)
    served.join(gd)
    bridge = x509.load_pem_x509_certificate(served.bridge_pem())
    last = None
    for _ in range(UPLOADS):
        last = hk.reverse_certificate(bridge)  # a new serial each time
        served.json("POST", f"/v1/issuers/{hk_id}/reverse-certificate", "issuer", {"certificate": pem(last).decode()}, expect=201)
    status, _, bundle = served.call("GET", "/v1/ca/issued-to-bridge.p7c")
    published = pkcs7.load_der_pkcs7_certificates(bundle)
    from_hk = [c for c in published if c.issuer == hk.root.subject]
    assert [c.serial_number for c in from_hk] == [last.serial_number]  # one: the latest
    assert len(published) == 2  # HK's and GD's

    leaf = _expired_leaf(gd)
    result = served.json("POST", "/v1/verify/chain", "platform", {
        "certificate": pem(leaf).decode(), "intermediates": [pem(gd.issuing).decode()], "policies": [BRIDGE_MEDIUM]})
    assert result["valid"] is False and result["error"]["code"] == "expired", result["error"]

    # The same certificate again is still a conflict, not a silent replacement.
    status, _, raw = served.call("POST", f"/v1/issuers/{hk_id}/reverse-certificate", "issuer", {"certificate": pem(last).decode()})
    assert status == 409 and json.loads(raw)["code"] == "duplicate"


def test_a_root_name_held_by_an_active_member_needs_a_declared_rollover(served):
    hk = make_member("HK")
    hk_id, _ = served.join(hk)
    new_key, same_name = make_root(hk.root.subject)
    body = {"name": "Hong Kong new key", "jurisdiction": "HK", "root_certificate": pem(same_name).decode(),
            "policy_mappings": hk.mappings()}
    status, headers, raw = served.call("POST", "/v1/issuers", "issuer", body)
    assert status == 409 and headers["content-type"] == "application/problem+json"
    problem = json.loads(raw)
    assert problem["code"] == "name_taken" and hk_id not in raw.decode()

    # Another issuer cannot claim the rollover (and learns nothing: 404, as for an unknown id).
    status, _, raw = served.call("POST", "/v1/issuers", "issuer2", {**body, "rollover_of": hk_id})
    assert status == 404 and json.loads(raw)["code"] == "not_found"
    # A name compared as RFC 5280 7.1 compares names: case and spacing do not make it new.
    _, shouted = make_root(x509.Name([x509.NameAttribute(a.oid, a.value if a.oid == NameOID.COUNTRY_NAME else "  " + a.value.upper())
                                      for a in hk.root.subject]))
    status, _, raw = served.call("POST", "/v1/issuers", "issuer", {**body, "root_certificate": pem(shouted).decode()})
    assert status == 409 and json.loads(raw)["code"] == "name_taken"

    view = served.json("POST", "/v1/issuers", "issuer", {**body, "rollover_of": hk_id}, expect=201)
    assert view["status"] == "pending" and view["replaces"] == hk_id
    approved = served.json("POST", f"/v1/issuers/{view['id']}/approve", "admin")
    assert approved["status"] == "active"


def test_a_conflict_never_names_another_issuers_enrollment(served):
    hk = make_member("HK")
    hk_id, _ = served.join(hk, role="issuer")
    status, _, raw = served.call("POST", "/v1/issuers", "issuer2", {
        "name": "copy", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()})
    assert status == 409 and json.loads(raw)["code"] == "already_enrolled"
    assert hk_id not in raw.decode() and not re.search(r"[0-9a-f]{32}", json.loads(raw)["detail"])


def test_token_and_role_are_decided_before_the_body(served):
    """Every route that asks for a token: no token with a broken body is 401;
    on admin routes, a platform token with a broken body is 403."""
    status, _, raw = served.call("GET", "/openapi.json")
    paths = json.loads(raw)["paths"]
    checked = 0
    for path, operations in paths.items():
        for method, operation in operations.items():
            if "security" not in operation or method not in ("post", "put", "patch", "delete"):
                continue
            url = re.sub(r"\{[^}]+\}", "0123456789abcdef0123456789abcdef", path)
            status, _, raw = served.call(method.upper(), url, raw=b"{broken", headers={"Content-Type": "application/json"})
            assert status == 401 and json.loads(raw)["code"] == "unauthorized", (method, path, status, raw[:200])
            checked += 1
    assert checked >= 8
    for url in ("/v1/blacklist/entries", "/v1/issuers/0123456789abcdef0123456789abcdef/approve",
                "/v1/cross-certificates/1f/revoke", "/v1/tokens"):
        status, _, raw = served.call("POST", url, "platform", raw=b"{broken", headers={"Content-Type": "application/json"})
        assert status == 403 and json.loads(raw)["code"] == "forbidden", (url, status, raw[:200])
    # A good token still gets the body's own answer.
    status, _, raw = served.call("POST", "/v1/blacklist/entries", "admin", raw=b"{broken", headers={"Content-Type": "application/json"})
    assert status == 400 and json.loads(raw)["code"] == "invalid_request"
