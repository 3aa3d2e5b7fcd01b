"""Hostile topologies end within one verification's budget, with the right
code, never a hang: a 100-deep chain, a dense mesh of cross-certificates with
loops, thousands of name-colliding candidate issuers, and a policy-mapping
bomb (OpenSSL CVE-2023-0464). Outcomes and counts only, never times."""
from __future__ import annotations

import pytest

from pki import Verifier
from pki.budget import DEFAULT_LIMITS, Budget, Limits
from pki.certificate import parse_certificate
from pki.signatures import SignatureVerifier
from tests import pkibuilder as pb
from tests.pkibuilder import AT, der

# --- a chain of 100 intermediates --------------------------------------------


@pytest.fixture(scope="module")
def chain():
    anchor = pb.root("Chain Root")
    cas = [anchor]
    for i in range(100):
        cas.append(pb.intermediate(cas[-1], f"Chain CA {i:03d}"))
    leaf = pb.leaf(cas[-1], "chain leaf")
    return anchor, [ca.cert for ca in cas[1:]], leaf


def test_chain_of_100_intermediates_exceeds_the_depth_limit(chain):
    anchor, intermediates, leaf = chain
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in intermediates])
    r = v.verify(der(leaf), at=AT)
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "budget_exceeded"
    assert "maximum depth" in d["error"]["message"]
    # The error names the certificate where the search stopped, inside the
    # attempted path (leaf + max_depth - 1 intermediates).
    assert d["error"]["certificate"] == DEFAULT_LIMITS.max_depth - 1
    assert len(d["path"]) == DEFAULT_LIMITS.max_depth
    assert d["path"][0]["subject"] == "CN=chain leaf,C=CN"
    assert d["path"][-1]["subject"] == "CN=Chain CA 093,C=CN"
    # The search stopped at the limit: it checked no signature beyond it (the
    # issuer of the deepest certificate is not even tried, so one fewer check
    # than there are certificates in the attempted path).
    assert len(v.signatures._known) == DEFAULT_LIMITS.max_depth - 1


def test_chain_of_100_validates_when_the_limit_allows_it(chain):
    """The depth limit, not something else, is what stopped the chain."""
    anchor, intermediates, leaf = chain
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in intermediates], limits=Limits(max_depth=101))
    r = v.verify(der(leaf), at=AT)
    assert r.valid, r.to_dict()["error"]
    assert len(r.path) == 102
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in intermediates], limits=Limits(max_depth=100))
    r = v.verify(der(leaf), at=AT)
    assert not r.valid and r.to_dict()["error"]["code"] == "budget_exceeded"


# --- a dense mesh of cross-certificates ---------------------------------------

MESH = 50


@pytest.fixture(scope="module")
def mesh():
    """50 CAs named "Mesh CA nn", each cross-certifying every other one
    (2450 cross-certificates, loops of every length), and a leaf of CA 00."""
    cas = [pb.root(pb.name(f"Mesh CA {i:02d}", "Mesh")) for i in range(MESH)]
    pairs = [(i, j) for i in range(MESH) for j in range(MESH) if i != j]
    cross = [pb.cross_certify(cas[i], cas[j]) for i, j in pairs]
    leaf = pb.leaf(cas[0], "mesh leaf")
    anchor = pb.root("Mesh Anchor")
    return cas, pairs, cross, leaf, anchor


def test_mesh_without_a_way_out_ends_with_budget_exceeded(mesh):
    cas, _, cross, leaf, anchor = mesh
    assert len(cross) >= 50 * 49
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in cross])
    r = v.verify(der(leaf), at=AT)
    d = r.to_dict()
    assert not r.valid
    # The design: the signature-check budget runs out long before the
    # mesh's paths are enumerated (there are about 49**7 of them).
    assert d["error"]["code"] == "budget_exceeded"
    assert "signature checks" in d["error"]["message"]
    assert len(v.signatures._known) == DEFAULT_LIMITS.signature_checks
    assert d["path"][0]["subject"] == "CN=mesh leaf,C=CN"


def test_mesh_budget_error_names_a_certificate(mesh):
    cas, _, cross, leaf, anchor = mesh
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in cross])
    d = v.verify(der(leaf), at=AT).to_dict()
    assert d["error"]["code"] == "budget_exceeded"
    assert isinstance(d["error"]["certificate"], int)
    assert 0 <= d["error"]["certificate"] < len(d["path"])


def test_mesh_repeated_calls_stay_bounded(mesh):
    """Each call gets its own budget: a few calls in a row all end."""
    cas, _, cross, leaf, anchor = mesh
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in cross])
    for _ in range(3):
        r = v.verify(der(leaf), at=AT)
        assert r.to_dict()["error"]["code"] == "budget_exceeded"


class _Stop(Exception):
    pass


class _CountingSignatures(SignatureVerifier):
    """Counts the signature questions asked once ``limit`` is set, and stops
    the call past it (a subclass: pki's SignatureVerifier may be compiled, and
    its methods then cannot be patched on an instance)."""

    calls = 0
    limit: int | None = None

    def verify(self, *args, **kwargs):
        if self.limit is not None:
            self.calls += 1
            if self.calls > self.limit:
                raise _Stop
        return super().verify(*args, **kwargs)


def test_mesh_search_is_bounded_when_the_signature_cache_is_warm(mesh):
    cas, pairs, cross, leaf, anchor = mesh
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in cross])
    v.signatures = counting = _CountingSignatures(v.registry)
    # Warm the Verifier's cache as earlier calls on other leaves would.
    spki = [parse_certificate(ca.der).spki for ca in cas]
    warm = Budget(Limits(signature_checks=10**9))
    for (i, _), c in zip(pairs, cross, strict=True):
        assert v.signatures.verify(spki[i], None, parse_certificate(der(c)), warm)
    assert v.signatures.verify(spki[0], None, parse_certificate(der(leaf)), warm)

    # Count every signature question the search asks (cached or not); a
    # cold call asks about 6,000. Stop far above that instead of hanging.
    counting.calls, counting.limit = 0, 60_000
    try:
        r = v.verify(der(leaf), at=AT)
    except _Stop:
        pytest.fail(f"the search asked more than {counting.calls - 1} signature questions without running out of budget")
    assert r.to_dict()["error"]["code"] in ("budget_exceeded", "no_path")


def test_mesh_with_the_anchor_reachable_validates(mesh):
    cas, _, cross, leaf, anchor = mesh
    exit_cert = pb.cross_certify(anchor, cas[0])
    v = Verifier(anchors=[anchor.pem], untrusted=[der(exit_cert)] + [der(c) for c in cross])
    r = v.verify(der(leaf), at=AT)
    assert r.valid, r.to_dict()["error"]
    assert [e["subject"] for e in r.to_dict()["path"]] == [
        "CN=mesh leaf,C=CN", "CN=Mesh CA 00,O=Mesh,C=CN", "CN=Mesh Anchor,C=CN"]
    assert r.path[1].der == der(exit_cert)


def test_mesh_with_the_anchor_reachable_validates_whatever_the_order(mesh):
    cas, _, cross, leaf, anchor = mesh
    exit_cert = pb.cross_certify(anchor, cas[0])
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in cross] + [der(exit_cert)])
    r = v.verify(der(leaf), at=AT)
    assert r.valid, r.to_dict()["error"]
    assert len(r.path) == 3


# --- thousands of candidate issuers ------------------------------------------

FAKES = 2000


@pytest.fixture(scope="module")
def crowd():
    """An issuing CA and 2000 impostors with its exact subject name but their
    own keys (so their SKIs do not match the leaf's AKI), listed first."""
    anchor = pb.root("Crowd Root")
    subject = pb.name("Crowd Issuing CA", "Crowd")
    real = pb.intermediate(anchor, subject)
    fakes = [pb.intermediate(anchor, subject).cert for _ in range(FAKES)]
    leaf = pb.leaf(real, "crowd leaf")
    leaf_no_aki = pb.leaf(real, "crowd leaf without AKI", aki=None)
    return anchor, real, fakes, leaf, leaf_no_aki


def test_thousands_of_wrong_key_candidates_cost_nothing(crowd):
    anchor, real, fakes, leaf, _ = crowd
    # Two signatures on the real path (leaf, issuing CA). A search that tried
    # the impostors in list order would need 2000 more.
    v = Verifier(anchors=[anchor.pem], untrusted=[der(f) for f in fakes] + [real.der],
                 limits=Limits(signature_checks=4))
    r = v.verify(der(leaf), at=AT)
    assert r.valid, r.to_dict()["error"]
    assert r.path[1].der == real.der
    assert len(v.signatures._known) == 2


def test_thousands_of_candidates_without_aki_end_within_budget(crowd):
    """Without an AKI nothing tells the impostors apart: the search must
    still end, with budget_exceeded after exactly the allowed checks."""
    anchor, real, fakes, _, leaf_no_aki = crowd
    v = Verifier(anchors=[anchor.pem], untrusted=[der(f) for f in fakes] + [real.der])
    r = v.verify(der(leaf_no_aki), at=AT, profile="rfc5280")
    assert not r.valid
    assert r.to_dict()["error"]["code"] == "budget_exceeded"
    assert len(v.signatures._known) == DEFAULT_LIMITS.signature_checks
    # With the real issuer first it validates at once (under the rfc5280
    # profile: the strict one refuses an end entity without AKI outright).
    v = Verifier(anchors=[anchor.pem], untrusted=[real.der] + [der(f) for f in fakes])
    assert v.verify(der(leaf_no_aki), at=AT, profile="rfc5280").valid


def test_a_leaf_the_strict_profile_refuses_costs_no_search(crowd):
    anchor, real, fakes, _, leaf_no_aki = crowd
    v = Verifier(anchors=[anchor.pem], untrusted=[der(f) for f in fakes] + [real.der])
    r = v.verify(der(leaf_no_aki), at=AT)
    assert r.to_dict()["error"]["code"] == "malformed_certificate"
    assert "authorityKeyIdentifier" in r.to_dict()["error"]["message"]
    assert len(v.signatures._known) == 0


# --- a policy-mapping bomb (CVE-2023-0464) ------------------------------------

LEVELS, WIDTH = 5, 20


def _policy(level: int, k: int) -> str:
    return f"{pb.ARC}.77.{level}.{k}"


@pytest.fixture(scope="module")
def bomb():
    """5 intermediates, each asserting 20 policies and mapping each of them to
    all 20 policies of the next level (400 mappings per certificate). RFC
    5280's tree would hold 20**6 = 64 million nodes; RFC 9618's graph a few
    thousand."""
    anchor = pb.root("Bomb Root")
    issuer, certs = anchor, []
    for level in range(1, LEVELS + 1):
        policies = [_policy(level, k) for k in range(WIDTH)]
        mappings = [(p, _policy(level + 1, j)) for p in policies for j in range(WIDTH)]
        issuer = pb.intermediate(issuer, f"Bomb CA {level}", policies=policies, mappings=mappings)
        certs.append(issuer.cert)
    leaf = pb.leaf(issuer, "bomb leaf", policies=[_policy(LEVELS + 1, k) for k in range(WIDTH)])
    return anchor, certs, leaf


def test_policy_mapping_bomb_completes_with_the_default_budget(bomb):
    anchor, certs, leaf = bomb
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in certs])
    r = v.verify(der(leaf), at=AT, explicit_policy=True)
    d = r.to_dict()
    assert r.valid, d["error"]
    # Reported in the anchor's domain: the 20 policies of the first level.
    assert d["policies"] == sorted(_policy(1, k) for k in range(WIDTH))
    # A user policy from the first level is honoured as well.
    r = v.verify(der(leaf), at=AT, policies=[_policy(1, 3)], explicit_policy=True)
    assert r.valid and r.to_dict()["policies"] == [_policy(1, 3)]


def test_policy_mapping_bomb_trips_a_small_policy_node_budget(bomb):
    anchor, certs, leaf = bomb
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in certs], limits=Limits(policy_nodes=1000))
    r = v.verify(der(leaf), at=AT, explicit_policy=True)
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "budget_exceeded"
    assert "policy" in d["error"]["message"]


def test_policy_mapping_bomb_node_count_is_linear(bomb):
    """The graph's size: nodes + edges charged stay below 6 levels x
    (20 nodes + 400 edges + 400 mappings), far from 20**6."""
    anchor, certs, leaf = bomb
    bound = (LEVELS + 1) * (WIDTH + 2 * WIDTH * WIDTH)
    v = Verifier(anchors=[anchor.pem], untrusted=[der(c) for c in certs], limits=Limits(policy_nodes=bound))
    assert v.verify(der(leaf), at=AT, explicit_policy=True).valid
