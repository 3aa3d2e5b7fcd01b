"""The public register (公示) through the real server, on SQLite and
PostgreSQL: no token; JSON by default with members, their status history
(dates and public reasons) and the disclosed violations; a plain HTML page in
Chinese or English (``?lang=`` or Accept-Language) for a client that asks
for text/html, every value escaped and nothing loaded from elsewhere;
conditional GET."""
from __future__ import annotations

import json
import re

from tests.bridge.members import make_member, pem

from .test_blacklist_http import served  # noqa: F401  (the fixture: a real server per database)


def test_the_register_in_json(served):
    hk, gd, mo = make_member("HK"), make_member("GD"), make_member("MO")
    hk_id, hk_serial = served.join(hk)
    served.join(gd)
    pending = served.json("POST", "/v1/issuers", "issuer", {"name": "Macao pending", "jurisdiction": "MO",
                                                            "root_certificate": pem(mo.root).decode(),
                                                            "policy_mappings": mo.mappings()}, expect=201)
    served.json("POST", f"/v1/cross-certificates/{hk_serial}/revoke", "admin", {"reason": "keyCompromise"})
    served.json("POST", "/v1/blacklist/entries", "admin", {"kind": "subject_identity", "value": {
        "oid": "2.5.4.97", "value": "91440300MA5FAKE01X"}, "reason": "serious violation", "public_note": "licence revoked",
        "internal_note": "never shown"}, expect=201)

    status, headers, raw = served.call("GET", "/v1/register")  # no token
    assert status == 200 and headers["content-type"] == "application/json"
    data = json.loads(raw)
    names = {m["name"]: m for m in data["members"]}
    assert len(names) == 2 and "Macao pending" not in names and pending["id"] not in raw.decode()
    hk_view = next(m for m in data["members"] if m["jurisdiction"] == "HK")
    assert hk_view["status"] == "revoked"
    assert [h["status"] for h in hk_view["status_history"]] == ["pending", "active", "revoked"]
    assert hk_view["status_history"][-1]["reason"] == "keyCompromise" and hk_view["status_history"][-1]["at"]
    assert hk_id not in raw.decode()  # enrollment ids stay with their issuers
    assert {v["reason"] for v in data["violations"]} == {"keyCompromise", "serious violation"}
    assert b"never shown" not in raw


def test_the_register_in_html_chinese_and_english_escaped(served):
    hk = make_member("HK")
    view = served.json("POST", "/v1/issuers", "issuer", {"name": "<script>alert(1)</script> & Co", "jurisdiction": "HK",
                                                         "root_certificate": pem(hk.root).decode(),
                                                         "policy_mappings": hk.mappings()}, expect=201)
    served.json("POST", f"/v1/issuers/{view['id']}/approve", "admin")

    status, headers, raw = served.call("GET", "/v1/register", headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
                                                                       "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    page = raw.decode("utf-8")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page and "成员" in page and "有效" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from elsewhere

    status, _, raw = served.call("GET", "/v1/register?lang=en", headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
    page = raw.decode("utf-8")
    assert status == 200 and '<html lang="en">' in page and "Members" in page and "active" in page and "成员" not in page
    status, _, raw = served.call("GET", "/v1/register", headers={"Accept": "text/html", "Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in raw.decode()

    # Conditional GET: the same representation is a 304; the HTML and JSON ones differ.
    _, json_headers, _ = served.call("GET", "/v1/register")
    _, html_headers, _ = served.call("GET", "/v1/register?lang=en", headers={"Accept": "text/html"})
    assert json_headers["ETag"] != html_headers["ETag"] and "Accept" in json_headers["Vary"]
    status, _, body = served.call("GET", "/v1/register", headers={"If-None-Match": json_headers["ETag"]})
    assert status == 304 and body == b""
