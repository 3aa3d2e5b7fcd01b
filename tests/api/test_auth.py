"""Bearer tokens and roles (INTERFACE.md HTTP table): each authenticated
route refuses the roles it does not name with 403 ``forbidden``, refuses a
missing, malformed, unknown or revoked token with 401 ``unauthorized``; and
an issuer token sees and acts on only the enrollments it made."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.bridge.members import make_member, pem

from .conftest import assert_problem

ALL = {"admin", "issuer", "issuer2", "platform"}
UNKNOWN_ID = "0" * 32
UNKNOWN_SERIAL = "7f" * 16

# (method, path, roles allowed, a body that is valid for the route)
ROUTES = [
    ("POST", "/v1/verify/chain", {"admin", "platform"}, "chain"),
    ("POST", "/v1/verify/signature", {"admin", "platform"}, "signature"),
    ("POST", "/v1/issuers", {"admin", "issuer", "issuer2"}, "enroll"),
    ("GET", "/v1/issuers", ALL, None),
    ("GET", "/v1/issuers/{id}", ALL, None),
    ("POST", "/v1/issuers/{unknown}/approve", {"admin"}, None),
    ("POST", "/v1/issuers/{unknown}/reverse-certificate", {"admin", "issuer", "issuer2"}, "reverse"),
    ("POST", f"/v1/cross-certificates/{UNKNOWN_SERIAL}/revoke", {"admin"}, "revoke"),
]


def body_for(federation, kind):
    hk = federation.members["HK"]
    return {
        None: None,
        "chain": federation.chain_body("HK"),
        "signature": {"certificate": pem(hk.leaf).decode(), "signature": "AAAA", "data": "AAAA"},
        # an already-enrolled root: a role that passes gets 409, never a new enrollment
        "enroll": {"name": "again", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()},
        "reverse": {"certificate": pem(hk.reverse_certificate(federation.ca.certificate)).decode()},
        "revoke": {"reason": "keyCompromise"},
    }[kind]


def call(federation, method, path, headers, body):
    path = path.format(id=federation.ids["HK"], unknown=UNKNOWN_ID)
    if body is None:
        return federation.client.request(method, path, headers=headers)
    return federation.client.request(method, path, headers=headers, json=body)


@pytest.mark.parametrize("method,path,allowed,body", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
@pytest.mark.parametrize("role", sorted(ALL))
def test_role_matrix(federation, method, path, allowed, body, role):
    r = call(federation, method, path, federation.h(role), body_for(federation, body))
    if role in allowed:
        assert r.status_code not in (401, 403), r.text
        assert r.status_code < 500
    else:
        problem = assert_problem(r, 403, "forbidden")
        assert role.rstrip("2") in problem["detail"]


@pytest.mark.parametrize("role", ["platform", "issuer"])
def test_platform_and_issuer_refused_on_admin_routes_for_real_targets(federation, role):
    """Against a real pending enrollment and a real cross-certificate, so a 403 is the only thing in the way."""
    pending = federation.enroll(make_member("MO"))
    r = federation.client.post(f"/v1/issuers/{pending['id']}/approve", headers=federation.h(role))
    assert_problem(r, 403, "forbidden")
    r = federation.client.post(f"/v1/cross-certificates/{federation.serials['HK']}/revoke", headers=federation.h(role),
                               json={"reason": "keyCompromise"})
    assert_problem(r, 403, "forbidden")
    view = federation.client.get(f"/v1/issuers/{federation.ids['HK']}", headers=federation.h("admin")).json()
    assert [x["status"] for x in view["cross_certificates"]] == ["issued"]
    assert federation.client.get(f"/v1/issuers/{pending['id']}", headers=federation.h("admin")).json()["status"] == "pending"


def test_issuer_refused_on_verify_routes(federation):
    for path, body in (("/v1/verify/chain", body_for(federation, "chain")), ("/v1/verify/signature", body_for(federation, "signature"))):
        assert_problem(federation.client.post(path, headers=federation.h("issuer"), json=body), 403, "forbidden")


AUTHENTICATED = [(m, p, b) for m, p, _, b in ROUTES]


@pytest.mark.parametrize("method,path,body", AUTHENTICATED, ids=[f"{m} {p}" for m, p, _ in AUTHENTICATED])
@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer bca_unknown0000000000000000000000000000000000",
    "Bearer not-even-our-prefix", "bearer", "Token bca_x",
], ids=["none", "bearer-empty", "bearer-space", "basic", "unknown", "foreign", "lowercase-empty", "other-scheme"])
def test_401_without_a_valid_token(federation, method, path, body, header):
    headers = {"Authorization": header} if header is not None else {}
    r = call(federation, method, path, headers, body_for(federation, body))
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_bearer_scheme_is_case_insensitive(federation):
    token = federation.tokens["platform"]
    r = federation.client.get("/v1/issuers", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200


@pytest.mark.parametrize("method,path,body", AUTHENTICATED, ids=[f"{m} {p}" for m, p, _ in AUTHENTICATED])
def test_revoked_token_is_refused(federation, method, path, body):
    federation.tokens["doomed"] = federation.ca.create_token("admin")
    assert federation.client.get("/v1/issuers", headers=federation.h("doomed")).status_code == 200
    federation.revoke_token("doomed")
    r = call(federation, method, path, federation.h("doomed"), body_for(federation, body))
    problem = assert_problem(r, 401, "unauthorized")
    assert "revoked" in problem["detail"]


# --------------------------------------------------------------------------- two issuers


def test_two_issuers_see_and_act_only_on_their_own_enrollments(federation):
    c = federation.client
    mine = {federation.ids["HK"], federation.ids["GD"]}  # enrolled by "issuer" (conftest)
    mo = make_member("MO")
    theirs_view = federation.enroll(mo, role="issuer2")
    theirs = theirs_view["id"]

    listed = {i["id"] for i in c.get("/v1/issuers", headers=federation.h("issuer")).json()}
    assert mine <= listed and theirs not in listed
    listed2 = {i["id"] for i in c.get("/v1/issuers", headers=federation.h("issuer2")).json()}
    assert theirs in listed2 and not (mine & listed2)
    for role in ("admin", "platform"):
        assert (mine | {theirs}) <= {i["id"] for i in c.get("/v1/issuers", headers=federation.h(role)).json()}

    # another issuer's enrollment is answered exactly like an unknown one
    unknown = assert_problem(c.get(f"/v1/issuers/{UNKNOWN_ID}", headers=federation.h("issuer2")), 404, "not_found")
    for iid in mine:
        other = assert_problem(c.get(f"/v1/issuers/{iid}", headers=federation.h("issuer2")), 404, "not_found")
        assert other["detail"].replace(iid, UNKNOWN_ID) == unknown["detail"]
    assert_problem(c.get(f"/v1/issuers/{theirs}", headers=federation.h("issuer")), 404, "not_found")
    assert c.get(f"/v1/issuers/{theirs}", headers=federation.h("issuer2")).json()["id"] == theirs

    # acting: reverse-certificate uploads on the other's enrollment are 404 and publish nothing
    before = c.get("/v1/ca/issued-to-bridge.p7c").content
    hk = federation.members["HK"]
    r = c.post(f"/v1/issuers/{federation.ids['HK']}/reverse-certificate", headers=federation.h("issuer2"),
               json={"certificate": pem(hk.reverse_certificate(federation.ca.certificate)).decode()})
    assert_problem(r, 404, "not_found")
    mo_reverse = mo.reverse_certificate(federation.ca.certificate)
    r = c.post(f"/v1/issuers/{theirs}/reverse-certificate", headers=federation.h("issuer"),
               json={"certificate": pem(mo_reverse).decode()})
    assert_problem(r, 404, "not_found")
    assert c.get("/v1/ca/issued-to-bridge.p7c").content == before
    # ... while the owner may
    r = c.post(f"/v1/issuers/{theirs}/reverse-certificate", headers=federation.h("issuer2"),
               json={"certificate": pem(mo_reverse).decode()})
    assert r.status_code == 201, r.text
    # (published once the member is active)
    assert c.post(f"/v1/issuers/{theirs}/approve", headers=federation.h("admin")).status_code == 200
    assert mo_reverse in pkcs7.load_der_pkcs7_certificates(c.get("/v1/ca/issued-to-bridge.p7c").content)
