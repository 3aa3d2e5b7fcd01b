"""Issue 11: a hostile CMS message is refused cheaply. Timed in the same run:

- a normal CMS SignedData (one SignerInfo by an ECDSA P-256 leaf, its issuing
  CA in the message) through a reused Verifier: parse, signed attributes,
  one signature, the signer's chain (the reference);
- the 400 x 400 hostile message of the issue (400 certificates sharing one
  issuer and serial, 400 SignerInfos with well-formed garbage ECDSA
  signatures, 221 KB), answered ``budget_exceeded``; before the budget it
  took 38 s of CPU for a 224 KB body;
- the costliest message the limits let through: as many certificates as
  allowed (128: parsed), 64 of them matching the one SignerInfo's identifier
  (64 pairs, the limit: each a real ECDSA verification of a garbage
  signature), answered ``signature_invalid``. (A second SignerInfo is never
  looked at: the first failure is the answer.)

One operation per benchmark function; results are checked outside the timed
part. The ratios to the normal message are printed at the end (``-s``).

    .venv/bin/pytest -q benchmarks/bench_cms_hostile.py --benchmark-only -s
"""
from __future__ import annotations

import pytest

# benchmarks/conftest.py puts the repository on sys.path (tests.* below).
from pki.budget import DEFAULT_LIMITS
from pki.cms import SIGNATURE_INVALID, verify_cms
from pki.errors import BUDGET_EXCEEDED
from tests import pkibuilder as pb
from tests.pki.test_cms_budget import (
    garbage_signature,
    make_world,
    signed_data,
    signer_info,
)
from tests.pkibuilder import AT

MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="module")
def world():
    return make_world(400)


def _run(benchmark, name, message, verifier, rounds):
    result = benchmark.pedantic(verify_cms, args=(message, verifier), kwargs={"at": AT}, rounds=rounds,
                                iterations=1, warmup_rounds=5)
    MEDIANS[name] = benchmark.stats.stats.median
    return result


def test_normal_cms(benchmark, world):
    v = world.verifier()
    result = _run(benchmark, "normal", world.valid, v, 300)
    assert result.valid, result.to_dict()


def test_hostile_cms_400_by_400(benchmark, world):
    message = world.hostile(400, 400)
    result = _run(benchmark, "hostile 400 x 400", message, world.verifier(), 300)
    assert result.error is not None and result.error.code == BUDGET_EXCEEDED, result.error
    print(f"\nhostile message: {len(message)} bytes")


def test_costliest_message_within_the_limits(benchmark, world):
    pairs, certificates = DEFAULT_LIMITS.cms_candidate_pairs, DEFAULT_LIMITS.cms_certificates
    bulk = [pb.der(pb.leaf(world.ca, f"Bulk {i}")) for i in range(certificates - pairs)]
    message = signed_data(world.twins[:pairs] + bulk, [signer_info(world.twins[0], None, signature=garbage_signature(0))])
    result = _run(benchmark, f"{certificates} certs, {pairs} pairs", message, world.verifier(), 30)
    assert result.error is not None and result.error.code == SIGNATURE_INVALID, result.error


@pytest.fixture(scope="module", autouse=True)
def print_ratios():
    yield
    if "normal" in MEDIANS:
        ref = MEDIANS["normal"]
        print()
        for name, median in MEDIANS.items():
            print(f"{name:<32} median {median * 1e3:8.3f} ms   x normal {median / ref:6.2f}")
