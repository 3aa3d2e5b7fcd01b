"""The console without a browser (api/console/), on the in-process app:
sign-in and its cookie, CSRF on every form, roles, no token in any page,
the catalogue in both languages, actions audited as the signing-in token,
the verification page, and 4xx (never 500) for bad input."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.console import i18n

from .conftest import PROBLEM

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "console" / "templates"
ADMIN_PAGES = ("/admin", "/admin/queues", "/admin/members", "/admin/blacklist", "/admin/audit", "/admin/details?id=bridge")


def _client(federation, **kwargs) -> TestClient:
    return TestClient(federation.app, raise_server_exceptions=False, **kwargs)


def sign_in(federation, role: str = "admin", **kwargs) -> tuple[TestClient, str]:
    """A client of its own (its own cookies) signed in with the ``role``'s token; (client, CSRF token)."""
    client = _client(federation, **kwargs)
    page = client.get("/admin/login")
    r = client.post("/admin/login", data={"csrf": CSRF.search(page.text).group(1), "token": federation.tokens[role]},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    landing = client.get(r.headers["location"])
    assert landing.status_code == 200
    return client, CSRF.search(landing.text).group(1)


def _token_id(federation, role: str) -> int:
    return federation.ca.principal(federation.tokens[role])[0]


def test_sign_in_gives_a_strict_httponly_expiring_cookie_and_no_token_in_any_page(federation):
    client = _client(federation)
    page = client.get("/admin/login")
    assert page.status_code == 200 and 'type="password"' in page.text
    r = client.post("/admin/login", data={"csrf": CSRF.search(page.text).group(1), "token": federation.tokens["admin"]},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("bridgeca_session="))
    session_token = cookie.split(";")[0].split("=", 1)[1]
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP here; see the TLS test below
    assert 0 < int(next(f for f in flags if f.startswith("max-age=")).split("=")[1]) <= 8 * 3600
    assert session_token != federation.tokens["admin"]
    for path in ADMIN_PAGES + ("/verify", f"/admin/members/{federation.ids['HK']}"):
        shown = client.get(path)
        assert shown.status_code == 200, path
        assert federation.tokens["admin"] not in shown.text and session_token not in shown.text, path
        assert shown.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in shown.headers["content-security-policy"]
        assert "?token=" not in shown.text and "http://" not in shown.text.replace("http://www.w3.org", ""), path


def test_the_cookie_is_secure_under_tls(federation):
    client = _client(federation, base_url="https://testserver")
    page = client.get("/admin/login")
    r = client.post("/admin/login", data={"csrf": CSRF.search(page.text).group(1), "token": federation.tokens["admin"]},
                    follow_redirects=False)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("bridgeca_session="))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


@pytest.mark.parametrize(("token", "status"), [("bca_not-a-real-token", 401), ("", 401), ("issuer", 403)])
def test_sign_in_refuses_unknown_tokens_and_issuers(federation, token, status):
    client = _client(federation)
    page = client.get("/admin/login")
    r = client.post("/admin/login", data={"csrf": CSRF.search(page.text).group(1),
                                          "token": federation.tokens.get(token, token)}, follow_redirects=False)
    assert r.status_code == status and "bridgeca_session" not in r.headers.get("set-cookie", "")
    assert 'data-code="' in r.text


def test_sign_in_without_its_csrf_token_is_refused(federation):
    client = _client(federation)
    client.get("/admin/login")
    r = client.post("/admin/login", data={"token": federation.tokens["admin"]}, follow_redirects=False)
    assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
    r = client.post("/admin/login", data={"token": federation.tokens["admin"], "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403 and "bridgeca_session" not in r.headers.get("set-cookie", "")


def _routes(routes):
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router's routes (api/security.py reads them alike)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def _console_posts(app) -> list[str]:
    paths = []
    for route in _routes(app.routes):
        if "POST" in getattr(route, "methods", ()) and route.path.startswith(("/admin", "/verify")) and route.path != "/admin/login":
            paths.append(re.sub(r"\{[^}]+\}", "0" * 32, route.path))
    return paths


def test_every_console_form_post_needs_the_session_csrf_token(federation):
    client, csrf = sign_in(federation)
    posts = _console_posts(federation.app)
    assert len(posts) >= 12  # approve, reject, confirm, cancel, member actions, mappings, revoke, blacklist, verify, logout
    for path in posts:
        for form in ({}, {"csrf": "0" * 40}, {"csrf": csrf + "x"}):
            r = client.post(path, data={**form, "reason": "no csrf"}, follow_redirects=False)
            assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text, (path, form, r.status_code)
    # The refusal changed nothing: HK is still active, and the session still works.
    assert federation.ca.issuer(federation.ids["HK"])["status"] == "active"
    assert client.get("/admin").status_code == 200


def test_a_platform_session_opens_the_verification_page_only(federation):
    client, _csrf = sign_in(federation, "platform")
    assert client.get("/", follow_redirects=False).headers["location"] == "/verify"
    assert client.get("/verify").status_code == 200
    for path in ADMIN_PAGES + (f"/admin/members/{federation.ids['HK']}",):
        r = client.get(path)
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text, path
    r = client.get("/admin", headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM and r.json()["code"] == "forbidden"


def test_without_a_session_pages_redirect_to_sign_in_and_actions_do_nothing(federation):
    client = _client(federation)
    for path in ADMIN_PAGES + ("/verify", "/"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin/login", path
    r = client.post(f"/admin/members/{federation.ids['HK']}/suspend", data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and federation.ca.issuer(federation.ids["HK"])["status"] == "active"
    # An API token put in the cookie by hand is not a session (only sign-in makes one).
    client.cookies.set("bridgeca_session", federation.tokens["admin"])
    assert client.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"


def test_actions_are_audited_as_the_signing_in_token_and_sign_out_ends_the_session(federation):
    client, csrf = sign_in(federation)
    hk = federation.ids["HK"]
    admin = f"admin:{_token_id(federation, 'admin')}"
    r = client.post(f"/admin/members/{hk}/suspend", data={"csrf": csrf, "reason": "console test"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/members/{hk}?done=suspend"
    assert federation.ca.issuer(hk)["status"] == "suspended"
    page = client.get(r.headers["location"])
    assert "Suspended: its cross-certificates are on hold." in page.text and 'id="reinstate"' in page.text
    entries = federation.client.get("/v1/audit", params={"actor": admin}, headers=federation.h("admin")).json()["entries"]
    assert any(e["action"] == "member.suspend" or "suspend" in e["action"] for e in entries), [e["action"] for e in entries]
    # A chain through the suspended member fails on the verification page, its root highlighted.
    body = federation.chain_body("HK")
    r = client.post("/verify", data={"csrf": csrf, "input": body["certificate"] + "".join(body["intermediates"])})
    assert r.status_code == 200 and 'data-valid="false"' in r.text
    assert re.search(r'class="cert failing[^"]*" data-index="2" data-failing="true"', r.text)
    assert 'data-code="suspended"' in r.text and "Revocation: on hold" in r.text  # certificateHold, not revoked
    r = client.post(f"/admin/members/{hk}/reinstate", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and federation.ca.issuer(hk)["status"] == "active"
    r = client.post("/verify", data={"csrf": csrf, "input": body["certificate"] + "".join(body["intermediates"])})
    assert 'data-valid="true"' in r.text and "TOTAL_PASSED" in r.text
    # Sign out: the session's token is revoked (audited as the signing-in token), the cookie cleared.
    session_cookie = client.cookies.get("bridgeca_session")
    r = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    stale = _client(federation)
    stale.cookies.set("bridgeca_session", session_cookie)
    assert stale.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    revoked = federation.client.get("/v1/audit", params={"action": "token.revoke", "actor": admin}, headers=federation.h("admin"))
    assert revoked.json()["entries"], "sign-out is audited as the signing-in token"


def test_the_verification_page_reads_der_and_base64_uploads_and_refuses_garbage(federation):
    import base64

    from cryptography.hazmat.primitives import serialization

    client, csrf = sign_in(federation, "platform")
    leaf = federation.members["GD"].leaf.public_bytes(serialization.Encoding.DER)
    r = client.post("/verify", data={"csrf": csrf, "file_b64": base64.b64encode(leaf).decode()})
    assert r.status_code == 200 and 'id="result"' in r.text  # read as a certificate: a result, valid or not
    r = client.post("/verify", data={"csrf": csrf, "input": "this is not a certificate"})
    assert r.status_code == 400 and 'data-code="malformed_input"' in r.text
    r = client.post("/verify", data={"csrf": csrf, "file_b64": "%%%"})
    assert r.status_code == 400 and 'data-code="invalid_base64"' in r.text
    r = client.post("/verify", data={"csrf": csrf, "input": "  "})
    assert r.status_code == 400
    r = client.post("/verify", data={"csrf": csrf, "input": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()})
    assert 400 <= r.status_code < 500 or 'data-valid="false"' in r.text  # not a CMS: refused or failed, never a 500
    assert r.status_code != 500


def test_bad_input_is_a_4xx_page_never_a_500(federation):
    client, csrf = sign_in(federation)
    cases = [
        ("get", "/admin/members/not%20an%20id", None, 404),
        ("get", "/admin/members/" + "0" * 32, None, 404),
        ("get", "/admin/details?id=nothing-here", None, 404),
        ("get", "/admin/audit?since=yesterday", None, 400),
        ("get", "/admin/audit?after=x", None, 400),
        ("post", "/admin/proposals/not-an-id/confirm", {"csrf": csrf}, 404),
        ("post", "/admin/proposals/" + "0" * 32 + "/confirm", {"csrf": csrf}, 404),
        ("post", "/admin/cross-certificates/zz/revoke", {"csrf": csrf}, 404),
        ("post", "/admin/cross-certificates/" + "1" * 30 + "/revoke", {"csrf": csrf, "reason": "keyCompromise"}, 404),
        ("post", f"/admin/cross-certificates/{federation.serials['GD']}/revoke", {"csrf": csrf, "reason": "no-such-reason"}, 422),
        ("post", "/admin/blacklist", {"csrf": csrf, "kind": "spki_sha256", "value": "abc", "reason": "r"}, 422),
        ("post", "/admin/blacklist", {"csrf": csrf, "kind": "spki_sha256", "value": "ab" * 32}, 400),
        ("post", "/admin/blacklist/" + "0" * 32 + "/remove", {"csrf": csrf}, 404),
        ("post", f"/admin/members/{federation.ids['GD']}/reinstate", {"csrf": csrf}, 409),
        ("post", f"/admin/members/{federation.ids['GD']}/mappings", {"csrf": csrf, "mappings": "only-one-oid"}, 400),
        ("post", "/admin/enrollments/" + "0" * 32 + "/approve", {"csrf": csrf}, 404),
        ("get", "/console/static/..%2Fpages.py", None, 404),
        ("get", "/console/static/nothing.css", None, 404),
    ]
    for method, path, form, status in cases:
        r = client.request(method.upper(), path, data=form, follow_redirects=False)
        assert r.status_code == status, (path, form, r.status_code, r.text[-400:])
    assert federation.ca.issuer(federation.ids["GD"])["status"] == "active"
    r = client.post("/verify", content=b'{"csrf": "x"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    r = client.post("/admin/blacklist", data={"csrf": csrf, "kind": "spki_sha256", "value": "abc", "reason": "r"},
                    headers={"Accept": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM and r.json()["code"] == "invalid_blacklist_entry"


def test_chinese_and_english_labels_and_a_complete_catalogue(federation):
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\('([a-z_.]+)'""", template.read_text()))
    assert len(used) > 100
    prefixes = {key for key in used if key.endswith(".")}  # t('status.' ~ value): families, checked below
    used -= prefixes
    assert prefixes == {"details.kind.", "finding.", "reason.", "revocation.", "status."}
    from typing import get_args

    from bridge.federation_graph import EdgeKind, EdgeStatus, NodeKind
    from pki import errors

    shown = {f"status.{s}" for s in get_args(EdgeStatus)} | {f"details.kind.{k}" for k in get_args(NodeKind) + get_args(EdgeKind)}
    shown |= {f"status.{s}" for s in ("pending", "active", "suspended", "rejected", "withdrawn", "expired", "revoked",
                                      "issued", "held", "removed")}
    shown |= {f"revocation.{r}" for r in ("good", "revoked", "unknown", "stale", "not_checked")}
    shown |= {f"finding.{level}" for level in ("ok", "warn", "fail")}
    shown |= {f"reason.{getattr(errors, name)}" for name in dir(errors) if name.isupper() and isinstance(getattr(errors, name), str)
              and getattr(errors, name).islower() and " " not in getattr(errors, name)}
    used |= shown
    for lang in i18n.LANGUAGES:
        missing = {key for key in used if key not in i18n.MESSAGES[lang]}
        assert not missing, (lang, sorted(missing))
    assert set(i18n.MESSAGES["en"]) == set(i18n.MESSAGES["zh"])
    client, _csrf = sign_in(federation)
    zh = client.get("/admin/queues?lang=zh")
    assert "待办事项" in zh.text and 'lang="zh-CN"' in zh.text
    assert "bridgeca_lang=zh" in zh.headers["set-cookie"]
    assert "联盟概览" in client.get("/admin").text  # remembered
    assert "Work queues" in client.get("/admin/queues?lang=en").text
    refused = client.post("/verify", data={"input": "x"})
    assert refused.status_code == 403 and "Refused" in refused.text
    assert "已拒绝" in client.post("/verify?lang=zh", data={"input": "x"}).text
    first_visit = _client(federation).get("/admin/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录" in first_visit.text


def test_queues_show_enrollment_checks_and_approve_through_the_governance_gate(federation):
    from tests.bridge.members import make_member

    view = federation.enroll(make_member("MO"))
    client, csrf = sign_in(federation)
    page = client.get("/admin/queues")
    assert f'data-enrollment="{view["id"]}"' in page.text
    assert "Neither the root, its key nor its subject is on the blacklist." in page.text
    assert "days left" in page.text
    r = client.post(f"/admin/enrollments/{view['id']}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/queues?done=approve"
    assert federation.ca.issuer(view["id"])["status"] == "active"
    approved = federation.client.get("/v1/audit", params={"action": "certificate.issue"}, headers=federation.h("admin")).json()
    admin = f"admin:{_token_id(federation, 'admin')}"
    assert any(e["actor"] == admin for e in approved["entries"])
    detail = client.get(f"/admin/details?kind=member&id={view['id']}")  # what a click on its node asks
    assert detail.status_code == 200 and "Macau" in detail.text and "Hong Kong" not in detail.text
    assert "Status history" in detail.text and f'/admin/members/{view["id"]}' in detail.text
    overview = client.get("/admin")
    assert f'data-id="{view["id"]}"' in overview.text and "<svg" in overview.text


def test_blacklist_page_shows_where_an_entry_bites_and_the_audit_page_its_integrity(federation):
    from cryptography.hazmat.primitives import serialization

    client, csrf = sign_in(federation)
    root = federation.members["GD"].root.public_bytes(serialization.Encoding.PEM).decode()
    r = client.post("/admin/blacklist", data={"csrf": csrf, "kind": "certificate_sha256", "certificate": root,
                                              "reason": "console test", "internal_note": "case 7"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/blacklist?done=blacklist_add"
    page = client.get("/admin/blacklist")
    entry = re.search(r'<tr data-entry="([0-9a-f]{32})">(.*?)</tr>', page.text, re.S)
    assert entry and "case 7" in entry.group(2) and f'/admin/members/{federation.ids["GD"]}' in entry.group(2)
    r = client.post(f"/admin/blacklist/{entry.group(1)}/remove", data={"csrf": csrf, "reason": "done"}, follow_redirects=False)
    assert r.status_code == 303
    assert "removed" in client.get("/admin/blacklist").text
    audit = client.get("/admin/audit?action=blacklist.")
    assert 'id="integrity"' in audit.text and "Intact:" in audit.text
    assert "blacklist.add" in audit.text and "blacklist.remove" in audit.text and "token.create" not in audit.text


def test_two_person_control_in_the_console_counts_administrators_not_sessions(federation):
    """With approvals_required 2 an action is a proposal; a second session of
    the same administrator cannot confirm it (actions are audited as the
    signing-in token, not the session); another administrator can."""
    from api.app import create_app
    from bridge.service import BridgeCA

    from .conftest import bridge_env

    gd = federation.ids["GD"]
    with bridge_env():
        ca = BridgeCA.open(federation.ca.settings.home, approvals_required=2)
    try:
        app = create_app(ca)
        second_admin = federation.ca.create_token("admin")
        with TestClient(app, raise_server_exceptions=False):
            two = type(federation)(ca, app, None, {**federation.tokens, "admin2": second_admin})
            first, csrf = sign_in(two, "admin")
            r = first.post(f"/admin/members/{gd}/suspend", data={"csrf": csrf, "reason": "maker"}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == f"/admin/members/{gd}?done=proposed"
            assert ca.issuer(gd)["status"] == "active"
            queue = first.get("/admin/queues").text
            proposal = re.search(r'data-proposal="([0-9a-f]{32})"', queue).group(1)
            assert "Your own proposal" in queue and f"/admin/proposals/{proposal}/confirm" not in queue
            again, csrf_again = sign_in(two, "admin")  # the same administrator, a new session
            r = again.post(f"/admin/proposals/{proposal}/confirm", data={"csrf": csrf_again})
            assert r.status_code == 403 and 'data-code="same_admin"' in r.text
            checker, csrf2 = sign_in(two, "admin2")
            assert f"/admin/proposals/{proposal}/confirm" in checker.get("/admin/queues").text
            r = checker.post(f"/admin/proposals/{proposal}/confirm", data={"csrf": csrf2}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/admin/queues?done=confirm"
            assert ca.issuer(gd)["status"] == "suspended"
    finally:
        ca.close()
    r = federation.client.post(f"/v1/issuers/{gd}/reinstate", headers=federation.h("admin"))
    assert r.status_code == 200, r.text


def test_a_session_cookie_is_no_bearer_token(federation):
    """The session token lives in the cookie; lifted from it and sent as a
    bearer token it is refused by the API's admin and verification routes, so
    a copied session cannot act as a second administrator, nor sign in again."""
    client = _client(federation)
    page = client.get("/admin/login")
    r = client.post("/admin/login", data={"csrf": CSRF.search(page.text).group(1), "token": federation.tokens["admin"]},
                    follow_redirects=False)
    assert r.status_code == 303
    session_token = client.cookies.get("bridgeca_session")
    assert session_token and session_token != federation.tokens["admin"]
    assert client.get("/admin").status_code == 200  # the session works as a cookie
    bearer = {"Authorization": f"Bearer {session_token}"}
    for method, path in (("GET", "/v1/tokens"), ("POST", f"/v1/issuers/{federation.ids['GD']}/suspend"),
                         ("POST", "/v1/verify/chain")):
        answer = federation.client.request(method, path, headers={**bearer, "Content-Type": "application/json"}, content=b"{}")
        assert answer.status_code == 403 and answer.headers["content-type"] == PROBLEM, (path, answer.text)
        assert answer.json()["code"] == "forbidden"
    fresh = _client(federation)
    page = fresh.get("/admin/login")
    r = fresh.post("/admin/login", data={"csrf": CSRF.search(page.text).group(1), "token": session_token}, follow_redirects=False)
    assert r.status_code == 403 and fresh.cookies.get("bridgeca_session") is None
    assert federation.ca.issuer(federation.ids["GD"])["status"] == "active"


def test_the_verification_page_gives_a_signed_receipt_when_asked(federation):
    import base64

    from bridge.receipts import check_receipt

    client, csrf = sign_in(federation, "platform")
    body = federation.chain_body("GD")
    chain = body["certificate"] + "".join(body["intermediates"])
    assert "download-receipt" not in client.post("/verify", data={"csrf": csrf, "input": chain}).text
    page = client.post("/verify", data={"csrf": csrf, "input": chain, "receipt": "1"})
    link = re.search(r'id="download-receipt" download="[^"]+" href="data:application/pkcs7-mime;base64,([^"]+)"', page.text)
    assert link, page.text[-1500:]
    checked = check_receipt(base64.b64decode(link.group(1)), [federation.ca.certificate])
    assert checked.document["request"] == "chain" and checked.document["result"]["valid"] is True


def test_a_session_ends_with_the_token_that_signed_in(federation):
    """Revoking the signing-in token ends its sessions; a session never outlives that token's expiry."""
    import time
    from datetime import timedelta

    from bridge.verification import EPOCH_POLL_SECONDS

    fed = type(federation)(federation.ca, federation.app, federation.client, {
        "revoked-later": federation.ca.create_token("admin"),
        "short": federation.ca.create_token("admin", expires_in=timedelta(seconds=3))})
    revoked, _ = sign_in(fed, "revoked-later")
    short, _ = sign_in(fed, "short")
    assert revoked.get("/admin").status_code == 200 and short.get("/admin").status_code == 200
    federation.ca.revoke_token(federation.ca.principal(fed.tokens["revoked-later"])[0], actor="test")
    time.sleep(2 * EPOCH_POLL_SECONDS)
    assert revoked.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    time.sleep(3.1)
    assert short.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"


def test_failed_sign_ins_count_against_the_address_as_failed_api_tokens_do(federation):
    limiter = federation.app.state.auth_failures
    assert limiter is not None
    limiter._entries.clear()  # earlier tests' refused sign-ins from this address
    client = _client(federation)
    csrf = CSRF.search(client.get("/admin/login").text).group(1)
    try:
        statuses = [client.post("/admin/login", data={"csrf": csrf, "token": "bca_guess"}).status_code
                    for _ in range(limiter.limit + 1)]
        assert statuses[:limiter.limit] == [401] * limiter.limit and statuses[-1] == 429
        right = client.post("/admin/login", data={"csrf": csrf, "token": federation.tokens["admin"]}, follow_redirects=False)
        assert right.status_code == 429 and "bridgeca_session" not in right.headers.get("set-cookie", "")
        assert "Too many failed sign-ins" in right.text
    finally:
        limiter._entries.clear()  # other tests of the module sign in from the same address


def test_what_issuers_write_is_shown_as_text_never_as_markup(federation):
    """An enrollment's name is the issuer's input: escaped on every page (and the CSP forbids inline scripts)."""
    from tests.bridge.members import make_member, pem

    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    member = make_member("SZ")
    r = federation.client.post("/v1/issuers", headers=federation.h("issuer"), json={
        "name": hostile, "jurisdiction": member.code, "root_certificate": pem(member.root).decode(),
        "policy_mappings": member.mappings()})
    assert r.status_code == 201, r.text
    ident = r.json()["id"]
    client, _csrf = sign_in(federation)
    for path in ("/admin", "/admin/queues", "/admin/members", f"/admin/members/{ident}", f"/admin/details?kind=member&id={ident}"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/admin/members/{ident}").text
    assert "script-src 'self'" in client.get("/admin").headers["content-security-policy"]


def test_the_expiring_queue_renews_a_cross_certificate(federation):
    client, csrf = sign_in(federation)
    hk, old = federation.ids["HK"], federation.serials["HK"]
    assert f"<code>{old}</code>" not in client.get("/admin/queues").text  # years away: not in the default window
    queue = client.get("/admin/queues?days=36500").text
    assert f"<code>{old}</code>" in queue and f'action="/admin/members/{hk}/renew"' in queue
    r = client.post(f"/admin/members/{hk}/renew", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/members/{hk}?done=renew"
    crosses = {c["serial"]: c for c in federation.ca.issuer(hk)["cross_certificates"]}
    assert crosses[old]["status"] == "revoked" and crosses[old]["revocation_reason"] == "superseded"
    assert any(c["status"] == "issued" for c in crosses.values())
    federation.serials["HK"] = next(s for s, c in crosses.items() if c["status"] == "issued")
    for days in ("-1", "nan", "soon", "1e9"):
        assert client.get(f"/admin/queues?days={days}").status_code == 400


def test_the_audit_trail_filters_pages_and_shows_the_newest(federation):
    client, _csrf = sign_in(federation)
    admin = f"admin:{_token_id(federation, 'admin')}"
    signed_in = "console:" + admin  # the actor of each sign-in's token.create
    page = client.get("/admin/audit", params={"actor": signed_in, "action": "token."})
    rows = re.findall(r"<tr><td>(\d+)</td><td>[^<]*</td><td><code>([^<]*)</code></td><td><code>([^<]*)</code>", page.text)
    assert rows and all(actor == signed_in and action == "token.create" for _, actor, action in rows)
    everything = client.get("/admin/audit").text
    newest = re.search(r'href="/admin/audit\?after=(\d+)" id="audit-newest"', everything)
    count = int(re.search(r"Intact: (\d+) entries", everything).group(1))
    assert newest and int(newest.group(1)) == max(count - 100, 0)
    if count > 100:
        assert "Next page" in everything
    later = client.get(f"/admin/audit?after={count - 1}").text
    assert [int(seq) for seq, _, _ in re.findall(r"<tr><td>(\d+)</td><td>[^<]*</td><td><code>([^<]*)</code></td><td><code>([^<]*)</code>",
                                                later)] == [count]


def test_an_uploaded_cms_whose_der_ends_in_a_whitespace_byte_is_read_whole(federation):
    """A DER upload is not stripped: a signature's last byte is 0x20 or 0x0a about once in 40 signatures,
    and the page once cut it off (malformed_cms)."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    document = b"contract no. 43"
    signer = federation.signer("GD")
    for _ in range(2000):
        cms = (pkcs7.PKCS7SignatureBuilder().set_data(document).add_signer(signer.certificate, signer.key, hashes.SHA256())
               .add_certificate(signer.member.issuing)
               .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.DetachedSignature]))
        if cms[-1:] in (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c"):
            break
    assert cms[-1:].isspace()
    client, csrf = sign_in(federation, "platform")
    r = client.post("/verify", data={"csrf": csrf, "file_b64": base64.b64encode(cms).decode(),
                                     "content_b64": base64.b64encode(document).decode()})
    assert r.status_code == 200 and 'data-valid="true"' in r.text, r.text[-2000:]


def test_the_verification_page_verifies_a_cms_signature_with_its_content(federation):
    """A detached CMS uploaded as a file, its content as another (the page's script sends both as base64 fields),
    and the same pasted as PEM: the signer, the path and the verdict; the wrong content fails."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    document = "合同 no. 42: the console verifies this".encode()
    signer = federation.signer("GD")
    cms = (pkcs7.PKCS7SignatureBuilder().set_data(document).add_signer(signer.certificate, signer.key, hashes.SHA256())
           .add_certificate(signer.member.issuing)
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.DetachedSignature]))
    client, csrf = sign_in(federation, "platform")
    r = client.post("/verify", data={"csrf": csrf, "file_b64": base64.b64encode(cms).decode(),
                                     "content_b64": base64.b64encode(document).decode()})
    assert r.status_code == 200 and 'data-valid="true"' in r.text, r.text[-2000:]
    assert "document-signer.gd.example" in r.text and 'class="cert anchor"' in r.text
    armoured = "-----BEGIN PKCS7-----\n" + base64.encodebytes(cms).decode() + "-----END PKCS7-----\n"
    r = client.post("/verify", data={"csrf": csrf, "input": armoured, "content": document.decode()})
    assert 'data-valid="true"' in r.text
    r = client.post("/verify", data={"csrf": csrf, "input": armoured, "content": "another contract"})
    assert r.status_code == 200 and 'data-valid="false"' in r.text and 'id="reason"' in r.text
