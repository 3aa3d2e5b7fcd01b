"""Second opinions: bridgeca's ``pki.Verifier`` against pyca/cryptography's
``x509.verification`` and pyhanko-certvalidator on generated chains.

``chaingen`` makes ``COUNT`` chains from ``SEED`` (random topologies: a leaf
under 0-3 intermediates, a cross-certified member root with its self-signed
certificate as a dead end, two paths to the anchor) with at most one defect
each. Every engine is asked the same question: is the leaf good at
``chaingen.AT`` for TLS server authentication of ``chaingen.SERVER_NAME``
(EKU serverAuth, keyUsage digitalSignature)? bridgeca runs with its defaults
(strict profile, anchor constraints on) plus that purpose.

The expected verdict is the defect's: a clean chain is valid, a chain with a
defect is not. An engine that answers otherwise disagrees. Every disagreement
is either a bridgeca bug (never listed here: fix it) or a peer's documented
difference in ``DIFFERENCES`` with the RFC text that settles it. The list is
strict: a listed difference that no longer occurs fails too.

Reproduce a chain: ``chaingen.make_chain(SEED, index)``; print the whole table:
``.venv/bin/python -m tests.pki.test_differential``.
"""
from __future__ import annotations

import asyncio
import inspect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509 import verification as pyca

from pki import Verifier
from pki.errors import InputError
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from tests.pki import chaingen
from tests.pki.chaingen import AT, SERVER_AUTH, SERVER_NAME

SEED = 20250601
COUNT = 35 * 9  # every defect kind (35 with "none") nine times

ENGINES = ("bridgeca", "pyca", "pyhanko")

# --- what each defect should produce ------------------------------------------
# The bridgeca error codes a defect may produce (any of them; the first is the
# precise one). "none" must be valid.
ANCHOR = {"anchor_invalid"}
MALFORMED = {"malformed_certificate"}
EXPECTED_CODES: dict[str, set[str]] = {
    "none": set(),
    "anchor_expired": ANCHOR,
    "anchor_not_yet_valid": ANCHOR,
    "intermediate_expired": {"expired"},
    "intermediate_not_yet_valid": {"not_yet_valid"},
    "leaf_expired": {"expired"},
    "leaf_not_yet_valid": {"not_yet_valid"},
    "anchor_no_basic_constraints": ANCHOR,
    "anchor_ca_false": ANCHOR,
    "anchor_no_key_cert_sign": ANCHOR,
    "anchor_unknown_critical_extension": ANCHOR,
    "anchor_name_constraints_violated": {"name_constraints", "anchor_invalid"},
    "ee_without_aki": MALFORMED,
    "aki_critical": MALFORMED,
    "ski_critical": MALFORMED,
    "ca_without_ski": MALFORMED,
    "serial_zero": MALFORMED,
    "serial_negative": MALFORMED,
    "serial_over_20_octets": MALFORMED,
    "empty_subject_noncritical_san": MALFORMED,
    "ee_key_cert_sign": MALFORMED,
    "aia_critical": MALFORMED,
    "ee_name_constraints": MALFORMED,
    "nc_dns_wildcard": MALFORMED,
    "nc_dns_leading_period": MALFORMED,
    "nc_ip_mask_not_prefix": MALFORMED,
    "san_invalid_email": MALFORMED,
    "intermediate_not_ca": {"not_a_ca"},
    "path_length_exceeded": {"path_length_exceeded"},
    "bad_signature": {"signature_invalid", "no_path"},
    "name_chaining_mismatch": {"name_chaining", "no_path"},
    "eku_leaf_email_protection": {"purpose"},
    "eku_ca_restricting": {"purpose"},
    "ku_without_digital_signature": {"purpose", "key_usage"},
}
assert set(EXPECTED_CODES) == set(chaingen.DEFECTS)


@dataclass(frozen=True)
class Difference:
    """A peer's answer that differs from the defect's verdict, and why."""

    rfc: str  # section and a short quote
    right: str  # which engine is right, and on what ground


# (defect kind, engine) -> the RFC text that settles it. Peers only: a bridgeca
# disagreement is a bug to fix, never an entry here.
DIFFERENCES: dict[tuple[str, str], Difference] = {}


# --- the engines --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    valid: bool | None  # None: the engine crashed (an exception it should not raise)
    reason: str  # bridgeca: the error code; peers: a short category
    detail: str = ""


def _bridgeca_purpose() -> dict:
    params = inspect.signature(Verifier.verify).parameters
    kw = {}
    if "extended_key_usage" in params:
        kw["extended_key_usage"] = [SERVER_AUTH]
    if "key_usage" in params:
        kw["key_usage"] = ["digitalSignature"]
    return kw


def run_bridgeca(chain: chaingen.Chain) -> Outcome:
    try:
        verifier = Verifier(anchors=[chain.anchor_der], untrusted=chain.untrusted_ders)
        result = verifier.verify(chain.leaf_der, at=AT, **_bridgeca_purpose())
    except InputError as exc:
        return Outcome(False, "input_error", str(exc))
    except Exception as exc:  # noqa: BLE001 - any other exception is a bug
        return Outcome(None, "crash", f"{type(exc).__name__}: {exc}")
    if result.valid:
        return Outcome(True, "valid")
    return Outcome(False, result.error.code, str(result.error))


_PYCA_REASONS = [
    ("expired", r"expired|not yet valid|validity"),
    ("eku", r"extended key usage|EKU"),
    ("key_usage", r"key usage|keyUsage"),
    ("name_constraints", r"name constraint|excluded|permitted|not permitted"),
    ("basic_constraints", r"basicConstraints|basic constraints|not a CA|path length"),
    ("extension_policy", r"extension|critical"),
    ("serial", r"serial"),
    ("no_path", r"candidates exhausted|no issuer|issuer"),
]


def _category(table, message: str) -> str:
    for name, pattern in table:
        if re.search(pattern, message, re.IGNORECASE):
            return name
    return "other"


def run_pyca(chain: chaingen.Chain) -> Outcome:
    try:
        anchor = x509.load_der_x509_certificate(chain.anchor_der)
        leaf = x509.load_der_x509_certificate(chain.leaf_der)
        intermediates = [x509.load_der_x509_certificate(d) for d in chain.untrusted_ders]
    except ValueError as exc:
        return Outcome(False, "parse", str(exc))
    try:
        verifier = (
            pyca.PolicyBuilder()
            .store(pyca.Store([anchor]))
            .time(AT)
            .build_server_verifier(pyca.DNSName(SERVER_NAME))
        )
        verifier.verify(leaf, intermediates)
    except pyca.VerificationError as exc:
        return Outcome(False, _category(_PYCA_REASONS, str(exc)), str(exc))
    except ValueError as exc:
        return Outcome(False, "parse", str(exc))
    return Outcome(True, "valid")


_LOOP = asyncio.new_event_loop()


def run_pyhanko(chain: chaingen.Chain) -> Outcome:
    try:
        anchor = asn1_x509.Certificate.load(chain.anchor_der)
        others = [asn1_x509.Certificate.load(d) for d in chain.untrusted_ders]
        leaf = asn1_x509.Certificate.load(chain.leaf_der)
        context = ValidationContext(trust_roots=[anchor], other_certs=others, moment=AT,
                                    allow_fetching=False, revocation_mode="soft-fail")
        validator = CertificateValidator(leaf, validation_context=context)
        _LOOP.run_until_complete(validator.async_validate_usage(
            key_usage={"digital_signature"}, extended_key_usage={"server_auth"}))
    except Exception as exc:  # noqa: BLE001 - pyhanko's errors and asn1crypto's parse errors alike
        return Outcome(False, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return Outcome(True, "valid")


RUNNERS = {"bridgeca": run_bridgeca, "pyca": run_pyca, "pyhanko": run_pyhanko}


# --- the comparison -------------------------------------------------------------


@dataclass
class Row:
    chain: chaingen.Chain
    outcomes: dict[str, Outcome]

    @property
    def expected_valid(self) -> bool:
        return self.chain.defect == "none"

    def disagreeing(self) -> list[str]:
        return [e for e, o in self.outcomes.items() if o.valid is not self.expected_valid]


def run_all(seed: int = SEED, count: int = COUNT) -> list[Row]:
    rows = []
    for chain in chaingen.generate(seed, count):
        rows.append(Row(chain, {name: run(chain) for name, run in RUNNERS.items()}))
    return rows


@dataclass
class Findings:
    unlisted: list[tuple[Row, str]]  # (row, engine)
    listed_absent: list[tuple[str, str]]  # (kind, engine) listed but never seen
    listed_partial: list[tuple[str, str, int, int]]  # seen on some chains of the kind only
    wrong_code: list[Row]  # bridgeca invalid, for the defect, but with another code


def compare(rows: list[Row], kinds=None) -> Findings:
    kinds = set(kinds) if kinds is not None else set(chaingen.DEFECTS)
    rows = [r for r in rows if r.chain.defect in kinds]
    unlisted, seen, totals, wrong_code = [], Counter(), Counter(), []
    for row in rows:
        totals[row.chain.defect] += 1
        for engine in row.disagreeing():
            key = (row.chain.defect, engine)
            if key in DIFFERENCES and row.outcomes[engine].valid is not None:
                seen[key] += 1
            else:
                unlisted.append((row, engine))
        b = row.outcomes["bridgeca"]
        if b.valid is False and not row.expected_valid and b.reason not in EXPECTED_CODES[row.chain.defect]:
            wrong_code.append(row)
    absent, partial = [], []
    for key in DIFFERENCES:
        if key[0] not in kinds:
            continue
        if seen[key] == 0:
            absent.append(key)
        elif seen[key] != totals[key[0]]:
            partial.append((key[0], key[1], seen[key], totals[key[0]]))
    return Findings(unlisted, absent, partial, wrong_code)


def describe(row: Row, engine: str | None = None) -> str:
    c = row.chain
    parts = [f"{c.reproducer}: expected {'valid' if row.expected_valid else 'invalid'}"]
    for name, o in row.outcomes.items():
        if engine is None or name == engine or name == "bridgeca":
            verdict = {True: "valid", False: "invalid", None: "CRASH"}[o.valid]
            parts.append(f"  {name}: {verdict} [{o.reason}] {o.detail[:160]}")
    return "\n".join(parts)


def summary(rows: list[Row]) -> str:
    """Per defect kind: chains, and per engine how many answered as expected
    (with the reasons seen)."""
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row.chain.defect].append(row)
    lines = [f"{'defect':36} {'n':>3}  " + "  ".join(f"{e:>26}" for e in ENGINES)]
    for kind in chaingen.DEFECTS:
        group = by_kind.get(kind, [])
        cells = []
        for engine in ENGINES:
            agree = sum(1 for r in group if engine not in r.disagreeing())
            reasons = Counter(r.outcomes[engine].reason for r in group)
            top = ",".join(k for k, _ in reasons.most_common(2))
            cells.append(f"{agree:>3}/{len(group):<3} {top[:17]:>17}")
        lines.append(f"{kind:36} {len(group):>3}  " + "  ".join(cells))
    return "\n".join(lines)


# --- the tests ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return run_all()


def test_generator_is_reproducible():
    a, b = chaingen.make_chain(SEED, 7), chaingen.make_chain(SEED, 7)
    assert (a.topology, a.defect, a.target) == (b.topology, b.defect, b.target)
    # Same names and keys: the same TBS but for the (randomised) signatures of ECDSA.
    assert x509.load_der_x509_certificate(a.leaf_der).public_key() == x509.load_der_x509_certificate(b.leaf_der).public_key()
    assert x509.load_der_x509_certificate(a.leaf_der).subject == x509.load_der_x509_certificate(b.leaf_der).subject


def test_every_kind_and_topology_is_generated(rows):
    kinds = Counter(r.chain.defect for r in rows)
    assert set(kinds) == set(chaingen.DEFECTS) and min(kinds.values()) >= 8
    topologies = Counter(r.chain.topology for r in rows)
    assert set(topologies) == set(chaingen.TOPOLOGIES)
    assert len(rows) >= 300


def test_clean_chains_are_valid_everywhere(rows):
    """The yardsticks are usable: every engine accepts every clean chain (so a
    refusal elsewhere is the defect's doing)."""
    bad = [describe(r) for r in rows if r.chain.defect == "none" and r.disagreeing()]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("kind", [k for k in chaingen.DEFECTS if k != "none"])
def test_defect_kind(rows, kind):
    f = compare(rows, [kind])
    problems = []
    for row, engine in f.unlisted:
        why = "bridgeca is wrong (fix it)" if engine == "bridgeca" else "unlisted peer difference"
        problems.append(f"{why}:\n{describe(row, engine)}")
    for k, engine in f.listed_absent:
        problems.append(f"listed difference ({k}, {engine}) no longer occurs: take it off DIFFERENCES")
    for k, engine, seen, total in f.listed_partial:
        problems.append(f"listed difference ({k}, {engine}) occurs on {seen} of {total} chains only")
    for row in f.wrong_code:
        problems.append(f"bridgeca refuses with code {row.outcomes['bridgeca'].reason}, expected one of "
                        f"{sorted(EXPECTED_CODES[kind])}:\n{describe(row, 'bridgeca')}")
    assert not problems, f"{len(problems)} problem(s) for {kind}:\n" + "\n".join(problems[:6])


def test_differences_name_peers_and_rfc_text():
    for (kind, engine), diff in DIFFERENCES.items():
        assert kind in chaingen.DEFECTS and engine in ("pyca", "pyhanko"), (kind, engine)
        assert re.search(r"RFC \d+ (section )?\d", diff.rfc) and diff.right


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    all_rows = run_all()
    print(summary(all_rows))
    findings = compare(all_rows)
    print(f"\n{len(all_rows)} chains in {time.perf_counter() - started:.1f} s")
    by = Counter((r.chain.defect, e) for r, e in findings.unlisted)
    print(f"unlisted disagreements: {len(findings.unlisted)}")
    for (kind, engine), n in sorted(by.items()):
        print(f"  {kind:36} {engine:9} {n}")
    print(f"listed but absent: {findings.listed_absent}")
    print(f"listed but partial: {findings.listed_partial}")
    print(f"bridgeca wrong code: {len(findings.wrong_code)}")
    if "-v" in sys.argv:
        for row, engine in findings.unlisted:
            print(describe(row, engine))
