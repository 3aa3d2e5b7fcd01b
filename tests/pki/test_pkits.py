"""NIST PKITS through pki.Verifier, every case of the manifest, read at run
time from ../shared/conformance/pkits (never copied)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pki import Verifier
from tests.conftest import PKITS

MANIFEST = json.loads((PKITS / "pkits.json").read_text()) if (PKITS / "pkits.json").exists() else {"cases": []}
CASES = {case["id"]: case for case in MANIFEST["cases"]}

# Cases we do not pass yet, each with the reason. Strict: a case that starts
# passing fails the run until it is taken off this list.
KNOWN_FAILURES: dict[str, str] = {}


def _read(rel: str) -> bytes:
    return (PKITS / rel).read_bytes()


def run_case(case: dict):
    verifier = Verifier(
        anchors=[_read(case["trust_anchor"])],
        untrusted=[_read(p) for p in case["intermediates"] + case["other_certs"]],
        crls=[_read(p) for p in case["crls"]],
    )
    return verifier.verify(
        _read(case["end_entity"]),
        at=case["validation_time"],
        policies=case["user_initial_policy_set"],
        explicit_policy=case["initial_explicit_policy"],
        inhibit_policy_mapping=case["initial_policy_mapping_inhibit"],
        inhibit_any_policy=case["initial_any_policy_inhibit"],
        revocation="require",
    )


def _param(case_id: str):
    marks = []
    if case_id in KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case_id]))
    return pytest.param(case_id, id=case_id, marks=marks)


def test_manifest_is_complete(pkits_dir):
    assert MANIFEST["format"] == "pkits-manifest/1"
    assert sum(1 for c in CASES.values() if c["official"]) == 247
    assert set(KNOWN_FAILURES) <= set(CASES)


@pytest.mark.parametrize("case_id", [_param(i) for i in CASES])
def test_pkits_case(case_id, pkits_dir):
    case = CASES[case_id]
    result = run_case(case)
    body = result.to_dict()
    expected_valid = case["expected"] == "valid"
    assert result.valid == expected_valid, f"{case['name']}: {body['error']}"
    if expected_valid:
        assert body["path"][0]["sha256"] == result.path[0].sha256.hex()
        assert body["revocation"] == "checked"
        if case["expected_policies"] is not None:
            assert set(body["policies"]) == set(case["expected_policies"])
    else:
        error = body["error"]
        assert error["code"] and error["message"]
        assert error["certificate"] is None or 0 <= error["certificate"] < len(body["path"]) or error["code"] in ("no_path", "budget_exceeded")


SAMPLE = ["4.1.1", "4.1.2", "4.2.1", "4.4.3", "4.6.2", "4.8.3-1", "4.10.1-1", "4.13.1"]


@pytest.mark.parametrize("case_id", [i for i in SAMPLE if i in CASES] or ["missing"])
def test_pkits_sample_through_cli(case_id, pkits_dir):
    """The README's recipe for running a case with `bridgeca verify`."""
    case = CASES[case_id]
    args = [sys.executable, "-m", "api.cli", "verify", str(PKITS / case["end_entity"]),
            "--anchor", str(PKITS / case["trust_anchor"]), "--at", case["validation_time"],
            "--revocation", "require", "--json"]
    for rel in case["intermediates"] + case["other_certs"]:
        args += ["--untrusted", str(PKITS / rel)]
    for rel in case["crls"]:
        args += ["--crl", str(PKITS / rel)]
    for oid in case["user_initial_policy_set"]:
        args += ["--policy", oid]
    for flag, key in (("--explicit-policy", "initial_explicit_policy"),
                      ("--inhibit-policy-mapping", "initial_policy_mapping_inhibit"),
                      ("--inhibit-any-policy", "initial_any_policy_inhibit")):
        if case[key]:
            args.append(flag)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    body = json.loads(proc.stdout)
    expected_valid = case["expected"] == "valid"
    assert proc.returncode == (0 if expected_valid else 1), proc.stderr
    assert body["valid"] is expected_valid
    assert proc.stderr == ""
    if expected_valid and case["expected_policies"] is not None:
        assert set(body["policies"]) == set(case["expected_policies"])
