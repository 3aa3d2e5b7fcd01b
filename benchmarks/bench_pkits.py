"""The whole NIST PKITS suite (every case of the shared manifest, read at run
time) through bridgeca and through pyhanko-certvalidator on the same inputs,
on the same machine, in the same run.

Each case gives both the same bytes: the trust anchor, the intermediates and
other certificates as untrusted certificates (each verifier builds the path
itself), every CRL of the case, the validation time, the four RFC 5280 6.1.1
inputs, and revocation required (bridgeca ``revocation="require"``, pyhanko
``revocation_mode="require"``). Each case gets a new verifier (bridgeca: a new
``pki.Verifier``; pyhanko: a new ValidationContext), so nothing is carried
from one case to the next; parsing is part of the timed work for both. A case
passes when valid/invalid matches the manifest and, for valid cases with
expected policies, the user-constrained policy set matches too.

A second comparison gives each verifier the same inputs already parsed by
its own parser (pki.certificate / pki.crl objects; asn1crypto objects),
made once and reused by every round: pyhanko's asn1crypto objects keep
what they compute (normalised names, hashes) between rounds, which is how
the ~1.4 s figure in the PKITS README comes about. (pyhanko 0.33 then
refuses 4.3.6 from its second use of the same objects on: "the signature
of intermediate certificate 1 could not be verified"; a peer's quirk,
reported, not worked around.)

pyhanko's algorithm policy is set to accept what bridgeca accepts (SHA-1,
1024-bit DSA), so both face the same cases.

One operation per benchmark function: the whole suite.

    .venv/bin/pytest -q benchmarks/bench_pkits.py --benchmark-only
    .venv/bin/python benchmarks/bench_pkits.py    # interleaved case by case, pass counts, misses
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pyhanko_certvalidator as pyhanko  # noqa: E402
from asn1crypto import crl as asn1_crl  # noqa: E402
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy  # noqa: E402

from pki import Verifier  # noqa: E402
from pki.certificate import parse_certificate  # noqa: E402
from pki.crl import parse_crl  # noqa: E402

SHARED = Path(os.environ.get("BRIDGECA_SHARED", REPO.parent / "shared"))
PKITS = SHARED / "conformance" / "pkits"
ANY_POLICY = "2.5.29.32.0"
ROUNDS = 3


def load_cases() -> list[dict]:
    """Every case, with its files read into memory (outside any timing)."""
    manifest = json.loads((PKITS / "pkits.json").read_text())
    cache: dict[str, bytes] = {}

    def read(rel: str) -> bytes:
        if rel not in cache:
            cache[rel] = (PKITS / rel).read_bytes()
        return cache[rel]

    return [
        dict(case, inputs=(read(case["trust_anchor"]), [read(p) for p in case["intermediates"] + case["other_certs"]],
                           [read(p) for p in case["crls"]], read(case["end_entity"])))
        for case in manifest["cases"]
    ]


def parsed_once(cases: list[dict], who: str) -> dict[str, tuple]:
    """Per case, the inputs parsed ahead of time by ``who``'s own parser (the
    second comparison: objects made once and reused by every round)."""
    out = {}
    for case in cases:
        anchor, untrusted, crls, ee = case["inputs"]
        if who == "bridgeca":
            out[case["id"]] = (parse_certificate(anchor), [parse_certificate(d) for d in untrusted],
                               [parse_crl(d) for d in crls], parse_certificate(ee))
        else:
            out[case["id"]] = (asn1_x509.Certificate.load(anchor), [asn1_x509.Certificate.load(d) for d in untrusted],
                               [asn1_crl.CertificateList.load(d) for d in crls], asn1_x509.Certificate.load(ee))
    return out


def bridgeca_runner(parsed: dict[str, tuple] | None = None):
    def run_bridgeca(case: dict) -> tuple[bool, frozenset[str] | None, str | None]:
        anchor, untrusted, crls, ee = parsed[case["id"]] if parsed else case["inputs"]
        verifier = Verifier(anchors=[anchor], untrusted=untrusted, crls=crls)
        result = verifier.verify(
            ee,
            at=case["validation_time"],
            policies=case["user_initial_policy_set"],
            explicit_policy=case["initial_explicit_policy"],
            inhibit_policy_mapping=case["initial_policy_mapping_inhibit"],
            inhibit_any_policy=case["initial_any_policy_inhibit"],
            revocation="require",
        )
        if not result.valid:
            return False, None, result.error.code if result.error else "invalid"
        return True, frozenset(result.policies or ()), None

    return run_bridgeca


_PYHANKO_ANY = "any_policy"
# PKITS signs with SHA-1 and has 1024-bit DSA keys (4.1.4-4.1.6); bridgeca
# accepts both, pyhanko's default policy refuses both: the same acceptance here.
ALGORITHMS = DisallowWeakAlgorithmsPolicy(weak_hash_algos=frozenset({"md2", "md5"}), dsa_key_size_threshold=1024)


def _to_pyhanko_policy(oid: str) -> str:
    return _PYHANKO_ANY if oid == ANY_POLICY else oid


def _from_pyhanko_policy(oid: str) -> str:
    return ANY_POLICY if oid == _PYHANKO_ANY else oid


def pyhanko_runner(parsed: dict[str, tuple] | None = None):
    loop = asyncio.new_event_loop()

    def run_pyhanko(case: dict) -> tuple[bool, frozenset[str] | None, str | None]:
        if parsed:
            anchor, untrusted, crls, ee = parsed[case["id"]]
        else:
            anchor, untrusted, crls, ee = case["inputs"]
            anchor, ee = asn1_x509.Certificate.load(anchor), asn1_x509.Certificate.load(ee)
            untrusted = [asn1_x509.Certificate.load(d) for d in untrusted]  # CRLs: pyhanko takes bytes
        ctx = pyhanko.ValidationContext(
            trust_roots=[anchor],
            other_certs=untrusted,
            crls=crls,
            moment=dt.datetime.fromisoformat(case["validation_time"].replace("Z", "+00:00")),
            revocation_mode="require",
            allow_fetching=False,
            algorithm_usage_policy=ALGORITHMS,
        )
        params = pyhanko.PKIXValidationParams(
            user_initial_policy_set=frozenset(_to_pyhanko_policy(p) for p in case["user_initial_policy_set"]),
            initial_explicit_policy=case["initial_explicit_policy"],
            initial_policy_mapping_inhibit=case["initial_policy_mapping_inhibit"],
            initial_any_policy_inhibit=case["initial_any_policy_inhibit"],
        )
        validator = pyhanko.CertificateValidator(ee, validation_context=ctx, pkix_params=params)
        try:
            path = loop.run_until_complete(validator.async_validate_usage(set()))
        except Exception as exc:  # every pyhanko refusal is an exception; the kind is reported
            return False, None, type(exc).__name__
        policies = path.qualified_policies()
        return True, frozenset(_from_pyhanko_policy(q.user_domain_policy_id) for q in policies or ()), None

    return run_pyhanko


RUNNERS = {"bridgeca": bridgeca_runner, "pyhanko": pyhanko_runner}


def passed(case: dict, outcome: tuple) -> bool:
    valid, policies, _ = outcome
    if valid != (case["expected"] == "valid"):
        return False
    if valid and case["expected_policies"] is not None:
        return policies == frozenset(case["expected_policies"])
    return True


def run_suite(cases: list[dict], run) -> dict:
    return {case["id"]: run(case) for case in cases}


def summary(cases: list[dict], outcomes: dict) -> dict:
    ok = [c for c in cases if passed(c, outcomes[c["id"]])]
    return {
        "passed": len(ok),
        "cases": len(cases),
        "passed_official": sum(1 for c in ok if c["official"]),
        "official": sum(1 for c in cases if c["official"]),
        "missed": sorted(c["id"] for c in cases if not passed(c, outcomes[c["id"]])),
    }


@pytest.fixture(scope="module", autouse=True)
def quiet_pyhanko():
    """pyhanko logs every refusal with its traceback; formatting those would
    be timed (and is not validation), so logging is off while this runs."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    if not (PKITS / "pkits.json").exists():
        pytest.skip(f"PKITS conformance data not found at {PKITS}")
    return load_cases()


def _suite(benchmark, cases, who: str, parsed: bool) -> dict:
    benchmark.group = f"PKITS, whole suite, {'inputs parsed once' if parsed else 'from bytes'} (bridgeca / pyhanko)"
    run = RUNNERS[who](parsed_once(cases, who) if parsed else None)
    outcomes = benchmark.pedantic(run_suite, args=(cases, run), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    s = summary(cases, outcomes)
    benchmark.extra_info.update(s)
    return s


def test_pkits_suite_bridgeca(benchmark, cases):
    s = _suite(benchmark, cases, "bridgeca", parsed=False)
    assert s["passed"] == s["cases"], s["missed"]  # tests/pki/test_pkits.py: no known failures


def test_pkits_suite_pyhanko(benchmark, cases):
    s = _suite(benchmark, cases, "pyhanko", parsed=False)
    assert s["passed"] > 0


def test_pkits_suite_parsed_once_bridgeca(benchmark, cases):
    s = _suite(benchmark, cases, "bridgeca", parsed=True)
    assert s["passed"] == s["cases"], s["missed"]


def test_pkits_suite_parsed_once_pyhanko(benchmark, cases):
    s = _suite(benchmark, cases, "pyhanko", parsed=True)
    assert s["passed"] > 0


def compare(cases: list[dict], rounds: int, parsed: bool) -> None:
    runners = {who: make(parsed_once(cases, who) if parsed else None) for who, make in RUNNERS.items()}
    totals: dict[str, list[float]] = {who: [] for who in runners}
    outcomes: dict[str, dict] = {who: {} for who in runners}
    for r in range(rounds + 1):  # round 0 warms up (imports, first-use caches) and is not counted
        spent = dict.fromkeys(runners, 0.0)
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for case in cases:
            for who in order:
                start = time.perf_counter()
                outcomes[who][case["id"]] = runners[who](case)
                spent[who] += time.perf_counter() - start
        if r:
            for who in runners:
                totals[who].append(spent[who])
    how = "inputs parsed once by each verifier's own parser, reused every round" if parsed else "from bytes (parsing timed)"
    print(f"PKITS, {how}: {len(cases)} cases, {rounds} rounds, each case run by both in turn (alternating who goes first)")
    print(f"{'verifier':<10} {'passed':>8} {'official':>10} {'min s':>8} {'median s':>9}  missed")
    for who in runners:
        s = summary(cases, outcomes[who])
        print(f"{who:<10} {s['passed']:>4}/{s['cases']:<3} {s['passed_official']:>5}/{s['official']:<4} "
              f"{min(totals[who]):>8.3f} {statistics.median(totals[who]):>9.3f}  {', '.join(s['missed']) or '-'}")
        for case_id in s["missed"]:
            print(f"    {case_id}: got {outcomes[who][case_id]}")
    b, h = totals["bridgeca"], totals["pyhanko"]
    print(f"bridgeca / pyhanko: min {min(b) / min(h):.2f}, median {statistics.median(b) / statistics.median(h):.2f}; "
          + ", ".join(f"{who} {statistics.median(t) / len(cases) * 1e3:.2f} ms per case (median)" for who, t in totals.items()))
    print()


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="PKITS through bridgeca and pyhanko, interleaved case by case")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    logging.disable(logging.WARNING)  # pyhanko logs every refusal with a traceback
    cases = load_cases()
    compare(cases, args.rounds, parsed=False)
    compare(cases, args.rounds, parsed=True)

if __name__ == "__main__":
    main()
