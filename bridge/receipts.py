"""Signed verification receipts (issue 12): what the bridge answered, when,
and on which evidence, in a form a platform can show a third party later.

A receipt is a CMS SignedData (RFC 5652) encapsulating (eContentType id-data)
one canonical JSON document: UTF-8, keys sorted, no insignificant
whitespace, so the signed bytes are the document and any holder can re-derive
them. It is signed by the bridge's receipt key (bridge/service_keys.py: an
end-entity certificate the bridge issued, in the message) with the ESS
signing-certificate-v2 attribute. CMS rather than JWS: it verifies with the
stock ``openssl cms -verify -CAfile bridge.pem`` (no library to pick), and
it carries SM2-with-SM3 signatures, which JOSE has no algorithm for.

The document names by SHA-256: the inputs (certificate, intermediates, CMS,
content, raw signature and data), the path (each certificate), and the
revocation evidence the service held for each certificate on it (CRLs with
issuer and number, OCSP responses) and the time-stamp tokens in the CMS;
with the options asked, the answer (valid, indication, sub-indication, code,
the hash of the whole result), validation_time, the bridge's epoch and the
service's version. Everything named is kept in the evidence store
(bridge/evidence.py), except content over the size limit (listed under
``not_kept``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Any

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .evidence import EvidenceStore, Item
from .service_keys import RECEIPT

if TYPE_CHECKING:
    from .service import BridgeCA
    from .service_keys import ServiceKeys
    from .verification import VerificationService

FORMAT = "bridgeca-verification-receipt"
VERSION = 1
TIMESTAMP_TOKEN_ATTRIBUTE = "1.2.840.113549.1.9.16.2.14"  # id-aa-signatureTimeStampToken (RFC 3161 appendix A)
# The parts of a result a receipt states in words; the rest is bound by result_sha256.
_RESULT_FIELDS = ("valid", "indication", "sub_indication", "revocation", "signing_time", "timestamp")


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value: UTF-8, keys sorted, no insignificant whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def service_version() -> str:
    try:
        return metadata.version("bridgeca")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class ReceiptRequest:
    """One verification as asked: ``route`` chain or signature, the decoded
    inputs, the options as given (JSON values), and the trust anchor."""

    route: str
    options: dict
    certificate: str | None = None  # PEM or base64 DER, as sent
    intermediates: tuple[str, ...] = ()
    cms: bytes | None = None
    content: bytes | None = None
    signature: bytes | None = None
    data: bytes | None = None


def _certificate_der(text: str) -> bytes | None:
    from pki.errors import InputError
    from pki.loading import load_certificate

    try:
        return load_certificate(text).der
    except (InputError, ValueError):
        return None


def _cms_parts(cms: bytes) -> tuple[list[bytes], list[bytes]]:
    """(certificates, signature time-stamp tokens) of a CMS SignedData; empty for one that does not parse."""
    try:
        signed = asn1_cms.ContentInfo.load(cms)["content"]
        certificates = [c.chosen.dump() for c in signed["certificates"] if c.name == "certificate"] \
            if not isinstance(signed["certificates"], asn1_core.Void) else []
        tokens = []
        for signer_info in signed["signer_infos"]:
            unsigned = signer_info["unsigned_attrs"]
            if isinstance(unsigned, asn1_core.Void):
                continue
            for attribute in unsigned:
                if attribute["type"].dotted == TIMESTAMP_TOKEN_ATTRIBUTE:
                    tokens += [value.dump() for value in attribute["values"]]
        return certificates, tokens
    except (ValueError, TypeError, KeyError, AttributeError):
        return [], []


class ReceiptIssuer:
    """Signs receipts and keeps their evidence. One per service process."""

    def __init__(self, ca: BridgeCA, keys: ServiceKeys, verification: VerificationService, evidence: EvidenceStore):
        self._ca = ca
        self._keys = keys
        self._verification = verification
        self.evidence = evidence

    def issue(self, request: ReceiptRequest, result: dict, now: datetime | None = None) -> str:
        """The receipt (base64 of the CMS DER) for ``result``, the answer to ``request``."""
        key = self._keys.get(RECEIPT)  # first: a key made now has a certificate valid from now
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        items: list[Item] = []
        not_kept: list[str] = []
        known: dict[str, bytes] = {}  # sha256 -> certificate DER, for the path

        def keep(kind: str, data: bytes) -> str:
            item = Item(kind, data)
            if kind == "content" and len(data) > self.evidence.content_max_bytes:
                not_kept.append(item.sha256)
            else:
                items.append(item)
            return item.sha256

        def certificate(text: str) -> str | None:
            der = _certificate_der(text)
            if der is None:
                return None
            known[_sha256(der)] = der
            return keep("certificate", der)

        inputs: dict[str, Any] = {}
        if request.certificate is not None:
            inputs["certificate"] = certificate(request.certificate)
        if request.intermediates:
            inputs["intermediates"] = [certificate(text) for text in request.intermediates]
        timestamps: list[str] = []
        if request.cms is not None:
            inputs["cms"] = keep("cms", request.cms)
            cms_certificates, tokens = _cms_parts(request.cms)
            for der in cms_certificates:
                known[_sha256(der)] = der
            timestamps = [keep("timestamp", token) for token in tokens]
        for name in ("content", "data"):
            value = getattr(request, name)
            if value is not None:
                inputs[name] = keep("content", value)
        if request.signature is not None:
            inputs["signature"] = _sha256(request.signature)  # stated by hash: the CMS or the hash is the evidence

        chain = result.get("chain") if request.route == "signature" else result
        path = [entry["sha256"] for entry in (chain or {}).get("path") or []]
        validation_time = (chain or {}).get("validation_time") or result.get("validation_time")
        crls, ocsp = self._revocation_evidence(path, known, request.options.get("trust_anchor", "bridge"),
                                               validation_time, keep)
        for sha in path:
            if sha in known:
                keep("certificate", known[sha])
            else:
                not_kept.append(sha)

        error = result.get("error") or (chain or {}).get("error")
        document = {
            "format": FORMAT,
            "version": VERSION,
            "id": uuid.uuid4().hex,
            "issued_at": now.isoformat().replace("+00:00", "Z"),
            "request": request.route,
            "inputs": inputs,
            "options": request.options,
            "validation_time": validation_time,
            "result": {**{k: result[k] for k in _RESULT_FIELDS if k in result},
                       "code": error.get("code") if isinstance(error, dict) else None,
                       "sha256": _sha256(canonical_json(result))},
            "path": path,
            "evidence": {"crls": crls, "ocsp": ocsp, "timestamps": timestamps},
            "not_kept": sorted(set(not_kept)),
            "bridge": {"epoch": self._verification.current_epoch(),
                       "certificate_sha256": _sha256(self._ca.certificate_der())},
            "service_version": service_version(),
        }
        self.evidence.keep(items, now)
        der = key.sign_cms("data", canonical_json(document), signing_time=now, certificates=(key.certificate,))
        return base64.b64encode(der).decode("ascii")

    def _revocation_evidence(self, path: list[str], known: dict[str, bytes], trust_anchor: str,
                             validation_time: str | None, keep) -> tuple[list[dict], list[str]]:
        """The CRLs and OCSP responses the service holds for each certificate
        of the path (no fetching: what it just used is cached), kept."""
        from pki.loading import load_certificate

        from .revocation_source import FetchNeeded, no_fetch

        if len(path) < 2:
            return [], []
        if not all(sha in known for sha in path):
            known.update(self._bridge_certificates())
        at = datetime.fromisoformat(validation_time.replace("Z", "+00:00")) if validation_time else datetime.now(timezone.utc)
        try:
            provider = self._verification._context(trust_anchor).provider
        except Exception:  # an anchor gone since the answer: the receipt names no revocation evidence
            return [], []
        crls: dict[str, dict] = {}
        ocsp: set[str] = set()
        for subject_sha, issuer_sha in zip(path, path[1:], strict=False):
            if subject_sha not in known or issuer_sha not in known:
                continue
            subject, issuer = load_certificate(known[subject_sha]), load_certificate(known[issuer_sha])
            try:
                with no_fetch():
                    info = provider.revocation_info(subject, issuer, at)
            except FetchNeeded:
                continue
            for crl in info.crls:
                if crl.issuer_key == subject.issuer_key:
                    crls[keep("crl", crl.der)] = {"issuer": crl.issuer.rfc4514_string(), "number": crl.number,
                                                  "sha256": _sha256(crl.der)}
            for response, _nonce in info.ocsp:
                ocsp.add(keep("ocsp", response.der))
        return [crls[sha] for sha in sorted(crls)], sorted(ocsp)

    def _bridge_certificates(self) -> dict[str, bytes]:
        ders = [c.public_bytes(serialization.Encoding.DER)
                for c in self._ca.bridge_certificates() + self._ca.link_certificates() + self._ca.issued_to_bridge()]
        ders += [c.der for c in self._ca.store.cross_certificates() if c.der is not None]
        return {_sha256(der): der for der in ders}


# ---------------------------------------------------------------------------- checking a receipt


class ReceiptInvalid(Exception):
    """The receipt does not verify (signature, chain, or evidence)."""


class ReceiptUnreadable(ValueError):
    """Not a receipt at all (not CMS, not our document)."""


@dataclass(frozen=True)
class CheckedReceipt:
    document: dict
    signed_bytes: bytes
    signer: dict | None


def read_receipt(data: bytes) -> bytes:
    """The CMS DER of a receipt given as DER, base64 or PEM."""
    if data[:1] == b"0":
        return bytes(data)  # DER (a SEQUENCE, 0x30) as it came: its last byte may be a whitespace byte
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        from asn1crypto import pem

        try:
            return pem.unarmor(text)[2]
        except ValueError as exc:
            raise ReceiptUnreadable(f"not a PEM receipt: {exc}") from None
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except ValueError:
        raise ReceiptUnreadable("not a receipt: neither DER, base64 nor PEM") from None


def check_receipt(der: bytes, anchors: list[x509.Certificate]) -> CheckedReceipt:
    """Check a receipt's signature and its signer's chain to one of
    ``anchors`` at the receipt's signing time (offline: the receipt key's
    revocation is not checked). ReceiptInvalid when it does not verify,
    ReceiptUnreadable when it is not a receipt."""
    from pki import Verifier
    from pki.cms import SIGNING_TIME, MalformedCms, verify_cms

    try:
        encapsulated = asn1_cms.ContentInfo.load(der)["content"]["encap_content_info"]["content"]
        signed_bytes = bytes(encapsulated.native) if not isinstance(encapsulated, asn1_core.Void) else b""
    except (ValueError, TypeError, KeyError):
        raise ReceiptUnreadable("not a CMS SignedData") from None
    # The signature first: a receipt changed in transit is invalid (1), whatever the change made of its document.
    verifier = Verifier(anchors=[a.public_bytes(serialization.Encoding.DER) for a in anchors], untrusted=[])
    try:
        result = verify_cms(der, verifier, at=SIGNING_TIME, revocation="off")
    except MalformedCms as exc:
        raise ReceiptUnreadable(str(exc)) from None
    if not result.valid:
        error = result.error.to_dict() if result.error is not None else {}
        chain_error = result.chain.to_dict().get("error") if result.chain is not None else None
        detail = (error or chain_error or {}).get("message") or (error or chain_error or {}).get("code") or "invalid"
        raise ReceiptInvalid(f"the receipt's signature does not verify: {detail}")
    try:
        document = json.loads(signed_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReceiptUnreadable("the signed content is not a JSON document") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReceiptUnreadable(f"the signed content is not a {FORMAT}")
    if canonical_json(document) != signed_bytes:
        raise ReceiptInvalid("the signed content is not in canonical form")
    return CheckedReceipt(document, signed_bytes, result.signer)


def named_evidence(document: dict) -> dict[str, str]:
    """Every SHA-256 the receipt names that the bridge keeps, with what it is."""
    named: dict[str, str] = {}
    inputs = document.get("inputs") or {}
    for name in ("certificate", "cms", "content", "data"):
        if isinstance(inputs.get(name), str):
            named[inputs[name]] = name
    for sha in inputs.get("intermediates") or []:
        if isinstance(sha, str):
            named[sha] = "intermediate"
    for sha in document.get("path") or []:
        named.setdefault(sha, "path certificate")
    evidence = document.get("evidence") or {}
    for crl in evidence.get("crls") or []:
        named[crl["sha256"]] = f"CRL {crl.get('number')} of {crl.get('issuer')}"
    for sha in evidence.get("ocsp") or []:
        named[sha] = "OCSP response"
    for sha in evidence.get("timestamps") or []:
        named[sha] = "time-stamp token"
    for sha in document.get("not_kept") or []:
        named.pop(sha, None)
    return named
