"""The one way to reach the bridge's private key.

``Signer`` signs bytes and turns cryptography builders (certificate, CRL,
OCSP response) into signed objects. Two implementations:

- ``SoftwareSigner``: an encrypted PKCS#8 file; passphrase from
  ``BRIDGECA_KEY_PASSPHRASE``.
- ``Pkcs11Signer``: a key on a PKCS#11 token (python-pkcs11; tested against
  SoftHSM2). The key is generated on the token, non-extractable, and never
  leaves it: objects are built with cryptography using a throwaway key of the
  same type (so the signature AlgorithmIdentifier inside the to-be-signed
  bytes is right), then the to-be-signed bytes are signed on the token and
  the final DER is assembled with asn1crypto.

Neither implementation logs, returns or reprs key material.
"""
from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path

from asn1crypto import core as asn1_core
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072")


class SignerError(Exception):
    """The key cannot be reached or used (wrong passphrase, missing token, wrong PIN, ...)."""


def hash_for(key_type: str) -> hashes.HashAlgorithm:
    return hashes.SHA384() if key_type == "ec-p384" else hashes.SHA256()


def key_type_of(public_key) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "ec-p256"
        if isinstance(public_key.curve, ec.SECP384R1):
            return "ec-p384"
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 3072:
        return "rsa-3072"
    raise SignerError(f"unsupported bridge key: {type(public_key).__name__}")


def _generate_private_key(key_type: str):
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise SignerError(f"unknown key type {key_type!r} (choose one of {', '.join(KEY_TYPES)})")


@lru_cache(maxsize=None)
def _throwaway_key(key_type: str):
    # Signs nothing that is kept: it only makes cryptography emit the TBS bytes.
    return _generate_private_key(key_type)


@lru_cache(maxsize=None)
def _throwaway_certificate(key_type: str) -> x509.Certificate:
    import datetime

    key = _throwaway_key(key_type)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "throwaway")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hash_for(key_type))
    )


def _spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Signer(ABC):
    key_type: str

    @abstractmethod
    def public_key(self):
        """The bridge's public key (a cryptography public key object)."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Signature over ``data`` (ECDSA as DER Ecdsa-Sig-Value, RSA as PKCS#1 v1.5)."""

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm:
        return hash_for(self.key_type)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:  # never shows key material
        return f"<{type(self).__name__} {self.key_type}>"

    # -- builders: sign with a throwaway key, then replace the signature -----------

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        draft = builder.sign(_throwaway_key(self.key_type), self.hash_algorithm)
        tbs = draft.tbs_certificate_bytes
        parsed = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))
        final = asn1_x509.Certificate(
            {
                "tbs_certificate": asn1_x509.TbsCertificate.load(tbs),
                "signature_algorithm": parsed["signature_algorithm"],
                "signature_value": asn1_core.OctetBitString(self.sign(tbs)),
            }
        )
        return x509.load_der_x509_certificate(final.dump())

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        draft = builder.sign(_throwaway_key(self.key_type), self.hash_algorithm)
        tbs = draft.tbs_certlist_bytes
        parsed = asn1_crl.CertificateList.load(draft.public_bytes(serialization.Encoding.DER))
        final = asn1_crl.CertificateList(
            {
                "tbs_cert_list": asn1_crl.TbsCertList.load(tbs),
                "signature_algorithm": parsed["signature_algorithm"],
                "signature": asn1_core.OctetBitString(self.sign(tbs)),
            }
        )
        return x509.load_der_x509_crl(final.dump())

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate) -> ocsp.OCSPResponse:
        """Sign a response (``builder`` without a responder id) as ``responder``, identified by key hash."""
        # cryptography refuses a responder certificate that does not match the
        # signing key, so the draft names a throwaway certificate and the
        # responderID is replaced (RFC 6960 4.2.1 byKey: SHA-1 of the key bits).
        draft = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, _throwaway_certificate(self.key_type)).sign(
            _throwaway_key(self.key_type), self.hash_algorithm
        )
        parsed = asn1_ocsp.OCSPResponse.load(draft.public_bytes(serialization.Encoding.DER))
        basic = parsed["response_bytes"]["response"].parsed
        tbs_fields = basic["tbs_response_data"]
        key_hash = asn1_x509.Certificate.load(responder.public_bytes(serialization.Encoding.DER)).public_key.sha1
        tbs = asn1_ocsp.ResponseData(
            {
                name: (asn1_ocsp.ResponderId(name="by_key", value=key_hash) if name == "responder_id" else tbs_fields[name])
                for name, _spec, *_ in asn1_ocsp.ResponseData._fields
                if not isinstance(tbs_fields[name], asn1_core.Void)
            }
        )
        tbs_der = tbs.dump()
        final_basic = asn1_ocsp.BasicOCSPResponse(
            {
                "tbs_response_data": asn1_ocsp.ResponseData.load(tbs_der),
                "signature_algorithm": basic["signature_algorithm"],
                "signature": asn1_core.OctetBitString(self.sign(tbs_der)),
            }
        )
        final = asn1_ocsp.OCSPResponse(
            {
                "response_status": "successful",
                "response_bytes": {"response_type": "basic_ocsp_response", "response": final_basic},
            }
        )
        return ocsp.load_der_ocsp_response(final.dump())

    # -- load-time check --------------------------------------------------------

    def check_matches(self, certificate: x509.Certificate) -> None:
        """The key signs what the certificate's public key verifies, and the certificate may sign certificates and CRLs."""
        if _spki_der(self.public_key()) != _spki_der(certificate.public_key()):
            raise SignerError("the signing key does not match the bridge certificate")
        probe = b"bridgeca key check " + os.urandom(16)
        try:
            verify_signature(certificate.public_key(), self.sign(probe), probe, self.hash_algorithm)
        except InvalidSignature as exc:
            raise SignerError("the signing key does not produce signatures the bridge certificate verifies") from exc
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise SignerError("the bridge certificate has no keyUsage") from exc
        if not (usage.key_cert_sign and usage.crl_sign):
            raise SignerError("the bridge certificate's keyUsage does not allow keyCertSign and cRLSign")


def verify_signature(public_key, signature: bytes, data: bytes, hash_algorithm: hashes.HashAlgorithm) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    else:
        raise SignerError(f"unsupported key {type(public_key).__name__}")


# --------------------------------------------------------------------------- software


class SoftwareSigner(Signer):
    """A key in an encrypted PKCS#8 file, decrypted into memory at load."""

    def __init__(self, private_key):
        self.__key = private_key
        self.key_type = key_type_of(private_key.public_key())

    @classmethod
    def generate(cls, path: Path, key_type: str, passphrase: str | None) -> "SoftwareSigner":
        if not passphrase:
            raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the bridge key")
        key = _generate_private_key(key_type)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key)

    @classmethod
    def load(cls, path: Path, passphrase: str | None) -> "SoftwareSigner":
        if not passphrase:
            raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it is needed to decrypt the bridge key")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SignerError(f"cannot read the bridge key file {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(data, password=passphrase.encode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise SignerError(f"cannot decrypt the bridge key {path}: wrong BRIDGECA_KEY_PASSPHRASE or damaged key file") from exc
        return cls(key)

    def public_key(self):
        return self.__key.public_key()

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.__key, ec.EllipticCurvePrivateKey):
            return self.__key.sign(data, ec.ECDSA(self.hash_algorithm))
        return self.__key.sign(data, padding.PKCS1v15(), self.hash_algorithm)

    # Direct signing: same result as the generic path, without the throwaway key.
    def sign_certificate(self, builder):
        return builder.sign(self.__key, self.hash_algorithm)

    def sign_crl(self, builder):
        return builder.sign(self.__key, self.hash_algorithm)

    def sign_ocsp(self, builder, responder):
        return builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder).sign(self.__key, self.hash_algorithm)


# --------------------------------------------------------------------------- PKCS#11

_CURVES = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}
# PIN digests of this process's logins, per (module, token label): see _open_session.
_LOGGED_IN: dict[tuple[str, str], bytes] = {}


class Pkcs11Signer(Signer):
    """A key on a PKCS#11 token. One session, used under a lock (sessions are not thread-safe)."""

    def __init__(self, session, private_key, public_key, key_type: str):
        self._session = session
        self.__private = private_key
        self._public = public_key
        self.key_type = key_type
        self._lock = threading.Lock()

    @staticmethod
    def _open_session(module: str | None, token_label: str | None, pin: str | None, *, rw: bool):
        try:
            import pkcs11
            from pkcs11 import exceptions as p11e
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise SignerError("python-pkcs11 is not installed") from exc
        if not module:
            raise SignerError("no PKCS#11 module configured (pkcs11_module / BRIDGECA_PKCS11_MODULE)")
        if not Path(module).exists():
            raise SignerError(f"PKCS#11 module {module} does not exist")
        if not token_label:
            raise SignerError("no PKCS#11 token label configured (pkcs11_token_label)")
        if not pin:
            raise SignerError("no PKCS#11 user PIN: set BRIDGECA_PKCS11_PIN (or BRIDGECA_KEY_PASSPHRASE)")
        try:
            lib = pkcs11.lib(module)
        except Exception as exc:
            raise SignerError(f"cannot load PKCS#11 module {module}: {exc}") from exc
        try:
            token = lib.get_token(token_label=token_label)
        except (p11e.NoSuchToken, p11e.MultipleTokensReturned) as exc:
            raise SignerError(f"PKCS#11 token {token_label!r} not found (is it present and initialised?)") from exc
        login_key = (module, token_label)
        try:
            session = token.open(user_pin=pin, rw=rw)
            _LOGGED_IN[login_key] = hashlib.sha256(pin.encode()).digest()
            return session
        except p11e.UserAlreadyLoggedIn:
            # Login is per process, not per session (PKCS#11 v2.40 5.6): another
            # session of this process logged in already. The token cannot check
            # this PIN now, so compare it with the one that logged in.
            if _LOGGED_IN.get(login_key) != hashlib.sha256(pin.encode()).digest():
                raise SignerError(f"PKCS#11 token {token_label!r} refused the PIN") from None
            return token.open(rw=rw)
        except p11e.PinIncorrect as exc:
            raise SignerError(f"PKCS#11 token {token_label!r} refused the PIN") from exc
        except p11e.PinLocked as exc:
            raise SignerError(f"PKCS#11 token {token_label!r} is locked (PIN locked)") from exc
        except p11e.PKCS11Error as exc:
            raise SignerError(f"cannot log in to PKCS#11 token {token_label!r}: {type(exc).__name__}") from exc

    @classmethod
    def generate(cls, module, token_label, key_label, pin, key_type: str) -> "Pkcs11Signer":
        """Generate the bridge key on the token: sensitive, non-extractable, persistent."""
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        session = cls._open_session(module, token_label, pin, rw=True)
        existing = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: key_label}))
        if existing:
            session.close()
            raise SignerError(f"PKCS#11 token {token_label!r} already holds a key labelled {key_label!r}")
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
        }
        public_template = {Attribute.TOKEN: True, Attribute.VERIFY: True}
        if key_type in _CURVES:
            parameters = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_type])}, local=True
            )
            public, private = parameters.generate_keypair(
                store=True, label=key_label, public_template=public_template, private_template=private_template
            )
        elif key_type == "rsa-3072":
            public, private = session.generate_keypair(
                KeyType.RSA, 3072, store=True, label=key_label, public_template=public_template, private_template=private_template
            )
        else:
            session.close()
            raise SignerError(f"unknown key type {key_type!r}")
        return cls(session, private, public, key_type)

    @classmethod
    def load(cls, module, token_label, key_label, pin) -> "Pkcs11Signer":
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11 import exceptions as p11e

        session = cls._open_session(module, token_label, pin, rw=False)
        try:
            private = session.get_key(ObjectClass.PRIVATE_KEY, label=key_label)
            public = session.get_key(ObjectClass.PUBLIC_KEY, label=key_label)
        except (p11e.NoSuchKey, p11e.MultipleObjectsReturned) as exc:
            session.close()
            raise SignerError(f"PKCS#11 token {token_label!r} has no single key pair labelled {key_label!r}") from exc
        if public.key_type == KeyType.EC:
            curve = _public_from_token(public, None).curve
            key_type = "ec-p384" if isinstance(curve, ec.SECP384R1) else "ec-p256"
        else:
            key_type = "rsa-3072"
        return cls(session, private, public, key_type)

    def public_key(self):
        return _public_from_token(self._public, self.key_type)

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11 import exceptions as p11e
        from pkcs11.util.ec import encode_ecdsa_signature

        try:
            with self._lock:
                if self.key_type in _CURVES:
                    digest = hashlib.new(self.hash_algorithm.name, data).digest()
                    # CKM_ECDSA signs a digest and returns r||s; X.509 wants DER.
                    return encode_ecdsa_signature(self.__private.sign(digest, mechanism=Mechanism.ECDSA))
                return self.__private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        except p11e.PKCS11Error as exc:
            raise SignerError(f"PKCS#11 signing failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        try:
            self._session.close()
        except Exception:
            pass


def _public_from_token(public, key_type):
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_ec_public_key

    if public.key_type == KeyType.EC:
        return serialization.load_der_public_key(encode_ec_public_key(public))
    modulus = int.from_bytes(public[Attribute.MODULUS], "big")
    exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()
