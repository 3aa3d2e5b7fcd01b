"""POST /v1/verify/batch: each item is answered exactly as its single route
(/v1/verify/chain, /v1/verify/signature) answers the same body -- the 200
result, or the problem with its status and code -- whatever else is in the
batch; shared options apply where an item gives none; the envelope alone
can fail the request (not JSON, no items, too many); a revoked
cross-certificate makes its items ``revoked`` (SQLite and PostgreSQL); a
hostile item runs out of its own budget, not its neighbours'; roles as the
single routes; documented in OpenAPI; and the real ``bridgeca serve`` reads
BRIDGECA_BATCH_MAX_ITEMS."""
from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from api import schemas
from tests.bridge.members import BRIDGE_MEDIUM, issue, name, pem

from .conftest import assert_problem

BATCH = "/v1/verify/batch"
DOCUMENT = b"Cross-border e-invoice no. 2026-0107\r\nAmount: 250 MOP\n"
BAD_PEM = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
UNMAPPED_POLICY = "1.3.6.1.4.1.32473.77.9.9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post(fed, path: str, body, role: str = "platform"):
    # json.dumps, not httpx's json=: a lone surrogate must reach the server as the \ud800 escape
    return fed.client.post(path, headers=fed.h(role, **{"Content-Type": "application/json"}), content=json.dumps(body).encode())


def _timeless(answer):
    """An answer without its validation times: "now" moves on between two requests."""
    if isinstance(answer, dict):
        return {k: _timeless(v) for k, v in answer.items() if k != "validation_time"}
    return answer


def single(fed, kind: str, body: dict) -> tuple[int, dict]:
    r = post(fed, f"/v1/verify/{kind}", body)
    return r.status_code, _timeless(r.json())


def batch(fed, items: list, options: dict | None = None, role: str = "platform") -> list[dict]:
    envelope = {"items": items} if options is None else {"items": items, "options": options}
    r = post(fed, BATCH, envelope, role)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"] == "application/json"
    answer = r.json()
    schemas.VerifyBatchResponse.model_validate(answer)
    results = answer["results"]
    assert [entry["index"] for entry in results] == list(range(len(items)))
    return results


def as_single(entry: dict) -> tuple[int, dict]:
    """A batch entry as the single route's (status, body)."""
    if "error" in entry:
        assert "result" not in entry, entry
        return entry["error"]["status"], entry["error"]
    return 200, _timeless(entry["result"])


@pytest.fixture(scope="module")
def signer(federation):
    return federation.signer("HK")


def cms_of(signer, *, detached: bool) -> bytes:
    options = [pkcs7.PKCS7Options.Binary] + ([pkcs7.PKCS7Options.DetachedSignature] if detached else [])
    return (pkcs7.PKCS7SignatureBuilder().set_data(DOCUMENT).add_signer(signer.certificate, signer.key, hashes.SHA256())
            .add_certificate(signer.member.issuing).sign(serialization.Encoding.DER, options))


def kinds_and_bodies(fed, signer) -> list[tuple[str, dict]]:
    """Valid, invalid, malformed and refused bodies of both routes."""
    hk, gd = fed.chain_body("HK"), fed.chain_body("GD")
    raw = {"certificate": signer.pem, "signature": b64(signer.key.sign(DOCUMENT, ec.ECDSA(hashes.SHA256()))),
           "data": b64(DOCUMENT), "intermediates": [pem(signer.member.issuing).decode()]}
    attached, detached = cms_of(signer, detached=False), cms_of(signer, detached=True)
    return [
        ("chain", hk),
        ("chain", gd),
        ("chain", {**hk, "policies": [BRIDGE_MEDIUM]}),
        ("chain", {**gd, "trust_anchor": fed.ids["HK"], "policies": [fed.members["HK"].policy]}),
        ("chain", {**hk, "policies": [UNMAPPED_POLICY]}),  # runs, not valid
        ("chain", {"certificate": hk["certificate"]}),  # no intermediates: not valid
        ("chain", {**hk, "extended_key_usage": ["codeSigning"]}),
        ("chain", {**hk, "certificate": BAD_PEM}),  # 400 malformed_input
        ("chain", {**hk, "certificate": "hello"}),
        ("chain", {**hk, "policies": ["not-an-oid"]}),
        ("chain", {**hk, "extended_key_usage": ["not a purpose"]}),
        ("chain", {**hk, "at": "yesterday"}),
        ("chain", {**hk, "revocation": "sometimes"}),  # 400 invalid_request, with errors
        ("chain", {**hk, "surprise": True}),
        ("chain", {**hk, "certificate": 12345}),
        ("chain", {**hk, "certificate": "\ud800"}),
        ("chain", {k: v for k, v in hk.items() if k != "certificate"}),
        ("chain", {**hk, "trust_anchor": UNKNOWN_ID}),  # 404 not_found
        ("chain", {**hk, "trust_anchor": "../etc"}),
        ("signature", raw),
        ("signature", {**raw, "data": b64(DOCUMENT + b"!")}),  # runs, signature_invalid
        ("signature", {**raw, "algorithm": "ES256"}),
        ("signature", {"cms": b64(attached)}),
        ("signature", {"cms": b64(attached), "policies": [BRIDGE_MEDIUM], "at": "signing-time"}),
        ("signature", {"cms": b64(detached), "content": b64(DOCUMENT)}),
        ("signature", {"cms": b64(detached), "content": b64(DOCUMENT.upper())}),  # content_mismatch
        ("signature", {"cms": b64(detached)}),  # 400: no content
        ("signature", {"cms": "@@@@"}),  # 400 invalid_base64
        ("signature", {**raw, "signature": "not base64!"}),
        ("signature", {**raw, "cms": b64(attached)}),  # 400 invalid_request: both
        ("signature", {**raw, "content": "AAAA"}),
        ("signature", {"certificate": signer.pem, "signature": "AAAA"}),
        ("signature", {**raw, "algorithm": "rot13"}),
        ("signature", {**raw, "at": "signing-time"}),
        ("signature", {**raw, "trust_anchor": UNKNOWN_ID}),
    ]


def test_each_item_is_answered_as_its_single_route(federation, signer):
    cases = kinds_and_bodies(federation, signer)
    expected = [single(federation, kind, body) for kind, body in cases]
    statuses = {status for status, _ in expected}
    assert {200, 400, 404} <= statuses  # the batch below holds results and refusals of several kinds
    assert any(status == 200 and not answer["valid"] for status, answer in expected)
    results = batch(federation, [{"kind": kind, **body} for kind, body in cases])
    for (kind, body), want, entry in zip(cases, expected, results, strict=True):
        assert entry["kind"] == kind
        assert as_single(entry) == want, f"{kind} {json.dumps(body)[:200]}"


def test_an_item_alone_and_among_others_gets_the_same_answer(federation, signer):
    """The order and company of items change nothing: each case first alone,
    then last behind every other case."""
    cases = kinds_and_bodies(federation, signer)
    alone = [batch(federation, [{"kind": kind, **body}])[0] for kind, body in cases[::5]]
    crowded = batch(federation, [{"kind": kind, **body} for kind, body in reversed(cases)])[::-1][::5]
    assert [as_single(e) for e in alone] == [as_single(e) for e in crowded]


def test_items_that_name_no_known_kind(federation):
    hk = federation.chain_body("HK")
    items = [hk, {**hk, "kind": "certificate"}, {**hk, "kind": ["chain"]}, 42, "chain", None, [hk], {"kind": "chain", **hk}]
    results = batch(federation, items)
    for entry in results[:-1]:
        assert entry["kind"] is None
        assert entry["error"]["status"] == 400 and entry["error"]["code"] == "invalid_request", entry
    assert [e["error"]["errors"][0]["field"] for e in results[:3]] == ["kind", "kind", "kind"]
    assert results[-1]["result"]["valid"] is True


def test_shared_options_and_what_items_override(federation):
    fed = federation
    hk, gd = fed.chain_body("HK"), fed.chain_body("GD")
    options = {"policies": [UNMAPPED_POLICY], "intermediates": hk["intermediates"], "revocation": "off"}
    items = [
        {"kind": "chain", "certificate": hk["certificate"]},  # everything shared: not valid (policy)
        {"kind": "chain", "certificate": hk["certificate"], "policies": [BRIDGE_MEDIUM]},  # own policy, shared intermediates
        {"kind": "chain", **gd, "policies": [BRIDGE_MEDIUM]},  # own intermediates too
        {"kind": "chain", "certificate": gd["certificate"], "policies": [BRIDGE_MEDIUM]},  # HK's intermediates: no path
        {"kind": "chain", **hk, "policies": [BRIDGE_MEDIUM], "revocation": "auto"},
        {"kind": "chain", **gd, "trust_anchor": fed.ids["GD"], "policies": [fed.members["GD"].policy]},
    ]
    results = batch(fed, items, options)
    for item, entry in zip(items, results, strict=True):
        merged = {**options, **{k: v for k, v in item.items() if k != "kind"}}
        assert as_single(entry) == single(fed, "chain", merged), item
    valid = [entry["result"]["valid"] for entry in results]
    assert valid == [False, True, True, False, True, True]
    assert results[0]["result"]["error"]["code"] == "policy_required"
    assert results[1]["result"]["revocation"] == "not_checked" and results[4]["result"]["revocation"] != "not_checked"
    assert results[5]["result"]["path"][-1]["subject"] == fed.members["GD"].root.subject.rfc4514_string()
    # A shared trust anchor: GD's root for every item that names none.
    shared_anchor = batch(fed, [{"kind": "chain", **hk}, {"kind": "chain", **hk, "trust_anchor": "bridge"}],
                          {"trust_anchor": fed.ids["GD"], "policies": [fed.members["GD"].policy]})
    assert [e["result"]["path"][-1]["subject"] for e in shared_anchor] == [
        fed.members["GD"].root.subject.rfc4514_string(), fed.ca.certificate.subject.rfc4514_string()]
    assert [e["result"]["valid"] for e in shared_anchor] == [True, False]  # the bridge has no GD policy


def test_shared_options_apply_to_signature_items(federation, signer):
    cms = b64(cms_of(signer, detached=False))
    items = [{"kind": "signature", "cms": cms}, {"kind": "signature", "cms": cms, "policies": [BRIDGE_MEDIUM]}]
    results = batch(federation, items, {"policies": [UNMAPPED_POLICY], "at": "signing-time"})
    assert results[0]["result"]["valid"] is False and results[0]["result"]["chain"]["error"]["code"] == "policy_required"
    assert results[1]["result"]["valid"] is True
    assert as_single(results[1]) == single(federation, "signature", {"cms": cms, "policies": [BRIDGE_MEDIUM], "at": "signing-time"})


@pytest.mark.parametrize("envelope,status,code", [
    ({"items": []}, 400, "invalid_request"),
    ({}, 400, "invalid_request"),
    ({"items": {"kind": "chain"}}, 400, "invalid_request"),
    ({"items": "chain"}, 400, "invalid_request"),
    ({"items": [{"kind": "chain", "certificate": "x"}], "surprise": 1}, 400, "invalid_request"),
    ({"items": [{"kind": "chain", "certificate": "x"}], "options": {"revocation": "sometimes"}}, 400, "invalid_request"),
    ({"items": [{"kind": "chain", "certificate": "x"}], "options": {"certificate": "x"}}, 400, "invalid_request"),
    ({"items": [{"kind": "chain", "certificate": "x"}], "options": []}, 400, "invalid_request"),
    ([{"kind": "chain", "certificate": "x"}], 400, "invalid_request"),
    ({"items": [{"kind": "chain", "certificate": "x"}] * 101}, 413, "too_many_items"),
])
def test_a_bad_envelope_fails_the_request(federation, envelope, status, code):
    body = assert_problem(post(federation, BATCH, envelope), status, code)
    if code == "too_many_items":
        assert body["max_items"] == 100 and "101" in body["detail"]


def test_not_json_fails_the_request(federation):
    r = federation.client.post(BATCH, headers=federation.h("platform", **{"Content-Type": "application/json"}),
                               content=b'{"items": [')
    assert_problem(r, 400, "invalid_request")


def test_the_limit_is_inclusive(federation):
    """batch_max_items (100 by default) items are accepted; each bad one is its own error."""
    results = batch(federation, [{"kind": "chain", "certificate": "x"}] * 100)
    assert len(results) == 100
    assert {(e["error"]["status"], e["error"]["code"]) for e in results} == {(400, "malformed_input")}


def test_roles(federation):
    items = {"items": [{"kind": "chain", **federation.chain_body("HK")}]}
    assert_problem(federation.client.post(BATCH, json=items), 401, "unauthorized")
    assert_problem(federation.client.post(BATCH, json=items, headers={"Authorization": "Bearer bca_" + "x" * 43}),
                   401, "unauthorized")
    assert_problem(post(federation, BATCH, items, "issuer"), 403, "forbidden")
    for role in ("platform", "admin"):
        assert post(federation, BATCH, items, role).json()["results"][0]["result"]["valid"] is True


def test_a_hostile_item_spends_its_own_budget(federation):
    """An item whose leaf names HK's issuing CA as its issuer, sent with 200
    CA certificates of that name under other keys (none the leaf's signer),
    runs out of its signature checks (128): budget_exceeded. Had the items
    shared one budget, the six after it would fail too; they verify."""
    fed = federation
    hk = fed.members["HK"]
    impostors = []
    for _ in range(200):
        key = ec.generate_private_key(ec.SECP256R1())
        impostors.append(issue(hk.root, hk.root_key, hk.issuing.subject, key.public_key(), ca=True, policies=[hk.policy],
                               path_length=0))
    # The leaf is signed by a key none of them (nor the real CA) holds.
    stranger = ec.generate_private_key(ec.SECP256R1())
    fake_issuer = issue(hk.root, hk.root_key, hk.issuing.subject, stranger.public_key(), ca=True, policies=[hk.policy])
    leaf = issue(fake_issuer, stranger, name("HK", "Hostile Org", "hostile.hk.example"),
                 ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False, policies=[hk.policy])
    hostile = {"certificate": pem(leaf).decode(), "intermediates": [pem(c).decode() for c in impostors]}
    items = [{"kind": "chain", **hostile}] + [{"kind": "chain", **fed.chain_body(code)} for code in ("HK", "GD")] * 3
    results = batch(fed, items)
    assert results[0]["result"]["valid"] is False
    assert results[0]["result"]["error"]["code"] == "budget_exceeded", results[0]["result"]["error"]
    assert all(entry["result"]["valid"] for entry in results[1:]), [e["result"]["error"] for e in results[1:]]


def test_revoked_and_blacklisted_members_items(fresh_federation):
    """HK's cross-certificate revoked (cessationOfOperation): its chain and
    signature items are ``revoked`` at the cross-certificate. GD's revoked
    for keyCompromise: ``revoked`` there too, and GD's root key blacklisted
    (published at /v1/blacklist). Each
    as the single route answers, on SQLite and PostgreSQL."""
    fed = fresh_federation
    signer = fed.signer("HK")
    raw = {"certificate": signer.pem, "signature": b64(signer.key.sign(DOCUMENT, ec.ECDSA(hashes.SHA256()))),
           "data": b64(DOCUMENT), "intermediates": [pem(signer.member.issuing).decode()]}
    items = [{"kind": "chain", **fed.chain_body("HK")}, {"kind": "chain", **fed.chain_body("GD")}, {"kind": "signature", **raw}]
    assert [e["result"]["valid"] for e in batch(fed, items)] == [True, True, True]
    r = fed.client.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"),
                        json={"reason": "cessationOfOperation"})
    assert r.status_code == 200, r.text
    after = batch(fed, items)
    assert after[0]["result"]["valid"] is False and after[0]["result"]["error"]["code"] == "revoked"
    assert after[0]["result"]["error"]["certificate"] == 2 and after[0]["result"]["path"][2]["revocation"] == "revoked"
    assert after[1]["result"]["valid"] is True
    assert after[2]["result"]["valid"] is False and after[2]["result"]["chain"]["error"]["code"] == "revoked"
    r = fed.client.post(f"/v1/cross-certificates/{fed.serials['GD']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    last = batch(fed, items)
    # The revoked cross-certificate says so first (the revocation is its own
    # reason); the root key it certified is on the blacklist from now on.
    assert last[1]["result"]["valid"] is False and last[1]["result"]["error"]["code"] == "revoked", last[1]["result"]["error"]
    assert last[1]["result"]["error"]["certificate"] == 2
    assert last[0]["result"]["error"]["code"] == "revoked"
    listed = fed.client.get("/v1/blacklist").json()
    assert any(e.get("source") == "keyCompromise" or "keyCompromise" in str(e) for e in listed.get("entries", listed)), listed
    for item, entry in zip(items, last, strict=True):
        assert as_single(entry) == single(fed, item["kind"], {k: v for k, v in item.items() if k != "kind"})


def test_items_are_counted_in_the_metrics(federation):
    def count() -> float:
        text = federation.client.get("/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("bridgeca_verifications_total{") and 'kind="chain"' in line)

    before = count()
    batch(federation, [{"kind": "chain", **federation.chain_body("HK")}] * 3 + [{"kind": "chain", "certificate": "x"}])
    assert count() == before + 3  # refused items are no verification


def test_openapi_documents_the_route_and_its_schemas(federation):
    spec = federation.client.get("/openapi.json").json()
    operation = spec["paths"][BATCH]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema == {"$ref": "#/components/schemas/VerifyBatchRequest"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/VerifyBatchResponse"}
    assert {"401", "403", "413"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["413"]["content"]
    components = spec["components"]["schemas"]
    items = components["VerifyBatchRequest"]["properties"]["items"]["items"]
    assert items["discriminator"]["propertyName"] == "kind"
    assert {"BatchChainItem", "BatchSignatureItem", "BatchItemResult"} <= set(components)
    assert "certificate" in components["BatchChainItem"]["properties"] and "cms" in components["BatchSignatureItem"]["properties"]


def test_the_served_bridge_reads_the_item_limit_from_its_environment(tmp_path):
    """``bridgeca serve`` with BRIDGECA_BATCH_MAX_ITEMS=3, a member enrolled
    over HTTP: 3 items are answered, 4 are 413 too_many_items."""
    from tests.bridge.members import make_member

    from .test_server import bridgeca, env, free_port, http, run, stop, wait_healthy

    home = tmp_path / "home"
    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    tokens = {role: run("token", "create", "--home", str(home), "--role", role).strip().splitlines()[-1]
              for role in ("admin", "issuer", "platform")}
    port = free_port()
    server_env = {**env(), "BRIDGECA_BATCH_MAX_ITEMS": "3"}
    with open(tmp_path / "server.log", "w+b") as log:
        process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                                   env=server_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"

            wait_healthy(process, base)
            member = make_member("MO")
            status, _, body = http("POST", base + "/v1/issuers", tokens["issuer"], {
                "name": "Macao Batch CA", "jurisdiction": "MO", "root_certificate": pem(member.root).decode(),
                "policy_mappings": member.mappings()})
            assert status == 201, body
            enrollment = json.loads(body)["id"]
            assert http("POST", f"{base}/v1/issuers/{enrollment}/approve", tokens["admin"])[0] == 200
            bridge = x509.load_pem_x509_certificate(http("GET", base + "/v1/ca/certificate")[2])
            status, _, body = http("POST", f"{base}/v1/issuers/{enrollment}/reverse-certificate", tokens["issuer"],
                                   {"certificate": pem(member.reverse_certificate(bridge)).decode()})
            assert status == 201, body
            item = {"kind": "chain", "certificate": pem(member.leaf).decode(), "intermediates": [pem(member.issuing).decode()]}
            status, _, body = http("POST", base + BATCH, tokens["platform"], {"items": [item, item, {"kind": "chain", "certificate": "x"}]})
            assert status == 200, body
            results = json.loads(body)["results"]
            assert [e.get("result", {}).get("valid") for e in results] == [True, True, None]
            assert results[2]["error"]["code"] == "malformed_input"
            status, headers, body = http("POST", base + BATCH, tokens["platform"], {"items": [item] * 4})
            assert status == 413 and headers["content-type"] == "application/problem+json"
            assert json.loads(body)["code"] == "too_many_items" and json.loads(body)["max_items"] == 3
        finally:
            stop(process)
