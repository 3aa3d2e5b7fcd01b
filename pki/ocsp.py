"""OCSP responses (RFC 6960), client side: parsed once, then checked per
certificate. Pure: the responses come from the caller (the CLI's files, the
service's fetcher); nothing here does I/O.

A response decides a certificate's status only when
- its status is ``successful`` and it is a basic response;
- one SingleResponse's CertID matches the certificate: hash of the issuer's
  name, hash of the issuer's public key (SHA-1 or SHA-2) and serial number;
- it is signed by the certificate's issuer (the working public key of RFC
  5280 6.1.2 (g)) or by a delegated responder: a certificate in the response,
  issued (and signed) by the same issuer, valid at the validation time, with
  id-kp-OCSPSigning in extendedKeyUsage and keyUsage (if any) allowing
  digitalSignature (4.2.2.2); its own status is not checked when it carries
  id-pkix-ocsp-nocheck, else it must get one from the CRLs given beside;
- the ResponderID names the key or the subject that signed;
- thisUpdate is not in the future and nextUpdate not in the past, both give
  or take ``clock_skew``; without nextUpdate, thisUpdate is at most
  ``max_age`` old;
- when the request carried a nonce, the response echoes it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm as CryptoUnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp

from . import der as derlib
from .algorithms import UnsupportedSignatureAlgorithm
from .certificate import Certificate, parse_certificate
from .crl import reason_name
from .errors import InputError
from .loading import pem_blocks
from .names import NameKey, name_key, render
from .revocation import RevocationChecker, RevocationRequest, RevocationStatus

if TYPE_CHECKING:
    from .signatures import SignatureVerifier

OCSP_SIGNING = "1.3.6.1.5.5.7.3.9"
DEFAULT_CLOCK_SKEW = dt.timedelta(minutes=5)
DEFAULT_MAX_AGE = dt.timedelta(days=1)

_HASHES = {"sha1": hashlib.sha1, "sha224": hashlib.sha224, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class SingleResponse:
    hash_algorithm: str  # "sha1", "sha256", ...
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    status: str  # "good" | "revoked" | "unknown"
    this_update: dt.datetime
    next_update: dt.datetime | None
    revocation_time: dt.datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, eq=False)
class OcspResponse:
    der: bytes
    sha256: bytes
    status: str  # responseStatus: "successful", "tryLater", ...
    tbs: bytes = b""  # tbsResponseData (what the signature covers)
    signature_algorithm: bytes = b""
    signature: bytes = b""
    responder_name: x509.Name | None = None
    responder_key_hash: bytes | None = None
    produced_at: dt.datetime | None = None
    responses: tuple[SingleResponse, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    nonce: bytes | None = None
    unhandled_critical: tuple[str, ...] = ()
    defect: str | None = None
    _by_serial: dict = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        who = render(self.responder_name) if self.responder_name is not None else (
            f"key {self.responder_key_hash.hex()}" if self.responder_key_hash else "unknown responder")
        when = f" produced {self.produced_at:%Y-%m-%dT%H:%M:%SZ}" if self.produced_at else ""
        return f"OCSP response from {who}{when}"


_STATUS_NAMES = {
    x509_ocsp.OCSPResponseStatus.SUCCESSFUL: "successful",
    x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest",
    x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    x509_ocsp.OCSPResponseStatus.TRY_LATER: "tryLater",
    x509_ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired",
    x509_ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}
_CERT_STATUS = {
    x509_ocsp.OCSPCertStatus.GOOD: "good",
    x509_ocsp.OCSPCertStatus.REVOKED: "revoked",
    x509_ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}
_NONCE_OID = "1.3.6.1.5.5.7.48.1.2"


def parse_ocsp_response(data: bytes) -> OcspResponse:
    """Parse one DER (or PEM) OCSPResponse; InputError when unreadable."""
    data = bytes(data)
    if data.lstrip().startswith(b"-----BEGIN"):
        blocks = [body for label, body in pem_blocks(data) if "OCSP" in label]
        if len(blocks) != 1:
            raise InputError("expected one OCSP RESPONSE PEM block")
        data = blocks[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            resp = x509_ocsp.load_der_ocsp_response(data)
        except ValueError as exc:
            raise InputError(f"not a parseable OCSP response: {exc}") from None
        digest = hashlib.sha256(data).digest()
        status = _STATUS_NAMES.get(resp.response_status, str(resp.response_status))
        if status != "successful":
            return OcspResponse(der=data, sha256=digest, status=status)
        try:
            basic = asn1_ocsp.OCSPResponse.load(data)["response_bytes"]["response"].parsed
            tbs = basic["tbs_response_data"].dump()
            sig_alg = basic["signature_algorithm"].dump()
            signature = bytes(basic["signature"].native or b"")
            derlib.algorithm_identifier(sig_alg)
            singles = []
            by_serial: dict[int, list[SingleResponse]] = {}
            for single in resp.responses:
                status_name = _CERT_STATUS[single.certificate_status]
                reason = None
                if status_name == "revoked" and single.revocation_reason is not None:
                    reason = reason_name(single.revocation_reason)
                entry = SingleResponse(
                    hash_algorithm=_cert_id_hash_name(single),
                    issuer_name_hash=single.issuer_name_hash,
                    issuer_key_hash=single.issuer_key_hash,
                    serial=single.serial_number,
                    status=status_name,
                    this_update=single.this_update_utc,
                    next_update=single.next_update_utc,
                    revocation_time=single.revocation_time_utc if status_name == "revoked" else None,
                    reason=reason,
                )
                singles.append(entry)
                by_serial.setdefault(entry.serial, []).append(entry)
            certs = tuple(parse_certificate(c.public_bytes(Encoding.DER)) for c in resp.certificates)
            nonce = None
            unhandled = []
            for ext in resp.extensions:
                if ext.oid.dotted_string == _NONCE_OID:
                    nonce = ext.value.nonce
                elif ext.critical:
                    unhandled.append(ext.oid.dotted_string)
            for single in basic["tbs_response_data"]["responses"]:
                for ext in single["single_extensions"] or ():
                    if ext["critical"].native:
                        unhandled.append(ext["extn_id"].dotted)
            return OcspResponse(
                der=data,
                sha256=digest,
                status=status,
                tbs=tbs,
                signature_algorithm=sig_alg,
                signature=signature,
                responder_name=resp.responder_name,
                responder_key_hash=resp.responder_key_hash,
                produced_at=resp.produced_at_utc,
                responses=tuple(singles),
                certificates=certs,
                nonce=nonce,
                unhandled_critical=tuple(unhandled),
                _by_serial=by_serial,
            )
        except InputError as exc:
            raise InputError(f"not a usable OCSP response: {exc}") from None
        # cryptography's DuplicateExtension (an extension twice in
        # responseExtensions, RFC 5280 4.2) and UnsupportedGeneralNameType
        # are not ValueErrors: found by tests/pki/test_no_escape.py.
        except (ValueError, KeyError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
            raise InputError(f"not a parseable OCSP response: {exc}") from None


def _cert_id_hash_name(single) -> str:
    """The CertID's hash algorithm name; "unsupported" for one cryptography
    does not know, which no CertID check matches. (cryptography raises its own
    UnsupportedAlgorithm there, not a ValueError: found by
    tests/pki/test_no_escape.py.)"""
    try:
        return single.hash_algorithm.name
    except CryptoUnsupportedAlgorithm:
        return "unsupported"


def load_ocsp_responses(data: bytes | str, what: str = "OCSP response") -> list[OcspResponse]:
    if isinstance(data, str):
        data = data.encode()
    try:
        return [parse_ocsp_response(data)]
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def cert_id_matches(single: SingleResponse, cert: Certificate, issuer_spki: bytes) -> bool:
    """RFC 6960 4.1.1: the CertID names this certificate of this issuer."""
    if single.serial != cert.serial:
        return False
    h = _HASHES.get(single.hash_algorithm)
    if h is None:
        return False
    issuer_name_der = cert.issuer.public_bytes()
    try:
        _, _, key_bits = derlib.spki_parts(issuer_spki)
    except InputError:
        return False
    return h(issuer_name_der).digest() == single.issuer_name_hash and h(key_bits).digest() == single.issuer_key_hash


class OcspChecker:
    """Status from OCSP responses, indexed by serial number when built.

    ``responses`` are OcspResponse objects or (response, nonce) pairs, where
    nonce is what the request carried (the response must echo it).
    ``fallback`` (a CRL checker) is asked for a delegated responder's own
    status when its certificate lacks id-pkix-ocsp-nocheck. ``grace``: a
    response past its nextUpdate by less than this is still used, and the
    status it gives is reported ``stale`` (revoked stays revoked).
    """

    def __init__(
        self,
        responses: Iterable["OcspResponse | tuple[OcspResponse, bytes | None]"],
        signatures: "SignatureVerifier",
        *,
        clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        grace: dt.timedelta = dt.timedelta(0),
        fallback: RevocationChecker | None = None,
    ) -> None:
        self._by_serial: dict[int, list[tuple[OcspResponse, SingleResponse, bytes | None]]] = {}
        self._rejected: list[str] = []
        for item in responses:
            resp, nonce = item if isinstance(item, tuple) else (item, None)
            if resp.status != "successful":
                self._rejected.append(f"OCSP responder answered {resp.status}")
                continue
            for serial, singles in resp._by_serial.items():
                for single in singles:
                    self._by_serial.setdefault(serial, []).append((resp, single, nonce))
        self._signatures = signatures
        self.clock_skew = clock_skew
        self.max_age = max_age
        self.grace = grace
        self.fallback = fallback

    def __bool__(self) -> bool:
        return bool(self._by_serial) or bool(self._rejected)

    def with_fallback(self, fallback: RevocationChecker | None) -> "OcspChecker":
        view = object.__new__(OcspChecker)
        view.__dict__.update(self.__dict__)
        view.fallback = fallback
        return view

    def check(self, request: RevocationRequest) -> RevocationStatus:
        cert = request.certificate
        problems = list(self._rejected)
        stale_status: RevocationStatus | None = None
        for resp, single, nonce in self._by_serial.get(cert.serial, ()):
            if not cert_id_matches(single, cert, request.issuer_spki):
                problems.append(f"{resp.label}: its CertID names another certificate or issuer")
                continue
            problem = self._unusable(resp, nonce, request)
            if problem:
                problems.append(f"{resp.label}: {problem}")
                continue
            when = self._freshness(single, request.at, request.now)
            if when is not None:
                problems.append(f"{resp.label}: {when}")
                if single.next_update is not None and single.next_update + self.clock_skew < request.at <= single.next_update + self.grace:
                    state = "revoked" if single.status == "revoked" else "stale"
                    stale_status = RevocationStatus(state, source=resp.label, reason=single.reason,
                                                    revocation_time=single.revocation_time, detail=when)
                continue
            if single.status == "good":
                return RevocationStatus("good", source=resp.label)
            if single.status == "revoked":
                return RevocationStatus("revoked", source=resp.label, reason=single.reason, revocation_time=single.revocation_time)
            return RevocationStatus("unknown", source=resp.label, detail=f"{resp.label}: the responder does not know the certificate")
        if stale_status is not None:
            return stale_status
        if not problems:
            return RevocationStatus("unknown", detail=f"no OCSP response for serial {cert.serial:x} of {cert.issuer_text}")
        state = "stale" if all("out of date" in p for p in problems) else "unknown"
        return RevocationStatus(state, detail="; ".join(problems))

    def _freshness(self, single: SingleResponse, at: dt.datetime, now: dt.datetime | None = None) -> str | None:
        # RFC 6960 4.2.2.1 / 3.2 (5), (6); a response made after a past
        # validation time is the freshest information, and welcome (pki/revocation.py).
        if single.this_update > max(at, now or at) + self.clock_skew:
            return f"thisUpdate {single.this_update:%Y-%m-%dT%H:%M:%SZ} is in the future"
        if single.next_update is not None:
            if single.next_update + self.clock_skew < at:
                return f"out of date (nextUpdate {single.next_update:%Y-%m-%dT%H:%M:%SZ})"
        elif single.this_update + self.max_age + self.clock_skew < at:
            return f"out of date (thisUpdate {single.this_update:%Y-%m-%dT%H:%M:%SZ} and no nextUpdate)"
        return None

    def _unusable(self, resp: OcspResponse, nonce: bytes | None, request: RevocationRequest) -> str | None:
        if resp.defect:
            return resp.defect
        if resp.unhandled_critical:
            return f"unrecognised critical extension {', '.join(resp.unhandled_critical)}"
        if nonce is not None and resp.nonce != nonce:
            return "the nonce does not match the request's" if resp.nonce is not None else "the request's nonce is not echoed"
        try:
            # The CA itself (RFC 6960 4.2.2.2, first case)
            issuer = request.issuer
            if _responder_id_matches(resp, issuer.subject_key, request.issuer_spki):
                if self._signatures.verify(request.issuer_spki, request.issuer_parameters, resp, request.budget):
                    return None
            # A delegated responder
            why = "signed neither by the certificate's issuer nor by a responder it authorised"
            for responder in resp.certificates:
                reason = self._delegation_problem(responder, resp, request)
                if reason is not None:
                    why = reason
                    continue
                if self._signatures.verify(responder.spki, None, resp, request.budget):
                    return None
                why = f"signature does not verify with the key of responder {responder.subject_text}"
            if not resp.certificates and _responder_id_matches(resp, issuer.subject_key, request.issuer_spki):
                why = "signature does not verify with the issuer's key"
            return why
        except (UnsupportedSignatureAlgorithm, InputError) as exc:
            return f"signature cannot be checked: {exc}"

    def _delegation_problem(self, responder: Certificate, resp: OcspResponse, request: RevocationRequest) -> str | None:
        cert = request.certificate
        if not _responder_id_matches(resp, responder.subject_key, responder.spki):
            return "ResponderID does not name the included responder certificate"
        if responder.issuer_key != cert.issuer_key:
            return f"responder {responder.subject_text} was not issued by {cert.issuer_text}"
        if not self._signatures.verify(request.issuer_spki, request.issuer_parameters, responder, request.budget):
            return f"responder {responder.subject_text} is not signed by the certificate's issuer"
        if OCSP_SIGNING not in (responder.extended_key_usage or ()):
            return f"responder {responder.subject_text} lacks id-kp-OCSPSigning"
        if responder.key_usage is not None and not responder.key_usage.digital_signature:
            return f"responder {responder.subject_text}: keyUsage does not allow digitalSignature"
        if not (responder.not_before <= request.at <= responder.not_after):
            return f"responder certificate {responder.subject_text} is not valid at the validation time"
        if responder.unhandled_critical:
            return f"responder certificate has unrecognised critical extension {', '.join(responder.unhandled_critical)}"
        if not responder.ocsp_no_check:
            # 4.2.2.2.1: without id-pkix-ocsp-nocheck, check the responder too.
            if self.fallback is None:
                return f"responder {responder.subject_text} has no id-pkix-ocsp-nocheck and no CRL gives its status"
            sub = RevocationRequest(
                path=(responder,) + request.path[request.index + 1:],
                index=0,
                issuer_spki=request.issuer_spki,
                issuer_parameters=request.issuer_parameters,
                at=request.at,
                budget=request.budget,
                strict=request.strict,
            )
            status = self.fallback.check(sub)
            if status.state != "good":
                return f"responder {responder.subject_text}: its own status is {status.state} ({status.detail or status.source})"
        return None


def _responder_id_matches(resp: OcspResponse, subject: NameKey, spki: bytes) -> bool:
    if resp.responder_name is not None:
        return name_key(resp.responder_name) == subject
    if resp.responder_key_hash is not None:
        try:
            _, _, key_bits = derlib.spki_parts(spki)
        except InputError:
            return False
        return hashlib.sha1(key_bits).digest() == resp.responder_key_hash
    return False


class CombinedChecker:
    """OCSP first, then CRLs: the first that decides (good or revoked) wins;
    otherwise the more informative of the two answers."""

    def __init__(self, *checkers: RevocationChecker | None) -> None:
        self._checkers = tuple(c for c in checkers if c is not None)

    def check(self, request: RevocationRequest) -> RevocationStatus:
        answers = []
        for checker in self._checkers:
            status = checker.check(request)
            if status.state in ("good", "revoked"):
                return status
            answers.append(status)
        if not answers:
            return RevocationStatus("unknown", detail="no CRL or OCSP response was supplied")
        details = "; ".join(s.detail for s in answers if s.detail)
        for status in answers:
            if status.state == "stale":
                return RevocationStatus("stale", source=status.source, detail=details)
        if any(s.state == "not_checked" for s in answers):
            # A certificate that names no source, and no supplied CRL covers it.
            return RevocationStatus("not_checked", detail=details)
        return RevocationStatus("unknown", source=next((s.source for s in answers if s.source), None), detail=details)
