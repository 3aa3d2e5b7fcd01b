"""SM2 signatures with SM3 (GB/T 32918.2, GM/T 0009) through the system libcrypto.

pyca/cryptography parses SM2 certificates but cannot load SM2 keys or verify
SM2 signatures, and the pure-Python SM2 packages are slow or buggy. The system
OpenSSL 3 libcrypto does both at native speed, so this module binds the few
functions it needs with ctypes (no compiled extension to build or ship).

An SM2 signature covers SM3(Z || M), where Z hashes the signer's distinguishing
ID together with the curve and the public key. A verifier must therefore use
the ID the signer used; certificates and CRLs use the GM/T 0009 default
``1234567812345678`` unless agreed otherwise. OpenSSL 3.0 silently uses an
empty ID when none is set, so every operation here sets it explicitly.

Thread safety: the library handle is loaded once under a lock; each
verification creates and frees its own EVP_MD_CTX, and a loaded EVP_PKEY is
only read, so one ``Sm2PublicKey`` may be used by many threads at once. ctypes
releases the GIL for the duration of each libcrypto call.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import NamedTuple

from asn1crypto import core

from pki.errors import InputError

SM2_SIGNATURE_OID = "1.2.156.10197.1.501"  # sm2sign-with-sm3
SM2_CURVE_OID = "1.2.156.10197.1.301"  # sm2p256v1
DEFAULT_DISTID = b"1234567812345678"  # GM/T 0009 default user ID

EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"  # id-ecPublicKey (RFC 5480)

_OPENSSL_3_0 = 0x30000000
_LIBCRYPTO_NAMES = ("libcrypto.so.3", "libcrypto.so")


class Sm2Unavailable(RuntimeError):
    """The system libcrypto is missing, older than 3.0, or built without SM2/SM3."""


# --- ASN.1 -----------------------------------------------------------------
# asn1crypto's own PublicKeyInfo refuses algorithm OIDs it does not know (such
# as 1.2.156.10197.1.301 used as the key algorithm), so the SPKI is read with a
# structure that keeps the parameters and the key bits opaque.


class _AlgorithmIdentifier(core.Sequence):
    _fields = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _SubjectPublicKeyInfo(core.Sequence):
    _fields = [
        ("algorithm", _AlgorithmIdentifier),
        ("subject_public_key", core.BitString),
    ]


class _ParsedSpki(NamedTuple):
    algorithm: str  # dotted OID
    parameters_der: bytes  # b"" when absent
    subject_public_key: core.BitString


def _parse_spki(spki_der: bytes) -> _ParsedSpki:
    """Parse a SubjectPublicKeyInfo strictly (no trailing bytes); InputError otherwise."""
    if not isinstance(spki_der, (bytes, bytearray, memoryview)):
        raise InputError(f"SubjectPublicKeyInfo must be bytes, not {type(spki_der).__name__}")
    try:
        spki = _SubjectPublicKeyInfo.load(bytes(spki_der), strict=True)
        return _ParsedSpki(
            algorithm=spki["algorithm"]["algorithm"].dotted,
            parameters_der=spki["algorithm"]["parameters"].dump(),
            subject_public_key=spki["subject_public_key"],
        )
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, ...
        raise InputError(f"unparseable SubjectPublicKeyInfo: {exc}") from exc


_SM2_CURVE_OID_DER = core.ObjectIdentifier(SM2_CURVE_OID).dump()
_NULL_DER = core.Null().dump()


def _sm2_encoding(spki: _ParsedSpki) -> str | None:
    """'standard' for id-ecPublicKey + sm2p256v1, 'curve-as-algorithm' for the
    variant whose algorithm OID is sm2p256v1 itself, None for anything else."""
    if spki.algorithm == EC_PUBLIC_KEY_OID and spki.parameters_der == _SM2_CURVE_OID_DER:
        return "standard"
    # Certificates carrying the curve OID as the algorithm have been seen with
    # absent, NULL and curve-OID parameters; anything else is not understood.
    if spki.algorithm == SM2_CURVE_OID and spki.parameters_der in (b"", _NULL_DER, _SM2_CURVE_OID_DER):
        return "curve-as-algorithm"
    return None


def is_sm2_public_key(spki_der: bytes) -> bool:
    """True if the SubjectPublicKeyInfo holds an SM2 key (either encoding).

    Unparseable input is simply not an SM2 key: this is a predicate used to
    choose a verifier, and never raises.
    """
    try:
        return _sm2_encoding(_parse_spki(spki_der)) is not None
    except InputError:
        return False


def _standard_spki_der(spki_der: bytes) -> bytes:
    """The SPKI in the form OpenSSL loads: id-ecPublicKey with the sm2p256v1 curve.

    OpenSSL does not decode the variant whose algorithm OID is the curve OID,
    so that one is re-encoded around the same key bits.
    """
    spki = _parse_spki(spki_der)
    encoding = _sm2_encoding(spki)
    if encoding is None:
        raise InputError(f"not an SM2 public key: algorithm {spki.algorithm}")
    if encoding == "standard":
        return bytes(spki_der)
    standard = _SubjectPublicKeyInfo(
        {
            "algorithm": _AlgorithmIdentifier(
                {"algorithm": EC_PUBLIC_KEY_OID, "parameters": core.ObjectIdentifier(SM2_CURVE_OID)}
            ),
            "subject_public_key": spki.subject_public_key,
        }
    )
    return standard.dump(force=True)


# --- the library -------------------------------------------------------------

_void_p = ctypes.c_void_p
_char_p = ctypes.c_char_p
_int = ctypes.c_int
_size_t = ctypes.c_size_t

# name: (restype, argtypes). Pointers to OpenSSL objects stay opaque c_void_p;
# byte strings go in as c_char_p with an explicit length (they may hold NULs).
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "OpenSSL_version_num": (ctypes.c_ulong, []),
    "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, _char_p, _size_t]),
    "ERR_clear_error": (None, []),
    "EVP_MD_fetch": (_void_p, [_void_p, _char_p, _char_p]),
    "EVP_MD_free": (None, [_void_p]),
    "EVP_SIGNATURE_fetch": (_void_p, [_void_p, _char_p, _char_p]),
    "EVP_SIGNATURE_free": (None, [_void_p]),
    "d2i_PUBKEY": (_void_p, [_void_p, ctypes.POINTER(_void_p), ctypes.c_long]),
    "i2d_PUBKEY": (_int, [_void_p, ctypes.POINTER(_void_p)]),
    "EVP_PKEY_is_a": (_int, [_void_p, _char_p]),
    "EVP_PKEY_get_size": (_int, [_void_p]),
    "EVP_PKEY_free": (None, [_void_p]),
    "EVP_PKEY_CTX_new_from_name": (_void_p, [_void_p, _char_p, _char_p]),
    "EVP_PKEY_CTX_free": (None, [_void_p]),
    "EVP_PKEY_CTX_set1_id": (_int, [_void_p, _char_p, _int]),
    "EVP_PKEY_keygen_init": (_int, [_void_p]),
    "EVP_PKEY_generate": (_int, [_void_p, ctypes.POINTER(_void_p)]),
    "EVP_MD_CTX_new": (_void_p, []),
    "EVP_MD_CTX_free": (None, [_void_p]),
    "EVP_DigestVerifyInit_ex": (
        _int,
        [_void_p, ctypes.POINTER(_void_p), _char_p, _void_p, _char_p, _void_p, _void_p],
    ),
    "EVP_DigestVerify": (_int, [_void_p, _char_p, _size_t, _char_p, _size_t]),
    "EVP_DigestSignInit_ex": (
        _int,
        [_void_p, ctypes.POINTER(_void_p), _char_p, _void_p, _char_p, _void_p, _void_p],
    ),
    "EVP_DigestSign": (_int, [_void_p, _void_p, ctypes.POINTER(_size_t), _char_p, _size_t]),
    "EVP_aes_256_cbc": (_void_p, []),
    "EVP_PKEY2PKCS8": (_void_p, [_void_p]),
    "PKCS8_PRIV_KEY_INFO_free": (None, [_void_p]),
    "PKCS8_encrypt_ex": (
        _void_p,
        [_int, _void_p, _char_p, _int, _char_p, _int, _int, _void_p, _void_p, _char_p],
    ),
    "X509_SIG_free": (None, [_void_p]),
    "BIO_s_mem": (_void_p, []),
    "BIO_new": (_void_p, [_void_p]),
    "BIO_new_mem_buf": (_void_p, [_char_p, _int]),
    "BIO_ctrl": (ctypes.c_long, [_void_p, _int, ctypes.c_long, _void_p]),
    "BIO_free": (_int, [_void_p]),
    "PEM_write_bio_PKCS8": (_int, [_void_p, _void_p]),
    "PEM_read_bio_PrivateKey": (_void_p, [_void_p, _void_p, _void_p, _char_p]),
}

# Known answer, made with `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt
# distid:1234567812345678`. Checked once at load: it must verify under the
# default ID and fail under the empty one, which proves this libcrypto both
# does SM2 and honours the distinguishing ID set the way this module sets it.
_SELF_TEST_SPKI = bytes.fromhex(
    "3059301306072a8648ce3d020106082a811ccf5501822d034200048b9602041d5976e035"
    "ab0065b10bbc899bdfd24fff119d2754603d5bdb4d384b908fba6d692516721aa96e6c11"
    "a89b65450eb4e85cca9c7e92483f44d295c30c"
)
_SELF_TEST_MESSAGE = b"bridgeca SM2 known-answer test"
_SELF_TEST_SIGNATURE = bytes.fromhex(
    "304502201abd4727a89b7581fa4c6eb793d007915103e188d83825706b3c1914427b9497"
    "022100cb94b42235a507b192472e4e1d79770a36ece9dd6072a4821bf2c98c22114a29"
)

# The one piece of module state: the loaded, checked library, or why loading
# failed (so a missing library is not searched for again on every call).
_library: ctypes.CDLL | None = None
_library_failure: str | None = None
_library_lock = threading.Lock()


def openssl_error(what: str, lib: ctypes.CDLL) -> str:
    """``what`` followed by this thread's OpenSSL error queue, which is emptied."""
    reasons = []
    buffer = ctypes.create_string_buffer(256)
    while code := lib.ERR_get_error():
        lib.ERR_error_string_n(code, buffer, len(buffer))
        reasons.append(buffer.value.decode("ascii", "replace"))
    return f"{what}: {'; '.join(reasons)}" if reasons else what


def _open_libcrypto() -> ctypes.CDLL:
    candidates = list(_LIBCRYPTO_NAMES)
    found = ctypes.util.find_library("crypto")
    if found and found not in candidates:
        candidates.append(found)
    errors = []
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        version = lib.OpenSSL_version_num
        version.restype, version.argtypes = ctypes.c_ulong, []
        if version() >= _OPENSSL_3_0:
            return lib
        errors.append(f"{name} is OpenSSL {version():#x}, older than 3.0")
    raise Sm2Unavailable("no OpenSSL 3 libcrypto found: " + "; ".join(errors))


def _bind(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            function = getattr(lib, name)
        except AttributeError as exc:
            raise Sm2Unavailable(f"libcrypto lacks {name}") from exc
        function.restype = restype
        function.argtypes = argtypes


def _check_sm2_support(lib: ctypes.CDLL) -> None:
    # Some distributions build OpenSSL without SM2/SM3 (or disable them in
    # the default provider); fetching them is the reliable probe.
    sm3 = lib.EVP_MD_fetch(None, b"SM3", None)
    sm2 = lib.EVP_SIGNATURE_fetch(None, b"SM2", None)
    lib.EVP_MD_free(sm3)
    lib.EVP_SIGNATURE_free(sm2)
    if not sm3 or not sm2:
        raise Sm2Unavailable(openssl_error("libcrypto has no SM2 signature or SM3 digest", lib))
    pkey = _load_public_key(lib, _SELF_TEST_SPKI)
    try:
        right_id = _verify_with_pkey(lib, pkey, _SELF_TEST_MESSAGE, _SELF_TEST_SIGNATURE, DEFAULT_DISTID)
        empty_id = _verify_with_pkey(lib, pkey, _SELF_TEST_MESSAGE, _SELF_TEST_SIGNATURE, b"")
    finally:
        lib.EVP_PKEY_free(pkey)
    if not right_id or empty_id:
        raise Sm2Unavailable("libcrypto failed the SM2 known-answer test (distinguishing ID not honoured)")


def libcrypto() -> ctypes.CDLL:
    """The system libcrypto with this module's prototypes bound, loaded once.

    Raises Sm2Unavailable if it cannot be loaded or does not do SM2 correctly.
    """
    global _library, _library_failure
    if _library is not None:
        return _library
    with _library_lock:
        if _library is None and _library_failure is None:
            try:
                lib = _open_libcrypto()
                _bind(lib)
                _check_sm2_support(lib)
                lib.ERR_clear_error()
                _library = lib
            except Sm2Unavailable as exc:
                _library_failure = str(exc)
            except Exception as exc:  # any surprise while probing means "not usable"
                _library_failure = f"libcrypto could not be set up for SM2: {exc!r}"
        if _library is None:
            raise Sm2Unavailable(_library_failure)
        return _library


def sm2_available() -> bool:
    """True if SM2 signatures can be verified here. Never raises."""
    try:
        libcrypto()
    except Exception:
        return False
    return True


# --- keys and verification ---------------------------------------------------


def _load_public_key(lib: ctypes.CDLL, spki_der: bytes) -> int:
    """An owned EVP_PKEY* for an SM2 SubjectPublicKeyInfo; the caller frees it."""
    der = _standard_spki_der(spki_der)
    buffer = (ctypes.c_ubyte * len(der)).from_buffer_copy(der)
    cursor = _void_p(ctypes.addressof(buffer))
    pkey = lib.d2i_PUBKEY(None, ctypes.byref(cursor), len(der))
    if not pkey:
        raise InputError(openssl_error("unloadable SM2 public key", lib))
    if (cursor.value or 0) - ctypes.addressof(buffer) != len(der):
        lib.EVP_PKEY_free(pkey)
        lib.ERR_clear_error()
        raise InputError("trailing bytes after the SM2 SubjectPublicKeyInfo")
    # With an EC (not SM2) key, SM3 digest-verify would silently run ECDSA.
    if lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
        lib.EVP_PKEY_free(pkey)
        lib.ERR_clear_error()
        raise InputError("libcrypto did not load the key as an SM2 key")
    return pkey


def _as_bytes(value: bytes, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _set_distid(lib: ctypes.CDLL, pkey_ctx: _void_p, distid: bytes) -> None:
    # OpenSSL 3.0 refuses the "distid" parameter at EVP_Digest*Init_ex (its SM2
    # provider accepts it only once the digest operation is set up), so it is
    # set between init and the first update, which is when Z is computed.
    if lib.EVP_PKEY_CTX_set1_id(pkey_ctx, distid, len(distid)) != 1:
        raise RuntimeError(openssl_error("cannot set the SM2 distinguishing ID", lib))


def _verify_with_pkey(lib: ctypes.CDLL, pkey: int, message: bytes, signature_der: bytes, distid: bytes) -> bool:
    message = _as_bytes(message, "message")
    signature_der = _as_bytes(signature_der, "signature")
    distid = _as_bytes(distid, "distid")
    md_ctx = lib.EVP_MD_CTX_new()
    if not md_ctx:
        raise MemoryError("EVP_MD_CTX_new failed")
    try:
        # The EVP_PKEY_CTX returned here belongs to md_ctx and is freed with it.
        pkey_ctx = _void_p()
        if lib.EVP_DigestVerifyInit_ex(md_ctx, ctypes.byref(pkey_ctx), b"SM3", None, None, pkey, None) != 1:
            raise RuntimeError(openssl_error("SM2 verification could not start", lib))
        _set_distid(lib, pkey_ctx, distid)
        # 1 is valid; 0 is a wrong signature, negative a malformed one: both False.
        return lib.EVP_DigestVerify(md_ctx, signature_der, len(signature_der), message, len(message)) == 1
    finally:
        lib.EVP_MD_CTX_free(md_ctx)
        # A rejected signature leaves entries on this thread's error queue.
        lib.ERR_clear_error()


class Sm2PublicKey:
    """An SM2 public key loaded once into libcrypto, for many verifications.

    Safe to share between threads. ``spki_der`` is the key as given.
    """

    __slots__ = ("_lib", "_pkey", "spki_der")

    def __init__(self, spki_der: bytes) -> None:
        self._pkey = None
        self._lib = libcrypto()
        self.spki_der = _as_bytes(spki_der, "SubjectPublicKeyInfo")
        self._pkey = _load_public_key(self._lib, self.spki_der)

    def verify(self, message: bytes, signature_der: bytes, distid: bytes = DEFAULT_DISTID) -> bool:
        """True iff ``signature_der`` is a valid SM2-with-SM3 signature of ``message``."""
        pkey = self._pkey
        if pkey is None:  # pragma: no cover - set by __init__ or it raised
            raise InputError("SM2 public key not loaded")
        return _verify_with_pkey(self._lib, pkey, message, signature_der, distid)

    def __del__(self) -> None:
        pkey, self._pkey = getattr(self, "_pkey", None), None
        if pkey:
            self._lib.EVP_PKEY_free(pkey)

    def __repr__(self) -> str:
        return f"Sm2PublicKey({len(self.spki_der)}-byte SPKI)"


def verify_sm2_sm3(spki_der: bytes, message: bytes, signature_der: bytes, distid: bytes = DEFAULT_DISTID) -> bool:
    """True iff ``signature_der`` (DER ECDSA-Sig-Value) is a valid SM2-with-SM3
    signature of ``message`` under the key ``spki_der`` and ID ``distid``.

    False for a wrong or malformed signature. InputError if the key cannot be
    parsed or is not SM2; Sm2Unavailable if this machine cannot do SM2.
    """
    lib = libcrypto()
    pkey = _load_public_key(lib, _as_bytes(spki_der, "SubjectPublicKeyInfo"))
    try:
        return _verify_with_pkey(lib, pkey, message, signature_der, distid)
    finally:
        lib.EVP_PKEY_free(pkey)
