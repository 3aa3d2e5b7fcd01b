"""The hot routes' answers (POST /v1/verify/chain, /v1/verify/signature,
/v1/verify/batch) on every error case tests/api exercises, recorded so a
rewrite of their handlers can be held to them.

Run ``.venv/bin/python -m tests.api.record_hot_answers`` to (re)write
tests/api/data/hot_route_answers.json; tests/api/test_hot_route_answers.py
replays every case and compares. Each answer is (status, content type,
problem ``code``) and the JSON body, made deterministic: the federation's
random parts (enrollment ids, dates, hashes, serials) are replaced by
placeholders, and a verification result keeps only what does not depend on
freshly generated keys (validity, error code and certificate index, path
length, policies, revocation summary; not the fields #12 adds).
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from .conftest import bridge_env, make_federation
from .test_bad_input import Case, Sweeper, run_case, sweep_table
from .test_cached_answers import _leaf

DATA = Path(__file__).parent / "data" / "hot_route_answers.json"
HOT = ("/v1/verify/chain", "/v1/verify/signature", "/v1/verify/batch")
# ISO 8601 instants and long hex strings (hashes, serials, ids) vary from run to run.
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)?")
_HEX = re.compile(r"\b[0-9a-fA-F]{16,}\b")


def extra_cases(fed, s: Sweeper) -> list[tuple[str, dict, Case]]:
    """Cases of tests/api beyond the bad-input sweep (roles, duplicate and
    odd headers, the refusals tests/api/test_fastlane.py had, batch items), per hot route."""
    chain = fed.chain_body("HK")
    raw = json.dumps(chain).encode()
    sig = s.signature()
    expired = dict(chain, certificate=_leaf(fed, "HK", "expired", expired=True))
    json_ct = {"Content-Type": "application/json"}
    out: list[tuple[str, dict, Case]] = []
    for path, base in (("/v1/verify/chain", chain), ("/v1/verify/signature", sig),
                       ("/v1/verify/batch", {"items": [{"kind": "chain", **chain}]})):
        body = json.dumps(base).encode()
        entry = {"role": "platform", "json": base}
        out += [(path, entry, c) for c in (
            Case("issuer token", 403, "forbidden", role="issuer"),
            Case("no token, broken body", 401, "unauthorized", role=None, content=b"{nope", headers=json_ct),
            Case("issuer token, broken body", 403, "forbidden", role="issuer", content=b"{nope", headers=json_ct),
            Case("no token, text/plain", 401, "unauthorized", role=None, content=body, headers={"Content-Type": "text/plain"}),
            Case("scheme not Bearer", 401, "unauthorized", role=None, headers={"Authorization": f"Basic {fed.tokens['platform']}"}),
            Case("Bearer without a token", 401, "unauthorized", role=None, headers={"Authorization": "Bearer  "}),
            Case("lowercase bearer", 200, None, role=None, headers={"Authorization": f"bearer {fed.tokens['platform']}"}),
            Case("charset parameter", 200, None, content=body, headers={"Content-Type": "application/json; charset=utf-8"}),
            Case("+json media type", 200, None, content=body, headers={"Content-Type": "application/problem+json"}),
            Case("upper-case media type", 200, None, content=body, headers={"Content-Type": "Application/JSON"}),
            Case("a byte order mark", 200, None, content=b"\xef\xbb\xbf" + body, headers=json_ct),
            Case("UTF-16", 200, None, content=json.dumps(base).encode("utf-16"), headers=json_ct),
            Case("chunked", 200, None, content=_Chunked(body), headers=json_ct),
            Case("chunked, not JSON", 400, "invalid_request", content=_Chunked(b"{nope"), headers=json_ct),
            Case("chunked, text/plain", 415, "unsupported_media_type", content=_Chunked(body), headers={"Content-Type": "text/plain"}),
            Case("duplicate key", 200, None, content=body[:-1] + b', "' + next(iter(base)).encode() + b'": ' +
                 json.dumps(next(iter(base.values()))).encode() + b"}", headers=json_ct),
            Case("NaN", 400, "invalid_request", content=body[:-1] + b', "max_chain_depth": NaN}', headers=json_ct),
            Case("deeply nested", 400, "invalid_request", content=b"[" * 5000 + b"]" * 5000, headers=json_ct),
        )]
        # Headers given twice (a list: sent as they are, in this order).
        platform, issuer = f"Bearer {fed.tokens['platform']}", f"Bearer {fed.tokens['issuer']}"
        twice = {
            "Content-Type twice, text/plain first": [("content-type", "text/plain"), ("content-type", "application/json")],
            "Content-Type twice, JSON first": [("content-type", "application/json"), ("content-type", "text/plain")],
            "Authorization twice, unknown first": [("authorization", "Bearer bca_unknown"), ("authorization", platform)],
            "Authorization twice, platform first": [("authorization", platform), ("authorization", "Bearer bca_unknown")],
            "Authorization twice, issuer first": [("authorization", issuer), ("authorization", platform)],
        }
        for label, headers in twice.items():
            full = [h for h in (("authorization", platform), ("content-type", "application/json"))
                    if h[0] not in {name for name, _ in headers}] + headers
            out.append((path, entry, Case(label, 0, None, content=body, headers=full, role=None)))  # type: ignore[arg-type]
    out += [("/v1/verify/chain", {"role": "platform", "json": chain}, c) for c in (
        Case("the base request", 200, None),
        Case("an expired leaf", 200, None, json=expired),
        Case("unknown policy", 200, None, json=dict(chain, policies=["1.3.6.1.4.1.32473.77.1.2"], require_explicit_policy=True)),
        Case("issuer as the anchor", 200, None, json=dict(chain, trust_anchor=fed.ids["HK"])),
        Case("no Content-Type, empty body", 400, "invalid_request", content=b"", headers={}),
        Case("certificate: lone surrogate", 400, "invalid_request", content=raw.replace(b'"-----BEGIN', b'"\\ud800-----BEGIN', 1), headers=json_ct),
        Case("policies: lone surrogate", 400, "invalid_request", content=json.dumps(dict(chain, policies=["\ud800"])).encode(), headers=json_ct),
        Case("max_chain_depth: 65", 400, "invalid_request", json=dict(chain, max_chain_depth=65)),
        Case("max_chain_depth: 1.5", 400, "invalid_request", json=dict(chain, max_chain_depth=1.5)),
        Case("key_usage: unknown bit", 400, "invalid_request", json=dict(chain, key_usage=["flying"])),
        Case("extended_key_usage: unknown name", 400, "malformed_input", json=dict(chain, extended_key_usage=["flying"])),
        Case("profile: unknown", 400, "invalid_request", json=dict(chain, profile="lenient")),
        Case("intermediates: 257", 400, "invalid_request", json=dict(chain, intermediates=["x"] * 257)),
        Case("at: before the validity", 200, None, json=dict(chain, at="2000-01-01T00:00:00Z")),
    )]
    items = [
        {"kind": "chain", **chain},
        {"kind": "chain", **dict(chain, certificate="hello")},
        {"kind": "chain", **dict(chain, trust_anchor="0123456789abcdef0123456789abcdef")},
        {"kind": "chain", **dict(chain, revocation="sometimes")},
        {"kind": "chain", **dict(chain, surprise=1)},
        {"kind": "chain"},
        {"kind": "signature", "cms": "@@@@"},
        {"kind": "signature", **dict(sig, algorithm="rot13")},
        {"kind": "signature", **dict(sig, cms="AAAA")},
        {"kind": "stamp", **chain},
        {**chain},
        "not an object",
        {"kind": 7},
        {"kind": "chain", **expired},
        {"kind": "chain", **dict(chain, policies=["not-an-oid"])},
        {"kind": "chain", **dict(chain, trust_anchor=s.pending)},
    ]
    batch_entry = {"role": "platform", "json": {"items": items}}
    out += [("/v1/verify/batch", batch_entry, c) for c in (
        Case("items with every kind of defect", 200, None),
        Case("shared options", 200, None, json={"items": items[:4], "options": {"policies": ["1.3.6.1.4.1.32473.77.1.2"]}}),
        Case("items: 100", 200, None, json={"items": [{"kind": "chain", "certificate": "hello"}] * 100}),
    )]
    return out


class _Chunked:
    """A re-iterable body that httpx sends chunked (no Content-Length)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self):
        yield self.data[: len(self.data) // 2]
        yield self.data[len(self.data) // 2:]


def all_cases(fed) -> tuple[list[tuple[str, str, dict, Case]], dict[str, str]]:
    """(key, path, entry, case) for every recorded case, keys unique; and
    the ids the cases made, with their placeholders."""
    s = Sweeper(fed)
    table = sweep_table(s)
    found: list[tuple[str, str, dict, Case]] = []
    for path in HOT:
        entry = table[("POST", path)]
        for case in entry["cases"]:
            found.append((f"POST {path} [sweep: {case.label}]", path, entry, case))
    for path, entry, case in extra_cases(fed, s):
        found.append((f"POST {path} [{case.label}]", path, entry, case))
    keys = [k for k, *_ in found]
    assert len(keys) == len(set(keys)), "case labels must be unique per route"
    return found, {s.pending: "<id pending>"}


def _scrub(value, secrets: dict[str, str]):
    if isinstance(value, str):
        for secret, placeholder in secrets.items():
            value = value.replace(secret, placeholder)
        return _HEX.sub("<hex>", _TIME.sub("<time>", value))
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    return value


def _result_shape(result: dict) -> dict:
    """A verification (or signature) result without what fresh keys change."""
    if not isinstance(result, dict):
        return {"not a dict": repr(type(result))}
    shape: dict = {}
    for name in ("valid", "policies", "revocation", "algorithm", "content_type"):
        if name in result:
            shape[name] = result[name]
    if isinstance(result.get("path"), list):
        shape["path"] = len(result["path"])
    error = result.get("error")
    if isinstance(error, dict):
        shape["error"] = {"code": error.get("code"), "certificate": error.get("certificate")}
    if isinstance(result.get("chain"), dict):
        shape["chain"] = _result_shape(result["chain"])
    return shape


def answer_of(response, secrets: dict[str, str]) -> dict:
    ctype = response.headers.get("content-type")
    recorded: dict = {"status": response.status_code, "content_type": ctype}
    try:
        body = response.json()
    except ValueError:
        recorded["body"] = None
        return recorded
    if response.status_code == 200 and isinstance(body, dict) and "results" in body:
        body = {"results": [{**{k: v for k, v in r.items() if k != "result"},
                             **({"result": _result_shape(r["result"])} if "result" in r else {})}
                            for r in body["results"]]}
    elif response.status_code == 200:
        body = _result_shape(body)
    else:
        recorded["code"] = body.get("code") if isinstance(body, dict) else None
    recorded["body"] = _scrub(body, secrets)
    return recorded


def secrets_of(fed, made: dict[str, str]) -> dict[str, str]:
    found = {token: f"<token {role}>" for role, token in fed.tokens.items()}
    found.update({i: f"<id {code}>" for code, i in fed.ids.items()})
    return {**found, **made}


def record(fed) -> dict[str, dict]:
    cases, made = all_cases(fed)
    secrets = secrets_of(fed, made)
    answers = {}
    limiter = getattr(fed.app.state, "auth_failures", None)
    for key, path, entry, case in cases:
        if limiter is not None:
            limiter._entries.clear()  # the failed-authentication limit is not what is recorded
        if isinstance(case.headers, list):
            response = fed.client.request("POST", path, headers=case.headers, content=case.content)
        else:
            response = run_case(fed, entry, "POST", path, case)
        answers[key] = answer_of(response, secrets)
    return answers


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fed = make_federation(Path(tmp) / "home", codes=("HK", "GD"))
        try:
            with bridge_env(), fed.client:
                answers = record(fed)
        finally:
            fed.ca.close()
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(answers, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(answers)} answers -> {DATA}")

if __name__ == "__main__":
    main()
