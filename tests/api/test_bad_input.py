"""The bad-input sweep: every route of the application (``app.routes``, so a
route added without an entry here fails ``test_every_route_is_swept``) gets
malformed requests — invalid PEM and base64, wrong JSON types, unknown and
extra members, bodies that are not JSON, wrong content types, oversized
bodies (declared and chunked), unknown ids and serials, malformed serials,
absent and revoked tokens, wrong methods — and must answer the expected 4xx
as ``application/problem+json`` with the expected ``code``; never a 500.

One deliberate exception, asserted as such: an OCSP request that is valid
base64/HTTP but not a DER OCSPRequest gets an RFC 6960 ``malformedRequest``
OCSP response (200, application/ocsp-response), which is what OCSP clients
understand (RFC 6960 2.3)."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pytest
from cryptography.x509 import ocsp
from starlette.routing import Route

from tests.bridge.members import make_member, pem

from .conftest import PROBLEM

LIMIT = 1 << 20  # the default body limit (create_app without max_body_bytes)
BAD_PEM = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
BROKEN_PEM = "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n"
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
UNKNOWN_SERIAL = "7e" * 16


@dataclass
class Case:
    label: str
    status: int
    code: str | None
    method: str | None = None  # default: the route's
    path: str | None = None  # default: the route's, filled in
    json: object = field(default_factory=lambda: _UNSET)
    content: bytes | None = None
    headers: dict = field(default_factory=dict)
    role: str | None = "default"  # "default": the route's usual role; None: no token
    problem: bool = True


_UNSET = object()


class Sweeper:
    """Builds the cases of each route from a base request that would succeed (or get a domain answer)."""

    def __init__(self, fed):
        self.fed = fed
        hk = fed.members["HK"]
        self.hk = hk
        self.fresh = make_member("SZ")  # never enrolled: the enroll base body is valid
        fed.tokens["sweep-revoked"] = fed.ca.create_token("admin")
        fed.revoke_token("sweep-revoked")
        self.pending = fed.enroll(make_member("MO"))["id"]

    # ---- base bodies
    def chain(self):
        return self.fed.chain_body("HK")

    def signature(self):
        return {"certificate": pem(self.hk.leaf).decode(), "signature": "AAAA", "data": "AAAA"}

    def enroll(self):
        return {"name": "Sweep CA", "jurisdiction": "SZ", "root_certificate": pem(self.fresh.root).decode(),
                "policy_mappings": self.fresh.mappings()}

    def reverse(self):
        return {"certificate": pem(self.hk.reverse_certificate(self.fed.ca.certificate)).decode()}

    def revoke(self):
        return {"reason": "keyCompromise"}


def auth_cases() -> list[Case]:
    return [
        Case("no token", 401, "unauthorized", role=None),
        Case("revoked token", 401, "unauthorized", role="sweep-revoked"),
        Case("unknown token", 401, "unauthorized", role=None, headers={"Authorization": "Bearer bca_" + "x" * 43}),
    ]


def json_cases(base: dict, *, body_required: bool = True) -> list[Case]:
    """Generic malformed-body cases for a JSON route, mutating a base body."""
    first = next(iter(base))
    cases = [
        Case("not JSON", 400, "invalid_request", content=b"{certificate: nope", headers={"Content-Type": "application/json"}),
        Case("truncated JSON", 400, "invalid_request", content=json.dumps(base).encode()[:-3], headers={"Content-Type": "application/json"}),
        Case("JSON array", 400, "invalid_request", json=[base]),
        Case("JSON string", 400, "invalid_request", json="hello"),
        Case("JSON number", 400, "invalid_request", json=42),
        Case("extra member", 400, "invalid_request", json={**base, "surprise": True}),
        Case("wrong type: number", 400, "invalid_request", json={**base, first: 12345}),
        Case("wrong type: object", 400, "invalid_request", json={**base, first: {"x": 1}}),
        Case("wrong type: list", 400, "invalid_request", json={**base, first: [1, 2]}),
        Case("lone surrogate", 400, "invalid_request",
             content=json.dumps({**base, first: "\ud800"}).encode(), headers={"Content-Type": "application/json"}),
        Case("text/plain", 415, "unsupported_media_type", content=json.dumps(base).encode(), headers={"Content-Type": "text/plain"}),
        Case("form", 415, "unsupported_media_type", content=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        Case("no content type", 415, "unsupported_media_type", content=json.dumps(base).encode()),
        Case("multipart", 415, "unsupported_media_type", content=b"--x--", headers={"Content-Type": "multipart/form-data; boundary=x"}),
        Case("invalid UTF-8", 400, "invalid_request", content=b'{"' + first.encode() + b'": "\xff\xfe"}',
             headers={"Content-Type": "application/json"}),
    ]
    if body_required:
        cases += [Case("empty body", 400, "invalid_request", content=b"", headers={"Content-Type": "application/json"}),
                  Case("empty object", 400, "invalid_request", json={}),
                  Case("JSON null", 400, "invalid_request", json=None)]
    return cases + size_cases()


def size_cases() -> list[Case]:
    big = b"[" + b"0," * (LIMIT // 2) + b"0]"
    return [
        Case("oversized, Content-Length", 413, "body_too_large", content=big, headers={"Content-Type": "application/json"}),
        Case("oversized, chunked", 413, "body_too_large", content=_chunks(big), headers={"Content-Type": "application/json"}),
        Case("bad Content-Length", 400, "invalid_request", content=b"{}", headers={"Content-Type": "application/json", "Content-Length": "-1"}),
    ]


class _chunks:
    """A re-iterable streamed body: httpx sends it chunked, without Content-Length."""

    def __init__(self, data: bytes, size: int = 64 * 1024):
        self.data, self.size = data, size

    def __iter__(self):
        for i in range(0, len(self.data), self.size):
            yield self.data[i:i + self.size]


def wrong_method(method: str) -> list[Case]:
    return [Case(f"{method} not allowed", 405, "method_not_allowed", method=method, role=None)]


def sweep_table(s: Sweeper) -> dict[tuple[str, str], dict]:
    """(method, route path) -> {"role", "path" (filled), "cases"}."""
    chain, sig, enroll, reverse, revoke = s.chain(), s.signature(), s.enroll(), s.reverse(), s.revoke()
    hk_id = s.fed.ids["HK"]
    ocsp_junk = Case("DER that is not an OCSPRequest", 200, None, content=b"\x30\x03\x02\x01\x01",
                     headers={"Content-Type": "application/ocsp-request"}, problem=False)
    return {
        ("GET", "/v1/health"): {"role": None, "cases": wrong_method("DELETE")},
        ("POST", "/v1/verify/chain"): {"role": "platform", "json": chain, "cases": auth_cases() + json_cases(chain) + [
            Case("certificate: PEM of garbage", 400, "malformed_input", json={**chain, "certificate": BAD_PEM}),
            Case("certificate: PEM with invalid base64", 400, "malformed_input", json={**chain, "certificate": BROKEN_PEM}),
            Case("certificate: not PEM at all", 400, "malformed_input", json={**chain, "certificate": "hello"}),
            Case("certificate: empty", 400, None, json={**chain, "certificate": ""}),
            Case("intermediates: garbage", 400, "malformed_input", json={**chain, "intermediates": [BAD_PEM]}),
            Case("intermediates: a string", 400, "invalid_request", json={**chain, "intermediates": "x"}),
            Case("intermediates: numbers", 400, "invalid_request", json={**chain, "intermediates": [1]}),
            Case("policies: not an OID", 400, "malformed_input", json={**chain, "policies": ["not-an-oid"]}),
            Case("policies: numbers", 400, "invalid_request", json={**chain, "policies": [2.5]}),
            Case("require_explicit_policy: string", 400, "invalid_request", json={**chain, "require_explicit_policy": "yes"}),
            Case("inhibit_any_policy: number", 400, "invalid_request", json={**chain, "inhibit_any_policy": 1}),
            Case("revocation: unknown mode", 400, "invalid_request", json={**chain, "revocation": "sometimes"}),
            Case("at: not a time", 400, "malformed_input", json={**chain, "at": "yesterday"}),
            Case("at: a number", 400, "invalid_request", json={**chain, "at": 1700000000}),
            Case("trust_anchor: unknown issuer", 404, "not_found", json={**chain, "trust_anchor": UNKNOWN_ID}),
            Case("trust_anchor: path-like", 404, "not_found", json={**chain, "trust_anchor": "../../etc/passwd"}),
            Case("trust_anchor: NUL", 404, "not_found", json={**chain, "trust_anchor": "a\x00b"}),
            Case("trust_anchor: pending issuer", 422, "issuer_not_active", json={**chain, "trust_anchor": s.pending}),
            Case("trust_anchor: unknown trust list", 404, "not_found", json={**chain, "trust_anchor": "list:" + UNKNOWN_ID}),
            Case("trust_anchor: trust list id with odd characters", 404, "not_found", json={**chain, "trust_anchor": "list:a/../b"}),
            Case("missing certificate", 400, "invalid_request", json={k: v for k, v in chain.items() if k != "certificate"}),
        ]},
        ("POST", "/v1/verify/signature"): {"role": "platform", "json": sig, "cases": auth_cases() + json_cases(sig) + [
            Case("cms: invalid base64", 400, "invalid_base64", json={"cms": "@@@@"}),
            Case("cms: not CMS", 400, "malformed_input", json={"cms": base64.b64encode(b"hello world").decode()}),
            Case("cms: empty", 400, None, json={"cms": ""}),
            Case("content: invalid base64", 400, "invalid_base64", json={"cms": "AAAA", "content": "%%%"}),
            Case("signature: invalid base64", 400, "invalid_base64", json={**sig, "signature": "not base64!"}),
            Case("data: invalid base64", 400, "invalid_base64", json={**sig, "data": "a"}),
            Case("certificate: PEM of garbage", 400, "malformed_input", json={**sig, "certificate": BAD_PEM}),
            Case("certificate: invalid base64 in PEM", 400, "malformed_input", json={**sig, "certificate": BROKEN_PEM}),
            Case("algorithm: unknown", 400, "malformed_input", json={**sig, "algorithm": "rot13"}),
            Case("algorithm: number", 400, "invalid_request", json={**sig, "algorithm": 7}),
            Case("cms and raw together", 400, "invalid_request", json={**sig, "cms": "AAAA"}),
            Case("raw without data", 400, "invalid_request", json={k: v for k, v in sig.items() if k != "data"}),
            Case("content with a raw signature", 400, "invalid_request", json={**sig, "content": "AAAA"}),
            Case("at: signing-time for a raw signature", 400, "malformed_input", json={**sig, "at": "signing-time"}),
            Case("trust_anchor: unknown issuer", 404, "not_found", json={**sig, "trust_anchor": UNKNOWN_ID}),
            Case("revocation: unknown mode", 400, "invalid_request", json={**sig, "revocation": 3}),
        ]},
        # A bad item is that item's error in a 200 (tests/api/test_batch.py); here, the envelope.
        # "options" first: json_cases puts its wrong types there.
        ("POST", "/v1/verify/batch"): {"role": "platform", "json": (batch := {"options": {"revocation": "auto"}, "items": [{"kind": "chain", **chain}]}),
                                       "cases": auth_cases() + json_cases(batch) + [
            Case("items: empty", 400, "invalid_request", json={"items": []}),
            Case("items: missing", 400, "invalid_request", json={"options": {}}),
            Case("items: an object", 400, "invalid_request", json={"items": {"kind": "chain", **chain}}),
            Case("items: a string", 400, "invalid_request", json={"items": "chain"}),
            Case("items: null", 400, "invalid_request", json={"items": None}),
            Case("items: over batch_max_items", 413, "too_many_items", json={"items": [{"kind": "chain"}] * 101}),
            Case("options: unknown mode", 400, "invalid_request", json={**batch, "options": {"revocation": "sometimes"}}),
            Case("options: an item field", 400, "invalid_request", json={**batch, "options": {"certificate": chain["certificate"]}}),
            Case("options: depth out of range", 400, "invalid_request", json={**batch, "options": {"max_chain_depth": 65}}),
        ] + wrong_method("GET")},
        ("POST", "/v1/issuers"): {"role": "issuer", "json": enroll, "cases": auth_cases() + json_cases(enroll) + [
            Case("root_certificate: PEM of garbage", 400, "malformed_certificate", json={**enroll, "root_certificate": BAD_PEM}),
            Case("root_certificate: invalid base64", 400, "malformed_certificate", json={**enroll, "root_certificate": BROKEN_PEM}),
            Case("root_certificate: a leaf", 422, "not_self_signed", json={**enroll, "root_certificate": pem(s.hk.leaf).decode()}),
            Case("root_certificate: already enrolled", 409, "already_enrolled", json={**enroll, "root_certificate": pem(s.hk.root).decode()}),
            Case("jurisdiction: unknown", 422, "unknown_jurisdiction", json={**enroll, "jurisdiction": "XX"}),
            Case("jurisdiction: number", 400, "invalid_request", json={**enroll, "jurisdiction": 44}),
            Case("name: empty", 400, "invalid_request", json={**enroll, "name": ""}),
            Case("policy_mappings: a string", 400, "invalid_request", json={**enroll, "policy_mappings": "x"}),
            Case("policy_mappings: member missing", 400, "invalid_request", json={**enroll, "policy_mappings": [{"bridge_policy": "1.2.3"}]}),
            Case("policy_mappings: extra member", 400, "invalid_request",
                 json={**enroll, "policy_mappings": [{**s.fresh.mappings()[0], "x": 1}]}),
            Case("policy_mappings: not OIDs", 422, "invalid_policy_mapping",
                 json={**enroll, "policy_mappings": [{"bridge_policy": "gold", "member_policy": "silver"}]}),
            Case("policy_mappings: none", 422, "invalid_policy_mapping", json={**enroll, "policy_mappings": []}),
            Case("subtrees: unknown type", 400, "invalid_request", json={**enroll, "permitted_subtrees": [{"type": "x400Address", "value": "x"}]}),
            Case("subtrees: bad CIDR", 422, "invalid_name_constraints", json={**enroll, "excluded_subtrees": [{"type": "iPAddress", "value": "10.0.0.300/8"}]}),
            Case("subtrees: not a list", 400, "invalid_request", json={**enroll, "permitted_subtrees": {"type": "dNSName", "value": "x"}}),
            Case("path_length: negative", 400, "invalid_request", json={**enroll, "path_length": -1}),
            Case("path_length: string", 400, "invalid_request", json={**enroll, "path_length": "1"}),
            Case("path_length: boolean", 400, "invalid_request", json={**enroll, "path_length": True}),
        ]},
        ("GET", "/v1/issuers"): {"role": "platform", "cases": auth_cases() + wrong_method("PUT")},
        ("GET", "/v1/issuers/{issuer_id}"): {"role": "platform", "path": f"/v1/issuers/{hk_id}", "cases": auth_cases() + [
            Case("unknown id", 404, "not_found", path=f"/v1/issuers/{UNKNOWN_ID}"),
            Case("id with odd characters", 404, "not_found", path="/v1/issuers/%00%ff%20'%22"),
            Case("very long id", 404, "not_found", path="/v1/issuers/" + "a" * 2000),
        ] + wrong_method("DELETE")},
        ("POST", "/v1/issuers/{issuer_id}/approve"): {"role": "admin", "path": f"/v1/issuers/{UNKNOWN_ID}/approve", "cases": auth_cases() + [
            Case("unknown id", 404, "not_found"),
            Case("id with odd characters", 404, "not_found", path="/v1/issuers/x%00y/approve"),
            Case("already active", 409, None, path=f"/v1/issuers/{hk_id}/approve"),
            Case("oversized body", 413, "body_too_large", content=b"x" * (LIMIT + 1)),
        ] + wrong_method("GET")},
        ("POST", "/v1/issuers/{issuer_id}/reverse-certificate"): {
            "role": "issuer", "path": f"/v1/issuers/{hk_id}/reverse-certificate", "json": reverse,
            "cases": auth_cases() + json_cases(reverse) + [
                Case("unknown id", 404, "not_found", path=f"/v1/issuers/{UNKNOWN_ID}/reverse-certificate"),
                Case("another issuer's enrollment", 404, "not_found", role="issuer2"),
                Case("certificate: PEM of garbage", 400, "malformed_certificate", json={"certificate": BAD_PEM}),
                Case("certificate: invalid base64", 400, "malformed_certificate", json={"certificate": BROKEN_PEM}),
                Case("certificate: not the bridge's", 422, None, json={"certificate": pem(s.hk.leaf).decode()}),
            ] + wrong_method("GET")},
        ("POST", "/v1/cross-certificates/{serial}/revoke"): {
            "role": "admin", "path": f"/v1/cross-certificates/{UNKNOWN_SERIAL}/revoke", "json": revoke,
            "cases": auth_cases() + json_cases(revoke, body_required=False) + [
                Case("unknown serial", 404, "not_found"),
                Case("serial: not hex", 400, "invalid_serial", path="/v1/cross-certificates/xyz/revoke"),
                Case("serial: negative", 400, "invalid_serial", path="/v1/cross-certificates/-5/revoke"),
                Case("serial: 0x prefix", 400, "invalid_serial", path="/v1/cross-certificates/0x1f/revoke"),
                Case("serial: over 20 octets", 400, "invalid_serial", path="/v1/cross-certificates/" + "f" * 41 + "/revoke"),
                Case("serial: odd colons", 400, "invalid_serial", path="/v1/cross-certificates/a:bc:d/revoke"),
                Case("serial: NUL", 400, "invalid_serial", path="/v1/cross-certificates/1%002/revoke"),
                Case("reason: unknown", 422, "invalid_reason", json={"reason": "because"}),
                Case("reason: number", 400, "invalid_request", json={"reason": 1}),
            ] + wrong_method("GET")},
        **lifecycle_entries(s),
        **trust_list_entries(s),
        **governance_entries(s),
        **blacklist_entries(s),
        **admin_entries(s),
        **evidence_entries(s),
        ("GET", "/v1/ca/certificate"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/ca/certificates"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/crl"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/ca/issued-by-bridge.p7c"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/ca/issued-to-bridge.p7c"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/trust-list.xml"): {"role": None, "cases": wrong_method("POST") + wrong_method("DELETE")},
        ("GET", "/v1/trust-list.json"): {"role": None, "cases": wrong_method("POST") + wrong_method("PUT")},
        ("GET", "/v1/trust-list.json.p7s"): {"role": None, "cases": wrong_method("POST")},
        ("POST", "/v1/ocsp"): {"role": None, "cases": [
            Case("no content type", 415, "unsupported_media_type", content=b"\x30\x00"),
            Case("JSON", 415, "unsupported_media_type", json={"serial": "1"}),
            Case("oversized, Content-Length", 413, "body_too_large", content=b"\x30" * (LIMIT + 1),
                 headers={"Content-Type": "application/ocsp-request"}),
            Case("oversized, chunked", 413, "body_too_large", content=_chunks(b"\x30" * (LIMIT + 1)),
                 headers={"Content-Type": "application/ocsp-request"}),
            ocsp_junk,
            Case("empty", 200, None, content=b"", headers={"Content-Type": "application/ocsp-request"}, problem=False),
        ] + wrong_method("PUT")},
        ("GET", "/v1/ocsp/{encoded:path}"): {"role": None, "cases": [
            Case("invalid base64", 400, "invalid_base64", path="/v1/ocsp/not*base64"),
            Case("base64 with a bad length", 400, "invalid_base64", path="/v1/ocsp/AAA"),
            Case("url-encoded junk", 400, "invalid_base64", path="/v1/ocsp/%25%25"),
            Case("valid base64, not an OCSPRequest", 200, None, path="/v1/ocsp/" + base64.b64encode(b"hello").decode(), problem=False),
            Case("oversized body on GET", 413, "body_too_large", path="/v1/ocsp/AAAA", content=b"x" * (LIMIT + 1)),
        ] + wrong_method("DELETE")},
        ("GET", "/openapi.json"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/docs"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/docs-assets/{name}"): {"role": None, "path": "/docs-assets/swagger-ui.css", "cases": [
            Case("unknown asset", 404, "not_found", path="/docs-assets/core.py"),
            Case("a path out of the directory", 404, "not_found", path="/docs-assets/..%2F__init__.py"),
        ] + wrong_method("POST")},
        ("GET", "/redoc"): {"role": None, "cases": wrong_method("POST")},
    }


def admin_entries(s: Sweeper) -> dict:
    """The admin routes beyond the contract's (api/admin_routes.py) and the operator's (metrics, readiness)."""
    reason = {"reason": "sweep"}
    token = {"role": "platform", "expires_in_seconds": 3600}
    admin_only = [Case("platform token", 403, "forbidden", role="platform"), Case("issuer token", 403, "forbidden", role="issuer")]
    return {
        ("GET", "/metrics"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/ready"): {"role": None, "cases": wrong_method("POST") + wrong_method("DELETE")},
        ("POST", "/v1/issuers/{issuer_id}/reject"): {
            "role": "admin", "path": f"/v1/issuers/{UNKNOWN_ID}/reject", "json": reason,
            "cases": auth_cases() + admin_only + json_cases(reason, body_required=False) + [
                Case("unknown id", 404, "not_found"),
                Case("active member", 409, "invalid_state", path=f"/v1/issuers/{s.fed.ids['HK']}/reject"),
                Case("reason: too long", 400, "invalid_request", json={"reason": "x" * 501}),
            ] + wrong_method("GET")},
        ("POST", "/v1/crl/issue"): {"role": "admin", "cases": auth_cases() + admin_only + wrong_method("GET")},
        ("GET", "/v1/tokens"): {"role": "admin", "cases": auth_cases() + admin_only + wrong_method("DELETE")},
        ("POST", "/v1/tokens"): {
            "role": "admin", "json": token, "cases": auth_cases() + admin_only + json_cases(token) + [
                Case("role: unknown", 400, "invalid_request", json={"role": "root"}),
                Case("expires_in_seconds: zero", 400, "invalid_request", json={"role": "platform", "expires_in_seconds": 0}),
                Case("expires_in_seconds: a string", 400, "invalid_request", json={"role": "platform", "expires_in_seconds": "1d"}),
            ]},
        ("POST", "/v1/tokens/{token_id}/revoke"): {
            "role": "admin", "path": "/v1/tokens/999999/revoke", "cases": auth_cases() + admin_only + [
                Case("unknown id", 404, "not_found"),
                Case("not a number", 400, "invalid_request", path="/v1/tokens/abc/revoke"),
            ] + wrong_method("GET")},
    }


def trust_list_entries(s: Sweeper) -> dict:
    """api/routes_trust_lists.py. Nothing here registers a list: every case fails before the store."""
    signer = pem(s.hk.root).decode()
    register = {"name": "Sweep list", "url": "http://127.0.0.1:9/tl.xml", "allowed_signers": [signer]}
    upload = {"xml": base64.b64encode(b"<a/>").decode()}
    unknown = f"/v1/trust-lists/{UNKNOWN_ID}"

    def refused(label, status, code, **body):
        return Case(label, status, code, json={**register, **body})

    return {
        ("POST", "/v1/trust-lists"): {"role": "admin", "json": register, "cases": auth_cases() + json_cases(register) + [
            Case("platform token", 403, "forbidden", role="platform"),
            Case("neither url nor xml", 400, "invalid_request", json={"name": "x", "allowed_signers": [signer]}),
            refused("both url and xml", 400, "invalid_request", xml=upload["xml"]),
            refused("url: not http", 400, "invalid_request", url="ftp://example.com/tl.xml"),
            refused("allowed_signers: empty", 400, "invalid_request", allowed_signers=[]),
            refused("allowed_signers: garbage", 400, "invalid_signer_certificate", allowed_signers=[BAD_PEM]),
            refused("mapping: not OIDs", 400, "invalid_mapping", mapping={"policies": [{"prefix": "gold", "bridge_policy": "x"}]}),
            refused("mapping: unknown member", 400, "invalid_request", mapping={"qualifiers": {}}),
            Case("xml: invalid base64", 400, "invalid_base64", json={"name": "x", "xml": "!!", "allowed_signers": [signer]}),
            Case("xml: not a trust list", 422, "malformed_trust_list", json={"name": "x", **upload, "allowed_signers": [signer]}),
            Case("xml: not XML", 422, "malformed_trust_list",
                 json={"name": "x", "xml": base64.b64encode(b"\x00\xff").decode(), "allowed_signers": [signer]}),
        ] + wrong_method("PUT")},
        ("GET", "/v1/trust-lists"): {"role": "platform", "cases": auth_cases() + wrong_method("PUT")},
        ("GET", "/v1/trust-lists/{list_id}"): {"role": "platform", "path": unknown, "cases": auth_cases() + [
            Case("unknown id", 404, "not_found"),
            Case("id with odd characters", 404, "not_found", path="/v1/trust-lists/%00%ff"),
        ] + wrong_method("DELETE")},
        ("GET", "/v1/trust-lists/{list_id}/services"): {"role": "platform", "path": unknown + "/services", "cases": auth_cases() + [
            Case("unknown id", 404, "not_found"),
            Case("very long id", 404, "not_found", path=f"/v1/trust-lists/{'a' * 2000}/services"),
        ] + wrong_method("POST")},
        ("POST", "/v1/trust-lists/{list_id}/fetch"): {"role": "admin", "path": unknown + "/fetch", "cases": auth_cases() + [
            Case("unknown id", 404, "not_found"),
            Case("platform token", 403, "forbidden", role="platform"),
            Case("body not JSON", 415, "unsupported_media_type", content=b"x", headers={"Content-Type": "text/plain"}),
        ] + wrong_method("GET")},
        ("POST", "/v1/trust-lists/{list_id}/versions"): {"role": "admin", "path": unknown + "/versions", "json": upload,
                                                        "cases": auth_cases() + json_cases(upload) + [
            Case("unknown id", 404, "not_found"),
            Case("xml: invalid base64", 400, "invalid_base64", json={"xml": "!!"}),
            Case("platform token", 403, "forbidden", role="platform"),
        ] + wrong_method("GET")},
    }


def governance_entries(s: Sweeper) -> dict:
    """api/routes_governance.py: proposals, the audit log, its checkpoints. Nothing here may change anything."""
    unknown = "/v1/proposals/" + "f" * 32
    cancel = {"reason": "sweep"}
    return {
        ("GET", "/v1/proposals"): {"role": "admin", "cases": auth_cases() + [
            Case("platform token", 403, "forbidden", role="platform"),
            Case("status: unknown", 400, "invalid_request", path="/v1/proposals?status=maybe"),
            Case("status: too long", 400, "invalid_request", path="/v1/proposals?status=" + "p" * 100),
        ] + wrong_method("DELETE")},
        ("POST", "/v1/proposals/{proposal_id}/confirm"): {"role": "admin", "path": unknown + "/confirm", "cases": auth_cases() + [
            Case("unknown id", 404, "not_found"),
            Case("id with odd characters", 404, "not_found", path="/v1/proposals/x%00y/confirm"),
            Case("very long id", 404, "not_found", path=f"/v1/proposals/{'a' * 2000}/confirm"),
            Case("platform token", 403, "forbidden", role="platform"),
            Case("issuer token", 403, "forbidden", role="issuer"),
            Case("body not JSON", 415, "unsupported_media_type", content=b"x", headers={"Content-Type": "text/plain"}),
            Case("oversized body", 413, "body_too_large", content=b"x" * (LIMIT + 1), headers={"Content-Type": "application/json"}),
        ] + wrong_method("GET")},
        ("POST", "/v1/proposals/{proposal_id}/cancel"): {"role": "admin", "path": unknown + "/cancel", "json": cancel,
                                                         "cases": auth_cases() + json_cases(cancel, body_required=False) + [
            Case("unknown id", 404, "not_found"),
            Case("id with odd characters", 404, "not_found", path="/v1/proposals/%00%ff%20'%22/cancel"),
            Case("reason: too long", 400, "invalid_request", json={"reason": "x" * 501}),
            Case("reason: null", 400, "invalid_request", json={"reason": None}),
            Case("platform token", 403, "forbidden", role="platform"),
        ] + wrong_method("GET")},
        ("GET", "/v1/audit"): {"role": "admin", "cases": auth_cases() + [
            Case("platform token", 403, "forbidden", role="platform"),
            Case("issuer token", 403, "forbidden", role="issuer"),
            Case("limit: zero", 400, "invalid_request", path="/v1/audit?limit=0"),
            Case("limit: too many", 400, "invalid_request", path="/v1/audit?limit=100000"),
            Case("limit: not a number", 400, "invalid_request", path="/v1/audit?limit=all"),
            Case("after: negative", 400, "invalid_request", path="/v1/audit?after=-1"),
            Case("since: not a time", 400, "invalid_request", path="/v1/audit?since=yesterday"),
            Case("since: NUL", 400, "invalid_request", path="/v1/audit?since=2026%00"),
            Case("action: too long", 400, "invalid_request", path="/v1/audit?action=" + "a" * 100),
        ] + wrong_method("POST")},
        ("GET", "/v1/audit/checkpoints"): {"role": None, "cases": [
            Case("limit: zero", 400, "invalid_request", path="/v1/audit/checkpoints?limit=0"),
            Case("limit: not a number", 400, "invalid_request", path="/v1/audit/checkpoints?limit=x"),
        ] + wrong_method("POST") + wrong_method("DELETE")},
    }


def blacklist_entries(s: Sweeper) -> dict:
    """api/routes_blacklist.py and api/routes_governance_public.py. Nothing here lists anything: every case fails."""
    add = {"kind": "spki_sha256", "value": "ab" * 32, "reason": "sweep"}
    remove = {"reason": "sweep"}
    remove_path = f"/v1/blacklist/entries/{UNKNOWN_ID}/remove"
    refused = lambda label, status, code, **body: Case(label, status, code, json={**add, **body})  # noqa: E731
    return {
        ("GET", "/v1/blacklist/entries"): {"role": "admin", "cases": auth_cases() + [
            Case("platform token", 403, "forbidden", role="platform"),
            Case("issuer token", 403, "forbidden", role="issuer"),
        ] + wrong_method("DELETE")},
        ("POST", "/v1/blacklist/entries"): {"role": "admin", "json": add, "cases": auth_cases() + [
        ] + json_cases(add) + [
            Case("platform token, broken body", 403, "forbidden", role="platform", content=b"{x",
                 headers={"Content-Type": "application/json"}),
            Case("no token, broken body", 401, "unauthorized", role=None, content=b"{x", headers={"Content-Type": "application/json"}),
            refused("kind: unknown", 400, "invalid_request", kind="colour"),
            refused("value: not hex", 422, "invalid_blacklist_entry", value="zz" * 32),
            refused("value: short digest", 422, "invalid_blacklist_entry", value="ab"),
            refused("value: a number", 400, "invalid_request", value=7),
            refused("value: object for a digest", 422, "invalid_blacklist_entry", value={"oid": "2.5.4.97", "value": "x"}),
            refused("value: unknown members", 400, "invalid_request", value={"x": 1}),
            refused("issuer_serial: bad issuer", 422, "invalid_blacklist_entry", kind="issuer_serial",
                    value={"issuer": "no name", "serial": "1f"}),
            refused("issuer_serial: bad serial", 422, "invalid_blacklist_entry", kind="issuer_serial",
                    value={"issuer": "CN=X", "serial": "-1"}),
            refused("subject_identity: bad OID", 422, "invalid_blacklist_entry", kind="subject_identity",
                    value={"oid": "gibberish", "value": "x"}),
            refused("value and certificate", 422, "invalid_blacklist_entry", certificate=pem(s.hk.root).decode()),
            Case("certificate: PEM of garbage", 400, "malformed_certificate",
                 json={**{k: v for k, v in add.items() if k != "value"}, "certificate": BAD_PEM}),
            refused("no value", 422, "invalid_blacklist_entry", value=None),
            refused("reason: empty", 400, "invalid_request", reason=""),
            refused("reason: too long", 400, "invalid_request", reason="x" * 201),
            refused("effective_at: not a time", 400, "invalid_request", effective_at="yesterday"),
            refused("effective_at: future", 422, "invalid_blacklist_entry", effective_at="2999-01-01T00:00:00Z"),
            refused("effective_at: no zone", 422, "invalid_blacklist_entry", effective_at="2020-01-01T00:00:00"),
            refused("internal_note: a number", 400, "invalid_request", internal_note=3),
        ] + wrong_method("PUT")},
        ("POST", "/v1/blacklist/entries/{entry_id}/remove"): {
            "role": "admin", "path": remove_path, "json": remove,
            "cases": auth_cases() + json_cases(remove, body_required=False) + [
                Case("unknown id", 404, "not_found"),
                Case("id with odd characters", 404, "not_found", path="/v1/blacklist/entries/x%00y/remove"),
                Case("very long id", 404, "not_found", path="/v1/blacklist/entries/" + "a" * 2000 + "/remove"),
                Case("platform token", 403, "forbidden", role="platform"),
                Case("reason: too long", 400, "invalid_request", json={"reason": "x" * 501}),
            ] + wrong_method("GET")},
        ("GET", "/v1/blacklist"): {"role": None, "cases": wrong_method("POST") + wrong_method("DELETE")},
        ("GET", "/v1/blacklist.p7s"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/register"): {"role": None, "cases": wrong_method("POST")},
    }


def lifecycle_entries(s: Sweeper) -> dict:
    """api/routes_lifecycle.py. Nothing here may change a member: HK's cases all fail."""
    hk_id = s.fed.ids["HK"]
    reason = {"reason": "sweep"}
    entries = {}
    for action in ("suspend", "reinstate", "renew", "withdraw"):
        role = "issuer" if action == "withdraw" else "admin"
        cases = auth_cases() + json_cases(reason, body_required=False) + [
            Case("unknown id", 404, "not_found"),
            Case("id with odd characters", 404, "not_found", path=f"/v1/issuers/x%00y/{action}"),
            Case("very long id", 404, "not_found", path=f"/v1/issuers/{'a' * 2000}/{action}"),
            Case("reason: too long", 400, "invalid_request", json={"reason": "x" * 501}),
            Case("reason: null", 400, "invalid_request", json={"reason": None}),
            Case("platform token", 403, "forbidden", role="platform"),
        ] + wrong_method("GET")
        if action == "withdraw":
            cases.append(Case("another issuer's enrollment", 404, "not_found", path=f"/v1/issuers/{hk_id}/withdraw", role="issuer2"))
        else:
            cases.append(Case("issuer token", 403, "forbidden", role="issuer"))
            cases.append(Case("pending enrollment", 409, "invalid_state", path=f"/v1/issuers/{s.pending}/{action}"))
        if action == "reinstate":
            cases.append(Case("active member", 409, "invalid_state", path=f"/v1/issuers/{hk_id}/reinstate"))
        entries[("POST", f"/v1/issuers/{{issuer_id}}/{action}")] = {
            "role": role, "path": f"/v1/issuers/{UNKNOWN_ID}/{action}", "json": reason, "cases": cases}
    terms = {"path_length": 1}
    hk_terms = f"/v1/issuers/{hk_id}/terms"
    entries[("PUT", "/v1/issuers/{issuer_id}/terms")] = {
        "role": "admin", "path": f"/v1/issuers/{UNKNOWN_ID}/terms", "json": terms,
        "cases": auth_cases() + json_cases(terms, body_required=False) + [
            Case("empty body", 400, "invalid_request", content=b"", headers={"Content-Type": "application/json"}),
            Case("JSON null", 400, "invalid_request", json=None),
            Case("unknown id", 404, "not_found"),
            Case("issuer token", 403, "forbidden", role="issuer"),
            Case("path_length: negative", 400, "invalid_request", json={"path_length": -1}),
            Case("path_length: boolean", 400, "invalid_request", json={"path_length": True}),
            Case("policy_mappings: a string", 400, "invalid_request", json={"policy_mappings": "x"}),
            Case("policy_mappings: not OIDs", 422, "invalid_policy_mapping", path=hk_terms,
                 json={"policy_mappings": [{"bridge_policy": "gold", "member_policy": "silver"}]}),
            Case("policy_mappings: none", 422, "invalid_policy_mapping", path=hk_terms, json={"policy_mappings": []}),
            Case("subtrees: unknown type", 400, "invalid_request", json={"permitted_subtrees": [{"type": "x400Address", "value": "x"}]}),
            Case("subtrees: bad CIDR", 422, "invalid_name_constraints", path=hk_terms,
                 json={"excluded_subtrees": [{"type": "iPAddress", "value": "10.0.0.300/8"}]}),
            Case("unchanged terms", 422, "unchanged_terms", path=hk_terms, json={"policy_mappings": s.hk.mappings()}),
            Case("pending enrollment", 409, "invalid_state", path=f"/v1/issuers/{s.pending}/terms", json={"path_length": 0}),
        ] + wrong_method("POST")}
    entries[("GET", "/v1/issuers/{issuer_id}/history")] = {
        "role": "platform", "path": f"/v1/issuers/{hk_id}/history", "cases": auth_cases() + [
            Case("unknown id", 404, "not_found", path=f"/v1/issuers/{UNKNOWN_ID}/history"),
            Case("id with odd characters", 404, "not_found", path="/v1/issuers/%00%ff%20'%22/history"),
            Case("another issuer's enrollment", 404, "not_found", role="issuer2"),
        ] + wrong_method("DELETE")}
    expiring = "/v1/cross-certificates/expiring"
    entries[("GET", expiring)] = {"role": "admin", "cases": auth_cases() + [
        Case("platform token", 403, "forbidden", role="platform"),
        Case("days: negative", 400, "invalid_request", path=f"{expiring}?days=-1"),
        Case("days: not a number", 400, "invalid_request", path=f"{expiring}?days=soon"),
        Case("days: NaN", 400, "invalid_request", path=f"{expiring}?days=nan"),
        Case("days: too many", 400, "invalid_request", path=f"{expiring}?days=1e9"),
    ] + wrong_method("DELETE")}
    entries.update(console_entries(s))
    return entries


def evidence_entries(s: Sweeper) -> dict[tuple[str, str], dict]:
    """Issue 12: the TSA (a refused time-stamp request is a 200 TimeStampResp with status rejection, not a
    problem: tests/api/test_tsa.py) and the evidence route (tests/api/test_receipts.py)."""
    query = {"Content-Type": "application/timestamp-query"}
    return {
        ("POST", "/v1/tsa"): {"role": "platform", "cases": auth_cases() + [
            Case("issuer role", 403, "forbidden", role="issuer", content=b"\x30\x00", headers=query),
            Case("JSON", 415, "unsupported_media_type", json={"query": "x"}),
            Case("no content type", 415, "unsupported_media_type", content=b"\x30\x00"),
            Case("empty", 400, "invalid_request", content=b"", headers=query),
            Case("DER that is not a TimeStampReq", 200, None, content=b"\x30\x03\x02\x01\x01", headers=query, problem=False),
            Case("oversized, Content-Length", 413, "body_too_large", content=b"\x30" * (LIMIT + 1), headers=query),
            Case("oversized, chunked", 413, "body_too_large", content=_chunks(b"\x30" * (LIMIT + 1)), headers=query),
        ] + wrong_method("PUT")},
        ("GET", "/v1/tsa/certificate"): {"role": None, "cases": wrong_method("POST")},
        ("GET", "/v1/evidence/{sha256}"): {"role": "platform", "path": "/v1/evidence/" + "0" * 64, "cases": auth_cases() + [
            Case("issuer role", 403, "forbidden", role="issuer"),
            Case("unknown hash", 404, "not_found"),
            Case("not a hash", 404, "not_found", path="/v1/evidence/../../etc/passwd"),
            Case("NUL", 404, "not_found", path="/v1/evidence/a%00b"),
            Case("upper-case hex of nothing kept", 404, "not_found", path="/v1/evidence/" + "A" * 64),
        ] + wrong_method("DELETE")},
    }


def console_entries(s: Sweeper) -> dict[tuple[str, str], dict]:
    """The console's pages and forms (api/console/; tests/api/test_console.py has the rest), asked by a
    client that wants JSON: problem+json answers, never a page."""
    json_client = {"Accept": "application/json"}
    no_session = Case("no session", 401, "unauthorized", headers=json_client)
    not_a_form = Case("a JSON body, not a form", 415, "unsupported_media_type", content=b'{"csrf": "x"}',
                      headers={**json_client, "Content-Type": "application/json"})
    form = {**json_client, "Content-Type": "application/x-www-form-urlencoded"}
    no_csrf = Case("a form without its CSRF token", 403, "csrf_failed", content=b"token=x", headers=form)
    entries: dict[tuple[str, str], dict] = {}
    pages = ("/", "/admin", "/admin/audit", "/admin/blacklist", "/admin/details", "/admin/members",
             f"/admin/members/{s.fed.ids['HK']}", "/admin/queues", "/verify")
    for page in pages:
        route = "/admin/members/{enrollment_id}" if page.startswith("/admin/members/") else page
        entries[("GET", route)] = {"role": None, "path": page, "cases": [no_session] + wrong_method("DELETE")}
    hk, serial, some_id = s.fed.ids["HK"], s.fed.serials["HK"], "0" * 32
    actions = {
        "/admin/blacklist": "/admin/blacklist", "/admin/blacklist/{entry_id}/remove": f"/admin/blacklist/{some_id}/remove",
        "/admin/cross-certificates/{serial}/revoke": f"/admin/cross-certificates/{serial}/revoke",
        "/admin/enrollments/{enrollment_id}/approve": f"/admin/enrollments/{s.pending}/approve",
        "/admin/enrollments/{enrollment_id}/reject": f"/admin/enrollments/{s.pending}/reject",
        "/admin/logout": "/admin/logout", "/admin/proposals/{proposal_id}/cancel": f"/admin/proposals/{some_id}/cancel",
        "/admin/proposals/{proposal_id}/confirm": f"/admin/proposals/{some_id}/confirm", "/verify": "/verify",
        **{f"/admin/members/{{enrollment_id}}/{action}": f"/admin/members/{hk}/{action}"
           for action in ("mappings", "reinstate", "renew", "suspend", "withdraw")},
    }
    for route, path in actions.items():
        entries[("POST", route)] = {"role": None, "path": path, "cases": [
            not_a_form, Case("no session", 401, "unauthorized", content=b"csrf=x", headers=form)]}
    entries[("GET", "/admin/login")] = {"role": None, "cases": wrong_method("DELETE")}
    entries[("POST", "/admin/login")] = {"role": None, "cases": [not_a_form, no_csrf]}
    entries[("GET", "/console/static/{name}")] = {"role": None, "path": "/console/static/console.css", "cases": [
        Case("unknown file", 404, "not_found", path="/console/static/nothing.css"),
        Case("a template, not a static file", 404, "not_found", path="/console/static/base.html"),
    ] + wrong_method("DELETE")}
    return entries


@pytest.fixture(scope="module")
def table(federation):
    return sweep_table(Sweeper(federation))


def _flat_routes(routes):
    """Routes, with those of included APIRouters (FastAPI keeps an included router as one entry) in place."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat_routes(included.routes)
        else:
            yield route


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in _flat_routes(app.routes):
        assert isinstance(route, Route), f"{route!r}: a route kind the sweep does not know"
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_route_is_swept(federation, table):
    routes = _routes(federation.app)
    missing = sorted(routes - set(table))
    assert not missing, f"routes without a bad-input sweep entry: {missing}"
    stale = sorted(set(table) - routes)
    assert not stale, f"sweep entries for routes that no longer exist: {stale}"


def run_case(fed, entry: dict, route_method: str, route_path: str, case: Case):
    method = case.method or route_method
    path = case.path or entry.get("path") or route_path
    headers = dict(case.headers)
    role = entry["role"] if case.role == "default" else case.role
    if role is not None:
        headers.setdefault("Authorization", f"Bearer {fed.tokens[role]}")
    kwargs = {"headers": headers}
    if case.json is not _UNSET:
        kwargs["json"] = case.json
    elif case.content is not None:
        kwargs["content"] = case.content
    elif "json" in entry:
        kwargs["json"] = entry["json"]  # the base body: the case's defect is elsewhere (path, token, method)
    return fed.client.request(method, path, **kwargs)


def _check(fed, entry, method, path, case):
    r = run_case(fed, entry, method, path, case)
    where = f"{method} {path} [{case.label}]"
    assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
    if case.problem:
        assert r.status_code == case.status, f"{where}: {r.status_code} {r.text[:300]}"
        assert r.headers.get("content-type", "").split(";")[0] == PROBLEM, f"{where}: {r.headers.get('content-type')}"
        body = r.json()
        assert body["status"] == case.status and body["code"], f"{where}: {body}"
        if case.code is not None:
            assert body["code"] == case.code, f"{where}: {body}"
        if case.status == 405:
            assert r.headers.get("allow"), f"{where}: no Allow header"
    elif r.headers.get("content-type") == "application/timestamp-reply":  # a refused time-stamp request (issue 12)
        from asn1crypto import core, tsp

        assert r.status_code == case.status, f"{where}: {r.status_code}"
        assert tsp.PKIStatusInfo.load(core.Sequence.load(r.content)[0].dump())["status"].native == "rejection", where
    else:
        assert r.status_code == case.status, f"{where}: {r.status_code}"
        assert r.headers["content-type"] == "application/ocsp-response", where
        assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST, where


def test_sweep(federation, table):
    """Every case of every route (collected so one run reports all failures)."""
    failures = []
    count = 0
    limiter = getattr(federation.app.state, "auth_failures", None)
    for (method, path), entry in table.items():
        assert entry["cases"], f"{method} {path}: no cases"
        if limiter is not None:
            # The sweep's bad tokens add up past the failed-authentication
            # limit (50 a minute per address); that limit is tested in test_rate_limit.py.
            limiter._entries.clear()
        for case in entry["cases"]:
            count += 1
            try:
                _check(federation, entry, method, path, case)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
    assert not failures, f"{len(failures)} of {count} cases failed:\n" + "\n".join(failures)
    assert count > 200


def test_sweep_changed_nothing(federation, table):
    """After the sweep: no enrollment was made from a bad request, HK's cross-certificate is still good."""
    names = [i["name"] for i in federation.client.get("/v1/issuers", headers=federation.h("admin")).json()]
    assert "Sweep CA" not in names
    view = federation.client.get(f"/v1/issuers/{federation.ids['HK']}", headers=federation.h("admin")).json()
    assert [x["status"] for x in view["cross_certificates"]] == ["issued"]
    assert federation.client.get("/v1/trust-lists", headers=federation.h("admin")).json() == []  # no list registered


def test_the_base_requests_are_accepted(federation, table):
    """The sweep's base bodies are good ones, so each case fails only by its own defect."""
    c = federation.client
    r = c.post("/v1/verify/chain", headers=federation.h("platform"), json=table[("POST", "/v1/verify/chain")]["json"])
    assert r.status_code == 200 and r.json()["valid"] is True
    r = c.post("/v1/verify/signature", headers=federation.h("platform"), json=table[("POST", "/v1/verify/signature")]["json"])
    assert r.status_code == 200 and r.json()["valid"] is False  # "AAAA" is no signature, but the request is well-formed
    entry = table[("POST", "/v1/issuers/{issuer_id}/reverse-certificate")]
    r = c.post(entry["path"], headers=federation.h("issuer"), json=entry["json"])
    assert r.status_code in (201, 409), r.text  # the same certificate again is at most a conflict
    r = c.post("/v1/issuers", headers=federation.h("issuer"), json=table[("POST", "/v1/issuers")]["json"])
    assert r.status_code == 201, r.text


def test_a_new_route_without_an_entry_is_noticed(federation, table):
    """The coverage check above is not vacuous: an app with one more route fails it."""
    from api.app import create_app

    app = create_app(federation.ca)

    @app.get("/v1/brand-new")
    def brand_new() -> dict:
        return {}

    assert _routes(app) - set(table) == {("GET", "/v1/brand-new")}
