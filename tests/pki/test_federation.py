"""A bridge federation built in code: member A <-> bridge <-> member B.

The bridge issues a cross-certificate to each member root (bridge policy ->
member policy, issuerDomainPolicy the bridge's); each member root issues a
reverse certificate to the bridge (member policy -> bridge policy). A leaf of
A validates from the bridge and from B's root, with the policy set reported
in the anchor's domain.
"""
from __future__ import annotations

import hashlib

import pytest
from cryptography import x509

from pki import Verifier
from tests import pkibuilder as pb
from tests.pkibuilder import AT, BRIDGE_HIGH, BRIDGE_MEDIUM, der, pem


@pytest.fixture(scope="module")
def fed() -> pb.Federation:
    # B maps only its medium policy back to the bridge: B's high policy is
    # one B never mapped.
    return pb.federation(reverse_mapped={"B": ("medium",)})


def subjects(result) -> list[str]:
    return [entry["subject"] for entry in result.to_dict()["path"]]


def test_leaf_of_a_validates_from_the_bridge_with_bridge_policies(fed):
    a = fed.members["A"]
    v = Verifier(anchors=[fed.bridge.pem], untrusted=fed.untrusted())
    r = v.verify(pem(a.leaves["high"]), at=AT)
    d = r.to_dict()
    assert r.valid, d["error"]
    assert d["error"] is None
    # A's high policy, reported in the bridge's domain.
    assert d["policies"] == [BRIDGE_HIGH]
    # leaf <- issuing CA <- cross(bridge -> A) <- bridge
    assert subjects(r) == [
        "CN=A person high,O=Guangdong,C=CN",
        "CN=A Issuing CA,O=Guangdong,C=CN",
        "CN=A Root CA,O=Guangdong,C=CN",
        "CN=GD Bridge CA,O=Guangdong Cross-Certification Platform,C=CN",
    ]
    path = d["path"]
    assert path[2]["sha256"] == hashlib.sha256(der(fed.cross["A"])).hexdigest()
    assert path[2]["issuer"] == path[3]["subject"]
    assert path[2]["serial"] == format(fed.cross["A"].serial_number, "x")
    assert path[-1]["sha256"] == hashlib.sha256(fed.bridge.der).hexdigest()
    for child, parent in zip(path, path[1:], strict=False):
        assert child["issuer"] == parent["subject"]
    assert d["revocation"] == "not_checked"


def test_medium_leaf_of_a_maps_to_bridge_medium(fed):
    a = fed.members["A"]
    v = Verifier(anchors=[fed.bridge.der], untrusted=[der(c) for c in fed.cross.values()] + [a.issuing.der])
    r = v.verify(der(a.leaves["medium"]), at=AT, policies=[BRIDGE_MEDIUM], explicit_policy=True)
    assert r.valid, r.to_dict()["error"]
    assert r.to_dict()["policies"] == [BRIDGE_MEDIUM]
    # The high leaf is not acceptable under bridge medium.
    r = v.verify(der(a.leaves["high"]), at=AT, policies=[BRIDGE_MEDIUM], explicit_policy=True)
    assert not r.valid
    assert r.to_dict()["error"]["code"] == "policy_required"


def test_leaf_of_a_validates_from_b_root_with_b_policies(fed):
    a, b = fed.members["A"], fed.members["B"]
    v = Verifier(anchors=[b.root.pem], untrusted=fed.untrusted())
    r = v.verify(pem(a.leaves["medium"]), at=AT, policies=[b.policies[0]], explicit_policy=True)
    d = r.to_dict()
    assert r.valid, d["error"]
    assert d["policies"] == [b.policies[0]]  # B medium, B's domain
    # leaf <- issuing CA <- cross(bridge -> A) <- reverse(B -> bridge) <- B root
    assert subjects(r) == [
        "CN=A person medium,O=Guangdong,C=CN",
        "CN=A Issuing CA,O=Guangdong,C=CN",
        "CN=A Root CA,O=Guangdong,C=CN",
        "CN=GD Bridge CA,O=Guangdong Cross-Certification Platform,C=CN",
        "CN=B Root CA,O=Hong Kong,C=CN",
    ]
    assert [e["issuer"] for e in d["path"]] == [
        "CN=A Issuing CA,O=Guangdong,C=CN",
        "CN=A Root CA,O=Guangdong,C=CN",
        "CN=GD Bridge CA,O=Guangdong Cross-Certification Platform,C=CN",
        "CN=B Root CA,O=Hong Kong,C=CN",
        "CN=B Root CA,O=Hong Kong,C=CN",
    ]
    assert d["path"][3]["serial"] == format(fed.reverse["B"].serial_number, "x")
    assert d["path"][2]["serial"] == format(fed.cross["A"].serial_number, "x")
    # Without a user policy set: still B's domain, never A's or the bridge's.
    r = v.verify(pem(a.leaves["medium"]), at=AT)
    assert r.valid and r.to_dict()["policies"] == [b.policies[0]]


def test_policy_b_never_mapped_fails_with_policy_required(fed):
    a, b = fed.members["A"], fed.members["B"]
    b_high = b.policies[1]  # B never mapped its high policy to the bridge
    v = Verifier(anchors=[b.root.pem], untrusted=fed.untrusted())
    for which in ("medium", "high"):
        r = v.verify(pem(a.leaves[which]), at=AT, policies=[b_high], explicit_policy=True)
        d = r.to_dict()
        assert not r.valid
        assert d["error"]["code"] == "policy_required"
        assert isinstance(d["error"]["certificate"], int)
        assert d["policies"] == []
    # A's high leaf maps to bridge high, which B does not map back: with
    # explicit policy required it fails whatever the user asks for.
    r = v.verify(pem(a.leaves["high"]), at=AT, explicit_policy=True)
    assert not r.valid and r.to_dict()["error"]["code"] == "policy_required"
    # Without explicit policy the path is valid but carries no policy.
    r = v.verify(pem(a.leaves["high"]), at=AT)
    assert r.valid and r.to_dict()["policies"] == []


def test_both_directions_symmetric(fed):
    """B's leaf from A's root: A maps both levels back, so both validate."""
    a, b = fed.members["A"], fed.members["B"]
    v = Verifier(anchors=[a.root.pem], untrusted=fed.untrusted())
    r = v.verify(pem(b.leaves["medium"]), at=AT, policies=[a.policies[0]], explicit_policy=True)
    assert r.valid, r.to_dict()["error"]
    assert r.to_dict()["policies"] == [a.policies[0]]
    assert subjects(r)[-1] == "CN=A Root CA,O=Guangdong,C=CN"
    assert len(r.path) == 5


def test_self_signed_member_root_in_untrusted_changes_nothing(fed):
    a, b = fed.members["A"], fed.members["B"]
    for anchor, expected_len in ((fed.bridge, 4), (b.root, 5)):
        plain = Verifier(anchors=[anchor.pem], untrusted=fed.untrusted())
        # The self-signed A root first, so it is met before the cross-certificate.
        noisy = Verifier(anchors=[anchor.pem], untrusted=[a.root.pem] + fed.untrusted() + [a.root.der])
        r1 = plain.verify(pem(a.leaves["medium"]), at=AT)
        r2 = noisy.verify(pem(a.leaves["medium"]), at=AT)
        assert r1.valid and r2.valid
        assert r1.to_dict() == r2.to_dict()
        assert len(r2.path) == expected_len
        # the self-signed root is not on the path
        assert pb.der(a.root.cert) not in [c.der for c in r2.path]
        # and it does not multiply the work: the same signatures were checked
        assert len(noisy.signatures._known) == len(plain.signatures._known)


def test_revoked_cross_certificate(fed):
    a, b = fed.members["A"], fed.members["B"]
    crls = [pem(pb.crl(fed.bridge, revoked=[fed.cross["A"]]))]
    for m in (a, b):
        crls.append(pem(pb.crl(m.root)))
        crls.append(pem(pb.crl(m.issuing)))
    v = Verifier(anchors=[fed.bridge.pem], untrusted=fed.untrusted(), crls=crls)
    r = v.verify(pem(a.leaves["medium"]), at=AT, revocation="require")
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "revoked"
    assert d["error"]["certificate"] == 2
    assert d["path"][2]["serial"] == format(fed.cross["A"].serial_number, "x")
    r = v.verify(pem(b.leaves["medium"]), at=AT, revocation="require")
    d = r.to_dict()
    assert r.valid, d["error"]
    assert d["revocation"] == "checked"
    assert [e["revocation"] for e in d["path"][:-1]] == ["good", "good", "good"]
    # With only the bridge's CRL, B's issuing CA (the first certificate below
    # the cross-certificate, processed from the anchor down) has no status.
    partial = Verifier(anchors=[fed.bridge.pem], untrusted=fed.untrusted(), crls=crls[:1])
    r = partial.verify(pem(b.leaves["medium"]), at=AT, revocation="require")
    assert not r.valid and r.to_dict()["error"]["code"] == "revocation_unknown"
    assert r.to_dict()["error"]["certificate"] == 1


def test_cross_certificate_name_constraints():
    permitted = [x509.DirectoryName(x509.Name([
        x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Guangdong"),
    ]))]
    fed = pb.federation(cross_options={"A": {"permitted": permitted}})
    a = fed.members["A"]
    rogue = pb.leaf(a.issuing, pb.name("rogue", "Somewhere Else"), policies=(a.policies[0],))
    v = Verifier(anchors=[fed.bridge.pem], untrusted=fed.untrusted())
    r = v.verify(pem(a.leaves["medium"]), at=AT)
    assert r.valid, r.to_dict()["error"]
    r = v.verify(pem(rogue), at=AT)
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "name_constraints"
    assert d["error"]["certificate"] == 0
    assert d["path"][0]["subject"] == "CN=rogue,O=Somewhere Else,C=CN"
    assert len(d["path"]) == 4


def test_cross_certificate_path_length_zero():
    fed = pb.federation(cross_options={"A": {"path_length": 0}})
    a, b = fed.members["A"], fed.members["B"]
    v = Verifier(anchors=[fed.bridge.pem], untrusted=fed.untrusted())
    r = v.verify(pem(a.leaves["medium"]), at=AT)
    d = r.to_dict()
    assert not r.valid
    assert d["error"]["code"] == "path_length_exceeded"
    assert d["error"]["certificate"] == 1  # the issuing CA below the cross-certificate
    assert d["path"][1]["subject"] == "CN=A Issuing CA,O=Guangdong,C=CN"
    # B's cross-certificate has no such constraint.
    assert v.verify(pem(b.leaves["medium"]), at=AT).valid


def test_leaf_at_wrong_time_and_unknown_anchor(fed):
    a = fed.members["A"]
    v = Verifier(anchors=[fed.bridge.pem], untrusted=fed.untrusted())
    r = v.verify(pem(a.leaves["medium"]), at="2040-01-01T00:00:00Z")
    # The bridge (the anchor) has expired by then too, and the anchor is checked first.
    assert not r.valid and r.to_dict()["error"]["code"] == "anchor_invalid"
    assert r.to_dict()["error"]["certificate"] == len(r.path) - 1
    r = v.verify(pem(a.leaves["medium"]), at="2040-01-01T00:00:00Z", anchor_constraints=False)
    assert not r.valid and r.to_dict()["error"]["code"] == "expired"
    stranger = pb.root("Stranger Root")
    v = Verifier(anchors=[stranger.pem], untrusted=fed.untrusted())
    r = v.verify(pem(a.leaves["medium"]), at=AT)
    assert not r.valid and r.to_dict()["error"]["code"] == "no_path"
