"""Every error code maps to an EN 319 102-1 indication and sub-indication
(pki/indication.py), and every result object carries them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pki import cms
from pki import errors as E
from pki import indication as I

# Every code of the contract (INTERFACE.md), and the ones added since.
EXPECTED = {
    "signature_invalid": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    "expired": ("TOTAL_FAILED", "EXPIRED"),
    "not_yet_valid": ("TOTAL_FAILED", "NOT_YET_VALID"),
    "name_chaining": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
    "not_a_ca": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    "path_length_exceeded": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "key_usage": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    "policy_required": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "name_constraints": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "revoked": ("TOTAL_FAILED", "REVOKED"),
    "revoked_no_poe": ("INDETERMINATE", "REVOKED_NO_POE"),
    "revocation_unknown": ("INDETERMINATE", "TRY_LATER"),
    "unknown_critical_extension": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    "no_path": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
    "budget_exceeded": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    "unsupported_algorithm": ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE"),
    "malformed_certificate": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    "content_mismatch": ("TOTAL_FAILED", "HASH_FAILURE"),
    "signer_not_found": ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND"),
    "signing_certificate_mismatch": ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND"),
    "missing_message_digest": ("TOTAL_FAILED", "FORMAT_FAILURE"),
    "missing_content_type": ("TOTAL_FAILED", "FORMAT_FAILURE"),
    "content_type_mismatch": ("TOTAL_FAILED", "FORMAT_FAILURE"),
    "missing_signing_time": ("INDETERMINATE", "SIG_CONSTRAINTS_FAILURE"),
    "signed_attributes_invalid": ("TOTAL_FAILED", "FORMAT_FAILURE"),
    "blacklisted": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "suspended": ("INDETERMINATE", "TRY_LATER"),
    "purpose": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "anchor_invalid": ("INDETERMINATE", "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    # a trusted list as the anchor (bridge/trust_lists.py)
    "not_recognised": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "service_withdrawn": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
    "policy_not_recognised": ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"),
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_code_to_indication(code):
    assert I.for_code(code) == EXPECTED[code]


def test_every_code_of_the_contract_and_of_the_core_is_mapped():
    contract = (Path(__file__).resolve().parents[2] / "../shared/contract/INTERFACE.md")
    named = set()
    if contract.exists():
        section = contract.read_text().split("When invalid, `error` is", 1)[1].split("`certificate` is the index", 1)[0]
        named = set(re.findall(r"`([a-z_]+)`", section)) - {"code", "message", "certificate"}
    core = {v for k, v in vars(E).items() if k.isupper() and isinstance(v, str)}
    signature = {v for k, v in vars(cms).items() if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z_]+", v)
                 and v not in ("malformed_cms", "signing-time")}
    assert named <= set(I.CODES), sorted(named - set(I.CODES))
    assert core <= set(I.CODES), sorted(core - set(I.CODES))
    assert signature <= set(I.CODES), sorted(signature - set(I.CODES))
    assert set(EXPECTED) == set(I.CODES)


def test_position_and_kind_refine_the_answer():
    assert I.for_code(None) == ("TOTAL_PASSED", None)
    assert I.for_code("revoked_no_poe", is_ca=True) == ("INDETERMINATE", "REVOKED_CA_NO_POE")
    # The signature value itself failing is final; a certificate's in the path is the chain's.
    assert I.for_code("signature_invalid", of_signature=True) == ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")
    # Expired now, and nothing says when the signature was made: it may predate the expiry.
    assert I.for_code("expired", signed_at_unknown=True) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")
    # A code from elsewhere is never called final.
    assert I.for_code("some_future_code")[0] == "INDETERMINATE"


def test_a_result_made_invalid_later_is_indicated_again():
    answer = {"valid": False, "indication": "TOTAL_PASSED", "sub_indication": None,
              "error": {"code": "service_withdrawn", "message": "...", "certificate": 2}}
    assert I.reindicate(answer)["indication"] == "INDETERMINATE"
    assert answer["sub_indication"] == "CHAIN_CONSTRAINTS_FAILURE"
