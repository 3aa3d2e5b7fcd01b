"""SM2-with-SM3 through the system libcrypto: interop with the `openssl` CLI,
distinguishing-ID handling, malformed input, threads and memory."""
from __future__ import annotations

import resource
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.sm2_keys import Sm2PrivateKey
from pki import sm2
from pki.errors import InputError
from pki.sm2 import (
    DEFAULT_DISTID,
    SM2_CURVE_OID,
    SM2_SIGNATURE_OID,
    Sm2PublicKey,
    Sm2Unavailable,
    is_sm2_public_key,
    sm2_available,
    verify_sm2_sm3,
)

pytestmark = pytest.mark.skipif(
    not sm2_available(), reason="the system libcrypto cannot do SM2/SM3 (OpenSSL 3 with SM2 needed)"
)


def _openssl_cli_version() -> str | None:
    if shutil.which("openssl") is None:
        return None
    return subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout


# `pkeyutl -rawin` and `-pkeyopt distid:` need the OpenSSL 3 command line.
needs_openssl_cli = pytest.mark.skipif(
    not (_openssl_cli_version() or "").startswith("OpenSSL 3."),
    reason="the OpenSSL 3 command-line tool is not installed",
)

MESSAGE = b"Guangdong bridge CA: message to sign\x00with a NUL and \xff bytes"
OTHER_ID = b"ALICE123@YAHOO.COM"


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=check)


def sign_with_cli(key_pem: Path, message: bytes, tmp_path: Path, distid: bytes | None = DEFAULT_DISTID) -> bytes:
    """SM2-with-SM3 signature by `openssl pkeyutl`; distid=None leaves the ID unset."""
    message_file = tmp_path / "message.bin"
    signature_file = tmp_path / "signature.der"
    message_file.write_bytes(message)
    id_options = [] if distid is None else ["-pkeyopt", f"distid:{distid.decode()}"]
    openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", *id_options,
            "-inkey", key_pem, "-in", message_file, "-out", signature_file)
    return signature_file.read_bytes()


def cli_verifies(spki_der: bytes, message: bytes, signature: bytes, tmp_path: Path,
                 distid: bytes = DEFAULT_DISTID) -> bool:
    public_key_file = tmp_path / "public.der"
    message_file = tmp_path / "message.bin"
    signature_file = tmp_path / "signature.der"
    public_key_file.write_bytes(spki_der)
    message_file.write_bytes(message)
    signature_file.write_bytes(signature)
    result = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3",
                     "-pkeyopt", f"distid:{distid.decode()}",
                     "-pubin", "-keyform", "DER", "-inkey", public_key_file,
                     "-in", message_file, "-sigfile", signature_file, check=False)
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


@pytest.fixture(scope="module")
def cli_key(tmp_path_factory) -> tuple[Path, bytes]:
    """An SM2 key made by the openssl CLI: (PEM path, SubjectPublicKeyInfo DER)."""
    if _openssl_cli_version() is None:
        pytest.skip("the openssl command-line tool is not installed")
    directory = tmp_path_factory.mktemp("sm2-cli-key")
    key_pem = directory / "key.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", key_pem)
    spki_der = openssl("pkey", "-in", key_pem, "-pubout", "-outform", "DER").stdout
    return key_pem, spki_der


@pytest.fixture(scope="module")
def software_key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


def curve_as_algorithm_spki(spki_der: bytes, parameters: bytes = b"") -> bytes:
    """Re-encode a standard SM2 SPKI with 1.2.156.10197.1.301 as its algorithm
    OID (the variant some real certificates carry), built byte by byte."""
    standard_algorithm = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")
    assert spki_der[2:2 + len(standard_algorithm)] == standard_algorithm
    key_bits = spki_der[2 + len(standard_algorithm):]
    curve_oid = bytes.fromhex("06082a811ccf5501822d")
    algorithm = bytes([0x30, len(curve_oid) + len(parameters)]) + curve_oid + parameters
    body = algorithm + key_bits
    assert len(body) < 128
    return bytes([0x30, len(body)]) + body


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


# --- interop with the openssl CLI ---------------------------------------------


@needs_openssl_cli
def test_cli_signature_with_default_id_verifies(cli_key, tmp_path):
    key_pem, spki_der = cli_key
    signature = sign_with_cli(key_pem, MESSAGE, tmp_path)
    assert is_sm2_public_key(spki_der)
    assert verify_sm2_sm3(spki_der, MESSAGE, signature) is True
    assert Sm2PublicKey(spki_der).verify(MESSAGE, signature) is True


@needs_openssl_cli
def test_cli_signature_with_empty_id_fails_under_default_id(cli_key, tmp_path):
    key_pem, spki_der = cli_key
    # Without -pkeyopt distid OpenSSL 3.0 signs with the empty ID.
    signature = sign_with_cli(key_pem, MESSAGE, tmp_path, distid=None)
    assert verify_sm2_sm3(spki_der, MESSAGE, signature) is False
    assert verify_sm2_sm3(spki_der, MESSAGE, signature, distid=b"") is True


@needs_openssl_cli
def test_cli_signature_with_other_id_fails_under_default_id(cli_key, tmp_path):
    key_pem, spki_der = cli_key
    signature = sign_with_cli(key_pem, MESSAGE, tmp_path, distid=OTHER_ID)
    assert verify_sm2_sm3(spki_der, MESSAGE, signature) is False
    assert verify_sm2_sm3(spki_der, MESSAGE, signature, distid=OTHER_ID) is True
    assert Sm2PublicKey(spki_der).verify(MESSAGE, signature, distid=OTHER_ID) is True


@needs_openssl_cli
def test_software_key_signature_verifies_with_cli(software_key, tmp_path):
    spki_der = software_key.public_key_spki_der()
    signature = software_key.sign(MESSAGE)
    assert cli_verifies(spki_der, MESSAGE, signature, tmp_path)
    # The CLI must disagree when the IDs differ, or the check above proves nothing.
    assert not cli_verifies(spki_der, MESSAGE, signature, tmp_path, distid=OTHER_ID)
    other_id_signature = software_key.sign(MESSAGE, distid=OTHER_ID)
    assert cli_verifies(spki_der, MESSAGE, other_id_signature, tmp_path, distid=OTHER_ID)
    assert not cli_verifies(spki_der, MESSAGE, other_id_signature, tmp_path)


@needs_openssl_cli
def test_self_signed_certificate_signature_verifies(cli_key, tmp_path):
    key_pem, spki_der = cli_key
    certificate_pem = tmp_path / "certificate.pem"
    openssl("req", "-x509", "-new", "-key", key_pem, "-sm3", "-sigopt", "distid:1234567812345678",
            "-subj", "/CN=SM2 Test", "-days", "30", "-out", certificate_pem)
    certificate = x509.load_pem_x509_certificate(certificate_pem.read_bytes())
    assert certificate.signature_algorithm_oid.dotted_string == SM2_SIGNATURE_OID
    # cryptography cannot load SM2 keys, so the SPKI is taken with asn1crypto.
    der = certificate.public_bytes(serialization.Encoding.DER)
    certificate_spki = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"].dump()
    assert certificate_spki == spki_der
    tbs, signature = certificate.tbs_certificate_bytes, certificate.signature
    assert verify_sm2_sm3(certificate_spki, tbs, signature) is True
    assert verify_sm2_sm3(certificate_spki, tbs, signature, distid=b"") is False
    assert verify_sm2_sm3(certificate_spki, flip_bit(tbs, len(tbs) // 2), signature) is False


@needs_openssl_cli
def test_pem_written_here_is_read_by_cli_and_back(software_key, tmp_path):
    key_pem = tmp_path / "key.pem"
    key_pem.write_bytes(software_key.to_pem(b"correct horse"))
    assert key_pem.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    cli_spki = openssl("pkey", "-in", key_pem, "-passin", "pass:correct horse",
                       "-pubout", "-outform", "DER").stdout
    assert cli_spki == software_key.public_key_spki_der()
    loaded = Sm2PrivateKey.from_pem(key_pem.read_bytes(), "correct horse")
    assert loaded.public_key_spki_der() == software_key.public_key_spki_der()
    assert verify_sm2_sm3(cli_spki, MESSAGE, loaded.sign(MESSAGE)) is True


@needs_openssl_cli
def test_cli_encrypted_pkcs8_key_loads(cli_key, tmp_path):
    key_pem, spki_der = cli_key
    encrypted_pem = tmp_path / "encrypted.pem"
    openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key_pem,
            "-passout", "pass:s3cret", "-out", encrypted_pem)
    key = Sm2PrivateKey.from_pem(encrypted_pem.read_text(), b"s3cret")
    assert key.public_key_spki_der() == spki_der
    assert cli_verifies(spki_der, MESSAGE, key.sign(MESSAGE), tmp_path)


# --- software keys ------------------------------------------------------------


def test_software_key_round_trip_and_wrong_passphrase(software_key):
    pem = software_key.to_pem("pass phrase", iterations=1000)
    loaded = Sm2PrivateKey.from_pem(pem, b"pass phrase")
    assert loaded.public_key_spki_der() == software_key.public_key_spki_der()
    with pytest.raises(InputError):
        Sm2PrivateKey.from_pem(pem, "wrong pass phrase")
    with pytest.raises(InputError):
        Sm2PrivateKey.from_pem(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\ngarbage\n", "x")
    # Passphrases libcrypto would silently cut short are refused outright.
    for unusable in (b"", b"with\x00nul", b"x" * 1024):
        with pytest.raises(ValueError):
            software_key.to_pem(unusable)


def test_unencrypted_or_non_sm2_pem_is_refused():
    p256 = ec.generate_private_key(ec.SECP256R1())
    unencrypted = p256.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    with pytest.raises(InputError, match="encrypted"):
        Sm2PrivateKey.from_pem(unencrypted, "x")
    encrypted = p256.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.BestAvailableEncryption(b"x"))
    with pytest.raises(InputError, match="not an SM2 key"):
        Sm2PrivateKey.from_pem(encrypted, "x")


def test_software_key_spki_and_randomised_signatures(software_key):
    spki_der = software_key.public_key_spki_der()
    assert is_sm2_public_key(spki_der)
    first, second = software_key.sign(MESSAGE), software_key.sign(MESSAGE)
    assert first != second  # the nonce comes from the DRBG
    public_key = software_key.public_key()
    assert public_key.verify(MESSAGE, first) and public_key.verify(MESSAGE, second)
    assert public_key.verify(MESSAGE, software_key.sign(MESSAGE, distid=b"")) is False
    assert public_key.verify(bytearray(MESSAGE), memoryview(first)) is True
    assert software_key.sign(b"").startswith(b"\x30")
    assert public_key.verify(b"", software_key.sign(b"")) is True


def test_private_key_is_not_pickled_or_shown(software_key):
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(software_key)
    assert "private" in repr(software_key)


# --- rejection ----------------------------------------------------------------


def test_tampered_message_or_signature_fails(software_key):
    spki_der = software_key.public_key_spki_der()
    signature = software_key.sign(MESSAGE)
    assert verify_sm2_sm3(spki_der, MESSAGE, signature) is True
    assert verify_sm2_sm3(spki_der, flip_bit(MESSAGE, 0), signature) is False
    assert verify_sm2_sm3(spki_der, MESSAGE + b"\x00", signature) is False
    assert verify_sm2_sm3(spki_der, MESSAGE, flip_bit(signature, len(signature) - 1)) is False
    assert verify_sm2_sm3(spki_der, MESSAGE, flip_bit(signature, 10)) is False
    malformed = [b"", b"\x30\x00", signature[:-1], signature + b"\x00", b"garbage" * 10]
    for bad_signature in malformed:
        assert verify_sm2_sm3(spki_der, MESSAGE, bad_signature) is False
    other_key = Sm2PrivateKey.generate()
    assert verify_sm2_sm3(other_key.public_key_spki_der(), MESSAGE, signature) is False


@pytest.mark.parametrize(
    "parameters", [b"", b"\x05\x00", bytes.fromhex("06082a811ccf5501822d")], ids=["absent", "NULL", "curve-OID"]
)
def test_curve_oid_as_algorithm_variant_verifies(software_key, parameters):
    variant = curve_as_algorithm_spki(software_key.public_key_spki_der(), parameters)
    signature = software_key.sign(MESSAGE)
    assert is_sm2_public_key(variant)
    assert verify_sm2_sm3(variant, MESSAGE, signature) is True
    assert Sm2PublicKey(variant).verify(MESSAGE, signature) is True
    assert verify_sm2_sm3(variant, flip_bit(MESSAGE, 3), signature) is False


def test_is_sm2_public_key_classifies():
    public_format = serialization.PublicFormat.SubjectPublicKeyInfo
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(serialization.Encoding.DER, public_format)
    rsa_key = rsa.generate_private_key(65537, 2048).public_key().public_bytes(serialization.Encoding.DER, public_format)
    sm2_key = Sm2PrivateKey.generate().public_key_spki_der()
    assert is_sm2_public_key(sm2_key)
    assert not is_sm2_public_key(p256)
    assert not is_sm2_public_key(rsa_key)
    for garbage in (b"", b"\x30", b"not DER at all", sm2_key + b"\x00", sm2_key[:-5]):
        assert not is_sm2_public_key(garbage)
    # The curve OID as algorithm with parameters that are neither absent, NULL
    # nor the curve itself is not understood.
    assert not is_sm2_public_key(curve_as_algorithm_spki(sm2_key, bytes.fromhex("06082a8648ce3d030107")))
    assert SM2_CURVE_OID == "1.2.156.10197.1.301"


def test_unusable_keys_raise_input_error(software_key):
    sm2_key = software_key.public_key_spki_der()
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    point_off_curve = sm2_key[:-1] + bytes([sm2_key[-1] ^ 0x01])
    compressed_garbage = sm2_key[:-65] + b"\x02" + b"\xff" * 64
    unusable = [b"", b"garbage", b"\x30\x03\x02\x01\x00", sm2_key[:-1], sm2_key + b"\x00",
                point_off_curve, compressed_garbage, p256]
    signature = software_key.sign(MESSAGE)
    for spki_der in unusable:
        with pytest.raises(InputError):
            verify_sm2_sm3(spki_der, MESSAGE, signature)
        with pytest.raises(InputError):
            Sm2PublicKey(spki_der)


def test_unavailable_library_raises_sm2_unavailable(monkeypatch, software_key):
    def no_library():
        raise Sm2Unavailable("no libcrypto in this test")

    monkeypatch.setattr(sm2, "libcrypto", no_library)
    assert sm2_available() is False
    with pytest.raises(Sm2Unavailable):
        verify_sm2_sm3(software_key.public_key_spki_der(), MESSAGE, b"\x30\x00")
    assert issubclass(Sm2Unavailable, RuntimeError)


# --- threads and memory --------------------------------------------------------


def test_concurrent_verification_is_correct(software_key):
    spki_der = software_key.public_key_spki_der()
    shared_key = Sm2PublicKey(spki_der)
    messages = [MESSAGE + bytes([i]) for i in range(16)]
    signatures = [software_key.sign(message) for message in messages]
    thread_count, rounds = 8, 60
    start = threading.Barrier(thread_count)
    wrong_answers: list[str] = []
    errors: list[BaseException] = []

    def work(thread_index: int) -> None:
        try:
            start.wait()
            for round_index in range(rounds):
                i = (thread_index + round_index) % len(messages)
                valid = round_index % 2 == 0
                # Odd rounds pair a message with another message's signature.
                signature = signatures[i] if valid else signatures[(i + 1) % len(messages)]
                if shared_key.verify(messages[i], signature) is not valid:
                    wrong_answers.append(f"thread {thread_index} round {round_index}: shared key")
                if round_index % 6 == 0 and verify_sm2_sm3(spki_der, messages[i], signature) is not valid:
                    wrong_answers.append(f"thread {thread_index} round {round_index}: from SPKI")
                if round_index % 10 == 0 and not shared_key.verify(messages[i], software_key.sign(messages[i])):
                    wrong_answers.append(f"thread {thread_index} round {round_index}: concurrent signing")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(thread_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not wrong_answers


def test_repeated_verification_does_not_leak_memory(software_key):
    spki_der = software_key.public_key_spki_der()
    public_key = Sm2PublicKey(spki_der)
    signature = software_key.sign(MESSAGE)
    tampered = flip_bit(MESSAGE, 0)

    def one_round(i: int) -> None:
        # Every path: cached key and key loaded from bytes, valid and invalid
        # (an invalid one also leaves entries on the OpenSSL error queue).
        message = MESSAGE if i % 2 else tampered
        if i % 4 == 0:
            assert verify_sm2_sm3(spki_der, message, signature) is bool(i % 2)
        else:
            assert public_key.verify(message, signature) is bool(i % 2)

    for i in range(1_000):  # let allocator pools and OpenSSL caches settle
        one_round(i)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(20_000):
        one_round(i)
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib
    # A leaked digest context per call would add about 18 MiB here.
    assert growth_kib < 4 * 1024, f"resident memory grew by {growth_kib} KiB over 20,000 verifications"


def test_repeated_signing_and_key_lifecycle_does_not_leak_memory():
    def one_round() -> None:
        key = Sm2PrivateKey.generate()
        key.public_key().verify(MESSAGE, key.sign(MESSAGE))

    for _ in range(200):
        one_round()
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3_000):
        one_round()
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib
    # A leaked key or signing context per round would add 2.5 to 6 MiB here.
    assert growth_kib < 2 * 1024, f"resident memory grew by {growth_kib} KiB over 3,000 key lifecycles"
