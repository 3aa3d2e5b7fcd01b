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

Two ways through libcrypto verify (issue 17 measured both, and the GmSSL and
Tongsuo bindings on PyPI, in benchmarks/bench_sm2_backends.py):
- "evp": the SM2 signature provider (EVP_DigestVerify). OpenSSL 3.0 has no
  dedicated SM2 field code, so its generic curve arithmetic makes this ~5x an
  ECDSA P-256 verification; every key and build that can do SM2 has it.
- "ec": the same checks (GB/T 32918.2 section 7.1, B1-B7) written out here on
  libcrypto's EC arithmetic, which lets the two fixed points be precomputed:
  the generator's multiples once per process, and a key's multiples once it is
  used a second time (a CA's key verifies many leaves). s*G and t*P then take
  about 8 doublings and 64 additions each instead of ~256 doublings: ~1.9x
  P-256 (a key's first verification costs what "evp" does). Used when
  libcrypto still exports the EC_POINT/EC_GROUP calls (deprecated in 3.0) and
  they pass the known answers.
The signature's DER is checked as strictly as libcrypto's own verifier does
(it re-encodes and compares), so both say yes and no to the same inputs;
tests/pki/test_sm2_backends.py compares them on the same vectors.

Thread safety: the library handle and the curve are set up once under a lock;
each verification creates and frees its own contexts, points and numbers;
loaded keys, points and tables are only read (a key's table is set or dropped
by one attribute assignment, and a verification holding it keeps it alive), so
one ``Sm2PublicKey`` may be used by many threads at once. ctypes releases the GIL for the duration of each
libcrypto call.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections import OrderedDict
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
    # libcrypto loads the point at infinity (one zero byte) as a key, under
    # which s*G + t*P is s*G and anyone could sign.
    if spki.subject_public_key.contents[1:] == b"\x00":
        raise InputError("the SM2 public key is the point at infinity")
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

# The "ec" backend's calls, bound separately: a libcrypto built without the
# deprecated EC API lacks them and still verifies through "evp".
_EC_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "OBJ_sn2nid": (_int, [_char_p]),
    "EVP_Digest": (_int, [_char_p, _size_t, _char_p, _void_p, _void_p, _void_p]),
    "EC_GROUP_new_by_curve_name": (_void_p, [_int]),
    "EC_GROUP_dup": (_void_p, [_void_p]),
    "EC_GROUP_free": (None, [_void_p]),
    "EC_GROUP_get0_order": (_void_p, [_void_p]),
    "EC_GROUP_get0_cofactor": (_void_p, [_void_p]),
    "EC_GROUP_set_generator": (_int, [_void_p, _void_p, _void_p, _void_p]),
    "EC_GROUP_precompute_mult": (_int, [_void_p, _void_p]),
    "EC_GROUP_have_precompute_mult": (_int, [_void_p]),
    "EC_POINT_new": (_void_p, [_void_p]),
    "EC_POINT_free": (None, [_void_p]),
    "EC_POINT_oct2point": (_int, [_void_p, _void_p, _char_p, _size_t, _void_p]),
    "EC_POINT_point2oct": (_size_t, [_void_p, _void_p, _int, _char_p, _size_t, _void_p]),
    "EC_POINT_is_at_infinity": (_int, [_void_p, _void_p]),
    "EC_POINT_mul": (_int, [_void_p, _void_p, _void_p, _void_p, _void_p, _void_p]),
    "EC_POINTs_mul": (
        _int,
        [_void_p, _void_p, _void_p, _size_t, ctypes.POINTER(_void_p), ctypes.POINTER(_void_p), _void_p],
    ),
    "EC_POINT_add": (_int, [_void_p, _void_p, _void_p, _void_p, _void_p]),
    "EC_POINT_get_Jprojective_coordinates_GFp": (_int, [_void_p, _void_p, _void_p, _void_p, _void_p, _void_p]),
    "BN_new": (_void_p, []),
    "BN_free": (None, [_void_p]),
    "BN_bin2bn": (_void_p, [_char_p, _int, _void_p]),
    "BN_bn2binpad": (_int, [_void_p, _char_p, _int]),
    "BN_CTX_new": (_void_p, []),
    "BN_CTX_free": (None, [_void_p]),
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


# --- the "ec" backend: SM2's checks on libcrypto's EC arithmetic ----------------

# GB/T 32918.5 (sm2p256v1).
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
# Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA); all but the ID and the key are fixed.
_CURVE_Z_PART = b"".join(v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY))
# libcrypto refuses IDs of 8191 bytes and more (ENTL is their length in bits, in 16 bits).
_MAX_DISTID = 8190
_UNCOMPRESSED = 4  # POINT_CONVERSION_UNCOMPRESSED


def _signature_values(signature_der: bytes) -> tuple[int, int] | None:
    """(r, s) of a DER SM2 signature, or None where libcrypto's verifier says no.

    It decodes, re-encodes and compares, so only canonical DER passes: one
    SEQUENCE of two minimal non-negative INTEGERs, short-form lengths (a long
    form is either not DER or an integer far above n), nothing after it.
    """
    length = len(signature_der)
    if length < 8 or signature_der[0] != 0x30 or signature_der[1] != length - 2 or length - 2 > 0x7F:
        return None
    values = []
    offset = 2
    for _ in range(2):
        if offset + 2 > length or signature_der[offset] != 0x02:
            return None
        size = signature_der[offset + 1]
        start, offset = offset + 2, offset + 2 + size
        if size == 0 or size > 0x7F or offset > length:
            return None
        first = signature_der[start]
        if first & 0x80 or (first == 0 and size > 1 and not signature_der[start + 1] & 0x80):
            return None  # negative, or not minimal
        values.append(int.from_bytes(signature_der[start:offset], "big"))
    if offset != length:
        return None
    return values[0], values[1]


class _PointTable:
    """The curve with one public key as its generator and that key's multiples
    precomputed (about 80 KiB, built in about one to three verifications' time)."""

    __slots__ = ("_lib", "group")

    def __init__(self, curve: _Curve, point: int) -> None:
        lib = self._lib = curve.lib
        self.group = lib.EC_GROUP_dup(curve.group)
        if not self.group:
            raise MemoryError("EC_GROUP_dup failed")
        order, cofactor = lib.EC_GROUP_get0_order(curve.group), lib.EC_GROUP_get0_cofactor(curve.group)
        if lib.EC_GROUP_set_generator(self.group, point, order, cofactor) != 1 or (
            lib.EC_GROUP_precompute_mult(self.group, None) != 1
        ):
            lib.ERR_clear_error()
            raise MemoryError("the key's table could not be built")

    def __del__(self) -> None:
        group, self.group = getattr(self, "group", None), None
        if group:
            self._lib.EC_GROUP_free(group)


class _Curve:
    """sm2p256v1 in libcrypto's EC arithmetic, with the generator's multiples
    precomputed. Set up once per process, then only read."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        nid = lib.OBJ_sn2nid(b"SM2")
        self.group = lib.EC_GROUP_new_by_curve_name(nid)
        if not self.group or lib.EC_GROUP_precompute_mult(self.group, None) != 1:
            raise Sm2Unavailable(openssl_error("libcrypto cannot set up the SM2 curve", lib))
        self.sm3 = lib.EVP_MD_fetch(None, b"SM3", None)
        if not self.sm3:
            raise Sm2Unavailable(openssl_error("libcrypto has no SM3 digest", lib))
        self.zero = lib.BN_new()  # the scalar of a point a multiplication only names
        if not self.zero:
            raise MemoryError("BN_new failed")
        self.zeros = (_void_p * 1)(self.zero)
        infinity = lib.EC_POINT_new(self.group)  # a new point is the point at infinity
        if not infinity or not lib.EC_POINT_is_at_infinity(self.group, infinity):
            raise Sm2Unavailable("libcrypto's new EC point is not the point at infinity")
        self.infinities = (_void_p * 1)(infinity)
        self._scratch = threading.local()

    def digest(self, data: bytes) -> bytes:
        out = ctypes.create_string_buffer(32)
        if self.lib.EVP_Digest(data, len(data), out, None, self.sm3, None) != 1:
            raise RuntimeError(openssl_error("SM3 failed", self.lib))
        return out.raw

    def z_value(self, distid: bytes, xy: bytes) -> bytes:
        return self.digest((8 * len(distid)).to_bytes(2, "big") + distid + _CURVE_Z_PART + xy)

    def decode_point(self, encoded: bytes) -> tuple[int, bytes]:
        """An owned EC_POINT* for an encoded public point, and its x || y."""
        lib = self.lib
        point = lib.EC_POINT_new(self.group)
        if not point:
            raise MemoryError("EC_POINT_new failed")
        xy = ctypes.create_string_buffer(65)
        if (
            lib.EC_POINT_oct2point(self.group, point, encoded, len(encoded), None) != 1
            or lib.EC_POINT_is_at_infinity(self.group, point)
            or lib.EC_POINT_point2oct(self.group, point, _UNCOMPRESSED, xy, 65, None) != 65
        ):
            lib.EC_POINT_free(point)
            raise InputError(openssl_error("unusable SM2 public point", lib))
        return point, xy.raw[1:]

    def sum_jacobian(self, s: int, t: int, point: int, points: ctypes.Array, table: _PointTable | None
                     ) -> tuple[int, int] | None:
        """(X, Z) of s*G + t*P in Jacobian coordinates (x = X / Z^2), with P the
        key's point (also in ``points``); None at infinity.

        A multiplication by one scalar alone takes libcrypto's constant-time
        ladder, which ignores precomputed tables, so each is asked with a second
        point, the point at infinity times zero, which takes the table and costs
        nothing. Jacobian coordinates spare the field inversion of affine ones.
        """
        lib, group = self.lib, self.group
        scratch = getattr(self._scratch, "objects", None)
        if scratch is None:
            scratch = self._scratch.objects = _Scratch(lib, group)
        ctx, s_bn, t_bn, total, t_times_p, x, z, out = (
            scratch.ctx, scratch.s, scratch.t, scratch.total, scratch.t_times_p, scratch.x, scratch.z, scratch.out)
        lib.BN_bin2bn(s.to_bytes(32, "big"), 32, s_bn)
        lib.BN_bin2bn(t.to_bytes(32, "big"), 32, t_bn)
        if table is None:
            done = lib.EC_POINT_mul(group, total, s_bn, point, t_bn, ctx) == 1
        else:
            done = (
                lib.EC_POINTs_mul(group, total, s_bn, 1, self.infinities, self.zeros, ctx) == 1
                and lib.EC_POINTs_mul(table.group, t_times_p, t_bn, 1, self.infinities, self.zeros, ctx) == 1
                and lib.EC_POINT_add(group, total, total, t_times_p, ctx) == 1
            )
        # y is not needed (B7 reads X and Z): libcrypto skips a null one.
        if not done or lib.EC_POINT_get_Jprojective_coordinates_GFp(group, total, x, None, z, ctx) != 1:
            lib.ERR_clear_error()
            return None
        lib.BN_bn2binpad(x, out, 32)
        x_value = int.from_bytes(out.raw, "big")
        lib.BN_bn2binpad(z, out, 32)
        z_value = int.from_bytes(out.raw, "big")
        return None if z_value == 0 else (x_value, z_value)


class _Scratch:
    """One thread's working objects for ``_Curve.sum_jacobian``: a BN_CTX,
    the scalars, the points and the coordinates, allocated once per thread
    (a BN_CTX must not be shared between threads) instead of the fourteen
    allocations and frees per verification they cost before (about 7 us).
    Every value in them is overwritten before it is read."""

    __slots__ = ("_lib", "ctx", "s", "t", "total", "t_times_p", "x", "z", "out")

    def __init__(self, lib: ctypes.CDLL, group: int) -> None:
        self._lib = lib
        self.ctx = lib.BN_CTX_new()
        self.s, self.t, self.x, self.z = lib.BN_new(), lib.BN_new(), lib.BN_new(), lib.BN_new()
        self.total, self.t_times_p = lib.EC_POINT_new(group), lib.EC_POINT_new(group)
        self.out = ctypes.create_string_buffer(32)
        if not (self.ctx and self.s and self.t and self.x and self.z and self.total and self.t_times_p):
            self._free()
            raise MemoryError("libcrypto could not allocate")

    def _free(self) -> None:
        lib = self._lib
        for number in (self.s, self.t, self.x, self.z):
            lib.BN_free(number)  # BN_free and the two below accept NULL
        lib.EC_POINT_free(self.total)
        lib.EC_POINT_free(self.t_times_p)
        lib.BN_CTX_free(self.ctx)
        self.s = self.t = self.x = self.z = self.total = self.t_times_p = self.ctx = None

    def __del__(self) -> None:
        if getattr(self, "ctx", None) is not None:
            self._free()


_curve: _Curve | None = None
_curve_failure: str | None = None


def _check_curve(curve: _Curve) -> None:
    # The known answer through both ways of computing s*G + t*P.
    point, xy = curve.decode_point(_SELF_TEST_SPKI[-65:])
    try:
        table = _PointTable(curve, point)
        points = (_void_p * 1)(point)
        for use in (None, table):
            for distid, expected in ((DEFAULT_DISTID, True), (b"", False)):
                answer = _verify_on_curve(curve, point, points, xy, curve.z_value(distid, xy), use,
                                          _SELF_TEST_MESSAGE, _SELF_TEST_SIGNATURE)
                if answer is not expected:
                    raise Sm2Unavailable("libcrypto's EC arithmetic failed the SM2 known-answer test")
    finally:
        curve.lib.EC_POINT_free(point)


def ec_curve() -> _Curve | None:
    """The "ec" backend's curve, or None where libcrypto cannot give it (then
    keys verify through "evp"). Raises Sm2Unavailable as ``libcrypto()`` does."""
    global _curve, _curve_failure
    lib = libcrypto()
    if _curve is not None or _curve_failure is not None:
        return _curve
    with _library_lock:
        if _curve is None and _curve_failure is None:
            try:
                _bind_ec(lib)
                curve = _Curve(lib)
                _check_curve(curve)
                lib.ERR_clear_error()
                _curve = curve
            except Exception as exc:  # any failure here leaves "evp", which works
                lib.ERR_clear_error()
                _curve_failure = f"libcrypto's EC arithmetic is not usable for SM2: {exc!r}"
        return _curve


def _bind_ec(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _EC_PROTOTYPES.items():
        try:
            function = getattr(lib, name)
        except AttributeError as exc:
            raise Sm2Unavailable(f"libcrypto lacks {name}") from exc
        function.restype = restype
        function.argtypes = argtypes


def _verify_on_curve(
    curve: _Curve,
    point: int,
    points: ctypes.Array,
    xy: bytes,
    z: bytes,
    table: _PointTable | None,
    message: bytes,
    signature_der: bytes,
) -> bool:
    """GB/T 32918.2 section 7.1, B1-B7, with Z already computed."""
    values = _signature_values(signature_der)
    if values is None:
        return False
    r, s = values
    if not (0 < r < _N and 0 < s < _N):  # B1, B2
        return False
    t = (r + s) % _N  # B5
    if t == 0:
        return False
    e = int.from_bytes(curve.digest(z + message), "big")  # B3, B4
    jacobian = curve.sum_jacobian(s, t, point, points, table)  # B6
    return jacobian is not None and _r_matches(r, e, *jacobian)  # B7


def _r_matches(r: int, e: int, big_x: int, big_z: int) -> bool:
    """(e + x1) mod n == r for the point (X, Z) in Jacobian coordinates, without
    computing x1 = X / Z^2: x1 < p < 2n, so it is (r - e) mod n or that plus n,
    and X == x1 * Z^2 (mod p) tells whether either is."""
    big_x, z2 = big_x % _P, big_z * big_z % _P
    x1 = (r - e) % _N
    return big_x == x1 * z2 % _P or (x1 + _N < _P and big_x == (x1 + _N) * z2 % _P)


class PointTables:
    """Which SM2 keys hold a precomputed table: at most ``limit`` at a time, the
    least recently used giving its table up, so a cache of thousands of keys
    holds at most ``limit`` x ~80 KiB of tables (20 MiB by default: a federation's
    CA keys, with room). One per AlgorithmRegistry."""

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._holders: OrderedDict[int, Sm2PublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key: Sm2PublicKey) -> None:
        with self._lock:
            if id(key) in self._holders or not key._build_table():
                return
            self._holders[id(key)] = key
            while len(self._holders) > self._limit:
                _, oldest = self._holders.popitem(last=False)
                oldest._drop_table()

    def used(self, key: Sm2PublicKey) -> None:
        with self._lock:
            if id(key) in self._holders:
                self._holders.move_to_end(id(key))

    def __len__(self) -> int:
        return len(self._holders)


BACKENDS = ("ec", "evp")


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

    Safe to share between threads. ``spki_der`` is the key as given;
    ``backend`` is "ec" or "evp" (None: "ec" where libcrypto gives it);
    ``tables`` bounds the precomputed tables of a set of keys (None: this key
    builds its own on its second verification and keeps it while it lives).
    """

    __slots__ = ("_lib", "_pkey", "spki_der", "backend", "_curve", "_point", "_points", "_xy", "_default_z",
                 "_table", "_uses", "_tables")

    def __init__(self, spki_der: bytes, *, backend: str | None = None, tables: PointTables | None = None) -> None:
        self._pkey = None
        self._point = None
        self._table: _PointTable | None = None
        self._uses = 0
        self._tables = tables
        self._lib = libcrypto()
        self.spki_der = _as_bytes(spki_der, "SubjectPublicKeyInfo")
        if backend not in (None, *BACKENDS):
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        # libcrypto's own loader judges the key for both backends (on the curve,
        # nothing trailing, an SM2 key), so both accept the same keys.
        self._pkey = _load_public_key(self._lib, self.spki_der)
        self._curve = ec_curve() if backend != "evp" else None
        if backend == "ec" and self._curve is None:
            raise Sm2Unavailable(_curve_failure or "libcrypto's EC arithmetic is not usable for SM2")
        self.backend = "ec" if self._curve is not None else "evp"
        if self._curve is not None:
            encoded = bytes(_parse_spki(self.spki_der).subject_public_key.contents[1:])
            self._point, self._xy = self._curve.decode_point(encoded)
            self._points = (_void_p * 1)(self._point)
            self._default_z = self._curve.z_value(DEFAULT_DISTID, self._xy)

    def verify(self, message: bytes, signature_der: bytes, distid: bytes = DEFAULT_DISTID) -> bool:
        """True iff ``signature_der`` is a valid SM2-with-SM3 signature of ``message``."""
        pkey = self._pkey
        if pkey is None:  # pragma: no cover - set by __init__ or it raised
            raise InputError("SM2 public key not loaded")
        curve, point = self._curve, self._point
        if curve is None or point is None:
            return _verify_with_pkey(self._lib, pkey, message, signature_der, distid)
        message = _as_bytes(message, "message")
        signature_der = _as_bytes(signature_der, "signature")
        distid = _as_bytes(distid, "distid")
        if distid == DEFAULT_DISTID:
            z = self._default_z
        elif len(distid) > _MAX_DISTID:
            return False
        else:
            z = curve.z_value(distid, self._xy)
        table = self._table
        if table is not None and self._tables is not None:
            self._tables.used(self)
        elif table is None:
            self._uses += 1
            if self._uses == 2:  # a key used twice is likely a CA's: worth its table
                if self._tables is not None:
                    self._tables.admit(self)
                else:
                    self._build_table()
                table = self._table
        return _verify_on_curve(curve, point, self._points, self._xy, z, table, message, signature_der)

    def _build_table(self) -> bool:
        """Give this key its table; False if libcrypto could not (then it
        verifies without one, as on its first use, and is not asked again)."""
        if self._table is None and self._curve is not None and self._point is not None:
            try:
                self._table = _PointTable(self._curve, self._point)
            except MemoryError:
                return False
        return self._table is not None

    def _drop_table(self) -> None:
        # A verification already holding the table keeps it alive until it returns.
        self._table, self._uses = None, 0

    def __del__(self) -> None:
        pkey, self._pkey = getattr(self, "_pkey", None), None
        if pkey:
            self._lib.EVP_PKEY_free(pkey)
        point, self._point = getattr(self, "_point", None), None
        if point:
            self._lib.EC_POINT_free(point)

    def __repr__(self) -> str:
        return f"Sm2PublicKey({len(self.spki_der)}-byte SPKI, {self.backend})"


def verify_sm2_sm3(spki_der: bytes, message: bytes, signature_der: bytes, distid: bytes = DEFAULT_DISTID) -> bool:
    """True iff ``signature_der`` (DER ECDSA-Sig-Value) is a valid SM2-with-SM3
    signature of ``message`` under the key ``spki_der`` and ID ``distid``.

    False for a wrong or malformed signature. InputError if the key cannot be
    parsed or is not SM2; Sm2Unavailable if this machine cannot do SM2.
    """
    return Sm2PublicKey(spki_der).verify(message, signature_der, distid)
