"""``bridgeca verify``: the relying party's requirements (issue 11) as flags,
with INTERFACE.md's names: --profile, --anchor-constraints /
--no-anchor-constraints, --key-usage, --extended-key-usage, --max-chain-depth.

Each flag reaches the core: a certificate that passes without it fails with
it (exit 1, the expected code), or the other way round for the two that
relax the default; bad values exit 2 with one line on stderr. Real
certificates from tests/pkibuilder.py, validated at its fixed time ``AT``.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from api.cli import main
from tests import pkibuilder as pb
from tests.pkibuilder import AT, der

AT_TEXT = AT.strftime("%Y-%m-%dT%H:%M:%SZ")
EMAIL_PROTECTION = ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string


def with_serial(cert_der: bytes, issuer_key, serial: int) -> bytes:
    """``cert_der`` with its serial number replaced (cryptography's builder
    refuses zero and negative ones), signed again by ``issuer_key`` (EC)."""
    tbs, sig_alg, _ = pb.split(cert_der)
    fields = pb.split(tbs)
    index = 1 if fields[0][0] == 0xA0 else 0  # after [0] version
    fields[index] = pb.der_integer(serial)
    new_tbs = pb.tlv(0x30, b"".join(fields))
    signature = issuer_key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    return pb.tlv(0x30, new_tbs + sig_alg + pb.tlv(0x03, b"\x00" + signature))


def email_protection() -> tuple[x509.ExtensionType, bool]:
    return x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """anchor → issuing CA → leaves: ``signing`` (keyUsage digitalSignature
    only), ``email`` (extendedKeyUsage emailProtection), ``zero`` (serial
    number 0); and ``old-anchor`` (expired before AT) → ``old-issuing`` →
    ``old-leaf``, both of which are valid at AT."""
    d = tmp_path_factory.mktemp("cli-options")
    anchor = pb.root("Options Root")
    issuing = pb.intermediate(anchor, "Options Issuing CA")
    old_anchor = pb.root("Expired Options Root", not_after=AT - dt.timedelta(days=30))
    old_issuing = pb.intermediate(old_anchor, "Outliving Issuing CA")
    made = {
        "anchor": anchor.der,
        "issuing": issuing.der,
        "signing": der(pb.leaf(issuing, "signing only leaf")),
        "email": der(pb.leaf(issuing, "email protection leaf", extra=[email_protection()])),
        "zero": with_serial(der(pb.leaf(issuing, "zero serial leaf")), issuing.key, 0),
        "old-anchor": old_anchor.der,
        "old-issuing": old_issuing.der,
        "old-leaf": der(pb.leaf(old_issuing, "leaf under an expired anchor")),
    }
    paths = {}
    for name, data in made.items():
        paths[name] = str(d / f"{name}.der")
        (d / f"{name}.der").write_bytes(data)
    return paths


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def verify(capsys, files, leaf: str = "signing", *options: str, anchor: str = "anchor",
           issuing: str = "issuing") -> tuple[int, dict]:
    code, out, err = run(capsys, files[leaf], "--anchor", files[anchor], "--untrusted", files[issuing],
                         "--at", AT_TEXT, "--json", *options)
    assert err == "", err
    result = json.loads(out)
    assert code == (0 if result["valid"] else 1), (code, result)
    return code, result


def assert_valid(result: dict) -> None:
    assert result["valid"] is True and result["error"] is None, result["error"]


def assert_code(result: dict, code: str, certificate: int | None = None) -> None:
    assert result["valid"] is False, result
    assert result["error"]["code"] == code, result["error"]
    if certificate is not None:
        assert result["error"]["certificate"] == certificate, result["error"]


def test_key_usage_is_required_of_the_end_entity(capsys, files):
    assert_valid(verify(capsys, files, "signing")[1])
    code, r = verify(capsys, files, "signing", "--key-usage", "keyEncipherment")
    assert code == 1
    assert_code(r, "purpose", 0)
    assert "keyEncipherment" in r["error"]["message"]
    assert_valid(verify(capsys, files, "signing", "--key-usage", "digitalSignature")[1])
    # Repeatable, and all of them are required.
    assert_code(verify(capsys, files, "signing", "--key-usage", "digitalSignature",
                       "--key-usage", "nonRepudiation")[1], "purpose", 0)


def test_extended_key_usage_needs_one_of_the_purposes(capsys, files):
    assert_valid(verify(capsys, files, "email")[1])
    code, r = verify(capsys, files, "email", "--extended-key-usage", "codeSigning")
    assert code == 1
    assert_code(r, "purpose")
    assert_valid(verify(capsys, files, "email", "--extended-key-usage", "emailProtection")[1])
    assert_valid(verify(capsys, files, "email", "--extended-key-usage", EMAIL_PROTECTION)[1])
    # Repeatable: one of them suffices.
    assert_valid(verify(capsys, files, "email", "--extended-key-usage", "codeSigning",
                        "--extended-key-usage", "emailProtection")[1])


def test_max_chain_depth_counts_intermediates(capsys, files):
    code, r = verify(capsys, files, "signing", "--max-chain-depth", "0")
    assert code == 1
    assert_code(r, "path_length_exceeded")
    assert_valid(verify(capsys, files, "signing", "--max-chain-depth", "1")[1])


def test_profile_rfc5280_accepts_what_strict_calls_malformed(capsys, files):
    code, r = verify(capsys, files, "zero")
    assert code == 1
    assert_code(r, "malformed_certificate", 0)
    assert "serial" in r["error"]["message"]
    assert_code(verify(capsys, files, "zero", "--profile", "strict")[1], "malformed_certificate", 0)
    code, r = verify(capsys, files, "zero", "--profile", "rfc5280")
    assert code == 0
    assert_valid(r)
    assert r["path"][0]["serial"] in ("0", "00")


def test_no_anchor_constraints_treats_the_anchor_as_a_name_and_key(capsys, files):
    old = dict(anchor="old-anchor", issuing="old-issuing")
    code, r = verify(capsys, files, "old-leaf", **old)
    assert code == 1
    assert_code(r, "anchor_invalid", len(r["path"]) - 1)
    assert_code(verify(capsys, files, "old-leaf", "--anchor-constraints", **old)[1], "anchor_invalid")
    code, r = verify(capsys, files, "old-leaf", "--no-anchor-constraints", **old)
    assert code == 0
    assert_valid(r)
    assert len(r["path"]) == 3


def test_text_output_names_the_code_on_one_line(capsys, files):
    code, out, err = run(capsys, files["signing"], "--anchor", files["anchor"], "--untrusted", files["issuing"],
                         "--at", AT_TEXT, "--key-usage", "keyAgreement")
    assert code == 1 and err == ""
    assert out.startswith("not valid: purpose:") and len(out.splitlines()) == 1


def test_the_defaults_spelled_out_give_the_same_json(capsys, files):
    base = [files["signing"], "--anchor", files["anchor"], "--untrusted", files["issuing"], "--at", AT_TEXT, "--json"]
    code, plain, _ = run(capsys, *base)
    code2, spelled, _ = run(capsys, *base, "--profile", "strict", "--anchor-constraints")
    assert code == code2 == 0
    assert json.loads(plain) == json.loads(spelled)
    assert set(json.loads(plain)) >= {"valid", "path", "policies", "revocation", "error"}


@pytest.mark.parametrize("extra", [
    ["--profile", "lax"],
    ["--profile", ""],
    ["--max-chain-depth", "-1"],
    ["--max-chain-depth", "65"],
    ["--max-chain-depth", "two"],
    ["--max-chain-depth", "1.5"],
    ["--key-usage", "signing"],
    ["--key-usage", ""],
    ["--extended-key-usage", "not-an-oid"],
    ["--extended-key-usage", "1.2.x"],
    ["--extended-key-usage", ""],
    ["--anchor-constraints=no"],
])
def test_bad_values_exit_2_with_one_line(capsys, files, extra):
    code, out, err = run(capsys, files["signing"], "--anchor", files["anchor"], "--untrusted", files["issuing"],
                         "--at", AT_TEXT, *extra)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bridgeca: "), err
    assert "Traceback" not in err and "internal error" not in err
