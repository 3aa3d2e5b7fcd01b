"""bridge/federation_graph.py on a real bridge (SQLite and PostgreSQL): nodes
for the bridge, member roots, issuing CAs and recognised lists; one directed
edge per cross- and reverse certificate, with the status each stands in now
(active, suspended, revoked, superseded, expiring, pending), the policy
mappings and serials read from the certificates, and the status history."""
from __future__ import annotations

import datetime as dt

from bridge.federation_graph import BRIDGE_ID, federation_graph
from tests.bridge.members import make_member, pem


def _join(ca, code: str):
    member = make_member(code)
    view = ca.enroll(name=f"{code} <Test> CA", jurisdiction=code, root_certificate=pem(member.root),
                     policy_mappings=member.mappings())
    serial = ca.approve(view["id"])["serial"]
    ca.upload_reverse(view["id"], pem(member.reverse_certificate(ca.certificate)))
    return member, view["id"], serial


def _edge(graph, kind: str, member_id: str, status: str | None = None):
    found = [e for e in graph.edges if e.kind == kind and e.member_id == member_id and (status is None or e.status == status)]
    assert len(found) == 1, (kind, member_id, status, [(e.kind, e.status) for e in graph.edges if e.member_id == member_id])
    return found[0]


def test_members_edges_and_statuses(bridge):
    hk, hk_id, hk_serial = _join(bridge, "HK")
    gd, gd_id, gd_serial = _join(bridge, "GD")
    mo, mo_id, _ = _join(bridge, "MO")
    sz = make_member("SZ")
    sz_id = bridge.enroll(name="SZ CA", jurisdiction="SZ", root_certificate=pem(sz.root), policy_mappings=sz.mappings())["id"]
    bridge.suspend(mo_id, reason="under review")

    graph = federation_graph(bridge, issuing_cas=[hk.issuing, gd.issuing, make_member("HK").issuing])
    members = {n.key: n for n in graph.members()}
    assert set(members) == {hk_id, gd_id, mo_id, sz_id}
    assert graph.bridge.id == BRIDGE_ID and graph.bridge.subject == bridge.certificate.subject.rfc4514_string()
    assert members[hk_id].label == "HK <Test> CA" and members[hk_id].jurisdiction == "HK"
    assert [n.jurisdiction for n in graph.members()] == sorted(n.jurisdiction for n in graph.members())

    cross = _edge(graph, "cross", hk_id)
    assert (cross.source, cross.target, cross.status, cross.serial) == (BRIDGE_ID, members[hk_id].id, "active", hk_serial)
    assert cross.policy_mappings == ((hk.mappings()[0]["bridge_policy"], hk.policy),)
    reverse = _edge(graph, "reverse", hk_id)
    assert (reverse.source, reverse.target, reverse.status) == (members[hk_id].id, BRIDGE_ID, "active")
    assert reverse.policy_mappings == ((hk.policy, hk.mappings()[0]["bridge_policy"]),)
    assert _edge(graph, "cross", mo_id).status == "suspended" and _edge(graph, "reverse", mo_id).status == "suspended"
    assert [h.status for h in _edge(graph, "cross", mo_id).history] == ["active", "suspended"]
    pending = _edge(graph, "pending", sz_id)
    assert pending.status == "pending" and pending.serial is None and pending.policy_mappings == ((sz.mappings()[0]["bridge_policy"], sz.policy),)
    assert [h.status for h in members[mo_id].history] == ["pending", "active", "suspended"]

    # Issuing CAs hang under the root that issued them; one of an unknown root is left out.
    issuing = [n for n in graph.nodes if n.kind == "issuing_ca"]
    assert {n.parent for n in issuing} == {members[hk_id].id, members[gd_id].id}
    assert len([e for e in graph.edges if e.kind == "issuing"]) == 2
    ids = [n.id for n in graph.nodes] + [e.id for e in graph.edges]
    assert len(ids) == len(set(ids))

    # Revocation, renewal, expiry: each edge's own status, old edges kept beside new ones.
    bridge.revoke(gd_serial, "cessationOfOperation")
    renewed = bridge.renew(hk_id)["serial"]
    later = federation_graph(bridge)
    assert _edge(later, "cross", gd_id).status == "revoked" and _edge(later, "cross", gd_id).revocation_reason == "cessationOfOperation"
    assert _edge(later, "reverse", gd_id).status == "inactive"
    assert _edge(later, "cross", hk_id, "superseded").serial == hk_serial
    assert _edge(later, "cross", hk_id, "active").serial == renewed
    near_end = _edge(later, "cross", hk_id, "active").not_after - dt.timedelta(days=10)
    assert _edge(federation_graph(bridge, now=near_end), "cross", hk_id, "expiring").serial == renewed
    assert _edge(federation_graph(bridge, now=near_end, expiring_days=5), "cross", hk_id, "active").serial == renewed

    # A bare store draws the same edges (the bridge node without its certificate).
    bare = federation_graph(bridge.store)
    assert [(e.id, e.status) for e in bare.edges] == [(e.id, e.status) for e in later.edges]
    as_json = later.to_dict()
    assert as_json["edges"][0]["not_after"].endswith("Z") and isinstance(as_json["nodes"][1]["history"], list)


def test_a_member_enrolled_again_keeps_one_node(bridge):
    hk, hk_id, serial = _join(bridge, "HK")
    bridge.revoke(serial, "cessationOfOperation")
    again = bridge.enroll(name="HK <Test> CA", jurisdiction="HK", root_certificate=pem(hk.root), policy_mappings=hk.mappings())
    new_serial = bridge.approve(again["id"])["serial"]
    graph = federation_graph(bridge)
    (node,) = graph.members()
    assert node.key == again["id"] and node.enrollment_ids == (hk_id, again["id"]) and node.status == "active"
    assert {(e.serial, e.status, e.target) for e in graph.edges if e.kind == "cross"} == {
        (serial, "revoked", node.id), (new_serial, "active", node.id)}
