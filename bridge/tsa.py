"""The bridge's time-stamping authority (RFC 3161), behind ``POST /v1/tsa``.

A TimeStampReq in, a TimeStampResp out, always: a request the TSA will not
serve is answered with status ``rejection`` and the PKIFailureInfo bit that
says why (2.4.2: badAlg, badRequest, badDataFormat, unacceptedPolicy,
unacceptedExtension), and a TSA that cannot sign with ``systemFailure``.

The token is a CMS SignedData over a TSTInfo (eContentType id-ct-TSTInfo)
signed by the TSA's own key (bridge/service_keys.py: certified by the bridge,
critical extendedKeyUsage timeStamping), with the ESS signing-certificate-v2
attribute that RFC 3161 2.4.1 (as updated by RFC 5816) requires. Serial
numbers come from the store's ``tsa_serial`` counter, reserved in blocks
(unique across workers and restarts, increasing within a worker); genTime is the server's clock to the second, with an accuracy
of one second; the request's nonce is echoed; with certReq the TSA's
certificate is in the token. The one policy is ``tsa_policy`` (a setting).
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterator

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from .service_keys import TSA, ServiceKeyError
from .signer import SignerError
from .store import next_tsa_serial

if TYPE_CHECKING:
    from .service_keys import ServiceKeys
    from .store import Store

log = logging.getLogger("bridgeca.tsa")

ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"
# Hashes a message imprint may use, with their lengths. SHA-1 and MD5 are
# refused (badAlg): a collision would let one token cover two documents.
IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": ("sha256", 32),
    "2.16.840.1.101.3.4.2.2": ("sha384", 48),
    "2.16.840.1.101.3.4.2.3": ("sha512", 64),
    "2.16.840.1.101.3.4.2.8": ("sha3_256", 32),
    "2.16.840.1.101.3.4.2.9": ("sha3_384", 48),
    "2.16.840.1.101.3.4.2.10": ("sha3_512", 64),
    "1.2.156.10197.1.401": ("sm3", 32),
}


class Rejection(Exception):
    """The request is not served: ``failure`` is the PKIFailureInfo bit's name (asn1crypto's)."""

    def __init__(self, failure: str, text: str):
        super().__init__(text)
        self.failure = failure
        self.text = text


class _TokenlessResp(asn1_core.Sequence):
    """TimeStampResp without its OPTIONAL timeStampToken (asn1crypto's spec requires one)."""

    _fields = [("status", asn1_tsp.PKIStatusInfo)]


def rejection(failure: str, text: str, status: str = "rejection") -> bytes:
    """A TimeStampResp without a token (RFC 3161 2.4.2)."""
    return _TokenlessResp({
        "status": {"status": status, "status_string": [text], "fail_info": asn1_tsp.PKIFailureInfo({failure})},
    }).dump()


def read_request(der: bytes, policy: str) -> asn1_tsp.TimeStampReq:
    """The TimeStampReq in ``der``, checked; Rejection for one the TSA does not serve."""
    try:
        request = asn1_tsp.TimeStampReq.load(der, strict=True)
        _ = request.native  # parses every field now: a damaged one is badDataFormat, not a failure later
    except (ValueError, TypeError) as exc:
        raise Rejection("bad_data_format", f"not a DER TimeStampReq: {exc}") from None
    if request["version"].native != "v1":
        raise Rejection("bad_request", "only version 1 requests are served")
    imprint = request["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].dotted
    known = IMPRINT_HASHES.get(algorithm)
    if known is None:
        raise Rejection("bad_alg", f"message imprint hash {algorithm} is not accepted (SHA-2, SHA-3 or SM3)")
    if len(imprint["hashed_message"].native) != known[1]:
        raise Rejection("bad_data_format", f"the message imprint is not a {known[0]} digest ({known[1]} octets)")
    requested = request["req_policy"]
    if requested.native is not None and requested.dotted != policy:
        raise Rejection("unaccepted_policy", f"this TSA serves policy {policy} only")
    if request["extensions"].native:
        raise Rejection("unaccepted_extensions", "this TSA accepts no request extensions")
    return request


# Serial numbers are reserved this many at a time: one database write per
# block rather than per token (a write costs tens of times the signature).
# Unique across workers and restarts; a worker's unused rest is never used.
SERIAL_BLOCK = 64


class TimeStampAuthority:
    def __init__(self, keys: ServiceKeys, store: Store, policy: str):
        self._keys = keys
        self._store = store
        self.policy = policy
        self._serials: Iterator[int] = iter(())
        self._serial_lock = threading.Lock()

    def _next_serial(self) -> int:
        with self._serial_lock:
            serial = next(self._serials, None)
            if serial is None:
                last = next_tsa_serial(self._store, SERIAL_BLOCK)
                self._serials = iter(range(last - SERIAL_BLOCK + 1, last + 1))
                serial = next(self._serials)
            return serial

    def respond(self, request_der: bytes, now: datetime | None = None) -> bytes:
        """The TimeStampResp (DER) for a TimeStampReq (DER)."""
        try:
            request = read_request(request_der, self.policy)
        except Rejection as exc:
            return rejection(exc.failure, exc.text)
        try:
            token = self.token(request, now)
        except (ServiceKeyError, SignerError, OSError) as exc:
            log.error("time-stamp not issued: %s", exc)
            return rejection("system_failure", "the time-stamping key is unavailable")
        return asn1_tsp.TimeStampResp({
            "status": {"status": "granted"},
            "time_stamp_token": asn1_cms.ContentInfo.load(token),
        }).dump()

    def token(self, request: asn1_tsp.TimeStampReq, now: datetime | None = None) -> bytes:
        """A TimeStampToken (CMS ContentInfo, DER) for a checked request."""
        key = self._keys.get(TSA)
        gen_time = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        info = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": request["message_imprint"],
            "serial_number": self._next_serial(),
            "gen_time": gen_time,
            "accuracy": {"seconds": 1},
            "tsa": asn1_x509.GeneralName.load(key.directory_name_der),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        tst_info = asn1_tsp.TSTInfo(info).dump()
        certificates = (key.certificate,) if request["cert_req"].native else ()
        return key.sign_cms(ID_CT_TSTINFO, tst_info, signing_time=gen_time, certificates=certificates)


def tsa_certificate_pem(keys: ServiceKeys) -> bytes:
    return keys.get(TSA).certificate.public_bytes(serialization.Encoding.PEM)
