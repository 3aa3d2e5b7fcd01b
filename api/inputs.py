"""Checks of path and body inputs shared by the routes (api/app.py) and the
fast lane (api/fastlane.py), so that both read a request the same way."""
from __future__ import annotations

import base64
import binascii
import re

from pki.profile import parse_extended_key_usage

from .problems import Problem

# Enrollment ids are the store's hex UUIDs; anything else is unknown, and is
# answered as such without reaching the database (PostgreSQL refuses NUL).
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# RFC 5280 4.1.2.2: at most 20 octets; hexadecimal, with or without colons.
_SERIAL = re.compile(r"^(?:[0-9A-Fa-f]{1,40}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){0,19})$")


def check_issuer_id(issuer_id: str) -> str:
    if not _ID.match(issuer_id):
        raise Problem(404, "not_found", "no enrollment with that id")
    return issuer_id


def check_trust_anchor(trust_anchor: str) -> str:
    if trust_anchor == "bridge":
        return trust_anchor
    if trust_anchor.startswith("list:"):  # a registered external trusted list (bridge/trust_lists.py)
        return "list:" + check_trust_list_id(trust_anchor[len("list:"):])
    return check_issuer_id(trust_anchor)


def check_trust_list_id(list_id: str) -> str:
    if not _ID.match(list_id):
        raise Problem(404, "not_found", "no trust list with that id")
    return list_id


def check_serial(serial: str) -> str:
    if not _SERIAL.match(serial):
        raise Problem(400, "invalid_serial", "a serial number is 1 to 40 hexadecimal digits (20 octets), optionally colon-separated")
    return serial


def chain_options(body) -> dict:
    """The verification options of a chain or signature request (the
    ChainOptions fields), trust anchor checked, as VerificationService takes them.

    extended_key_usage is checked here, not only when the core gets to the
    chain (a signature route may fail before): an entry that is neither an
    OID nor a known name raises InputError (400 malformed_input, as a
    policy that is not an OID). The schema refuses the other fields' bad
    values (400 invalid_request, as an unknown revocation mode)."""
    parse_extended_key_usage(body.extended_key_usage)
    return dict(
        intermediates=body.intermediates, trust_anchor=check_trust_anchor(body.trust_anchor),
        policies=body.policies, require_explicit_policy=body.require_explicit_policy,
        inhibit_policy_mapping=body.inhibit_policy_mapping, inhibit_any_policy=body.inhibit_any_policy,
        at=body.at, revocation=body.revocation,
        profile=body.profile, anchor_constraints=body.anchor_constraints, key_usage=body.key_usage,
        extended_key_usage=body.extended_key_usage, max_chain_depth=body.max_chain_depth,
    )


def base64_field(value: str | None, field: str) -> bytes | None:
    """Strict base64; whitespace (line breaks of ``base64 -w76``) is ignored."""
    if value is None:
        return None
    try:
        compact = "".join(value.split()).encode("ascii")
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "invalid_base64", f"{field} is not valid base64") from None


def verify_signature_body(service, body) -> dict:
    """The signature route's reading of its body (a VerifySignatureRequest):
    a CMS SignedData, or certificate + signature + data, then the one
    verification. ``service`` is a VerificationService or a batch's
    PinnedVerification; /v1/verify/signature and each signature item of
    /v1/verify/batch read a body through here, so both refuse alike."""
    options = chain_options(body)
    if body.cms is not None:
        if body.certificate is not None or body.signature is not None or body.data is not None:
            raise Problem(400, "invalid_request", "give either cms, or certificate + signature + data")
        return service.verify_cms(base64_field(body.cms, "cms"), content=base64_field(body.content, "content"), **options)
    if body.certificate is not None and body.signature is not None and body.data is not None:
        if body.content is not None:
            raise Problem(400, "invalid_request", "content goes with cms; a raw signature signs data")
        return service.verify_raw(body.certificate, base64_field(body.signature, "signature"), base64_field(body.data, "data"),
                                  algorithm=body.algorithm, **options)
    raise Problem(400, "invalid_request", "give either cms, or certificate + signature + data")
