"""GET /v1/trust-list.xml, .json and .json.p7s: public, conditional (ETag,
304, HEAD), following every change at once in the process that made it; and
a real ``bridgeca serve`` that publishes a change made by another process
(the epoch it polls) within a second, on SQLite and PostgreSQL."""
from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.bridge.members import make_member, pem

from .conftest import bridge_env, postgres_schema
from .test_server import bridgeca, env, free_port, http, stop, wait_healthy

NS = {"t": "http://uri.etsi.org/02231/v2#"}
SEEN_WITHIN = 15.0  # a guard against a hang, not the measurement: the requirement is 1 s, measured and reported


def sequence_of(xml: bytes) -> int:
    return int(etree.fromstring(xml).findtext("t:SchemeInformation/t:TSLSequenceNumber", namespaces=NS))


def test_the_three_documents_are_public_and_conditional(fresh_federation):
    fed = fresh_federation
    c = fed.client
    documents = {}
    for path, media_type in (("/v1/trust-list.xml", "application/xml"), ("/v1/trust-list.json", "application/json"),
                             ("/v1/trust-list.json.p7s", "application/pkcs7-signature")):
        r = c.get(path)  # no token
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(media_type)
        assert r.headers["cache-control"] == "public, no-cache"
        etag = r.headers["etag"]
        documents[path] = r.content
        again = c.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert c.get(path, headers={"If-Modified-Since": r.headers["last-modified"]}).status_code == 304
        head = c.head(path)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
        assert int(head.headers["content-length"]) == len(r.content)
    first = sequence_of(documents["/v1/trust-list.xml"])
    assert json.loads(documents["/v1/trust-list.json"])["scheme_information"]["tsl_sequence_number"] == first

    # A revocation through this process is in the next answer, under a new number and ETag.
    r = c.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    r = c.get("/v1/trust-list.xml", headers={"If-None-Match": '"' + "0" * 64 + '"'})
    assert r.status_code == 200
    assert sequence_of(r.content) == first + 1
    assert b"Svcstatus/withdrawn" in r.content
    assert c.get("/v1/trust-list.json").content != documents["/v1/trust-list.json"]


@contextlib.contextmanager
def served_federation(kind: str, tmp_path: Path):
    """A home with HK and GD cross-certified (made here, in the test process),
    served by ``bridgeca serve`` in a subprocess."""
    from bridge.service import BridgeCA

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if kind == "postgresql" else None
        home = tmp_path / "home"
        serials = {}
        with bridge_env(url):
            ca = BridgeCA.init(home, base_url="https://bridge.gd.example")
            try:
                for code in ("HK", "GD"):
                    member = make_member(code)
                    view = ca.enroll(name=f"{member.display} Demo CA", jurisdiction=code,
                                     root_certificate=pem(member.root).decode(), policy_mappings=member.mappings())
                    serials[code] = ca.approve(view["id"])["serial"]
            finally:
                ca.close()
        server_env = env()
        if url:
            server_env["BRIDGECA_DATABASE_URL"] = url
        port = free_port()
        log = stack.enter_context(open(tmp_path / "server.log", "w+b"))
        process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                                   env=server_env, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(stop, process)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(process, base, log)
        yield {"base": base, "home": home, "url": url, "serials": serials}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_served_bridge_publishes_a_change_made_elsewhere_within_a_second(kind, tmp_path):
    from bridge.service import BridgeCA

    with served_federation(kind, tmp_path) as served:
        status, headers, xml = http("GET", served["base"] + "/v1/trust-list.xml")
        assert status == 200
        before = sequence_of(xml)
        status, _, document = http("GET", served["base"] + "/v1/trust-list.json")
        assert status == 200 and json.loads(document)["scheme_information"]["tsl_sequence_number"] == before

        # The change is made by this process, not the server: the server learns it from the epoch.
        with bridge_env(served["url"]):
            ca = BridgeCA.open(served["home"])
        try:
            ca.revoke(served["serials"]["HK"], "cessationOfOperation")
        finally:
            ca.close()
        changed_at = time.monotonic()
        seen = {}
        while time.monotonic() - changed_at < SEEN_WITHIN and len(seen) < 2:
            for path in ("/v1/trust-list.xml", "/v1/trust-list.json"):
                if path in seen:
                    continue
                status, _, body = http("GET", served["base"] + path)
                assert status == 200
                number = sequence_of(body) if path.endswith(".xml") else json.loads(body)["scheme_information"]["tsl_sequence_number"]
                if number == before + 1:
                    seen[path] = time.monotonic() - changed_at
            time.sleep(0.05)
        assert set(seen) == {"/v1/trust-list.xml", "/v1/trust-list.json"}, f"not republished within {SEEN_WITHIN} s"
        print(f"\n{kind}: republished {', '.join(f'{p} after {s:.2f} s' for p, s in seen.items())}")
        status, _, xml = http("GET", served["base"] + "/v1/trust-list.xml")
        assert re.search(rb"Svcstatus/withdrawn", xml)
