"""The console in Debian's chromium (headless, Playwright; no downloaded
browser) against a real `bridgeca serve` on 127.0.0.1: one server, one
browser, one walk through (steps in order, so one test: pytest-xdist would
otherwise give each test a server of its own).

An administrator signs in, approves a pending enrollment and sees the trust
graph gain a cross-certificate edge, suspends a member and sees its edge
change colour and a chain through it fail on the verification page (the
failing certificate highlighted), switches to Chinese, and has a form post
without its CSRF token refused; a platform's token opens the verification
page (a chain uploaded as a file, a signed receipt offered) and no admin
page. Nothing leaves 127.0.0.1."""
from __future__ import annotations

import json
import subprocess
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from tests.bridge.members import make_member, pem

from .test_docs_browser import CHROMIUM, FLAGS, WAIT_MS
from .test_server import REPO, bridgeca, env, free_port, http, run, stop, wait_healthy


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """(the served bridge, chromium): the browser starts while the server does."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("console") / "home"
    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    port = free_port()
    log = open(home.parent / "server.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                               env=env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    # The admin token is made while the server and the browser start (the database allows both).
    token = subprocess.Popen(bridgeca() + ["token", "create", "--home", str(home), "--role", "admin"], env=env(), cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                out, err = token.communicate(timeout=120)
                assert token.returncode == 0, err
                wait_healthy(process, base, log)
                yield _federation(base, {"admin": out.strip().splitlines()[-1]}), browser
            finally:
                browser.close()
    finally:
        if token.poll() is None:
            token.kill()
        stop(process)
        log.close()


def _federation(base: str, tokens: dict) -> dict:
    """HK a member (approved, reverse certificate published), GD waiting in the queue; issuer and platform tokens."""
    for role in ("issuer", "platform"):  # through the API: a process start each saved
        status, _, body = http("POST", base + "/v1/tokens", tokens["admin"], {"role": role})
        assert status == 201, body
        tokens[role] = json.loads(body)["token"]
    bridge = x509.load_pem_x509_certificate(http("GET", base + "/v1/ca/certificate")[2])
    members, ids = {}, {}
    for code in ("HK", "GD"):
        member = make_member(code)
        status, _, body = http("POST", base + "/v1/issuers", tokens["issuer"], {
            "name": f"{member.display} CA", "jurisdiction": code, "root_certificate": pem(member.root).decode(),
            "policy_mappings": member.mappings()})
        assert status == 201, body
        ids[code] = json.loads(body)["id"]
        members[code] = member
    status, _, body = http("POST", f"{base}/v1/issuers/{ids['HK']}/approve", tokens["admin"])
    assert status == 200, body
    status, _, body = http("POST", f"{base}/v1/issuers/{ids['HK']}/reverse-certificate", tokens["issuer"],
                           {"certificate": pem(members["HK"].reverse_certificate(bridge)).decode()})
    assert status == 201, body
    return {"base": base, "tokens": tokens, "members": members, "ids": ids}


class Session:
    """A browser context of its own (cookies), every request checked to stay on 127.0.0.1."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(service_workers="block", accept_downloads=False)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def sign_in(self, token: str):
        self.page.goto(self.base + "/admin/login")
        self.page.fill("#token", token)
        with self.page.expect_navigation():
            self.page.click("#sign-in")

    def goto(self, path: str):
        return self.page.goto(self.base + path)

    def close(self):
        self.context.close()


def _cross_edges(page) -> dict[str, str]:
    """data-id (serial) -> data-status of the graph's cross-certificate edges."""
    return page.eval_on_selector_all('#graph [data-kind="cross"]',
                                     "els => Object.fromEntries(els.map(e => [e.dataset.id, e.dataset.status]))")


def _edge_colour(page, serial: str) -> str:
    return page.eval_on_selector(f'#graph [data-kind="cross"][data-id="{serial}"] .fg-line', "e => getComputedStyle(e).stroke")


def test_the_console_in_chromium(console):
    served, browser = console
    base, tokens, ids = served["base"], served["tokens"], served["ids"]
    admin = Session(browser, base)
    page = admin.page
    try:
        # Sign in: the token goes in a password field, out through a POST; a session cookie comes back.
        admin.sign_in(tokens["admin"])
        assert urlsplit(page.url).path == "/admin"
        cookie = next(c for c in admin.context.cookies() if c["name"] == "bridgeca_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
        assert tokens["admin"] not in page.content() and cookie["value"] not in page.content()
        assert page.evaluate("document.cookie").find("bridgeca_session") < 0  # HttpOnly: not readable by scripts

        # The graph: one cross-certificate (HK's); a click on it shows its details.
        page.wait_for_selector("#graph svg")
        before = _cross_edges(page)
        assert list(before.values()) == ["active"], before
        hk_serial = next(iter(before))
        # An edge is a thin curve: the event is sent to it rather than aimed at a pixel.
        page.locator(f'#graph [data-kind="cross"][data-id="{hk_serial}"] .fg-line').dispatch_event("click")
        page.wait_for_selector("#details .detail-panel")
        assert page.get_attribute("#details .detail-panel", "data-found") == "yes", page.inner_html("#details")
        assert hk_serial in page.inner_text("#details") and "Policy mappings" in page.inner_text("#details")
        page.click(f'#graph [data-kind="member"][data-id="{ids["HK"]}"]')  # a node: a real click
        page.wait_for_function("document.querySelector('#details').innerText.includes('Status history')")

        # Approve GD from the work queue (its enrollment checks shown): the graph gains an edge.
        admin.goto("/admin/queues")
        pending = page.locator(f'article[data-enrollment="{ids["GD"]}"]')
        assert "blacklist" in pending.inner_text()
        with page.expect_navigation():
            pending.locator("button.approve").click()
        assert "done=approve" in page.url and page.locator(".flash").is_visible()
        admin.goto("/admin")
        after = _cross_edges(page)
        assert len(after) == len(before) + 1 and set(before) < set(after), after

        # Suspend HK on its page: its edge changes colour, and a chain through it fails.
        colour = _edge_colour(page, hk_serial)
        admin.goto(f"/admin/members/{ids['HK']}")
        page.fill('#actions form[action$="/suspend"] input[name=reason]', "browser test")
        with page.expect_navigation():
            page.click("#suspend")
        assert page.inner_text("#member-status") == "suspended"
        admin.goto("/admin")
        assert _cross_edges(page)[hk_serial] == "suspended"
        assert _edge_colour(page, hk_serial) != colour

        hk = served["members"]["HK"]
        admin.goto("/verify")
        page.fill("#input", pem(hk.leaf).decode() + pem(hk.issuing).decode())
        with page.expect_navigation():
            page.click("#verify-submit")
        assert page.get_attribute("#result", "data-valid") == "false"
        failing = page.locator(".path .cert.failing")
        assert failing.count() == 1 and "Hong Kong Root CA" in failing.inner_text() and failing.is_visible()
        assert page.get_attribute("#reason", "data-code") == "suspended"
        assert "suspended" in page.inner_text("#reason")
        # Left to right: the end entity first, the trust anchor last.
        boxes = [c.bounding_box()["x"] for c in page.locator(".path .cert").all()]
        assert boxes == sorted(boxes) and len(boxes) == 4

        # Chinese.
        with page.expect_navigation():
            page.click("#lang-switch")
        assert "验证" in page.inner_text("header") and "联盟概览" in page.inner_text("header")
        admin.goto("/admin/queues")
        assert "待办事项" in page.inner_text("h1")

        # A form post without its CSRF token is refused, and changes nothing.
        admin.goto(f"/admin/members/{ids['GD']}")
        page.evaluate("document.querySelectorAll('#actions input[name=csrf]').forEach(e => e.remove())")
        with page.expect_navigation() as navigation:
            page.click("#suspend")
        assert navigation.value.status == 403
        assert page.get_attribute(".card.error", "data-code") == "csrf_failed" and "安全令牌" in page.inner_text("#error-message")
        status, _, body = http("GET", f"{base}/v1/issuers/{ids['GD']}", tokens["admin"])
        assert json.loads(body)["status"] == "active"

        assert admin.foreign == [] and admin.errors == []
    finally:
        admin.close()

    # A platform's token: the verification page, and no admin page.
    platform = Session(browser, base)
    try:
        platform.sign_in(tokens["platform"])
        assert urlsplit(platform.page.url).path == "/verify"
        assert platform.page.locator('header a[href="/admin"]').count() == 0
        # A file upload (read by the page's script) with a receipt asked for: GD, approved above, passes.
        gd = served["members"]["GD"]
        page = platform.page
        page.set_input_files("#file", files=[{"name": "gd-chain.pem", "mimeType": "application/x-pem-file",
                                              "buffer": pem(gd.leaf) + pem(gd.issuing)}])
        page.wait_for_selector("#file[data-loaded=true]", state="attached")
        page.check("#receipt")
        with page.expect_navigation():
            page.click("#verify-submit")
        assert page.get_attribute("#result", "data-valid") == "true"
        assert page.get_attribute("#download-receipt", "href").startswith("data:application/pkcs7-mime;base64,")
        for path in ("/admin", "/admin/queues", f"/admin/members/{ids['HK']}", "/admin/audit"):
            response = platform.goto(path)
            assert response.status == 403 and platform.page.get_attribute(".card.error", "data-code") == "forbidden", path
        assert platform.foreign == []
    finally:
        platform.close()
