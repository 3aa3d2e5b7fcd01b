"""Signature algorithms behind one registry.

The validator never names an algorithm: it asks the registry to check that
``signature`` over ``message`` verifies under a SubjectPublicKeyInfo (plus,
for DSA keys that inherit them, the issuer's domain parameters, RFC 5280
6.1.4 (e)/(f)). New algorithms (SM2) register a ``SignatureScheme``; nothing
else changes. Loaded keys are cached per registry, keyed by the SPKI bytes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from . import der as derlib
from .errors import InputError

RSA_KEY = "1.2.840.113549.1.1.1"
EC_KEY = "1.2.840.10045.2.1"
DSA_KEY = "1.2.840.10040.4.1"
ED25519_KEY = "1.3.101.112"
ED448_KEY = "1.3.101.113"
RSA_PSS = "1.2.840.113549.1.1.10"

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class UnsupportedSignatureAlgorithm(Exception):
    """The registry has no scheme for this algorithm (or key type)."""


# verify(public_key_object, signature, message, algorithm_parameters_der) -> bool
Verify = Callable[[object, bytes, bytes, "bytes | None"], bool]


@dataclass(frozen=True)
class SignatureScheme:
    name: str
    key_types: tuple[type, ...]
    verify: Verify


# The padding, hash and algorithm objects are immutable: built once per
# scheme rather than per signature (they are on the hot path).
def _rsa_pkcs1(hash_cls) -> Verify:
    pkcs1, digest = padding.PKCS1v15(), hash_cls()

    def verify(key, signature, message, _params):
        try:
            key.verify(signature, message, pkcs1, digest)
            return True
        except InvalidSignature:
            return False

    return verify


def _ecdsa(hash_cls) -> Verify:
    algorithm = ec.ECDSA(hash_cls())

    def verify(key, signature, message, _params):
        try:
            key.verify(signature, message, algorithm)
            return True
        except InvalidSignature:
            return False

    return verify


def _dsa(hash_cls) -> Verify:
    def verify(key, signature, message, _params):
        try:
            key.verify(signature, message, hash_cls())
            return True
        except InvalidSignature:
            return False

    return verify


def _eddsa(key, signature, message, _params) -> bool:
    try:
        key.verify(signature, message)
        return True
    except InvalidSignature:
        return False


def _rsa_pss(key, signature, message, params) -> bool:
    if params is None:
        raise UnsupportedSignatureAlgorithm("RSASSA-PSS without parameters")
    try:
        p = asn1_algos.RSASSAPSSParams.load(params)
        hash_name = p["hash_algorithm"]["algorithm"].native
        mgf = p["mask_gen_algorithm"]
        mgf_hash = mgf["parameters"]["algorithm"].native
        salt = p["salt_length"].native
        if mgf["algorithm"].native != "mgf1" or p["trailer_field"].native != "trailer_field_bc":
            raise UnsupportedSignatureAlgorithm("RSASSA-PSS with an unknown mask or trailer")
    except UnsupportedSignatureAlgorithm:
        raise
    except Exception as exc:
        raise UnsupportedSignatureAlgorithm(f"malformed RSASSA-PSS parameters: {exc}") from None
    if hash_name not in _HASHES or mgf_hash not in _HASHES:
        raise UnsupportedSignatureAlgorithm(f"RSASSA-PSS with {hash_name}")
    try:
        key.verify(
            signature,
            message,
            padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=salt),
            _HASHES[hash_name](),
        )
        return True
    except InvalidSignature:
        return False


_RSA = (rsa.RSAPublicKey,)
_EC = (ec.EllipticCurvePublicKey,)
_DSA = (dsa.DSAPublicKey,)

DEFAULT_SCHEMES: dict[str, SignatureScheme] = {
    "1.2.840.113549.1.1.5": SignatureScheme("sha1WithRSAEncryption", _RSA, _rsa_pkcs1(hashes.SHA1)),
    "1.2.840.113549.1.1.14": SignatureScheme("sha224WithRSAEncryption", _RSA, _rsa_pkcs1(hashes.SHA224)),
    "1.2.840.113549.1.1.11": SignatureScheme("sha256WithRSAEncryption", _RSA, _rsa_pkcs1(hashes.SHA256)),
    "1.2.840.113549.1.1.12": SignatureScheme("sha384WithRSAEncryption", _RSA, _rsa_pkcs1(hashes.SHA384)),
    "1.2.840.113549.1.1.13": SignatureScheme("sha512WithRSAEncryption", _RSA, _rsa_pkcs1(hashes.SHA512)),
    RSA_PSS: SignatureScheme("RSASSA-PSS", _RSA, _rsa_pss),
    "1.2.840.10045.4.1": SignatureScheme("ecdsa-with-SHA1", _EC, _ecdsa(hashes.SHA1)),
    "1.2.840.10045.4.3.1": SignatureScheme("ecdsa-with-SHA224", _EC, _ecdsa(hashes.SHA224)),
    "1.2.840.10045.4.3.2": SignatureScheme("ecdsa-with-SHA256", _EC, _ecdsa(hashes.SHA256)),
    "1.2.840.10045.4.3.3": SignatureScheme("ecdsa-with-SHA384", _EC, _ecdsa(hashes.SHA384)),
    "1.2.840.10045.4.3.4": SignatureScheme("ecdsa-with-SHA512", _EC, _ecdsa(hashes.SHA512)),
    "1.2.840.10040.4.3": SignatureScheme("dsa-with-sha1", _DSA, _dsa(hashes.SHA1)),
    "2.16.840.1.101.3.4.3.1": SignatureScheme("dsa-with-sha224", _DSA, _dsa(hashes.SHA224)),
    "2.16.840.1.101.3.4.3.2": SignatureScheme("dsa-with-sha256", _DSA, _dsa(hashes.SHA256)),
    ED25519_KEY: SignatureScheme("Ed25519", (ed25519.Ed25519PublicKey,), _eddsa),
    ED448_KEY: SignatureScheme("Ed448", (ed448.Ed448PublicKey,), _eddsa),
}

# Key loaders for key types cryptography cannot load from SPKI bytes alone.
KeyLoader = Callable[[bytes, "bytes | None"], object]


def _load_dsa_with_inherited(spki: bytes, inherited: bytes | None):
    """RFC 5280 6.1.4 (e)/(f): a DSA key without parameters takes the
    issuer's. ``inherited`` is the issuer's parameters DER."""
    if inherited is None:
        raise InputError("DSA key without parameters and none to inherit")
    info = asn1_keys.PublicKeyInfo.load(spki)
    y = info["public_key"].parsed.native
    params = asn1_keys.DSAParams.load(inherited)
    numbers = dsa.DSAPublicNumbers(
        y, dsa.DSAParameterNumbers(params["p"].native, params["q"].native, params["g"].native)
    )
    return numbers.public_key()


class AlgorithmRegistry:
    """Signature schemes by algorithm OID, and a bounded cache of loaded keys.

    Thread-safe: the schemes are fixed after construction; the key cache is
    guarded by a lock.
    """

    def __init__(self, schemes: dict[str, SignatureScheme] | None = None, key_cache_size: int = 4096) -> None:
        self._schemes = dict(DEFAULT_SCHEMES if schemes is None else schemes)
        self._key_loaders: dict[str, KeyLoader] = {}
        # (recognise(spki) -> bool, load): for keys that share an algorithm
        # OID with others (SM2 keys are id-ecPublicKey on the SM2 curve).
        self._special_keys: list[tuple[Callable[[bytes], bool], KeyLoader]] = []
        self._keys: OrderedDict[tuple[bytes, bytes | None], object] = OrderedDict()
        self._key_cache_size = key_cache_size
        self._lock = threading.Lock()
        self._algorithms: dict[bytes, tuple[str, bytes | None]] = {}
        # (key, parameters, algorithm) already known to fit together: skips the
        # key cache's lock and the type check on the hot path.
        self._matched: dict[tuple, object] = {}

    def register(self, oid: str, scheme: SignatureScheme) -> None:
        self._schemes[oid] = scheme

    def register_key_loader(self, key_oid: str, loader: KeyLoader) -> None:
        """For key types cryptography's SPKI loader does not know (SM2)."""
        self._key_loaders[key_oid] = loader

    def register_special_key(self, recognise: Callable[[bytes], bool], loader: KeyLoader) -> None:
        self._special_keys.append((recognise, loader))

    def supports(self, signature_algorithm_der: bytes) -> bool:
        try:
            oid, _ = derlib.algorithm_identifier(signature_algorithm_der)
        except InputError:
            return False
        return oid in self._schemes

    def scheme_name(self, signature_algorithm_der: bytes) -> str:
        oid, _ = derlib.algorithm_identifier(signature_algorithm_der)
        scheme = self._schemes.get(oid)
        return scheme.name if scheme else oid

    def public_key(self, spki: bytes, inherited_params: bytes | None = None):
        """Load (and cache) the key of an SPKI. Raises UnsupportedSignatureAlgorithm."""
        cache_key = (spki, inherited_params)
        with self._lock:
            key = self._keys.get(cache_key)
            if key is not None:
                self._keys.move_to_end(cache_key)
                return key
        key = self._load_key(spki, inherited_params)
        with self._lock:
            self._keys[cache_key] = key
            if len(self._keys) > self._key_cache_size:
                self._keys.popitem(last=False)
        return key

    def _load_key(self, spki: bytes, inherited_params: bytes | None):
        key_oid, params, _ = derlib.spki_parts(spki)
        for recognise, special in self._special_keys:
            if recognise(spki):
                return special(spki, inherited_params)
        loader = self._key_loaders.get(key_oid)
        if loader is not None:
            return loader(spki, inherited_params)
        if key_oid == DSA_KEY and params is None:
            return _load_dsa_with_inherited(spki, inherited_params)
        try:
            return serialization.load_der_public_key(spki)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise UnsupportedSignatureAlgorithm(f"cannot load public key ({key_oid}): {exc}") from None

    def verify(
        self,
        spki: bytes,
        signature_algorithm_der: bytes,
        signature: bytes,
        message: bytes,
        inherited_params: bytes | None = None,
    ) -> bool:
        """True iff the signature verifies. UnsupportedSignatureAlgorithm for
        algorithms or keys the registry does not know, or a key of the wrong
        type for the algorithm."""
        parsed = self._algorithms.get(signature_algorithm_der)
        if parsed is None:
            parsed = derlib.algorithm_identifier(signature_algorithm_der)
            if len(self._algorithms) < 1024:  # a handful in practice; bounded against junk
                self._algorithms[signature_algorithm_der] = parsed
        oid, params = parsed
        scheme = self._schemes.get(oid)
        if scheme is None:
            raise UnsupportedSignatureAlgorithm(f"unsupported signature algorithm {oid}")
        match_key = (spki, inherited_params, oid)
        key = self._matched.get(match_key)
        if key is None:
            key = self.public_key(spki, inherited_params)
            if not isinstance(key, scheme.key_types):
                return False  # a key of another type cannot have made this signature
            if len(self._matched) >= self._key_cache_size:
                self._matched.clear()
            self._matched[match_key] = key
        if not signature:
            return False
        try:
            return scheme.verify(key, signature, message, params)
        except (ValueError, TypeError):
            return False


def dsa_parameters(spki: bytes) -> bytes | None:
    """The DSA domain parameters carried in an SPKI, or None."""
    key_oid, params, _ = derlib.spki_parts(spki)
    if key_oid == DSA_KEY and params is not None and params != b"\x05\x00":
        return params
    return None


def with_national_algorithms(registry: AlgorithmRegistry) -> AlgorithmRegistry:
    """Register SM2-with-SM3 (GM/T 0003, signer ID 1234567812345678) when the
    system libcrypto provides it. Without it SM2 objects fail with
    ``unsupported_algorithm``: the scheme is simply absent."""
    from . import sm2

    if not sm2.sm2_available():
        return registry
    # A key verifying a second time gets its multiples precomputed (~80 KiB,
    # SM2 at ~2x P-256 instead of ~5x); this bounds how many of the registry's
    # cached keys hold one.
    tables = sm2.PointTables()

    def load(spki: bytes, _inherited: bytes | None):
        return sm2.Sm2PublicKey(spki, tables=tables)

    def verify(key, signature, message, _params) -> bool:
        return key.verify(message, signature)

    registry.register_special_key(sm2.is_sm2_public_key, load)
    registry.register(sm2.SM2_SIGNATURE_OID, SignatureScheme("SM2-with-SM3", (sm2.Sm2PublicKey,), verify))
    return registry
