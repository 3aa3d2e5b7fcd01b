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
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509 import verification as pyca
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from pki import Verifier
from pki.errors import InputError
from tests.pki import chaingen
from tests.pki.chaingen import AT, SERVER_AUTH, SERVER_NAME

SEED = 20250601
COUNT = len(chaingen.DEFECTS) * 9  # every kind nine times (38 kinds: 342 chains)

# "bridgeca-rfc5280": the same Verifier with profile="rfc5280" and
# anchor_constraints=False (RFC 5280 6.1 alone, the anchor a bare name and key),
# held to RFC 5280 6.1's verdict, not the strict one.
# "bridgeca-warm": one Verifier asked about the leaf's clean twin (same issuer)
# twice first, so that the leaf is answered through its caches (KnownChains: a CA
# chain that validated, its state after the CA part): held to the same verdict as "bridgeca".
ENGINES = ("bridgeca", "pyca", "pyhanko", "bridgeca-rfc5280", "bridgeca-warm")

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
    "ee_ski_critical": MALFORMED,
    "ca_ski_critical": MALFORMED,
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
    "avoidable_expired_cross": set(),
    "peer_profile_no_san": set(),
    "peer_profile_no_eku": set(),
}
assert set(EXPECTED_CODES) == set(chaingen.DEFECTS)

# Defects RFC 5280 6.1 itself does not refuse when the anchor is a bare name
# and key (6.1.1 (d)): rules of section 4 for conforming CAs, and the anchor's
# own content. bridgeca-rfc5280 must accept these chains and refuse the rest.
# (A malformed critical nameConstraints in an intermediate stays refused: RFC
# 5280 4.2, "MUST reject the certificate if it encounters ... a critical
# extension that contains information that it cannot process". EKU in a CA
# constrains the leaf under either profile: a purpose, not a profile rule.)
RFC5280_ACCEPTS = frozenset({
    "anchor_expired", "anchor_not_yet_valid", "anchor_no_basic_constraints", "anchor_ca_false",
    "anchor_no_key_cert_sign", "anchor_unknown_critical_extension", "anchor_name_constraints_violated",
    "ee_without_aki", "aki_critical", "ee_ski_critical", "ca_ski_critical", "ca_without_ski",
    "serial_zero", "serial_negative", "serial_over_20_octets", "empty_subject_noncritical_san",
    "ee_key_cert_sign", "aia_critical", "ee_name_constraints", "san_invalid_email",
    # A deviation of the rfc5280 profile, chosen: a dNSName constraint with a
    # leading period permits the names below it, as Go's crypto/x509 and
    # OpenSSL read it (RFC 5280 4.2.1.10 defines the form without the period,
    # which matches nothing here). The strict profile refuses the constraint
    # (malformed_certificate). See ARCHITECTURE.md, deviations.
    "nc_dns_leading_period",
})
assert RFC5280_ACCEPTS <= set(chaingen.DEFECTS)


def expected_valid(kind: str, engine: str) -> bool:
    if engine == "bridgeca-warm":
        engine = "bridgeca"
    if engine == "bridgeca-rfc5280":
        return kind in chaingen.VALID_KINDS or kind in RFC5280_ACCEPTS
    return kind in chaingen.VALID_KINDS


@dataclass(frozen=True)
class Difference:
    """A peer's answer that differs from the defect's verdict, and why."""

    rfc: str  # section and a short quote
    right: str  # which engine is right, and on what ground


# The anchor as a bare name and key (pyhanko's default for a trust root given
# as a certificate).
_ANCHOR = Difference(
    "RFC 5280 section 6.2: 'The path validation algorithm presented in Section 6.1 does not assume that "
    "trust anchor information is provided in self-signed certificates and does not specify processing rules "
    "for additional information included in such certificates' (RFC 5937 gives those rules)",
    "both conform to RFC 5280; bridgeca applies the anchor's validity, CA-ness, critical extensions and name "
    "constraints by choice (anchor_constraints=true, issue 11; pyca and Go do too), and with "
    "anchor_constraints=false answers as pyhanko does (the bridgeca-rfc5280 column)",
)


def _ca_must(section: str, quote: str, pyca_note: str = "") -> Difference:
    """A rule of RFC 5280 section 4 for conforming CAs, which section 6.1
    does not check: the strict profile refuses, a 6.1-only engine accepts."""
    return Difference(
        f"RFC 5280 section {section}: '{quote}'",
        "bridgeca: the rule binds the issuing CA and the strict profile (the default, issue 11) refuses what "
        "breaks it; the peer checks RFC 5280 6.1 only here, which this rule is not part of (bridgeca-rfc5280 "
        "accepts too)" + pyca_note,
    )


_AKI = ("4.2.1.1", "The keyIdentifier field of the authorityKeyIdentifier extension MUST be included in all "
        "certificates generated by conforming CAs ... Conforming CAs MUST mark this extension as non-critical")
_SKI_CRITICAL = ("4.2.1.2", "Conforming CAs MUST mark this extension as non-critical")
_SKI_CA = ("4.2.1.2", "this extension MUST appear in all conforming CA certificates, that is, all certificates "
           "including the basic constraints extension (Section 4.2.1.9) where the value of cA is TRUE")
_SERIAL = ("4.1.2.2", "The serial number MUST be a positive integer assigned by the CA to each certificate ... "
           "Conforming CAs MUST NOT use serialNumber values longer than 20 octets")
_EMPTY_SUBJECT = ("4.1.2.6", "If subject naming information is present only in the subjectAltName extension ... "
                  "then the subject name MUST be an empty sequence and the subjectAltName extension MUST be critical")
_EE_CERT_SIGN = ("4.2.1.3", "If the keyCertSign bit is asserted, then the cA bit in the basic constraints "
                 "extension (Section 4.2.1.9) MUST also be asserted")
_AIA = ("4.2.2.1", "Conforming CAs MUST mark this extension as non-critical")
_EE_NC = ("4.2.1.10", "The name constraints extension, which MUST be used only in a CA certificate")
_EMAIL = ("4.2.1.6", "The format of an rfc822Name is a \"Mailbox\" as defined in Section 4.1.2 of [RFC2821]")
_IP_MASK = Difference(
    "RFC 5280 section 4.2.1.10: 'For IPv4 addresses, the iPAddress field of GeneralName MUST contain eight (8) "
    "octets, encoded in the style of RFC 4632 (CIDR) to represent an address range'; section 4.2: 'A "
    "certificate-using system MUST reject the certificate if it encounters ... a critical extension that "
    "contains information that it cannot process'",
    "bridgeca: a mask that is not a prefix is no CIDR range, and the critical nameConstraints cannot be "
    "processed as written; the peer reads no iPAddress constraint here because the leaf has no iPAddress",
)

# (defect kind, engine) -> the RFC text that settles it. Peers only: a bridgeca
# disagreement is a bug to fix, never an entry here.
DIFFERENCES: dict[tuple[str, str], Difference] = {
    **{(kind, "pyhanko"): _ANCHOR for kind in (
        "anchor_expired", "anchor_not_yet_valid", "anchor_no_basic_constraints", "anchor_ca_false",
        "anchor_no_key_cert_sign", "anchor_unknown_critical_extension", "anchor_name_constraints_violated")},
    ("ee_without_aki", "pyhanko"): _ca_must(*_AKI),
    ("aki_critical", "pyhanko"): _ca_must(*_AKI),
    ("ee_ski_critical", "pyhanko"): _ca_must(*_SKI_CRITICAL),
    ("ee_ski_critical", "pyca"): _ca_must(*_SKI_CRITICAL, "; pyca checks the criticality of SKI in CA certificates only"),
    ("ca_ski_critical", "pyhanko"): _ca_must(*_SKI_CRITICAL),
    ("ca_without_ski", "pyhanko"): _ca_must(*_SKI_CA),
    ("ca_without_ski", "pyca"): _ca_must(*_SKI_CA, "; pyca's web PKI profile does not require SKI in a CA"),
    ("serial_zero", "pyhanko"): _ca_must(*_SERIAL),
    ("serial_zero", "pyca"): _ca_must(*_SERIAL, "; pyca refuses negative and over-long serials but accepts zero "
                                       "(4.1.2.2's note: 'Certificate users SHOULD be prepared to gracefully handle "
                                       "such certificates')"),
    ("serial_negative", "pyhanko"): _ca_must(*_SERIAL),
    ("serial_over_20_octets", "pyhanko"): _ca_must(*_SERIAL),
    ("empty_subject_noncritical_san", "pyhanko"): _ca_must(*_EMPTY_SUBJECT),
    ("ee_key_cert_sign", "pyhanko"): _ca_must(*_EE_CERT_SIGN),
    ("aia_critical", "pyhanko"): _ca_must(*_AIA),
    ("ee_name_constraints", "pyhanko"): _ca_must(*_EE_NC),
    ("san_invalid_email", "pyhanko"): _ca_must(*_EMAIL),
    ("san_invalid_email", "pyca"): _ca_must(*_EMAIL, "; pyca reads only the dNSName entries a server name needs"),
    ("nc_ip_mask_not_prefix", "pyhanko"): _IP_MASK,
    ("nc_ip_mask_not_prefix", "pyca"): _IP_MASK,
    ("eku_ca_restricting", "pyhanko"): Difference(
        "RFC 5280 section 4.2.1.12: 'In general, this extension will appear only in end entity certificates' "
        "(RFC 5280 defines no processing of extendedKeyUsage in CA certificates)",
        "both conform to RFC 5280: pyhanko checks extendedKeyUsage in the leaf only; bridgeca, like pyca, Go and "
        "Mozilla, lets an extendedKeyUsage in a CA restrict the leaves below it (issue 11's choice)",
    ),
    ("ku_without_digital_signature", "pyca"): Difference(
        "RFC 5280 section 4.2.1.3: 'The digitalSignature bit is asserted when the subject public key is used for "
        "verifying digital signatures, other than signatures on certificates (bit 5) and CRLs (bit 6)'",
        "bridgeca (peer-profile): the relying party asked for digitalSignature and this leaf's keyUsage forbids "
        "it; pyca's server verifier has no keyUsage requirement to ask (its web PKI profile only forbids "
        "keyCertSign in a leaf)",
    ),
    ("peer_profile_no_san", "pyca"): Difference(
        "RFC 5280 section 4.2.1.6: 'If the subject field contains an empty sequence, then the issuing CA MUST "
        "include a subjectAltName extension that is marked as critical' (with a subject, subjectAltName is optional)",
        "bridgeca and pyhanko (peer-profile): the chain is valid under RFC 5280; pyca's web PKI profile "
        "requires subjectAltName in a server certificate (CA/Browser Forum rule) and names the server from it only",
    ),
}


# --- the engines --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    valid: bool | None  # None: the engine crashed (an exception it should not raise)
    reason: str  # bridgeca: the error code; peers: a short category
    detail: str = ""


PURPOSE = {"extended_key_usage": [SERVER_AUTH], "key_usage": ["digitalSignature"]}


def run_bridgeca(chain: chaingen.Chain, warm: bool = False, **options) -> Outcome:
    try:
        verifier = Verifier(anchors=[chain.anchor_der], untrusted=chain.untrusted_ders)
        if warm:
            for _ in range(2):
                twin = verifier.verify(chain.twin_der, at=AT, **PURPOSE, **options)
            if chain.target == "leaf" and not twin.valid:  # the CA chain is clean: the twin must pass
                return Outcome(None, "twin_invalid", str(twin.error))
        result = verifier.verify(chain.leaf_der, at=AT, **PURPOSE, **options)
    except InputError as exc:
        return Outcome(False, "input_error", str(exc))
    except Exception as exc:  # noqa: BLE001 - any other exception is a bug
        return Outcome(None, "crash", f"{type(exc).__name__}: {exc}")
    if result.valid:
        return Outcome(True, "valid")
    return Outcome(False, result.error.code, str(result.error))


_PYCA_REASONS = [
    ("expired", r"expired|not yet valid|validity|not valid at validation time"),
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
            # extended_optional: a leaf without extendedKeyUsage is unrestricted (RFC 5280 4.2.1.12)
            key_usage={"digital_signature"}, extended_key_usage={"server_auth"}, extended_optional=True))
    except Exception as exc:  # noqa: BLE001 - pyhanko's errors and asn1crypto's parse errors alike
        return Outcome(False, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return Outcome(True, "valid")


RUNNERS = {
    "bridgeca": run_bridgeca,
    "pyca": run_pyca,
    "pyhanko": run_pyhanko,
    "bridgeca-rfc5280": lambda chain: run_bridgeca(chain, profile="rfc5280", anchor_constraints=False),
    "bridgeca-warm": lambda chain: run_bridgeca(chain, warm=True),
}
assert tuple(RUNNERS) == ENGINES


# --- the comparison -------------------------------------------------------------


@dataclass
class Row:
    chain: chaingen.Chain
    outcomes: dict[str, Outcome]

    @property
    def expected_valid(self) -> bool:
        return expected_valid(self.chain.defect, "bridgeca")

    def disagreeing(self) -> list[str]:
        return [e for e, o in self.outcomes.items() if o.valid is not expected_valid(self.chain.defect, e)]


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
    wrong_code: list[tuple[Row, str]]  # bridgeca invalid, for the defect, but with another code


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
        for engine in ("bridgeca", "bridgeca-warm"):
            b = row.outcomes[engine]
            if b.valid is False and b.reason not in EXPECTED_CODES[row.chain.defect]:
                wrong_code.append((row, engine))
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
    parts = [f"{c.reproducer}"]
    for name, o in row.outcomes.items():
        if engine is None or name == engine or name == "bridgeca":
            verdict = {True: "valid", False: "invalid", None: "CRASH"}[o.valid]
            expected = "valid" if expected_valid(c.defect, name) else "invalid"
            parts.append(f"  {name}: {verdict} (expected {expected}) [{o.reason}] {o.detail[:160]}")
    return "\n".join(parts)


def summary(rows: list[Row]) -> str:
    """Per defect kind: chains, and per engine how many answered as expected
    (with the reasons seen)."""
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row.chain.defect].append(row)
    lines = [f"{'defect':34} {'n':>3}  " + "  ".join(f"{e:>24}" for e in ENGINES)]
    for kind in chaingen.DEFECTS:
        group = by_kind.get(kind, [])
        cells = []
        for engine in ENGINES:
            agree = sum(1 for r in group if engine not in r.disagreeing())
            reasons = Counter(r.outcomes[engine].reason for r in group)
            top = ",".join(k for k, _ in reasons.most_common(2))
            cells.append(f"{agree:>2}/{len(group):<2} {top[:18]:>18}")
        lines.append(f"{kind:34} {len(group):>3}  " + "  ".join(cells))
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
    assert sum(1 for r in rows if r.chain.defect == "none") >= 8


@pytest.mark.parametrize("kind", [k for k in chaingen.DEFECTS if k != "none"])
def test_defect_kind(rows, kind):
    f = compare(rows, [kind])
    problems = []
    for row, engine in f.unlisted:
        why = "bridgeca is wrong (fix it)" if engine.startswith("bridgeca") else "unlisted peer difference"
        problems.append(f"{why}:\n{describe(row, engine)}")
    for k, engine in f.listed_absent:
        problems.append(f"listed difference ({k}, {engine}) no longer occurs: take it off DIFFERENCES")
    for k, engine, seen, total in f.listed_partial:
        problems.append(f"listed difference ({k}, {engine}) occurs on {seen} of {total} chains only")
    for row, engine in f.wrong_code:
        problems.append(f"{engine} refuses with code {row.outcomes[engine].reason}, expected one of "
                        f"{sorted(EXPECTED_CODES[kind])}:\n{describe(row, engine)}")
    assert not problems, f"{len(problems)} problem(s) for {kind}:\n" + "\n".join(problems[:6])


def test_differences_name_peers_and_rfc_text():
    for (kind, engine), diff in DIFFERENCES.items():
        assert kind in chaingen.DEFECTS and engine in ("pyca", "pyhanko"), (kind, engine)  # never bridgeca
        assert re.search(r"RFC \d+ (section )?\d", diff.rfc) and diff.right


if __name__ == "__main__":
    import sys
    import time
    import warnings

    warnings.simplefilter("ignore")  # cryptography's warning on non-positive serials

    started = time.perf_counter()
    all_rows = run_all()
    print(summary(all_rows))
    findings = compare(all_rows)
    print(f"\n{len(all_rows)} chains in {time.perf_counter() - started:.1f} s")
    by = Counter((r.chain.defect, e) for r, e in findings.unlisted)
    print(f"unlisted disagreements: {len(findings.unlisted)}")
    for (kind, engine), n in sorted(by.items()):
        print(f"  {kind:34} {engine:16} {n}")
    listed = Counter((r.chain.defect, e) for r in all_rows for e in r.disagreeing() if (r.chain.defect, e) in DIFFERENCES)
    print(f"listed differences seen: {sum(listed.values())} on {len(listed)} (kind, engine) pairs")
    print(f"listed but absent: {findings.listed_absent}")
    print(f"listed but partial: {findings.listed_partial}")
    print(f"bridgeca wrong code: {len(findings.wrong_code)}")
    if "-v" in sys.argv:
        for row, engine in findings.unlisted:
            print(describe(row, engine))
