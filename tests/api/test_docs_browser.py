"""/docs and /redoc work offline: a real `bridgeca serve` on 127.0.0.1 and
Debian's chromium (headless, driven by Playwright; no downloaded browser)
render Swagger UI's operation list and ReDoc's reference while every request
the pages make is checked to stay on 127.0.0.1. Swagger's Authorize button
takes a token and Try it out sends it. Without a browser: the pages name only
local files, and the bearer scheme in the OpenAPI document marks exactly the
routes that answer 401 without a token."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .test_server import REPO, bridgeca, env, free_port, run, stop, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000  # a guard for a loaded machine, not a measurement


# ---------------------------------------------------------------- without a browser


def test_docs_pages_name_only_local_files(federation):
    client = federation.client
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""", r.text)
        assert urls, page
        for url in urls:
            assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
            if url != "/openapi.json":
                asset = client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "cdn" not in client.get("/docs").text.lower()
    for page in ("/docs", "/redoc", "/docs-assets/swagger-ui-bundle.js"):
        head = client.head(page)
        assert head.status_code == 200 and head.content == b"", page


def test_missing_asset_is_a_problem_not_a_page(federation):
    r = federation.client.get("/docs-assets/nothing-here.js")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0" * 32, path)


def test_bearer_scheme_marks_exactly_the_routes_that_want_a_token(federation):
    client = federation.client
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["bearer"]["description"]}
    locked = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            r = client.request(method.upper(), _concrete(path))
            wants_token = r.status_code == 401
            marked = operation.get("security") == [{"bearer": []}]
            assert marked == wants_token, f"{method.upper()} {path}: security {operation.get('security')}, answered {r.status_code}"
            if wants_token:
                assert r.json()["code"] == "unauthorized"
                locked.add((method, path))
    assert {("post", "/v1/verify/chain"), ("get", "/v1/issuers"), ("post", "/v1/issuers/{issuer_id}/approve")} <= locked
    assert ("get", "/v1/crl") not in locked and ("get", "/v1/health") not in locked


@pytest.mark.parametrize("model", ["VerificationResultModel", "SignatureResultModel", "IssuerView", "ApprovedIssuerView",
                                   "ReverseCertificateView", "RevokeResult", "Health", "ProblemDetails"])
def test_main_response_models_have_examples_that_are_valid_responses(federation, model):
    from api import schemas

    documented = federation.client.get("/openapi.json").json()["components"]["schemas"][model]
    examples = documented.get("examples")
    assert examples, model
    cls = getattr(schemas, model)
    for example in examples:
        assert set(cls.model_fields) - set(example) <= {n for n, f in cls.model_fields.items() if not f.is_required()}
        cls.model_validate(example)  # raises when an example is not a valid response


# ---------------------------------------------------------------- in chromium


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)")
    home = tmp_path_factory.mktemp("docs") / "home"
    run("init", "--home", str(home), "--base-url", "https://bridge.gd.example")
    token = run("token", "create", "--home", str(home), "--role", "admin").strip().splitlines()[-1]
    port = free_port()
    log = open(home.parent / "server.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                               env=env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base, log)
        yield {"base": base, "token": token}
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


class Watched:
    """A page whose every request is checked: loopback goes on, anything
    else is aborted and remembered, so the test fails even when the page
    would render without it."""

    def __init__(self, browser):
        self.context = browser.new_context(service_workers="block")
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.requests: list[tuple[str, str, dict]] = []
        self.foreign: list[str] = []
        self.console_errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def _route(self, route):
        request = route.request
        parts = urlsplit(request.url)
        self.requests.append((request.method, request.url, request.headers))
        if parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.foreign.append(request.url)
            route.abort()

    def close(self):
        self.context.close()


def test_swagger_ui_lists_the_operations_and_nothing_leaves_127_0_0_1(served, browser):
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(served["base"] + "/docs")
        page.wait_for_selector(".opblock .opblock-summary-path")
        listed = {
            (block.locator(".opblock-summary-method").inner_text().strip(),
             block.locator(".opblock-summary-path").inner_text().replace("\u200b", "").strip())
            for block in page.locator(".opblock").all()
        }
        for operation in [("POST", "/v1/verify/chain"), ("POST", "/v1/verify/signature"), ("GET", "/v1/crl"),
                          ("GET", "/v1/ca/certificate"), ("POST", "/v1/issuers"), ("GET", "/v1/issuers")]:
            assert operation in listed, f"{operation} not listed; listed: {sorted(listed)}"

        # the bearer scheme: an Authorize button, a lock on protected operations only
        assert page.locator(".auth-wrapper .authorize").count() == 1
        chain = page.locator("#operations-verification-verify_chain_v1_verify_chain_post")
        assert chain.locator(".authorization__btn").count() == 1
        assert page.locator("#operations-publication-crl_v1_crl_get .authorization__btn").count() == 0

        # Authorize with a token, then Try it out: the request carries it and succeeds
        page.locator(".auth-wrapper .authorize").click()
        page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(served["token"])
        page.locator(".modal-ux .auth-btn-wrapper button.authorize").click()
        page.locator(".modal-ux .btn-done, .modal-ux button.close-modal").first.click()
        issuers = page.locator("#operations-issuers-list_issuers_v1_issuers_get")
        issuers.locator(".opblock-summary").first.click()
        issuers.locator("button.try-out__btn").click()
        issuers.locator("button.execute").click()
        status = issuers.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip().startswith("200")
        sent = [headers for method, url, headers in watched.requests if urlsplit(url).path == "/v1/issuers"]
        assert sent and sent[-1].get("authorization") == f"Bearer {served['token']}"

        assert watched.foreign == [], f"requests left 127.0.0.1: {watched.foreign}"
        assert watched.console_errors == []
        paths = {urlsplit(url).path for _, url, _ in watched.requests}
        assert {"/docs", "/openapi.json", "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"} <= paths
    finally:
        watched.close()


def test_redoc_renders_the_reference_and_nothing_leaves_127_0_0_1(served, browser):
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(served["base"] + "/redoc")
        # ReDoc renders the API title as the page's h1 once it has read /openapi.json
        page.wait_for_selector("h1:has-text('bridgeca')")
        page.wait_for_selector("[role=menuitem] >> text=Validate a certificate chain", state="attached")
        body = page.locator("body").text_content()
        assert "/v1/verify/chain" in body and "/v1/crl" in body
        assert watched.foreign == [], f"requests left 127.0.0.1: {watched.foreign}"
        # ReDoc's side menu asks cdn.redoc.ly for a logo whatever its options
        # say; the page's Content-Security-Policy stops it before it is sent.
        assert [e for e in watched.console_errors if "https://cdn.redoc.ly/" not in e] == []
        paths = {urlsplit(url).path for _, url, _ in watched.requests}
        assert {"/redoc", "/openapi.json", "/docs-assets/redoc.standalone.js"} <= paths
    finally:
        watched.close()
