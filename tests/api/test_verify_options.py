"""POST /v1/verify/chain and /v1/verify/signature take the relying party's
requirements (issue 11) as JSON fields with INTERFACE.md's names:
``profile``, ``anchor_constraints``, ``key_usage``, ``extended_key_usage``,
``max_chain_depth``.

Each field reaches the core through api/inputs.py and VerificationService,
on the chain route, for raw signatures and for CMS: a certificate that
passes without it fails with it (with the expected code), or the other way
round for the two that relax the default. Bad values are 400 problem+json
with the code the other fields get for the same kind of mistake. An answer
given again from the cache is the first answer. Real certificates,
issued under the federation's members' issuing CAs.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from api import schemas
from tests import pkibuilder as pb
from tests.bridge.members import MEMBER_POLICIES, Member, make_root, name, pem, utcnow
from tests.test_cli_verify_options import email_protection, with_serial

from .conftest import assert_problem, bridge_env

DATA = b"Cross-border e-invoice no. 2026-0099\r\n"
OPTIONS = ("profile", "anchor_constraints", "key_usage", "extended_key_usage", "max_chain_depth")


@dataclass
class Leaf:
    """A leaf whose key we hold, and how to ask about it."""
    der: bytes
    key: ec.EllipticCurvePrivateKey
    intermediates: list[str]
    trust_anchor: str = "bridge"
    at: str | None = None

    @property
    def pem(self) -> str:
        return x509.load_der_x509_certificate(self.der).public_bytes(serialization.Encoding.PEM).decode()

    def base(self) -> dict:
        body = {"intermediates": self.intermediates, "trust_anchor": self.trust_anchor}
        if self.at:
            body["at"] = self.at
        return body


def _leaf_under(issuing: x509.Certificate, issuing_key, cn: str, *, policy: str, key_usage=None, extra=(),
                not_after=None) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    usage = [] if key_usage is None else [(key_usage, True)]
    cert = pb.build(name("HK", "Options Example Org", cn), key.public_key(), issuing.subject, issuing_key, ca=False,
                    key_usage=None, policies=[policy], not_before=now - dt.timedelta(hours=1),
                    not_after=not_after or now + dt.timedelta(days=365), extra=[*usage, *extra])
    return pb.der(cert), key


def _usage(*, sign: bool = True, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=encipher,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _expiring_member(fed) -> tuple[Member, dict]:
    """Macau, whose root expires in 59 days while its issuing CA and leaf
    outlive it by years (RFC 5280 6.1 never looks at the anchor's validity)."""
    display, policy = MEMBER_POLICIES["MO"]
    org = f"{display} Certification Authority"
    root_key, root = make_root(name("MO", org, f"{display} Short-lived Root CA"), days=60)
    now = utcnow()
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = pb.build(name("MO", org, f"{display} Long-lived Issuing CA"), issuing_key.public_key(), root.subject,
                       root_key, ca=True, path_length=0, policies=[policy],
                       not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=3650))
    leaf_der, leaf_key = _leaf_under(issuing, issuing_key, "signer.mo.example", policy=policy,
                                     key_usage=_usage(), not_after=now + dt.timedelta(days=3000))
    member = Member("MO", display, policy, root_key, root, issuing_key, issuing, x509.load_der_x509_certificate(leaf_der))
    return member, dict(der=leaf_der, key=leaf_key)


@pytest.fixture(scope="module")
def leaves(federation) -> dict[str, Leaf]:
    """Under the Hong Kong member's issuing CA: ``signing`` (keyUsage
    digitalSignature only), ``email`` (extendedKeyUsage emailProtection),
    ``zero`` (serial number 0), ``encipher`` (keyUsage keyEncipherment only);
    ``signing`` again with Hong Kong's root as the anchor (``member``: one
    intermediate); and a Macau leaf asked about after its anchor expired."""
    hk = federation.members["HK"]
    via = [pem(hk.issuing).decode()]
    out = {}
    der_, key = _leaf_under(hk.issuing, hk.issuing_key, "signing.hk.example", policy=hk.policy, key_usage=_usage())
    out["signing"] = Leaf(der_, key, via)
    out["member"] = Leaf(der_, key, via, trust_anchor=federation.ids["HK"])
    der_, key = _leaf_under(hk.issuing, hk.issuing_key, "email.hk.example", policy=hk.policy, key_usage=_usage(),
                            extra=[email_protection()])
    out["email"] = Leaf(der_, key, via)
    der_, key = _leaf_under(hk.issuing, hk.issuing_key, "zero.hk.example", policy=hk.policy, key_usage=_usage())
    out["zero"] = Leaf(with_serial(der_, hk.issuing_key, 0), key, via)
    der_, key = _leaf_under(hk.issuing, hk.issuing_key, "encipher.hk.example", policy=hk.policy,
                            key_usage=_usage(sign=False, encipher=True))
    out["encipher"] = Leaf(der_, key, via)
    mo, leaf = _expiring_member(federation)
    mo_id = federation.join(mo)
    later = (mo.root.not_valid_after_utc + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["expired-anchor"] = Leaf(leaf["der"], leaf["key"], [pem(mo.issuing).decode()], trust_anchor=mo_id, at=later)
    return out


# (leaf, the option as it fails, the code, the option as it passes); "default"
# says whether the leaf passes without any option.
CASES = {
    "key_usage": ("signing", {"key_usage": ["keyEncipherment"]}, "purpose",
                  {"key_usage": ["digitalSignature"]}, True),
    "key_usage all required": ("signing", {"key_usage": ["digitalSignature", "keyAgreement"]}, "purpose",
                               {"key_usage": ["digitalSignature"]}, True),
    "extended_key_usage": ("email", {"extended_key_usage": ["codeSigning"]}, "purpose",
                           {"extended_key_usage": ["codeSigning", ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string]},
                           True),
    "max_chain_depth": ("member", {"max_chain_depth": 0}, "path_length_exceeded", {"max_chain_depth": 1}, True),
    "max_chain_depth through the bridge": ("signing", {"max_chain_depth": 1}, "path_length_exceeded",
                                           {"max_chain_depth": 2}, True),
    "profile": ("zero", {"profile": "strict"}, "malformed_certificate", {"profile": "rfc5280"}, False),
    "anchor_constraints": ("expired-anchor", {"anchor_constraints": True}, "anchor_invalid",
                           {"anchor_constraints": False}, False),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cms(leaf: Leaf) -> bytes:
    return (pkcs7.PKCS7SignatureBuilder().set_data(DATA)
            .add_signer(x509.load_der_x509_certificate(leaf.der), leaf.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


def ask(fed, route: str, leaf: Leaf, **options) -> dict:
    """The route's answer (200, checked against its model); for the signature
    routes, the chain's result with the top-level error."""
    body = {**leaf.base(), **options}
    if route == "chain":
        body["certificate"] = leaf.pem
    elif route == "raw":
        body.update(certificate=leaf.pem, signature=b64(leaf.key.sign(DATA, ec.ECDSA(hashes.SHA256()))), data=b64(DATA))
    else:
        body["cms"] = b64(_cms(leaf))
    r = fed.client.post("/v1/verify/chain" if route == "chain" else "/v1/verify/signature", headers=fed.h("platform"),
                        json=body)
    assert r.status_code == 200, r.text[:500]
    result = r.json()
    if route == "chain":
        schemas.VerificationResultModel.model_validate(result)
        return result
    schemas.SignatureResultModel.model_validate(result)
    assert result["chain"] is not None, result
    # The signature itself is good: the answer is the chain's.
    assert result["valid"] is result["chain"]["valid"]
    assert result["error"] == result["chain"]["error"], result
    return result["chain"]


@pytest.mark.parametrize("route", ["chain", "raw", "cms"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_option_reaches_the_core(federation, leaves, route, case):
    leaf_name, failing, code, passing, valid_by_default = CASES[case]
    leaf = leaves[leaf_name]
    default = ask(federation, route, leaf)
    assert default["valid"] is valid_by_default, default["error"]
    failed = ask(federation, route, leaf, **failing)
    assert failed["valid"] is False and failed["error"]["code"] == code, failed["error"]
    passed = ask(federation, route, leaf, **passing)
    assert passed["valid"] is True and passed["error"] is None, passed["error"]
    if not valid_by_default:  # the failure is the default's
        assert default["error"]["code"] == code


def test_what_each_failure_names(federation, leaves):
    r = ask(federation, "chain", leaves["signing"], key_usage=["keyEncipherment"])
    assert r["error"]["certificate"] == 0 and "keyEncipherment" in r["error"]["message"]
    r = ask(federation, "chain", leaves["zero"])
    assert r["error"]["certificate"] == 0 and "serial" in r["error"]["message"]
    r = ask(federation, "chain", leaves["expired-anchor"])
    assert r["error"]["certificate"] == len(r["path"]) - 1 and "expired" in r["error"]["message"]
    r = ask(federation, "chain", leaves["expired-anchor"], anchor_constraints=False)
    assert len(r["path"]) == 3  # leaf, issuing CA, the expired root as a bare name and key


@pytest.mark.parametrize("route", ["raw", "cms"])
def test_a_signer_whose_key_usage_forbids_signing_fails_with_purpose(federation, leaves, route):
    leaf = leaves["encipher"]
    assert ask(federation, "chain", leaf)["valid"] is True  # the chain itself is fine
    body = {**leaf.base(), "certificate": leaf.pem, "signature": b64(leaf.key.sign(DATA, ec.ECDSA(hashes.SHA256()))),
            "data": b64(DATA)} if route == "raw" else {**leaf.base(), "cms": b64(_cms(leaf))}
    r = federation.client.post("/v1/verify/signature", headers=federation.h("platform"), json=body)
    assert r.status_code == 200, r.text[:300]
    result = r.json()
    assert result["valid"] is False and result["error"]["code"] == "purpose", result["error"]
    assert result["chain"]["valid"] is True
    assert "digitalSignature" in result["error"]["message"]


BAD = [
    ({"profile": "lax"}, "invalid_request"),
    ({"profile": None}, "invalid_request"),
    ({"profile": "RFC5280"}, "invalid_request"),
    ({"anchor_constraints": "false"}, "invalid_request"),
    ({"anchor_constraints": 0}, "invalid_request"),
    ({"key_usage": ["signing"]}, "invalid_request"),
    ({"key_usage": "digitalSignature"}, "invalid_request"),
    ({"key_usage": [1]}, "invalid_request"),
    ({"extended_key_usage": "emailProtection"}, "invalid_request"),
    ({"extended_key_usage": [5]}, "invalid_request"),
    ({"extended_key_usage": ["not-an-oid"]}, "malformed_input"),
    ({"extended_key_usage": ["1.2.x"]}, "malformed_input"),
    ({"extended_key_usage": [""]}, "malformed_input"),
    ({"extended_key_usage": ["9.1"]}, "malformed_input"),
    ({"max_chain_depth": -1}, "invalid_request"),
    ({"max_chain_depth": 65}, "invalid_request"),
    ({"max_chain_depth": True}, "invalid_request"),
    ({"max_chain_depth": "1"}, "invalid_request"),
    ({"max_chain_depth": 1.5}, "invalid_request"),
]


@pytest.mark.parametrize("route", ["chain", "raw", "cms"])
@pytest.mark.parametrize("bad,code", BAD, ids=[json.dumps(b) for b, _ in BAD])
def test_bad_values_are_400_problems(federation, leaves, route, bad, code):
    leaf = leaves["signing"]
    if route == "chain":
        path, body = "/v1/verify/chain", {"certificate": leaf.pem}
    elif route == "raw":
        # A signature that does not verify: the option is refused all the same.
        path, body = "/v1/verify/signature", {"certificate": leaf.pem, "signature": b64(b"\x30\x00"), "data": b64(DATA)}
    else:
        path, body = "/v1/verify/signature", {"cms": b64(_cms(leaf)), "content": b64(DATA)}
    r = federation.client.post(path, headers=federation.h("platform"), json={**body, **bad})
    problem = assert_problem(r, 400, code)
    assert list(bad)[0] in problem["detail"] or code == "malformed_input"


@pytest.mark.parametrize("model", [schemas.VerifyChainRequest, schemas.VerifySignatureRequest])
def test_fields_are_documented_with_their_defaults(model):
    properties = model.model_json_schema()["properties"]
    for option in OPTIONS:
        assert option in properties and len(properties[option].get("description", "")) > 40, option
    assert properties["profile"]["default"] == "strict" and set(properties["profile"]["enum"]) == {"strict", "rfc5280"}
    assert properties["anchor_constraints"]["default"] is True
    assert "keyEncipherment" in properties["key_usage"]["items"]["enum"]
    assert "emailProtection" in properties["extended_key_usage"]["description"]


def test_openapi_documents_the_fields(federation):
    r = federation.client.get("/openapi.json")
    assert r.status_code == 200, r.text[:300]
    components = r.json()["components"]["schemas"]
    for model in ("VerifyChainRequest", "VerifySignatureRequest"):
        properties = components[model]["properties"]
        for option in OPTIONS:
            assert properties[option]["description"], (model, option)


def test_answers_from_the_event_loop_equal_the_first_ones(federation, leaves, monkeypatch):
    """The second asking of each question is answered by quick_chain on the
    event loop (the answer cached, valid or not); it is the first answer, byte for byte."""
    service = federation.app.state.verification
    answered = []
    original = service.quick_chain

    def counting(certificate, **options):
        answer = original(certificate, **options)
        answered.append(answer is not None)
        return answer

    monkeypatch.setattr(service, "quick_chain", counting)
    bodies = []
    for leaf_name, failing, _code, passing, _default in CASES.values():
        leaf = leaves[leaf_name]
        for options in ({}, failing, passing):
            bodies.append({**leaf.base(), "certificate": leaf.pem, **options})
    bodies += [{"certificate": leaves["signing"].pem, **bad} for bad, _ in BAD]
    for body in bodies:
        data = json.dumps(body).encode()
        headers = {**federation.h("platform"), "Content-Type": "application/json"}
        with bridge_env():
            a, b = (federation.client.post("/v1/verify/chain", headers=headers, content=data) for _ in range(2))
        # validation_time is the time of each question ("now"): two requests may fall in two seconds.
        assert (a.status_code, a.headers["content-type"], _without_time(a)) == \
               (b.status_code, b.headers["content-type"], _without_time(b)), body
    assert sum(answered) >= len(CASES) * 3, answered


def _without_time(response) -> object:
    try:
        answer = response.json()
    except ValueError:
        return response.content
    if isinstance(answer, dict):
        answer.pop("validation_time", None)
    return answer
