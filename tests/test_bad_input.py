"""Bad input gets a clear answer, through ``pki.Verifier`` and through
``bridgeca verify``: unreadable bytes are an InputError (CLI: exit 2, one line
on stderr, no traceback); a certificate that parses but fails is
``valid: false`` with a specific code (CLI: exit 1). Never an exception
escaping, never a traceback."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

from api.cli import main
from pki import Verifier
from pki.errors import InputError
from tests import pkibuilder as pb
from tests.pkibuilder import AT, der, pem

AT_TEXT = "2025-06-01T00:00:00Z"
UNKNOWN_OID = "1.3.6.1.4.1.99999.66.1"


@pytest.fixture(scope="module")
def pki():
    anchor = pb.root("Bad Input Root")
    issuing = pb.intermediate(anchor, "Bad Input Issuing CA")
    leaf = pb.leaf(issuing, "bad input leaf")
    return anchor, issuing, leaf


def _replace_extension(oid: str, new: bytes):
    def edit(exts):
        return [new if pb.extension_oid(e) == oid else e for e in exts]
    return edit


def _with_version(cert_der: bytes, key, version: int) -> bytes:
    """Re-sign a certificate with its version field set to ``version``."""
    tbs, alg, _ = pb.split(cert_der)
    fields = pb.split(tbs)
    fields[0] = pb.tlv(0xA0, pb.der_integer(version))
    new_tbs = pb.tlv(0x30, b"".join(fields))
    sig = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    return pb.tlv(0x30, new_tbs + alg + pb.tlv(0x03, b"\x00" + sig))


# --- unreadable input: InputError ---------------------------------------------


def unreadable_inputs(leaf_der: bytes, leaf_pem: bytes, crl_der: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "whitespace": b" \n\t\n",
        "garbage": b"this is not a certificate",
        "der truncated by one": leaf_der[:-1],
        "der truncated in half": leaf_der[: len(leaf_der) // 2],
        "der header only": leaf_der[:4],
        "der with trailing data": leaf_der + b"\x00",
        "pem without end line": leaf_pem.replace(b"-----END CERTIFICATE-----", b""),
        "pem truncated body": leaf_pem[:60] + b"\n-----END CERTIFICATE-----\n",
        "pem bad base64": b"-----BEGIN CERTIFICATE-----\nMIIB!!*&^%===abc=\n-----END CERTIFICATE-----\n",
        "pem bad padding": b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(leaf_der)[:-3] + b"\n-----END CERTIFICATE-----\n",
        "pem private key block": b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        "pem crl block": b"-----BEGIN X509 CRL-----\n" + base64.encodebytes(crl_der) + b"-----END X509 CRL-----\n",
        "crl der as certificate": crl_der,
        "pem wrapping garbage": b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(b"\x30\x03\x02\x01\x01") + b"-----END CERTIFICATE-----\n",
        "pem of a truncated certificate": b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(leaf_der[:-10]) + b"-----END CERTIFICATE-----\n",
    }


@pytest.fixture(scope="module")
def unreadable(pki):
    anchor, issuing, leaf = pki
    return unreadable_inputs(der(leaf), pem(leaf), der(pb.crl(issuing)))


@pytest.mark.parametrize("case", sorted(unreadable_inputs(b"x" * 64, b"-----BEGIN CERTIFICATE-----\nx\n", b"").keys()))
def test_unreadable_leaf_is_an_input_error(pki, unreadable, case):
    anchor, issuing, _ = pki
    v = Verifier(anchors=[anchor.pem], untrusted=[issuing.der])
    with pytest.raises(InputError) as info:
        v.verify(unreadable[case], at=AT)
    message = str(info.value)
    assert message and "\n" not in message


@pytest.mark.parametrize("role", ["anchors", "untrusted"])
@pytest.mark.parametrize("case", ["empty", "der truncated by one", "pem bad base64", "pem private key block", "garbage"])
def test_unreadable_anchor_or_intermediate_is_an_input_error(pki, unreadable, role, case):
    anchor, issuing, _ = pki
    kwargs = {"anchors": [anchor.pem], "untrusted": [issuing.der]}
    kwargs[role] = kwargs[role] + [unreadable[case]]
    with pytest.raises(InputError):
        Verifier(**kwargs)


@pytest.mark.parametrize("case", ["empty", "garbage", "der truncated by one", "pem bad base64"])
def test_unreadable_crl_is_an_input_error(pki, unreadable, case):
    anchor, issuing, leaf = pki
    data = {"der truncated by one": der(pb.crl(issuing))[:-1]}.get(case, unreadable[case])
    with pytest.raises(InputError):
        Verifier(anchors=[anchor.pem], crls=[data])


def test_more_than_one_certificate_as_the_leaf(pki):
    anchor, issuing, leaf = pki
    v = Verifier(anchors=[anchor.pem])
    with pytest.raises(InputError, match="expected one certificate"):
        v.verify(pem(leaf) + issuing.pem, at=AT)


@pytest.mark.parametrize("bad", [{"at": "yesterday"}, {"at": "2025-13-01T00:00:00Z"}, {"policies": ["1.2.x"]},
                                 {"policies": [""]}, {"policies": ["1."]}, {"revocation": "sometimes"}])
def test_bad_parameters_are_input_errors(pki, bad):
    anchor, issuing, leaf = pki
    v = Verifier(anchors=[anchor.pem], untrusted=[issuing.der])
    kwargs = {"at": AT} | bad
    with pytest.raises(InputError):
        v.verify(der(leaf), **kwargs)


def _classify(v: Verifier, data: bytes) -> str:
    try:
        r = v.verify(data, at=AT)
    except InputError:
        return "input_error"
    return "valid" if r.valid else r.to_dict()["error"]["code"]


def test_every_truncation_of_a_certificate_is_an_input_error(pki):
    anchor, issuing, leaf = pki
    v = Verifier(anchors=[anchor.pem], untrusted=[issuing.der])
    data = der(leaf)
    outcomes = {n: _classify(v, data[:n]) for n in range(len(data))}
    assert set(outcomes.values()) == {"input_error"}
    pem_data = pem(leaf)
    assert {_classify(v, pem_data[:n]) for n in range(0, len(pem_data) - 1, 5)} == {"input_error"}


# Exception types allowed to escape pki: none.
KNOWN_ESCAPES: tuple[str, ...] = ()


def test_every_bit_flip_of_a_certificate_gets_an_answer(pki):
    """Flip one bit at each offset: the answer is an InputError or an
    invalid result with a code, never an escaping exception, never valid."""
    anchor, issuing, leaf = pki
    v = Verifier(anchors=[anchor.pem], untrusted=[issuing.der])
    data = der(leaf)
    seen: dict[str, int] = {}
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[i] ^= bit
            try:
                outcome = _classify(v, bytes(mutated))
            except Exception as exc:  # noqa: BLE001 - the point of the test
                if type(exc).__name__ not in KNOWN_ESCAPES:
                    raise
                outcome = "escaped:" + type(exc).__name__
            seen[outcome] = seen.get(outcome, 0) + 1
    assert "valid" not in seen
    assert seen.get("input_error", 0) > 0 and seen.get("signature_invalid", 0) > 0


def test_every_truncation_of_a_crl_is_an_input_error(pki):
    anchor, issuing, _ = pki
    data = der(pb.crl(issuing, revoked=[5, 6, 7]))
    for n in range(len(data)):
        with pytest.raises(InputError):
            Verifier(anchors=[anchor.pem], crls=[data[:n]])


@pytest.mark.parametrize("role", ["leaf", "intermediate", "anchor"])
def test_unknown_certificate_version_is_an_input_error(pki, role):
    anchor, issuing, leaf = pki
    if role == "leaf":
        bad = _with_version(der(leaf), issuing.key, 3)
        v = Verifier(anchors=[anchor.pem], untrusted=[issuing.der])
        with pytest.raises(InputError):
            v.verify(bad, at=AT)
    elif role == "intermediate":
        with pytest.raises(InputError):
            Verifier(anchors=[anchor.pem], untrusted=[_with_version(issuing.der, anchor.key, 3)])
    else:
        with pytest.raises(InputError):
            Verifier(anchors=[_with_version(anchor.der, anchor.key, 3)])


def test_unknown_crl_version_is_an_input_error(pki):
    anchor, issuing, _ = pki
    data = der(pb.crl(issuing))
    tbs, alg, _ = pb.split(data)
    fields = pb.split(tbs)
    assert fields[0] == b"\x02\x01\x01"  # v2
    fields[0] = b"\x02\x01\x00"
    new_tbs = pb.tlv(0x30, b"".join(fields))
    sig = issuing.key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    bad = pb.tlv(0x30, new_tbs + alg + pb.tlv(0x03, b"\x00" + sig))
    with pytest.raises(InputError):
        Verifier(anchors=[anchor.pem], crls=[bad])


# --- certificates that parse but fail: valid false with a code ----------------


def _defective(pki, what: str, where: str):
    """(anchors, untrusted, leaf) DER with the defect ``what`` in the leaf
    or in the intermediate."""
    anchor, issuing, leaf = pki
    target_der, signer = (der(leaf), issuing.key) if where == "leaf" else (issuing.der, anchor.key)
    if what == "duplicate extension":
        bad = pb.resign(target_der, signer, lambda exts: exts + [exts[0]])
    elif what.startswith("pathLen "):
        value = int(what.split()[1])
        bad = pb.resign(target_der, signer, _replace_extension("2.5.29.19", pb.basic_constraints_raw(value)))
    elif what == "malformed keyUsage":
        bad = pb.resign(target_der, signer, _replace_extension("2.5.29.15", pb.raw_extension("2.5.29.15", b"\x05\x00", True)))
    elif what == "malformed certificatePolicies":
        bad = pb.resign(target_der, signer, lambda exts: exts + [pb.raw_extension("2.5.29.32", b"\x30\x03\x02\x01\x01")])
    else:  # pragma: no cover
        raise AssertionError(what)
    if where == "leaf":
        return [anchor.der], [issuing.der], bad
    return [anchor.der], [bad], der(leaf)


DEFECTS = ["duplicate extension", "pathLen -1", "pathLen -128", f"pathLen {2**64}", f"pathLen {2**100}",
           "malformed keyUsage", "malformed certificatePolicies"]


@pytest.mark.parametrize("where,index", [("leaf", 0), ("intermediate", 1)])
@pytest.mark.parametrize("what", DEFECTS)
def test_defective_certificate_is_malformed_certificate(pki, what, where, index):
    anchors, untrusted, leaf = _defective(pki, what, where)
    r = Verifier(anchors=anchors, untrusted=untrusted).verify(leaf, at=AT)
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "malformed_certificate", d["error"]
    assert d["error"]["certificate"] == index
    # A defective target fails on every path: it is refused without a search,
    # alone on its path; a defective intermediate is met on the path found.
    assert len(d["path"]) == (1 if where == "leaf" else 3)


def test_large_but_sane_path_length_is_accepted(pki):
    anchor, issuing, leaf = pki
    big = pb.resign(issuing.der, anchor.key, _replace_extension("2.5.29.19", pb.basic_constraints_raw(2**31)))
    r = Verifier(anchors=[anchor.der], untrusted=[big]).verify(der(leaf), at=AT)
    assert r.valid, r.to_dict()["error"]


@pytest.mark.parametrize("ca", [False, None], ids=["ca-false", "no-basic-constraints"])
def test_non_ca_intermediate(ca):
    anchor = pb.root("NonCA Root")
    middle = pb.intermediate(anchor, "Not Really A CA", ca=ca, key_usage="ee")
    leaf = pb.leaf(middle, "leaf under a non-CA")
    r = Verifier(anchors=[anchor.pem], untrusted=[middle.der]).verify(der(leaf), at=AT)
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "not_a_ca"
    assert d["error"]["certificate"] == 1
    assert d["path"][1]["subject"] == "CN=Not Really A CA,C=CN"


@pytest.mark.parametrize("where,index", [("leaf", 0), ("intermediate", 1)])
def test_unknown_critical_extension(where, index):
    ext = x509.UnrecognizedExtension(ObjectIdentifier(UNKNOWN_OID), b"\x05\x00")
    for critical in (True, False):
        anchor = pb.root("Critical Root")
        middle = pb.intermediate(anchor, "Critical CA", extra=[(ext, critical)] if where == "intermediate" else ())
        leaf = pb.leaf(middle, "critical leaf", extra=[(ext, critical)] if where == "leaf" else ())
        r = Verifier(anchors=[anchor.pem], untrusted=[middle.der]).verify(der(leaf), at=AT)
        if not critical:
            assert r.valid, r.to_dict()["error"]
            continue
        d = r.to_dict()
        assert not r.valid
        assert d["error"]["code"] == "unknown_critical_extension"
        assert d["error"]["certificate"] == index
        assert UNKNOWN_OID in d["error"]["message"]


# --- the command line ----------------------------------------------------------


@pytest.fixture
def files(pki, tmp_path, unreadable):
    anchor, issuing, leaf = pki
    paths = {}

    def put(name: str, data: bytes) -> str:
        p = tmp_path / name
        p.write_bytes(data)
        paths[name] = str(p)
        return str(p)

    put("anchor.pem", anchor.pem)
    put("issuing.der", issuing.der)
    put("leaf.pem", pem(leaf))
    put("crl.der", der(pb.crl(issuing)))
    for i, (_case, data) in enumerate(sorted(unreadable.items())):
        put(f"bad{i}", data)
    paths["_cases"] = {case: paths[f"bad{i}"] for i, case in enumerate(sorted(unreadable))}
    paths["_put"] = put
    return paths


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bridgeca: ")
    assert "Traceback" not in err and "internal error" not in err


def test_cli_valid(files, capsys):
    code, out, err = run(capsys, files["leaf.pem"], "--anchor", files["anchor.pem"],
                         "--untrusted", files["issuing.der"], "--at", AT_TEXT, "--json")
    assert code == 0, out + err
    d = json.loads(out)
    assert d["valid"] is True and len(d["path"]) == 3 and d["error"] is None
    assert err == ""


@pytest.mark.parametrize("case", sorted(unreadable_inputs(b"x" * 64, b"-----BEGIN CERTIFICATE-----\nx\n", b"").keys()))
def test_cli_unreadable_certificate_exits_2_with_one_line(files, capsys, case):
    code, out, err = run(capsys, files["_cases"][case], "--anchor", files["anchor.pem"],
                         "--untrusted", files["issuing.der"], "--at", AT_TEXT)
    assert_one_line_error(code, out, err)


@pytest.mark.parametrize("option", ["--anchor", "--untrusted", "--crl"])
@pytest.mark.parametrize("case", ["empty", "garbage", "pem bad base64", "der truncated in half"])
def test_cli_unreadable_other_inputs_exit_2(files, capsys, option, case):
    args = [files["leaf.pem"], "--anchor", files["anchor.pem"], "--untrusted", files["issuing.der"], "--at", AT_TEXT]
    if option == "--anchor":
        args[2] = files["_cases"][case]
    else:
        args += [option, files["_cases"][case]]
    assert_one_line_error(*run(capsys, *args))


@pytest.mark.parametrize("extra", [
    ["--at", "yesterday"],
    ["--at", "2025-02-30T00:00:00Z"],
    ["--policy", "1.2.x"],
    ["--policy", "not-an-oid"],
    ["--revocation", "sometimes"],
    ["--no-such-flag"],
])
def test_cli_bad_options_exit_2(files, capsys, extra):
    args = [files["leaf.pem"], "--anchor", files["anchor.pem"], "--untrusted", files["issuing.der"]]
    if "--at" not in extra:
        args += ["--at", AT_TEXT]
    assert_one_line_error(*run(capsys, *args, *extra))


def test_cli_missing_files_and_anchor_exit_2(files, capsys, tmp_path):
    assert_one_line_error(*run(capsys, str(tmp_path / "nope.pem"), "--anchor", files["anchor.pem"]))
    assert_one_line_error(*run(capsys, files["leaf.pem"], "--anchor", str(tmp_path / "nope.pem")))
    assert_one_line_error(*run(capsys, files["leaf.pem"]))
    assert_one_line_error(*run(capsys, files["leaf.pem"], "--anchor", str(tmp_path)))  # a directory


@pytest.mark.parametrize("what,where,expected", [
    ("duplicate extension", "leaf", "malformed_certificate"),
    ("duplicate extension", "intermediate", "malformed_certificate"),
    ("pathLen -1", "intermediate", "malformed_certificate"),
    (f"pathLen {2**100}", "intermediate", "malformed_certificate"),
])
def test_cli_parseable_but_failing_exits_1_with_a_code(pki, files, capsys, what, where, expected):
    anchors, untrusted, leaf = _defective(pki, what, where)
    put = files["_put"]
    code, out, err = run(capsys, put("t-leaf", leaf), "--anchor", put("t-anchor", anchors[0]),
                         "--untrusted", put("t-mid", untrusted[0]), "--at", AT_TEXT, "--json")
    assert code == 1, err
    assert err == ""
    d = json.loads(out)
    assert d["valid"] is False and d["error"]["code"] == expected
    # and without --json: one line naming the code
    code, out, err = run(capsys, files["t-leaf"], "--anchor", files["t-anchor"], "--untrusted", files["t-mid"], "--at", AT_TEXT)
    assert code == 1 and out.startswith(f"not valid: {expected}:") and len(out.splitlines()) == 1


def test_cli_not_a_ca_and_unknown_critical_exit_1(files, capsys):
    put = files["_put"]
    anchor = pb.root("CLI Root")
    middle = pb.intermediate(anchor, "CLI not a CA", ca=False, key_usage="ee")
    leaf = pb.leaf(middle, "cli leaf")
    code, out, _ = run(capsys, put("n-leaf", der(leaf)), "--anchor", put("n-anchor", anchor.pem),
                       "--untrusted", put("n-mid", middle.pem), "--at", AT_TEXT, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "not_a_ca"
    ext = x509.UnrecognizedExtension(ObjectIdentifier(UNKNOWN_OID), b"\x05\x00")
    middle = pb.intermediate(anchor, "CLI critical CA")
    leaf = pb.leaf(middle, "cli critical leaf", extra=[(ext, True)])
    code, out, _ = run(capsys, put("c-leaf", pem(leaf)), "--anchor", files["n-anchor"],
                       "--untrusted", put("c-mid", middle.der), "--at", AT_TEXT, "--json")
    d = json.loads(out)
    assert code == 1 and d["error"]["code"] == "unknown_critical_extension" and d["error"]["certificate"] == 0


def test_cli_unknown_certificate_version_exits_2(pki, files, capsys):
    anchor, issuing, leaf = pki
    bad = files["_put"]("v4-leaf", _with_version(der(leaf), issuing.key, 3))
    assert_one_line_error(*run(capsys, bad, "--anchor", files["anchor.pem"], "--untrusted", files["issuing.der"], "--at", AT_TEXT))
