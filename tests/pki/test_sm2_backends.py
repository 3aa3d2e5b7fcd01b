"""pki.sm2's two backends, "ec" (SM2's checks on libcrypto's EC arithmetic with
precomputed tables) and "evp" (libcrypto's SM2 signature provider), on the same
vectors: signatures made by the `openssl` command, by libcrypto through
bridge.sm2_keys, and by a plain-Python SM2 signer written here from GB/T
32918.2 (so the "ec" backend is checked against an implementation that shares
no code with it). Both must say yes and no to exactly the same inputs.
"""
from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from bridge.sm2_keys import Sm2PrivateKey
from pki import sm2
from pki.algorithms import AlgorithmRegistry, with_national_algorithms
from pki.errors import InputError
from pki.sm2 import DEFAULT_DISTID, PointTables, Sm2PublicKey, Sm2Unavailable

pytestmark = [
    pytest.mark.skipif(not sm2.sm2_available(), reason="the system libcrypto cannot do SM2/SM3"),
    pytest.mark.skipif(sm2.sm2_available() and sm2.ec_curve() is None,
                       reason="this libcrypto lacks the EC calls of the \"ec\" backend"),
]

MESSAGE = b"a to-be-signed certificate, more or less " * 24
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = P - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
G = (0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
     0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0)
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


# --- a plain-Python SM2 signer (GB/T 32918.2 section 6.1), slow and independent ----


def _add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * p1[0] * p1[0] + A) * pow(2 * p1[1], -1, P) % P
    else:
        slope = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, P) % P
    x = (slope * slope - p1[0] - p2[0]) % P
    return x, (slope * (p1[0] - x) - p1[1]) % P


def _multiply(k: int, point):
    result = None
    while k:
        if k & 1:
            result = _add(result, point)
        point, k = _add(point, point), k >> 1
    return result


def _sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def _spki(point) -> bytes:
    return SPKI_PREFIX + b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading 0 where the top bit is set
    return b"\x02" + bytes([len(body)]) + body


def _der_signature(r: int, s: int) -> bytes:
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


class PythonSigner:
    def __init__(self, d: int | None = None) -> None:
        self.d = d if d is not None else secrets.randbelow(N - 2) + 1
        self.point = _multiply(self.d, G)
        self.spki = _spki(self.point)

    def digest(self, message: bytes, distid: bytes = DEFAULT_DISTID) -> int:
        fixed = b"".join(v.to_bytes(32, "big") for v in (A, B, *G, *self.point))
        z = _sm3((8 * len(distid)).to_bytes(2, "big") + distid + fixed)
        return int.from_bytes(_sm3(z + message), "big")

    def sign(self, message: bytes, distid: bytes = DEFAULT_DISTID) -> bytes:
        e = self.digest(message, distid)
        while True:
            k = secrets.randbelow(N - 1) + 1
            r = (e + _multiply(k, G)[0]) % N
            if r == 0 or r + k == N:
                continue
            s = pow(1 + self.d, -1, N) * (k - r * self.d) % N
            if s:
                return _der_signature(r, s)


# --- fixtures -------------------------------------------------------------------------


def _openssl(*args, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=check)


@pytest.fixture(scope="module")
def python_signer() -> PythonSigner:
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("hashlib has no SM3 here")
    return PythonSigner()


@pytest.fixture(scope="module")
def vectors(tmp_path_factory, python_signer):
    """(name, spki, message, signature, distid the signer used), from three signers."""
    out = []
    libcrypto_key = Sm2PrivateKey.generate()
    for distid in (DEFAULT_DISTID, b"", b"alice@example.com"):
        out.append((f"libcrypto id={distid!r}", libcrypto_key.public_key_spki_der(), MESSAGE,
                    libcrypto_key.sign(MESSAGE, distid), distid))
        out.append((f"python id={distid!r}", python_signer.spki, MESSAGE, python_signer.sign(MESSAGE, distid), distid))
    if shutil.which("openssl") is not None:
        directory = tmp_path_factory.mktemp("sm2-backends")
        key = directory / "key.pem"
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", key)
        spki = _openssl("pkey", "-in", key, "-pubout", "-outform", "DER").stdout
        (directory / "message").write_bytes(MESSAGE)
        for distid in (DEFAULT_DISTID, b"bob"):
            signature = _openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt",
                                 f"distid:{distid.decode()}", "-inkey", key, "-in", directory / "message").stdout
            out.append((f"openssl id={distid!r}", spki, MESSAGE, signature, distid))
    return out


def _keys(spki: bytes) -> list[Sm2PublicKey]:
    """Every way the same key verifies: "evp"; "ec" before and after its table."""
    evp = Sm2PublicKey(spki, backend="evp")
    first_use = Sm2PublicKey(spki, backend="ec")
    tabled = Sm2PublicKey(spki, backend="ec")
    tabled._build_table()
    assert evp.backend == "evp" and first_use.backend == tabled.backend == "ec"
    return [evp, first_use, tabled]


def _answers(spki: bytes, message: bytes, signature: bytes, distid: bytes = DEFAULT_DISTID) -> list[bool]:
    answers = []
    for key in _keys(spki):
        key._uses = -1_000  # the "ec" key without a table stays without one
        answers.append(key.verify(message, signature, distid))
    return answers


# --- the same vectors through both backends -------------------------------------------


def test_every_signer_verifies_under_both_backends_and_only_with_its_id(vectors):
    assert len({name.split()[0] for name, *_ in vectors}) == (3 if shutil.which("openssl") else 2)
    for name, spki, message, signature, distid in vectors:
        assert _answers(spki, message, signature, distid) == [True] * 3, name
        other_id = b"1234567812345679" if distid == DEFAULT_DISTID else DEFAULT_DISTID
        assert _answers(spki, message, signature, other_id) == [False] * 3, name
        assert _answers(spki, message + b"!", signature, distid) == [False] * 3, name
        assert sm2.verify_sm2_sm3(spki, message, signature, distid) is True


def test_libcrypto_verifies_the_python_signers_signatures_and_the_reverse(python_signer):
    # The plain-Python signer and libcrypto agree, so the vectors above are three
    # independent witnesses rather than one implementation checking itself.
    signature = python_signer.sign(MESSAGE)
    assert sm2._verify_with_pkey(sm2.libcrypto(), Sm2PublicKey(python_signer.spki, backend="evp")._pkey,
                                 MESSAGE, signature, DEFAULT_DISTID)
    libcrypto_key = Sm2PrivateKey.generate()
    spki = libcrypto_key.public_key_spki_der()
    values = sm2._signature_values(libcrypto_key.sign(MESSAGE))
    assert values is not None
    r, s = values
    point = (int.from_bytes(spki[-64:-32], "big"), int.from_bytes(spki[-32:], "big"))
    python_key = PythonSigner.__new__(PythonSigner)
    python_key.point = point
    e = python_key.digest(MESSAGE)
    t = (r + s) % N
    assert (e + _add(_multiply(s, G), _multiply(t, point))[0]) % N == r  # GB/T 32918.2 7.1 B6-B7 by hand


def _malformed(signature: bytes) -> list[bytes]:
    r, s = sm2._signature_values(signature) or (0, 0)
    body = signature[2:]
    cases = [
        b"", b"\x30\x00", signature[:-1], signature + b"\x00", signature[:1] + b"\x81" + signature[1:],
        b"\x30\x80" + body + b"\x00\x00",  # BER indefinite length
        b"\x31" + signature[1:], signature[:2] + b"\x03" + signature[3:],
        _der_signature(s, r), _der_signature(r, 0), _der_signature(0, s), _der_signature(r, N), _der_signature(N, s),
        _der_signature(r + N, s), _der_signature(r, s + N), _der_signature(r, N - r),  # t = 0
        _der_signature(r, s) + b"",  # itself, re-encoded: must stay valid
    ]
    # Not minimal: a leading zero byte before a byte without its top bit set.
    r_body, s_body = r.to_bytes(33, "big").lstrip(b"\x00"), s.to_bytes(33, "big").lstrip(b"\x00")
    padded_r = b"\x02" + bytes([len(r_body) + 2]) + b"\x00\x00" + r_body
    cases.append(b"\x30" + bytes([len(padded_r) + len(s_body) + 2]) + padded_r + b"\x02" + bytes([len(s_body)]) + s_body)
    # Negative: the top bit set without the leading zero.
    if r_body[0] & 0x80:
        negative = b"\x02" + bytes([len(r_body)]) + r_body + _der_integer(s)
        cases.append(b"\x30" + bytes([len(negative)]) + negative)
    # Every single-bit flip of the DER, and every truncation.
    cases += [signature[:i] + bytes([signature[i] ^ (1 << bit)]) + signature[i + 1:]
              for i in range(len(signature)) for bit in (0, 7)]
    cases += [signature[:i] for i in range(len(signature))]
    return cases


def test_malformed_and_altered_signatures_get_the_same_answer_from_both(vectors):
    name, spki, message, signature, distid = vectors[0]
    keys = _keys(spki)
    cases = _malformed(signature)
    assert len(cases) > 150
    valid = 0
    for case in cases:
        answers = []
        for key in keys:
            key._uses = -1_000
            answers.append(key.verify(message, case, distid))
        assert len(set(answers)) == 1, (case.hex(), answers)
        valid += answers[0]
    assert valid == 1  # only the re-encoded original (itself canonical DER)


def test_a_sum_at_infinity_is_refused_by_both():
    # With the generator as the public key (d = 1), s*G + t*G is the point at
    # infinity when 2s + r = 0 (mod n): B6 has no x1 and the answer is no.
    spki = _spki(G)
    r = 0x1234567890ABCDEF
    s = (-r * pow(2, -1, N)) % N
    assert _answers(spki, MESSAGE, _der_signature(r, s)) == [False] * 3


def test_r_matches_knows_both_representatives_of_x1():
    # x1 in [n, p) happens with probability 2^-128, so the comparison is
    # checked on its own: X = x1 * Z^2 (mod p) for Z random.
    e = secrets.randbelow(N)
    for x1 in (5, N - 1, N, N + 7, P - 1):
        z = secrets.randbelow(P - 1) + 1
        big_x = x1 * z * z % P
        assert sm2._r_matches((e + x1) % N, e, big_x, z)
        assert not sm2._r_matches((e + x1 + 1) % N, e, big_x, z)
        assert not sm2._r_matches((e + x1) % N, e, (big_x + 1) % P, z)


def test_unusable_keys_are_refused_by_both_backends(python_signer):
    point_off_curve = python_signer.spki[:-1] + bytes([python_signer.spki[-1] ^ 1])
    infinity = SPKI_PREFIX[:-2] + b"\x02\x00\x00"  # BIT STRING holding the single byte 00
    infinity = bytes([0x30, len(infinity) - 2]) + infinity[2:]
    for spki in (point_off_curve, infinity, python_signer.spki[:-1], b"\x30\x00"):
        for backend in sm2.BACKENDS:
            with pytest.raises(InputError):
                Sm2PublicKey(spki, backend=backend)


def test_a_compressed_point_verifies_under_both(python_signer):
    x, y = python_signer.point
    compressed = SPKI_PREFIX[:-2] + b"\x22\x00" + bytes([2 + (y & 1)]) + x.to_bytes(32, "big")
    compressed = bytes([0x30, len(compressed) - 2]) + compressed[2:]
    signature = python_signer.sign(MESSAGE)
    assert _answers(compressed, MESSAGE, signature) == [True] * 3


# --- tables: when, how many, and under threads -------------------------------------------


def test_a_key_gets_its_table_on_its_second_verification(python_signer):
    signature = python_signer.sign(MESSAGE)
    key = Sm2PublicKey(python_signer.spki)
    assert key.backend == "ec"
    assert key.verify(MESSAGE, signature) and key._table is None
    assert key.verify(MESSAGE, signature) and key._table is not None
    assert not key.verify(MESSAGE + b"!", signature)


def test_point_tables_bound_how_many_keys_hold_one():
    tables = PointTables(limit=2)
    signers = [Sm2PrivateKey.generate() for _ in range(4)]
    keys = [Sm2PublicKey(k.public_key_spki_der(), tables=tables) for k in signers]
    signatures = [k.sign(MESSAGE) for k in signers]
    for _ in range(3):
        for key, signature in zip(keys, signatures, strict=True):
            assert key.verify(MESSAGE, signature)
            assert len(tables) <= 2
    assert sum(key._table is not None for key in keys) <= 2


def test_the_least_recently_used_table_is_the_one_given_up():
    tables = PointTables(limit=2)
    signers = [Sm2PrivateKey.generate() for _ in range(3)]
    first, second, third = (Sm2PublicKey(k.public_key_spki_der(), tables=tables) for k in signers)
    signatures = [k.sign(MESSAGE) for k in signers]
    for key, signature in ((first, signatures[0]), (second, signatures[1])):
        assert key.verify(MESSAGE, signature) and key.verify(MESSAGE, signature)
    assert first.verify(MESSAGE, signatures[0])  # first is now the most recently used
    assert third.verify(MESSAGE, signatures[2]) and third.verify(MESSAGE, signatures[2])
    assert (first._table is not None, second._table is None, third._table is not None) == (True, True, True)


def test_a_table_libcrypto_cannot_build_leaves_the_key_verifying_without_one(monkeypatch, python_signer):
    def no_table(*_args):
        raise MemoryError("no table in this test")

    monkeypatch.setattr(sm2, "_PointTable", no_table)
    tables = PointTables(limit=4)
    key = Sm2PublicKey(python_signer.spki, tables=tables)
    signature = python_signer.sign(MESSAGE)
    assert all(key.verify(MESSAGE, signature) for _ in range(4))
    assert key._table is None and len(tables) == 0
    assert not key.verify(MESSAGE + b"!", signature)


def test_the_registry_bounds_its_sm2_tables():
    registry = with_national_algorithms(AlgorithmRegistry())
    signer = Sm2PrivateKey.generate()
    spki = signer.public_key_spki_der()
    algorithm = bytes.fromhex("300a06082a811ccf55018375")
    for i in range(3):
        assert registry.verify(spki, algorithm, signer.sign(MESSAGE + bytes([i])), MESSAGE + bytes([i]))
    key = registry.public_key(spki)
    assert key.backend == "ec" and key._table is not None and key._tables is not None


def test_threads_sharing_keys_while_tables_come_and_go():
    tables = PointTables(limit=1)  # every admission evicts: tables dropped while others verify
    signers = [Sm2PrivateKey.generate() for _ in range(3)]
    keys = [Sm2PublicKey(k.public_key_spki_der(), tables=tables) for k in signers]
    signatures = [k.sign(MESSAGE) for k in signers]
    wrong: list[str] = []
    start = threading.Barrier(6)

    def work(index: int) -> None:
        start.wait()
        for round_index in range(40):
            i = (index + round_index) % 3
            if round_index % 7 == 0:
                keys[i]._drop_table()
            valid = round_index % 2 == 0
            signature = signatures[i] if valid else signatures[(i + 1) % 3]
            if keys[i].verify(MESSAGE, signature) is not valid:
                wrong.append(f"thread {index} round {round_index}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


# --- fallback ---------------------------------------------------------------------------------


def test_without_the_ec_calls_keys_verify_through_evp(monkeypatch, python_signer):
    monkeypatch.setattr(sm2, "ec_curve", lambda: None)
    key = Sm2PublicKey(python_signer.spki)
    assert key.backend == "evp"
    signature = python_signer.sign(MESSAGE)
    assert key.verify(MESSAGE, signature) and key.verify(MESSAGE, signature)
    assert not key.verify(MESSAGE + b"!", signature)
    with pytest.raises(Sm2Unavailable):
        Sm2PublicKey(python_signer.spki, backend="ec")
    with pytest.raises(ValueError):
        Sm2PublicKey(python_signer.spki, backend="gmssl")


def test_the_ec_backend_is_set_up_once_and_checked(tmp_path: Path):
    curve = sm2.ec_curve()
    assert curve is not None and sm2.ec_curve() is curve
    assert sm2._curve_failure is None
