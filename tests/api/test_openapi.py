"""OpenAPI: /openapi.json describes every contract route with its request and
response schemas (examples on the main request bodies, problem+json for
errors, binary media types on the publication routes); /docs is served."""
from __future__ import annotations

import pytest

CONTRACT = [
    ("get", "/v1/health"),
    ("post", "/v1/verify/chain"),
    ("post", "/v1/verify/signature"),
    ("post", "/v1/issuers"),
    ("get", "/v1/issuers"),
    ("get", "/v1/issuers/{issuer_id}"),
    ("post", "/v1/issuers/{issuer_id}/approve"),
    ("post", "/v1/issuers/{issuer_id}/reverse-certificate"),
    ("post", "/v1/cross-certificates/{serial}/revoke"),
    ("get", "/v1/ca/certificate"),
    ("get", "/v1/crl"),
    ("get", "/v1/ca/issued-by-bridge.p7c"),
    ("get", "/v1/ca/issued-to-bridge.p7c"),
    ("post", "/v1/ocsp"),
    ("get", "/v1/ocsp/{encoded}"),
]
JSON_BODIES = {
    ("post", "/v1/verify/chain"): ("VerifyChainRequest", "VerificationResultModel", "200"),
    ("post", "/v1/verify/signature"): ("VerifySignatureRequest", "SignatureResultModel", "200"),
    ("post", "/v1/issuers"): ("EnrollRequest", "IssuerView", "201"),
    ("post", "/v1/issuers/{issuer_id}/reverse-certificate"): ("ReverseCertificateRequest", "ReverseCertificateView", "201"),
    ("post", "/v1/cross-certificates/{serial}/revoke"): ("RevokeRequest", "RevokeResult", "200"),
}
BINARY = {
    ("get", "/v1/crl"): "application/pkix-crl",
    ("get", "/v1/ca/issued-by-bridge.p7c"): "application/pkcs7-mime",
    ("get", "/v1/ca/issued-to-bridge.p7c"): "application/pkcs7-mime",
    ("post", "/v1/ocsp"): "application/ocsp-response",
    ("get", "/v1/ocsp/{encoded}"): "application/ocsp-response",
    ("get", "/v1/ca/certificate"): "application/pkix-cert",
}


@pytest.fixture(scope="module")
def spec(federation):
    r = federation.client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return r.json()


def ref_name(schema: dict) -> str | None:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return ref_name(schema["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, ()):
            name = ref_name(option)
            if name:
                return name
    return None


def test_every_contract_route_is_described(spec):
    for method, path in CONTRACT:
        assert path in spec["paths"], path
        operation = spec["paths"][path].get(method)
        assert operation is not None, f"{method} {path}"
        assert operation.get("summary"), f"{method} {path}: no summary"
        ok = [s for s in operation["responses"] if s.startswith("2")]
        assert ok, f"{method} {path}: no success response"
        for status in ok:
            content = operation["responses"][status]["content"]
            assert content and all("schema" in media for media in content.values()), f"{method} {path} {status}"


@pytest.mark.parametrize("route", sorted(JSON_BODIES), ids=lambda r: f"{r[0]} {r[1]}")
def test_json_routes_have_request_and_response_models(spec, route):
    request_model, response_model, status = JSON_BODIES[route]
    operation = spec["paths"][route[1]][route[0]]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert ref_name(body) == request_model
    assert ref_name(operation["responses"][status]["content"]["application/json"]["schema"]) == response_model
    component = spec["components"]["schemas"][request_model]
    assert component.get("additionalProperties") is False  # unknown members are refused, and documented so
    for status, response in operation["responses"].items():
        if status.startswith("4"):
            assert ref_name(response["content"]["application/problem+json"]["schema"]) == "ProblemDetails", status


@pytest.mark.parametrize("model", ["VerifyChainRequest", "VerifySignatureRequest", "EnrollRequest", "ReverseCertificateRequest", "RevokeRequest"])
def test_main_request_bodies_have_examples(spec, model):
    schema = spec["components"]["schemas"][model]
    examples = schema.get("examples")
    assert examples, model
    properties = set(schema["properties"])
    for example in examples:
        assert set(example) <= properties, f"{model} example names unknown members: {set(example) - properties}"
        for required in schema.get("required", ()):
            if model != "VerifySignatureRequest":
                assert required in example, f"{model} example lacks {required}"


def test_response_models_for_issuers_approve_revoke(spec):
    paths = spec["paths"]
    assert ref_name(paths["/v1/issuers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]) == "IssuerView"
    assert paths["/v1/issuers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert ref_name(paths["/v1/issuers/{issuer_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]) == "IssuerView"
    approve = paths["/v1/issuers/{issuer_id}/approve"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ref_name(approve) == "ApprovedIssuerView"
    approved = spec["components"]["schemas"]["ApprovedIssuerView"]
    assert {"id", "status", "cross_certificate", "serial"} <= set(approved["required"])
    issuer = spec["components"]["schemas"]["IssuerView"]
    assert {"id", "status", "cross_certificates"} <= set(issuer["required"])


@pytest.mark.parametrize("route", sorted(BINARY), ids=lambda r: f"{r[0]} {r[1]}")
def test_publication_routes_declare_binary_media_types(spec, route):
    content = spec["paths"][route[1]][route[0]]["responses"]["200"]["content"]
    media = BINARY[route]
    assert content[media]["schema"] == {"type": "string", "format": "binary"}
    assert "application/json" not in content


def test_ocsp_post_documents_its_request_media_type(spec):
    body = spec["paths"]["/v1/ocsp"]["post"]["requestBody"]
    assert body["content"]["application/ocsp-request"]["schema"]["format"] == "binary"


def test_errors_are_documented_as_problem_details(spec):
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # validation failures are 400 problems
    problem = spec["components"]["schemas"]["ProblemDetails"]
    assert {"title", "status", "code", "detail"} <= set(problem["required"])
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {status}"


def test_docs_page(federation):
    r = federation.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text and "swagger" in r.text.lower()
