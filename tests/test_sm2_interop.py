"""SM2 interoperability with the system `openssl` command line, both ways.

An SM2 root, issuing CA, leaves and CRLs made by `openssl req`, `openssl x509`
and `openssl ca` (with ``-sigopt distid:1234567812345678``) go through the real
`bridgeca verify` command; certificates, CRLs and OCSP responses an SM2 bridge
issues are checked by OpenSSL. `openssl verify` cannot check a chain with an
SM2 intermediate (openssl issue 23471), so OpenSSL checks one level at a time:
`openssl verify -vfyopt distid:...` for a certificate directly under its
trust anchor, `openssl pkeyutl -verify` on the to-be-signed bytes otherwise.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from api.cli import main as bridgeca_main
from pki import Verifier
from pki.algorithms import AlgorithmRegistry
from pki.der import spki_parts, split_signed
from pki.sm2 import DEFAULT_DISTID, sm2_available, verify_sm2_sm3

REPO = Path(__file__).resolve().parents[1]
DISTID = "distid:" + DEFAULT_DISTID.decode()
SM2_WITH_SM3_ALGORITHM = bytes.fromhex("300a06082a811ccf55018375")  # 1.2.156.10197.1.501, no parameters


def _openssl_3() -> bool:
    if shutil.which("openssl") is None:
        return False
    return subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.startswith("OpenSSL 3.")


pytestmark = [
    pytest.mark.skipif(not sm2_available(), reason="the system libcrypto cannot do SM2/SM3 (OpenSSL 3 with SM2 needed)"),
    pytest.mark.skipif(not _openssl_3(), reason="the OpenSSL 3 command-line tool is not installed"),
]

EXTENSIONS = """\
[v3_intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

CA_CONFIG = """\
[ca]
default_ca = this_ca
[this_ca]
dir = $ENV::CA_DIR
database = $dir/index.txt
crlnumber = $dir/crlnumber
default_md = sm3
default_crl_days = 7
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid
"""


def openssl(*args, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {result.stderr}")
    return result


def _sm2_key(directory: Path, name: str) -> Path:
    path = directory / f"{name}.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", path, cwd=directory)
    return path


def _issue(directory: Path, name: str, subject: str, issuer: str, extensions: str, *, distid: bool = True) -> Path:
    """A CSR for ``name``'s key, signed by ``issuer`` with `openssl x509 -req`
    (SM3, and the GM/T 0009 signer ID unless ``distid`` is False: then
    OpenSSL 3.0 signs with the empty ID)."""
    csr = directory / f"{name}.csr"
    out = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    if not key.exists():
        _sm2_key(directory, name)
    openssl("req", "-new", "-key", key, "-sm3", "-sigopt", DISTID, "-subj", subject, "-out", csr, cwd=directory)
    sign_options = ["-sigopt", DISTID] if distid else []
    openssl("x509", "-req", "-in", csr, "-vfyopt", DISTID, "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
            "-sm3", *sign_options, "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "365",
            "-extfile", "extensions.cnf", "-extensions", extensions, "-out", out, cwd=directory)
    return out


def _crl(directory: Path, ca: str, *, revoke: Path | None = None, distid: bool = True, name: str | None = None) -> Path:
    """A CRL from `openssl ca -gencrl`, optionally after `openssl ca -revoke`."""
    database = directory / f"ca-{name or ca}"
    database.mkdir()
    (database / "index.txt").write_text("")
    (database / "crlnumber").write_text("01\n")
    env = {"CA_DIR": str(database)}
    common = ["-config", "ca.cnf", "-keyfile", f"{ca}.key", "-cert", f"{ca}.pem"]
    if revoke is not None:
        openssl("ca", *common, "-revoke", revoke, "-crl_reason", "keyCompromise", cwd=directory, env=env)
    out = directory / f"{name or ca}.crl"
    sign_options = ["-sigopt", DISTID] if distid else []
    openssl("ca", *common, "-gencrl", *sign_options, "-out", out, cwd=directory, env=env)
    return out


@pytest.fixture(scope="module")
def gd(tmp_path_factory) -> dict[str, Path]:
    """An SM2 PKI made only by the openssl CLI: root, issuing CA, a good leaf,
    a revoked leaf, a leaf signed with the empty ID, and the two CAs' CRLs."""
    d = tmp_path_factory.mktemp("openssl-sm2")
    (d / "extensions.cnf").write_text(EXTENSIONS)
    (d / "ca.cnf").write_text(CA_CONFIG)
    _sm2_key(d, "root")
    openssl("req", "-x509", "-new", "-key", "root.key", "-sm3", "-sigopt", DISTID,
            "-subj", "/C=CN/O=GD SM2 Test/CN=GD SM2 Root", "-days", "3650",
            "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", "root.pem", cwd=d)
    _issue(d, "issuing", "/C=CN/O=GD SM2 Test/CN=GD SM2 Issuing CA", "root", "v3_intermediate")
    _issue(d, "leaf", "/C=CN/O=GD SM2 Test/CN=leaf.gd.example", "issuing", "v3_leaf")
    _issue(d, "revoked", "/C=CN/O=GD SM2 Test/CN=revoked.gd.example", "issuing", "v3_leaf")
    (d / "empty-id.key").write_bytes((d / "leaf.key").read_bytes())
    _issue(d, "empty-id", "/C=CN/O=GD SM2 Test/CN=leaf.gd.example", "issuing", "v3_leaf", distid=False)
    _crl(d, "root")
    _crl(d, "issuing", revoke=d / "revoked.pem")
    _crl(d, "issuing", distid=False, name="issuing-empty-id")
    files = {p.stem: p for p in d.iterdir() if p.suffix == ".pem"}
    files.update({f"{p.stem}-crl": p for p in d.iterdir() if p.suffix == ".crl"})
    return files


def bridgeca_verify(capsys, certificate: Path, *options) -> tuple[int, dict]:
    """`bridgeca verify CERT ... --json`, in this process."""
    capsys.readouterr()
    status = bridgeca_main(["verify", str(certificate), *map(str, options), "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, json.loads(captured.out)


def chain_options(gd, crls=("root-crl", "issuing-crl")) -> list:
    options = ["--anchor", gd["root"], "--untrusted", gd["issuing"]]
    for crl in crls:
        options += ["--crl", gd[crl]]
    return options


def der_of(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- openssl-made → bridgeca verify


def test_openssl_made_sm2_chain_verifies_with_its_crls(gd):
    # The installed command, as a relying party would run it.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bridgeca"), "verify", str(gd["leaf"]), *map(str, chain_options(gd)), "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["valid"] is True and summary["error"] is None
    assert summary["revocation"] == "checked"
    assert [entry["subject"] for entry in summary["path"]] == [
        "CN=leaf.gd.example,O=GD SM2 Test,C=CN",
        "CN=GD SM2 Issuing CA,O=GD SM2 Test,C=CN",
        "CN=GD SM2 Root,O=GD SM2 Test,C=CN",
    ]
    # The certificates really are SM2-with-SM3, as OpenSSL wrote them.
    for name in ("leaf", "issuing", "root"):
        assert split_signed(der_of(gd[name]))[1] == SM2_WITH_SM3_ALGORITHM


def test_revoked_openssl_leaf_fails_with_revoked(gd, capsys):
    status, summary = bridgeca_verify(capsys, gd["revoked"], *chain_options(gd))
    assert status == 1
    assert summary["valid"] is False
    assert summary["error"]["code"] == "revoked"
    assert summary["error"]["certificate"] == 0
    assert "keyCompromise" in summary["error"]["message"]
    # The same leaf without the issuing CA's CRL has no status: it is the CRL that revokes it.
    status, summary = bridgeca_verify(capsys, gd["revoked"], *chain_options(gd, crls=("root-crl",)))
    assert summary["error"]["code"] == "revocation_unknown"


def test_leaf_signed_with_the_empty_id_is_refused(gd, capsys):
    status, summary = bridgeca_verify(capsys, gd["empty-id"], *chain_options(gd))
    assert status == 1
    assert summary["error"]["code"] == "signature_invalid"
    assert summary["error"]["certificate"] == 0
    # It is a good signature under the empty ID: the ID alone makes the difference.
    tbs, _algorithm, signature = split_signed(der_of(gd["empty-id"]))
    issuing_spki = asn1_x509.Certificate.load(der_of(gd["issuing"]))["tbs_certificate"]["subject_public_key_info"].dump()
    assert verify_sm2_sm3(issuing_spki, tbs, signature, distid=b"") is True
    assert verify_sm2_sm3(issuing_spki, tbs, signature) is False


def test_tampered_leaf_is_refused(gd, capsys, tmp_path):
    original = der_of(gd["leaf"])
    assert original.count(b"leaf.gd.example") == 1
    tampered = tmp_path / "tampered.der"
    tampered.write_bytes(original.replace(b"leaf.gd.example", b"leaf.gd.exbmple"))
    status, summary = bridgeca_verify(capsys, tampered, *chain_options(gd))
    assert status == 1
    assert summary["error"]["code"] == "signature_invalid"
    assert summary["error"]["certificate"] == 0
    # The untampered leaf passes with the same options.
    assert bridgeca_verify(capsys, gd["leaf"], *chain_options(gd))[0] == 0


def test_a_crl_signed_with_the_empty_id_gives_no_status(gd, capsys):
    status, summary = bridgeca_verify(capsys, gd["leaf"], *chain_options(gd, crls=("root-crl", "issuing-empty-id-crl")))
    assert status == 1
    assert summary["error"]["code"] == "revocation_unknown"
    assert "signature" in summary["error"]["message"]


def test_without_sm2_an_sm2_chain_is_unsupported_not_a_crash(gd, capsys, monkeypatch):
    no_sm2 = Verifier(anchors=[der_of(gd["root"])], untrusted=[der_of(gd["issuing"])], registry=AlgorithmRegistry())
    result = no_sm2.verify(der_of(gd["leaf"]))
    assert not result.valid
    assert result.to_dict()["error"]["code"] == "unsupported_algorithm"
    with_sm2 = Verifier(anchors=[der_of(gd["root"])], untrusted=[der_of(gd["issuing"])])
    assert with_sm2.verify(der_of(gd["leaf"])).valid

    # The command on a machine whose libcrypto has no SM2: a plain answer, exit 1.
    from pki import sm2

    def no_library():
        raise sm2.Sm2Unavailable("no SM2 in this test")

    monkeypatch.setattr(sm2, "libcrypto", no_library)
    status, summary = bridgeca_verify(capsys, gd["leaf"], *chain_options(gd))
    assert status == 1
    assert summary["valid"] is False
    assert summary["error"]["code"] == "unsupported_algorithm"


# --------------------------------------------------------------------------- bridgeca-issued → OpenSSL


@pytest.fixture
def sm2_bridge(tmp_path, monkeypatch, gd):
    """An SM2 bridge that cross-certified the openssl-made SM2 root and an ECDSA root."""
    from bridge.service import BridgeCA
    from tests.bridge.members import BRIDGE_MEDIUM, MEMBER_POLICIES, der, make_member

    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", "interop passphrase")
    for var in ("BRIDGECA_DATABASE_URL", "BRIDGECA_BASE_URL", "BRIDGECA_HOME"):
        monkeypatch.delenv(var, raising=False)
    ca = BridgeCA.init(tmp_path / "bridge", key_type="sm2", base_url="https://bridge.gd.example")
    hk = make_member("HK")
    crosses = {}
    for code, root in (("GD", der_of(gd["root"])), ("HK", der(hk.root))):
        enrolled = ca.enroll(name=f"{code} CA", jurisdiction=code, root_certificate=root,
                             policy_mappings=[{"bridge_policy": BRIDGE_MEDIUM, "member_policy": MEMBER_POLICIES[code][1]}])
        view = ca.approve(enrolled["id"])
        crosses[code] = view
    files = tmp_path / "published"
    files.mkdir()
    (files / "bridge.pem").write_text(ca.certificate_pem())
    for code, view in crosses.items():
        (files / f"cross-{code}.pem").write_text(view["cross_certificate"])
    yield ca, crosses, files
    ca.close()


def _pkeyutl_verifies(directory: Path, spki: bytes, message: bytes, signature: bytes, distid: str = DISTID) -> bool:
    (directory / "key.der").write_bytes(spki)
    (directory / "message.bin").write_bytes(message)
    (directory / "signature.der").write_bytes(signature)
    result = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", distid, "-pubin", "-keyform", "DER",
                     "-inkey", "key.der", "-in", "message.bin", "-sigfile", "signature.der", cwd=directory, check=False)
    return result.returncode == 0 and "Signature Verified Successfully" in result.stdout


def test_bridge_issued_sm2_certificates_verify_with_openssl(sm2_bridge):
    ca, crosses, files = sm2_bridge
    for name in ("cross-GD", "cross-HK", "bridge"):
        checked = openssl("verify", "-vfyopt", DISTID, "-CAfile", "bridge.pem", f"{name}.pem", cwd=files, check=False)
        assert checked.returncode == 0 and checked.stdout.strip() == f"{name}.pem: OK", checked.stdout + checked.stderr
    # Without the signer ID OpenSSL 3.0 uses the empty one, and must refuse: the ID is really checked.
    refused = openssl("verify", "-CAfile", "bridge.pem", "cross-GD.pem", cwd=files, check=False)
    assert refused.returncode != 0 and "signature failure" in refused.stdout + refused.stderr

    for view in crosses.values():
        der = x509.load_pem_x509_certificate(view["cross_certificate"].encode()).public_bytes(serialization.Encoding.DER)
        tbs, algorithm, _signature = split_signed(der)
        assert algorithm == SM2_WITH_SM3_ALGORITHM
        assert asn1_x509.TbsCertificate.load(tbs)["signature"].dump() == SM2_WITH_SM3_ALGORITHM


def test_bridge_crl_and_ocsp_response_verify_with_openssl(sm2_bridge, tmp_path):
    ca, crosses, _files = sm2_bridge
    bridge_spki = asn1_x509.Certificate.load(ca.certificate_der())["tbs_certificate"]["subject_public_key_info"].dump()
    gd_cross = x509.load_pem_x509_certificate(crosses["GD"]["cross_certificate"].encode())
    ca.revoke(crosses["GD"]["serial"], "keyCompromise")

    crl_der = ca.current_crl()
    tbs, algorithm, signature = split_signed(crl_der)
    assert algorithm == SM2_WITH_SM3_ALGORITHM
    assert _pkeyutl_verifies(tmp_path, bridge_spki, tbs, signature)
    assert not _pkeyutl_verifies(tmp_path, bridge_spki, tbs, signature, distid="distid:ALICE123@YAHOO.COM")
    assert x509.load_der_x509_crl(crl_der).get_revoked_certificate_by_serial_number(gd_cross.serial_number) is not None

    # cryptography cannot hash an SM2 issuer key for the request; the CertID is built from the key bits.
    import hashlib

    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        hashlib.sha1(ca.certificate.subject.public_bytes()).digest(),
        hashlib.sha1(spki_parts(bridge_spki)[2]).digest(),
        gd_cross.serial_number, hashes.SHA1(),
    ).build()
    response_der = ca.ocsp_response(request.public_bytes(serialization.Encoding.DER))
    response = ocsp.load_der_ocsp_response(response_der)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    basic = asn1_ocsp.OCSPResponse.load(response_der)["response_bytes"]["response"].parsed
    assert basic["signature_algorithm"].dump() == SM2_WITH_SM3_ALGORITHM
    assert _pkeyutl_verifies(tmp_path, bridge_spki, basic["tbs_response_data"].dump(), basic["signature"].native)
    assert response.responder_key_hash == hashlib.sha1(spki_parts(bridge_spki)[2]).digest()


def test_openssl_leaf_verifies_through_the_sm2_bridge(sm2_bridge, gd, capsys):
    """The whole circle: an openssl-made SM2 leaf, from the SM2 bridge as trust
    anchor, through the bridge's cross-certificate, with every CRL checked."""
    ca, crosses, files = sm2_bridge
    (files / "bridge.crl").write_bytes(ca.current_crl())
    options = ["--anchor", files / "bridge.pem", "--untrusted", files / "cross-GD.pem", "--untrusted", gd["issuing"],
               "--crl", files / "bridge.crl", "--crl", gd["root-crl"], "--crl", gd["issuing-crl"]]
    status, summary = bridgeca_verify(capsys, gd["leaf"], *options)
    assert status == 0, summary["error"]
    assert summary["revocation"] == "checked"
    assert len(summary["path"]) == 4
    assert summary["path"][2]["serial"] == crosses["GD"]["serial"]
    status, summary = bridgeca_verify(capsys, gd["revoked"], *options)
    assert status == 1 and summary["error"]["code"] == "revoked" and summary["error"]["certificate"] == 0
