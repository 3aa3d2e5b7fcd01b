"""Publication routes: a strong ETag per representation, Last-Modified where a
true date exists, If-None-Match / If-Modified-Since answered with a bodiless
304, HEAD answered with the GET's headers and no body; and a changed
publication gets a new ETag, so a stale validator gets the new body."""
from __future__ import annotations

import hashlib
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from cryptography import x509

from tests.bridge.members import make_member

from .conftest import make_federation

PEM = "application/x-pem-file"
PKIX_CERT = "application/pkix-cert"
PKCS7 = "application/pkcs7-mime"

# (path, Accept, media type served); every public route that publishes something
REPRESENTATIONS = [
    ("/v1/ca/certificate", None, PEM),
    ("/v1/ca/certificate", PKIX_CERT, PKIX_CERT),
    ("/v1/ca/certificates", None, PEM),
    ("/v1/ca/certificates", PKCS7, PKCS7),
    ("/v1/crl", None, "application/pkix-crl"),
    ("/v1/ca/issued-by-bridge.p7c", None, PKCS7),
    ("/v1/ca/issued-to-bridge.p7c", None, PKCS7),
]
IDS = [f"{path} {accept or 'default'}" for path, accept, _ in REPRESENTATIONS]


def accept(value: str | None, **extra) -> dict:
    return {**({"Accept": value} if value else {}), **extra}


@pytest.mark.parametrize("path,accept_header,media", REPRESENTATIONS, ids=IDS)
def test_etag_then_304_then_head(federation, path, accept_header, media):
    client = federation.client
    first = client.get(path, headers=accept(accept_header))
    assert first.status_code == 200 and first.headers["content-type"].split(";")[0] == media
    etag = first.headers["etag"]
    assert etag == '"' + hashlib.sha256(first.content).hexdigest() + '"'  # strong: the bytes as served
    assert first.headers["cache-control"].startswith("public, max-age=")

    again = client.get(path, headers=accept(accept_header, **{"If-None-Match": etag}))
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == first.headers["cache-control"]
    assert "content-type" not in again.headers

    for listed in (f'"stale", {etag}', "W/" + etag, "*"):  # a list, a weakened tag (weak comparison), any
        assert client.get(path, headers=accept(accept_header, **{"If-None-Match": listed})).status_code == 304, listed
    assert client.get(path, headers=accept(accept_header, **{"If-None-Match": '"stale"'})).content == first.content

    head = client.head(path, headers=accept(accept_header))
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "content-type", "cache-control", "last-modified", "vary"):
        assert head.headers.get(name) == first.headers.get(name), name
    assert int(head.headers["content-length"]) == len(first.content)
    assert client.head(path, headers=accept(accept_header, **{"If-None-Match": etag})).status_code == 304


def test_pem_and_der_are_distinct_representations(federation):
    client = federation.client
    pem = client.get("/v1/ca/certificate")
    der = client.get("/v1/ca/certificate", headers={"Accept": PKIX_CERT})
    assert pem.headers["etag"] != der.headers["etag"]
    assert pem.headers["vary"] == der.headers["vary"] == "Accept"
    # the DER's tag does not validate the PEM: a cache keyed without Accept still gets the right bytes
    r = client.get("/v1/ca/certificate", headers={"If-None-Match": der.headers["etag"]})
    assert r.status_code == 200 and r.content == pem.content


def test_last_modified_is_the_certificates_not_before_and_the_crls_this_update(federation):
    client = federation.client
    cert = client.get("/v1/ca/certificate")
    assert parsedate_to_datetime(cert.headers["last-modified"]) == federation.ca.certificate.not_valid_before_utc.replace(microsecond=0)
    crl = client.get("/v1/crl")
    this_update = x509.load_der_x509_crl(crl.content).last_update_utc
    assert parsedate_to_datetime(crl.headers["last-modified"]) == this_update
    own = client.get("/v1/ca/certificates")
    newest = max(c.not_valid_before_utc for c in x509.load_pem_x509_certificates(own.content))
    assert parsedate_to_datetime(own.headers["last-modified"]) == newest.replace(microsecond=0)


@pytest.mark.parametrize("path", ["/v1/ca/certificate", "/v1/crl", "/v1/ca/certificates"])
def test_if_modified_since(federation, path):
    client = federation.client
    first = client.get(path)
    last_modified = first.headers["last-modified"]
    moment = parsedate_to_datetime(last_modified)
    earlier = format_datetime(moment.replace(year=moment.year - 1), usegmt=True)
    later = format_datetime(moment.replace(year=moment.year + 1), usegmt=True)

    assert client.get(path, headers={"If-Modified-Since": last_modified}).status_code == 304
    assert client.get(path, headers={"If-Modified-Since": later}).status_code == 304
    changed = client.get(path, headers={"If-Modified-Since": earlier})
    assert changed.status_code == 200 and changed.content == first.content
    # an unreadable date is ignored (RFC 9110 13.1.3), not a 400 or a 500
    assert client.get(path, headers={"If-Modified-Since": "yesterday-ish"}).status_code == 200
    # If-None-Match decides when both are sent: a stale tag is a 200 whatever the date
    both = client.get(path, headers={"If-None-Match": '"stale"', "If-Modified-Since": later})
    assert both.status_code == 200 and both.content == first.content


@pytest.mark.parametrize("path", ["/v1/ca/issued-by-bridge.p7c", "/v1/ca/issued-to-bridge.p7c"])
def test_bundles_carry_no_last_modified(federation, path):
    # A revocation or an expiry removes a certificate and nothing left in the
    # bundle dates that: a date taken from its members would answer a changed
    # bundle with 304. Only the ETag validates them.
    r = federation.client.get(path)
    assert r.status_code == 200 and "last-modified" not in r.headers
    assert federation.client.get(path, headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}).status_code == 200


def test_a_change_gives_a_new_etag_and_the_old_one_gets_the_new_body(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",))
    client = fed.client
    before = {path: client.get(path) for path in ("/v1/ca/issued-by-bridge.p7c", "/v1/ca/issued-to-bridge.p7c", "/v1/crl")}
    fed.join(make_member("GD"))
    r = client.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    for path, old in before.items():
        now = client.get(path, headers={"If-None-Match": old.headers["etag"]})
        assert now.status_code == 200, path
        assert now.content != old.content and now.headers["etag"] != old.headers["etag"], path
        assert now.headers["etag"] == '"' + hashlib.sha256(now.content).hexdigest() + '"'


def test_head_on_the_publication_routes_is_not_in_the_openapi_document(federation):
    spec = federation.client.get("/openapi.json").json()
    for path, _, _ in REPRESENTATIONS:
        operations = spec["paths"][path]
        assert set(operations) == {"get"}, path
        ok = operations["get"]["responses"]
        assert "304" in ok and {"ETag", "Last-Modified"} <= set(ok["200"]["headers"]), path
