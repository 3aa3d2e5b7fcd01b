"""The bridge's service keys: the time-stamping authority's (bridge/tsa.py)
and the receipts' (bridge/receipts.py). Each is a key of its own, certified
by the bridge's primary key, never the bridge key itself: a time-stamp or a
receipt must not be mistakable for a certificate or CRL the bridge issued,
and either key can be replaced without touching the bridge's.

Each lives where the bridge key lives: a PKCS#11 bridge keeps them on the
same token (labels ``<pkcs11_key_label>-tsa`` and ``-receipt``), a software
bridge in encrypted PKCS#8 files in its home (``tsa-key.p8``,
``receipt-key.p8``, same passphrase), of the bridge key's type (an SM2
bridge has SM2 service keys). Their certificates sit beside them
(``tsa-cert.pem``, ``receipt-cert.pem``).

They are made at ``init`` (bridge/home.py), or on first need for a home made
before they existed (a file lock in the home keeps two workers from both
making one).
The private keys stay behind the ``Signer`` interface: this module hands out
signatures and certificates, never keys.

Profiles (RFC 5280, RFC 3161 2.3): both certificates are end-entity
(basicConstraints cA false), valid until the bridge certificate ends, name
the bridge's CRL as distribution point (not on it is good). The TSA's has
keyUsage digitalSignature and the one extendedKeyUsage id-kp-timeStamping,
critical. The receipt key's has keyUsage digitalSignature and
nonRepudiation and no extendedKeyUsage, so ``openssl cms -verify`` accepts it
under its default (S/MIME signing) purpose.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .authority import new_serial
from .signer import (
    Pkcs11Signer,
    Signer,
    SignerError,
    SoftwareSigner,
    certificate_spki,
    key_identifier,
    verify_with_spki,
)

if TYPE_CHECKING:
    from .authority import BridgeAuthority
    from .settings import BridgeSettings
    from .store import Store

TSA = "tsa"
RECEIPT = "receipt"
PURPOSES = (TSA, RECEIPT)
_NAMES = {TSA: "Time-Stamping Authority", RECEIPT: "Verification Receipts"}
LOCK_FILE = ".service-keys.lock"
# Digest algorithm OIDs of the hashes the signers use (asn1crypto names sha256/384 itself).
_DIGEST_OIDS = {"sha256": "sha256", "sha384": "sha384", "sm3": "1.2.156.10197.1.401"}


class ServiceKeyError(Exception):
    """A service key cannot be made, read or used."""


@dataclass(frozen=True)
class ServiceKey:
    """One service key: its signer and the certificate the bridge gave it."""

    purpose: str
    signer: Signer = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def digest_name(self) -> str:
        return self.signer.hash_algorithm.name  # sha256, sha384, sm3

    # The parts every signature of this key repeats, encoded once. Built as DER and loaded back: asn1crypto
    # re-encodes a loaded Name put into a new structure field by field at each dump (~50 ms a signature).
    @cached_property
    def _ess_der(self) -> bytes:
        certificate = asn1_x509.Certificate.load(self.certificate_der)
        return asn1_tsp.SigningCertificateV2({
            "certs": [{
                "cert_hash": hashlib.sha256(self.certificate_der).digest(),  # hashAlgorithm DEFAULT sha256
                "issuer_serial": {
                    "issuer": [asn1_x509.GeneralName({"directory_name": certificate.issuer})],
                    "serial_number": certificate.serial_number,
                },
            }],
        }).dump()

    @cached_property
    def directory_name_der(self) -> bytes:
        """This key's subject as a GeneralName (directoryName), DER: the TSA names itself so in each TSTInfo."""
        subject = asn1_x509.Certificate.load(self.certificate_der)["tbs_certificate"]["subject"]
        return asn1_x509.GeneralName({"directory_name": subject}).dump()

    @cached_property
    def _sid_der(self) -> bytes:
        certificate = asn1_x509.Certificate.load(self.certificate_der)
        return asn1_cms.IssuerAndSerialNumber({"issuer": certificate.issuer, "serial_number": certificate.serial_number}).dump()

    def sign_cms(self, content_type: str, content: bytes, *, signing_time: datetime,
                 certificates: tuple[x509.Certificate, ...] = ()) -> bytes:
        """CMS SignedData (RFC 5652) encapsulating ``content`` of ``content_type``,
        signed by this key with the signed attributes contentType,
        signingTime, messageDigest and ESS signing-certificate-v2 (RFC 5035:
        binds the signature to this certificate). ``certificates`` go into
        the message (for RFC 3161 certReq, or a receipt verifiable offline)."""
        digest_name = self.digest_name
        digest_oid = _DIGEST_OIDS[digest_name]
        attributes = asn1_cms.CMSAttributes([
            {"type": "content_type", "values": [content_type]},
            {"type": "signing_time", "values": [asn1_cms.Time({"utc_time": signing_time.replace(microsecond=0)})]},
            {"type": "message_digest", "values": [hashlib.new(digest_name, content).digest()]},
            {"type": "signing_certificate_v2", "values": [asn1_tsp.SigningCertificateV2.load(self._ess_der)]},
        ])
        to_sign = attributes.dump()  # SET OF: asn1crypto sorts the encodings (DER)
        signature = self.signer.sign(to_sign)
        if not verify_with_spki(certificate_spki(self.certificate), self.signer.signature_algorithm_der, signature, to_sign):
            raise ServiceKeyError(f"the {self.purpose} signature does not verify with its certificate")
        signer_info = asn1_cms.SignerInfo({
            "version": "v1",
            "sid": asn1_cms.SignerIdentifier({"issuer_and_serial_number": asn1_cms.IssuerAndSerialNumber.load(self._sid_der)}),
            "digest_algorithm": {"algorithm": digest_oid},
            "signed_attrs": attributes,
            "signature_algorithm": asn1_cms.SignedDigestAlgorithm.load(self.signer.signature_algorithm_der),
            "signature": signature,
        })
        signed_data = asn1_cms.SignedData({
            "version": "v3" if content_type != "data" else "v1",  # RFC 5652 5.1: another eContentType is v3
            "digest_algorithms": [{"algorithm": digest_oid}],
            "encap_content_info": {"content_type": content_type, "content": (asn1_core.OctetString if content_type == "data" else asn1_core.ParsableOctetString)(content)},
            # Loaded as the CHOICE itself: a loaded Certificate put into the CHOICE is re-encoded
            # field by field by asn1crypto on dump (tens of milliseconds a certificate).
            "certificates": asn1_cms.CertificateSet([asn1_cms.CertificateChoices.load(c.public_bytes(serialization.Encoding.DER))
                                                     for c in certificates]),
            "signer_infos": [signer_info],
        })
        return asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def service_subject(bridge: x509.Name, purpose: str) -> x509.Name:
    """The bridge's name with its CN (or, without one, a new CN) naming the service."""
    cn = bridge.get_attributes_for_oid(NameOID.COMMON_NAME)
    base = str(cn[0].value) if cn else str(bridge.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)
    name = f"{base} {_NAMES[purpose]}"[:64]  # ub-common-name
    rdns = [rdn for rdn in bridge.rdns if not any(a.oid == NameOID.COMMON_NAME for a in rdn)]
    return x509.Name(rdns + [x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, name)])])


def service_certificate_builder(purpose: str, bridge_certificate: x509.Certificate, spki: bytes, crl_url: str,
                                now: datetime | None = None) -> x509.CertificateBuilder:
    """The to-be-signed certificate of a service key (see the module's profiles); no public key yet."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    bridge_ski = bridge_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    builder = (
        x509.CertificateBuilder()
        .subject_name(service_subject(bridge_certificate.subject, purpose))
        .issuer_name(bridge_certificate.subject)
        .serial_number(new_serial())
        .not_valid_before(now)
        .not_valid_after(bridge_certificate.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=purpose == RECEIPT, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier(key_identifier(spki)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(bridge_ski, None, None), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
    )
    if purpose == TSA:
        # RFC 3161 2.3: exactly one extendedKeyUsage, id-kp-timeStamping, critical.
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder


class ServiceKeys:
    """The bridge's service keys, loaded (or made) on first use and kept open."""

    def __init__(self, settings: BridgeSettings, authority: BridgeAuthority, store: Store):
        self._settings = settings
        self._authority = authority
        self._store = store
        self._keys: dict[str, ServiceKey] = {}
        self._lock = threading.Lock()

    def get(self, purpose: str, *, actor: str = "bridgeca") -> ServiceKey:
        """The service key for ``purpose``, made now (by ``actor``) if the home has none."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown service key {purpose!r}")
        with self._lock:
            key = self._keys.get(purpose)
            if key is None:
                with self._home_lock():
                    key = self._load(purpose) or self._create(purpose, actor=actor)
                self._keys[purpose] = key
            return key

    def create_all(self, *, actor: str) -> None:
        """Make every service key not made yet (``init``, or an old home's first ``serve``)."""
        for purpose in PURPOSES:
            self.get(purpose, actor=actor)

    def close(self) -> None:
        with self._lock:
            for key in self._keys.values():
                key.signer.close()
            self._keys.clear()

    # ------------------------------------------------------------------ where they live

    def key_path(self, purpose: str) -> Path:
        return self._settings.home / f"{purpose}-key.p8"

    def cert_path(self, purpose: str) -> Path:
        return self._settings.home / f"{purpose}-cert.pem"

    def _pkcs11_label(self, purpose: str) -> str:
        return f"{self._settings.pkcs11_key_label}-{purpose}"

    def _secret(self) -> str | None:
        settings = self._settings
        secret = (settings.pkcs11_pin or settings.key_passphrase) if settings.signer == "pkcs11" else settings.key_passphrase
        return secret.get_secret_value() if secret else None

    @contextlib.contextmanager
    def _home_lock(self) -> Iterator[None]:
        # Workers of one `serve` share the home: one makes a missing key, the others then load it.
        fd = os.open(self._settings.home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)  # the home's files are the owner's alone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _load(self, purpose: str) -> ServiceKey | None:
        path = self.cert_path(purpose)
        if not path.exists():
            return None
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ServiceKeyError(f"cannot read the {purpose} certificate {path}: {exc}") from exc
        settings = self._settings
        if settings.signer == "pkcs11":
            signer: Signer = Pkcs11Signer.load(settings.pkcs11_module, settings.pkcs11_token_label,
                                               self._pkcs11_label(purpose), self._secret())
        else:
            signer = SoftwareSigner.load(self.key_path(purpose), self._secret())
        if signer.public_key_spki() != certificate_spki(certificate):
            signer.close()
            raise ServiceKeyError(f"the {purpose} key does not match its certificate {path}")
        return ServiceKey(purpose, signer, certificate)

    def _create(self, purpose: str, *, actor: str) -> ServiceKey:
        settings = self._settings
        key_type = self._authority.primary.key_type
        secret = self._secret()
        if settings.signer == "pkcs11":  # never SM2 (settings refuse an SM2 key on a token)
            label = self._pkcs11_label(purpose)
            try:  # a key made before an interrupted certification is certified now
                signer: Signer = Pkcs11Signer.load(settings.pkcs11_module, settings.pkcs11_token_label, label, secret)
            except SignerError:
                signer = Pkcs11Signer.generate(settings.pkcs11_module, settings.pkcs11_token_label, label, secret, key_type)
        else:
            if not secret:
                raise SignerError(f"BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the {purpose} key")
            self.key_path(purpose).unlink(missing_ok=True)  # a key whose certificate was never written
            signer = SoftwareSigner.generate(self.key_path(purpose), key_type, secret)
        try:
            spki = signer.public_key_spki()
            builder = service_certificate_builder(purpose, self._authority.certificate, spki, settings.crl_url)
            certificate = self._authority.certify_service_key(builder, spki)
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            temporary = self.cert_path(purpose).with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            temporary.replace(self.cert_path(purpose))  # the certificate's presence says the key is complete
            self._store.append_audit(actor, "service_key.certify", {
                "purpose": purpose,
                "key_type": key_type,
                "signer": settings.signer,
                "serial": format(certificate.serial_number, "x"),
                "certificate_sha256": hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest(),
            })
        except BaseException:
            signer.close()
            raise
        return ServiceKey(purpose, signer, certificate)
