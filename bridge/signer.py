"""The one way to reach the bridge's private key.

``Signer`` signs bytes and turns cryptography builders (certificate, CRL,
OCSP response) into signed objects. Two implementations:

- ``SoftwareSigner``: an encrypted PKCS#8 file; passphrase from
  ``BRIDGECA_KEY_PASSPHRASE``. An SM2 key (key type ``sm2``) is a
  ``Sm2SoftwareSigner``: the key lives in the system libcrypto
  (bridge/sm2_keys.py), because cryptography cannot sign with SM2.
- ``Pkcs11Signer``: a key on a PKCS#11 token (python-pkcs11; tested against
  SoftHSM2). The key is generated on the token, non-extractable, and never
  leaves it: objects are built with cryptography using a throwaway key of the
  same type (so the signature AlgorithmIdentifier inside the to-be-signed
  bytes is right), then the to-be-signed bytes are signed on the token and
  the final DER is assembled with asn1crypto.

SM2 uses the PKCS#11 technique in software: cryptography builds the object
with a throwaway P-256 key, then the signature AlgorithmIdentifier (inside the
to-be-signed bytes and outside) becomes sm2sign-with-sm3
(1.2.156.10197.1.501, no parameters, as OpenSSL writes it), the public key is
put in as SubjectPublicKeyInfo bytes where needed, and libcrypto signs with
the GM/T 0009 signer ID 1234567812345678.

SM2 keys on PKCS#11 tokens are not supported: PKCS#11 (2.40, 3.0) defines no
SM2 mechanism, and SoftHSM 2.6 offers none (it generates EC keys on the
sm2p256v1 curve, but CKM_ECDSA on them makes ECDSA signatures, not SM2 ones).

No implementation logs, returns or reprs key material.
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
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072", "sm2")
SM2 = "sm2"
SM2_WITH_SM3 = "1.2.156.10197.1.501"  # sm2sign-with-sm3 (GM/T 0006)


class SignerError(Exception):
    """The key cannot be reached or used (wrong passphrase, missing token, wrong PIN, ...)."""


def hash_for(key_type: str) -> hashes.HashAlgorithm:
    if key_type == SM2:
        return hashes.SM3()
    return hashes.SHA384() if key_type == "ec-p384" else hashes.SHA256()


def _cryptography_hash_for(key_type: str) -> hashes.SHA256 | hashes.SHA384:
    """hash_for a key type cryptography holds (every one but SM2): the hash its builders draft with."""
    if key_type == SM2:
        raise SignerError("SM2 objects are drafted with a P-256 key (draft_key_type), not signed by cryptography")
    return hashes.SHA384() if key_type == "ec-p384" else hashes.SHA256()


def draft_key_type(key_type: str) -> str:
    """The key type cryptography drafts objects with: SM2 objects are drafted with P-256."""
    return "ec-p256" if key_type == SM2 else key_type


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
    if key_type == SM2:
        raise SignerError("SM2 keys are made by Sm2SoftwareSigner, not cryptography")
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
        .sign(key, _cryptography_hash_for(key_type))
    )


@lru_cache(maxsize=None)
def signature_algorithm_for(key_type: str) -> bytes:
    """DER AlgorithmIdentifier of the signatures a key of this type makes:
    what cryptography writes for ECDSA/RSA, sm2sign-with-sm3 without
    parameters for SM2."""
    if key_type == SM2:
        return asn1_x509.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3}).dump()
    draft = _throwaway_certificate(key_type).public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(draft)["signature_algorithm"].dump()


def _spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_spki(certificate: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo exactly as encoded (cryptography
    cannot hand out an SM2 key, and re-encodes the others)."""
    return asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)["subject_public_key_info"].dump()


def key_identifier(spki: bytes) -> bytes:
    """RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING
    value, which is what cryptography's from_public_key computes for the keys
    it knows; this works for every key, SM2 included."""
    from pki.der import spki_parts

    return hashlib.sha1(spki_parts(spki)[2]).digest()


@lru_cache(maxsize=1)
def _registry():
    from pki.algorithms import AlgorithmRegistry, with_national_algorithms

    return with_national_algorithms(AlgorithmRegistry())


def verify_with_spki(spki: bytes, algorithm_der: bytes, signature: bytes, data: bytes) -> bool:
    """Check a signature with the verifier's own algorithm registry (SM2 included
    where libcrypto has it); False for a wrong signature, an unknown algorithm
    or an unusable key."""
    from pki.algorithms import UnsupportedSignatureAlgorithm
    from pki.errors import InputError

    try:
        return _registry().verify(spki, algorithm_der, signature, data)
    except (UnsupportedSignatureAlgorithm, InputError, ValueError):
        return False


def signed_object_verifies(der: bytes, issuer_spki: bytes) -> bool:
    """A certificate, CRL or other SIGNED{} structure verifies under ``issuer_spki``."""
    from pki.der import split_signed
    from pki.errors import InputError

    try:
        tbs, algorithm, signature = split_signed(der)
    except (InputError, ValueError, IndexError):
        return False
    return verify_with_spki(issuer_spki, algorithm, signature, tbs)


def _replace_fields(spec, loaded, replacements: dict):
    """A new asn1crypto ``spec`` value with ``loaded``'s fields (their bytes
    unchanged) except those in ``replacements``."""
    fields = {
        name: loaded[name]
        for name, _spec, *_ in spec._fields
        if not isinstance(loaded[name], asn1_core.Void)
    }
    fields.update(replacements)
    return spec(fields)


class Signer(ABC):
    key_type: str

    @abstractmethod
    def public_key(self):
        """The bridge's public key (a cryptography public key object; for SM2
        a pki.sm2.Sm2PublicKey, which cryptography has no type for)."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Signature over ``data`` (ECDSA and SM2 as DER Ecdsa-Sig-Value, RSA as PKCS#1 v1.5)."""

    def public_key_spki(self) -> bytes:
        """The public key as SubjectPublicKeyInfo DER."""
        return _spki_der(self.public_key())

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm:
        return hash_for(self.key_type)

    @property
    def draft_key_type(self) -> str:
        """The throwaway key type cryptography drafts this signer's objects with."""
        return draft_key_type(self.key_type)

    @property
    def draft_hash_algorithm(self) -> hashes.SHA256 | hashes.SHA384:
        return _cryptography_hash_for(self.draft_key_type)

    @property
    def signature_algorithm_der(self) -> bytes:
        """The AlgorithmIdentifier (DER) of this signer's signatures."""
        return signature_algorithm_for(self.key_type)

    def signature_algorithm(self) -> asn1_x509.SignedDigestAlgorithm:
        return asn1_x509.SignedDigestAlgorithm.load(self.signature_algorithm_der)

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract: most signers hold nothing to release
        pass

    def __repr__(self) -> str:  # never shows key material
        return f"<{type(self).__name__} {self.key_type}>"

    # -- builders: sign with a throwaway key, then replace the signature -----------

    def draft_tbs_certificate(self, builder: x509.CertificateBuilder, *, subject_public_key_info: bytes | None = None,
                              replacements: dict | None = None) -> bytes:
        """The to-be-signed certificate of ``builder`` for this signer: drafted
        by cryptography with a throwaway key, then its signature algorithm set
        to this signer's and, when given, its SubjectPublicKeyInfo (and any
        other field in ``replacements``) put in byte for byte."""
        draft = builder.sign(_throwaway_key(self.draft_key_type), self.draft_hash_algorithm)
        tbs = asn1_x509.TbsCertificate.load(draft.tbs_certificate_bytes)
        changes = dict(replacements or {})
        if tbs["signature"].dump() != self.signature_algorithm_der:
            changes["signature"] = self.signature_algorithm()
        if subject_public_key_info is not None:
            changes["subject_public_key_info"] = asn1_x509.PublicKeyInfo.load(subject_public_key_info)
        if not changes:
            return draft.tbs_certificate_bytes
        return _replace_fields(asn1_x509.TbsCertificate, tbs, changes).dump()

    def assemble_certificate(self, tbs_der: bytes, signature: bytes) -> x509.Certificate:
        final = asn1_x509.Certificate(
            {
                "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
                "signature_algorithm": self.signature_algorithm(),
                "signature_value": asn1_core.OctetBitString(signature),
            }
        )
        return x509.load_der_x509_certificate(final.dump())

    def sign_certificate(self, builder: x509.CertificateBuilder, *, subject_public_key_info: bytes | None = None) -> x509.Certificate:
        """Sign ``builder``'s certificate. ``subject_public_key_info`` (DER)
        replaces the builder's public key, for keys cryptography cannot hold
        (SM2): give the builder any placeholder key."""
        tbs = self.draft_tbs_certificate(builder, subject_public_key_info=subject_public_key_info)
        return self.assemble_certificate(tbs, self.sign(tbs))

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        draft = builder.sign(_throwaway_key(self.draft_key_type), self.draft_hash_algorithm)
        tbs = draft.tbs_certlist_bytes
        loaded = asn1_crl.TbsCertList.load(tbs)
        if loaded["signature"].dump() != self.signature_algorithm_der:
            tbs = _replace_fields(asn1_crl.TbsCertList, loaded, {"signature": self.signature_algorithm()}).dump()
        final = asn1_crl.CertificateList(
            {
                "tbs_cert_list": asn1_crl.TbsCertList.load(tbs),
                "signature_algorithm": self.signature_algorithm(),
                "signature": asn1_core.OctetBitString(self.sign(tbs)),
            }
        )
        return x509.load_der_x509_crl(final.dump())

    def resign_crl(self, crl_der: bytes, authority_key_identifier: bytes) -> bytes:
        """The same CRL (issuer, dates, number, entries) signed by this key:
        signature algorithm and authorityKeyIdentifier become this key's."""
        loaded = asn1_crl.CertificateList.load(crl_der)["tbs_cert_list"]
        extensions = []
        for extension in loaded["crl_extensions"]:
            if extension["extn_id"].native == "authority_key_identifier":
                extension = asn1_crl.TBSCertListExtension(
                    {
                        "extn_id": "authority_key_identifier",
                        "critical": False,
                        "extn_value": asn1_x509.AuthorityKeyIdentifier({"key_identifier": authority_key_identifier}),
                    }
                )
            extensions.append(extension)
        tbs = _replace_fields(
            asn1_crl.TbsCertList, loaded,
            {"signature": self.signature_algorithm(), "crl_extensions": asn1_crl.TBSCertListExtensions(extensions)},
        ).dump()
        final = asn1_crl.CertificateList(
            {
                "tbs_cert_list": asn1_crl.TbsCertList.load(tbs),
                "signature_algorithm": self.signature_algorithm(),
                "signature": asn1_core.OctetBitString(self.sign(tbs)),
            }
        )
        return final.dump()

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate) -> ocsp.OCSPResponse:
        """Sign a response (``builder`` without a responder id) as ``responder``, identified by key hash."""
        # cryptography refuses a responder certificate that does not match the
        # signing key, so the draft names a throwaway certificate and the
        # responderID is replaced (RFC 6960 4.2.1 byKey: SHA-1 of the key bits).
        draft = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, _throwaway_certificate(self.draft_key_type)).sign(
            _throwaway_key(self.draft_key_type), self.draft_hash_algorithm
        )
        parsed = asn1_ocsp.OCSPResponse.load(draft.public_bytes(serialization.Encoding.DER))
        basic = parsed["response_bytes"]["response"].parsed
        tbs_fields = basic["tbs_response_data"]
        key_hash = key_identifier(certificate_spki(responder))
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
                "signature_algorithm": self.signature_algorithm(),
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
        spki = certificate_spki(certificate)
        if self.public_key_spki() != spki:
            raise SignerError("the signing key does not match the bridge certificate")
        probe = b"bridgeca key check " + os.urandom(16)
        if not verify_with_spki(spki, self.signature_algorithm_der, self.sign(probe), probe):
            raise SignerError("the signing key does not produce signatures the bridge certificate verifies")
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise SignerError("the bridge certificate has no keyUsage") from exc
        if not (usage.key_cert_sign and usage.crl_sign):
            raise SignerError("the bridge certificate's keyUsage does not allow keyCertSign and cRLSign")


# --------------------------------------------------------------------------- software


class SoftwareSigner(Signer):
    """A key in an encrypted PKCS#8 file, decrypted into memory at load."""

    def __init__(self, private_key):
        self.__key = private_key
        self.key_type = key_type_of(private_key.public_key())

    @classmethod
    def generate(cls, path: Path, key_type: str, passphrase: str | None) -> "Signer":
        """A new key in a new file (never overwritten); an SM2 key gives a Sm2SoftwareSigner."""
        if not passphrase:
            raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the bridge key")
        if key_type == SM2:
            signer = Sm2SoftwareSigner.generate_key()
            _write_new_key_file(path, signer.to_pem(passphrase))
            return signer
        key = _generate_private_key(key_type)
        _write_new_key_file(path, encrypt_pkcs8(
            key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            passphrase,
        ))
        return cls(key)

    @classmethod
    def load(cls, path: Path, passphrase: str | None) -> "Signer":
        """The key in ``path``; an SM2 key gives a Sm2SoftwareSigner."""
        if not passphrase:
            raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it is needed to decrypt the bridge key")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SignerError(f"cannot read the bridge key file {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(data, password=passphrase.encode("utf-8"))
        except UnsupportedAlgorithm:
            # Decrypted, but of a type cryptography cannot hold: SM2 is the one we write.
            return Sm2SoftwareSigner.load_pem(data, passphrase, path)
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
    def sign_certificate(self, builder, *, subject_public_key_info: bytes | None = None):
        if subject_public_key_info is not None:
            return super().sign_certificate(builder, subject_public_key_info=subject_public_key_info)
        return builder.sign(self.__key, self.hash_algorithm)

    def sign_crl(self, builder):
        return builder.sign(self.__key, self.hash_algorithm)

    def sign_ocsp(self, builder, responder):
        return builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder).sign(self.__key, self.hash_algorithm)


# PBKDF2-HMAC-SHA256 iterations for key files (OWASP's 2023 figure, as for SM2
# keys in sm2_keys.py). cryptography's BestAvailableEncryption, used before,
# offers no choice and writes 2,048; such files still load (the iteration
# count is read from the file).
PBKDF2_ITERATIONS = 600_000


def encrypt_pkcs8(pkcs8_der: bytes, passphrase: str, *, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """An unencrypted PKCS#8 key as "ENCRYPTED PRIVATE KEY" PEM: PBES2 with
    PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018), which cryptography and the
    openssl CLI read. Built here because cryptography cannot set the count."""
    from asn1crypto import algos as asn1_algos
    from asn1crypto import keys as asn1_keys
    from asn1crypto import pem as asn1_pem
    from cryptography.hazmat.primitives import padding as sym_padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt, iv = os.urandom(16), os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, iterations, dklen=32)
    padder = sym_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(pkcs8_der) + padder.finalize()) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo({
        "encryption_algorithm": {
            "algorithm": "pbes2",
            "parameters": {
                "key_derivation_func": {
                    "algorithm": "pbkdf2",
                    "parameters": {"salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt), "iteration_count": iterations, "prf": {"algorithm": "sha256"}},
                },
                "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
            },
        },
        "encrypted_data": ciphertext,
    })
    return asn1_pem.armor("ENCRYPTED PRIVATE KEY", info.dump())


def key_file_kdf(data: bytes) -> tuple[str, int | None]:
    """(KDF name, iteration count) protecting an encrypted PKCS#8 PEM key file,
    e.g. ("pbkdf2-sha256", 600000); for telling old key files from new ones."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import pem as asn1_pem

    _label, _headers, der = asn1_pem.unarmor(data)
    algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
    if algorithm["algorithm"].native != "pbes2":
        return algorithm["algorithm"].native, None
    kdf = algorithm["parameters"]["key_derivation_func"]
    if kdf["algorithm"].native != "pbkdf2":
        return kdf["algorithm"].native, None
    params = kdf["parameters"]
    return f"pbkdf2-{params['prf']['algorithm'].native}", params["iteration_count"].native


def _write_new_key_file(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


class Sm2SoftwareSigner(Signer):
    """An SM2 key (sm2p256v1) in the system libcrypto; signs SM2-with-SM3 with
    the GM/T 0009 signer ID 1234567812345678. At rest: encrypted PKCS#8 PEM
    (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC), readable by the openssl CLI."""

    key_type = SM2

    def __init__(self, private_key):
        self.__key = private_key
        self._spki = private_key.public_key_spki_der()

    @classmethod
    def generate_key(cls) -> "Sm2SoftwareSigner":
        from pki.sm2 import Sm2Unavailable

        from .sm2_keys import Sm2PrivateKey

        try:
            return cls(Sm2PrivateKey.generate())
        except Sm2Unavailable as exc:
            raise SignerError(f"SM2 keys need the system libcrypto with SM2: {exc}") from exc

    @classmethod
    def load_pem(cls, data: bytes, passphrase: str, path: Path | str = "the key file") -> "Sm2SoftwareSigner":
        from pki.errors import InputError
        from pki.sm2 import Sm2Unavailable

        from .sm2_keys import Sm2PrivateKey

        try:
            return cls(Sm2PrivateKey.from_pem(data, passphrase))
        except Sm2Unavailable as exc:
            raise SignerError(f"the bridge key {path} is an SM2 key, and this system's libcrypto cannot use SM2: {exc}") from exc
        except (InputError, ValueError) as exc:
            raise SignerError(f"cannot decrypt the bridge key {path}: wrong BRIDGECA_KEY_PASSPHRASE or damaged key file") from exc

    def to_pem(self, passphrase: str) -> bytes:
        return self.__key.to_pem(passphrase)

    def public_key(self):
        return self.__key.public_key()

    def public_key_spki(self) -> bytes:
        return self._spki

    def sign(self, data: bytes) -> bytes:
        from pki.sm2 import DEFAULT_DISTID

        return self.__key.sign(data, distid=DEFAULT_DISTID)


# --------------------------------------------------------------------------- PKCS#11

_CURVES = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}
_SM2_CURVE_PARAMS = bytes.fromhex("06082a811ccf5501822d")  # OID 1.2.156.10197.1.301
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

        if key_type == SM2:
            raise SignerError(
                "SM2 keys cannot be held on a PKCS#11 token here: PKCS#11 defines no SM2 mechanism and SoftHSM 2.6 "
                "offers none (use the software signer for an SM2 key)"
            )
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
            if bytes(public[Attribute.EC_PARAMS]) == _SM2_CURVE_PARAMS:
                session.close()
                raise SignerError(f"the key {key_label!r} on PKCS#11 token {token_label!r} is on the SM2 curve, and the token cannot make SM2 signatures")
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
