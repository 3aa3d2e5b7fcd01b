"""api/console/graph_svg.py: the trust graph as server-side SVG. It parses as
XML; one element per cross- and reverse certificate, classed by its status
(a suspension changes the class); 4 and 60 members give no overlapping nodes
or names; every text is escaped; the legend speaks English and Chinese."""
from __future__ import annotations

import datetime as dt
import itertools
import math
import xml.etree.ElementTree as ET

import pytest

from api.console.graph_svg import BOXES_UP_TO, render_federation_svg
from bridge.federation_graph import Edge, FederationGraph, Node, federation_graph
from tests.bridge.members import make_member, pem

from .conftest import bridge_env

SVG = "{http://www.w3.org/2000/svg}"
NOW = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _by_kind(root: ET.Element, kind: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("data-kind") == kind]


def synthetic(count: int, *, name: str = "{j} Sector {i} CA", issuing: int = 1, lists: int = 1) -> FederationGraph:
    """A federation of ``count`` members as plain data (no certificates): layouts and escaping only."""
    codes = ["GD", "GZ", "SZ", "ZH", "FS", "DG", "HK", "MO"]
    bridge = Node("bridge", "bridge", "bridge", "Bridge CA")
    nodes: list[Node] = [bridge]
    edges: list[Edge] = []
    statuses = ["active", "suspended", "revoked", "expiring", "pending"]
    for i in range(count):
        j = codes[i % len(codes)]
        status = statuses[i % len(statuses)] if i % 4 == 0 else "active"
        member = Node(f"member-m{i}", "member", f"m{i}", name.format(i=i, j=j), jurisdiction=j,
                      status="suspended" if status == "suspended" else "active")
        nodes.append(member)
        if status == "pending":
            edges.append(Edge(f"pending-m{i}", "pending", "bridge", member.id, "pending", f"m{i}", member_id=f"m{i}"))
            continue
        edges.append(Edge(f"cross-{i:x}", "cross", "bridge", member.id, status, f"{i:x}", member_id=f"m{i}", serial=f"{i:x}",
                          policy_mappings=(("1.3.6.1.4.1.32473.77.1.1", f"1.3.6.1.4.1.32473.77.{100 + i}.1"),)))
        edges.append(Edge(f"reverse-{i:016x}", "reverse", member.id, "bridge", status if status != "revoked" else "inactive",
                          f"{i:064x}", member_id=f"m{i}"))
        for k in range(issuing):
            ca = Node(f"ca-{i}-{k}", "issuing_ca", f"{i}{k:063x}", f"{name.format(i=i, j=j)} Issuing {k}", parent=member.id,
                      jurisdiction=j)
            nodes.append(ca)
            edges.append(Edge(f"issuing-{i}-{k}", "issuing", member.id, ca.id, "active", ca.key))
    for n in range(lists):
        node = Node(f"list-l{n}", "trust_list", f"l{n}", f"Trusted list {n}")
        nodes.append(node)
        edges.append(Edge(f"recognition-l{n}", "recognition", "bridge", node.id, "active", f"l{n}"))
    members = sorted((n for n in nodes if n.kind == "member"), key=lambda n: (n.jurisdiction, n.label))
    ordered = [bridge, *members, *(n for n in nodes if n.kind not in ("bridge", "member"))]
    return FederationGraph(bridge, tuple(ordered), tuple(edges), NOW, 30.0, {n.id: n for n in ordered})


def _node_boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    """Each node's shape as (min x, min y, max x, max y)."""
    boxes = {}
    for g in root.iter(f"{SVG}g"):
        if "fg-node" not in (g.get("class") or "").split():
            continue
        shape = g.find(f"{SVG}rect")
        if shape is not None:
            x, y, w, h = (float(shape.get(a)) for a in ("x", "y", "width", "height"))
            boxes[g.get("id")] = (x, y, x + w, y + h)
        else:
            circle = g.find(f"{SVG}circle")
            cx, cy, r = (float(circle.get(a)) for a in ("cx", "cy", "r"))
            boxes[g.get("id")] = (cx - r, cy - r, cx + r, cy + r)
    return boxes


def _assert_no_overlap(boxes: dict[str, tuple[float, float, float, float]]) -> None:
    for (a, p), (b, q) in itertools.combinations(boxes.items(), 2):
        apart = p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1]
        assert apart, f"{a} {p} overlaps {b} {q}"


@pytest.mark.parametrize("count", [4, BOXES_UP_TO, 60])
def test_no_overlapping_nodes_or_names(count):
    graph = synthetic(count)
    root = _parse(render_federation_svg(graph))
    boxes = _node_boxes(root)
    assert len(boxes) == len(graph.nodes)
    _assert_no_overlap(boxes)
    assert root.get("data-layout") == ("boxes" if count <= BOXES_UP_TO else "radial")
    if count > BOXES_UP_TO:
        # Names run outwards along the radius: neighbours stay a text line apart where they start.
        labels = sorted((float(g.get("data-angle")), float(g.get("data-radius")))
                        for g in root.iter(f"{SVG}g") if g.get("class") == "fg-node-label")
        assert len(labels) == count + 1  # and the list
        # Each name is inside its node's group: a click on the name opens the node.
        named = [g for g in _by_kind(root, "member") if g.find(f"{SVG}g[@class='fg-node-label']") is not None]
        assert len(named) == count
        for (a1, r), (a2, _) in itertools.pairwise(labels):
            assert math.radians(a2 - a1) * r >= 13, (a1, a2, r)
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))


def test_every_certificate_is_one_edge_with_its_status():
    graph = synthetic(60)
    root = _parse(render_federation_svg(graph))
    for kind in ("cross", "reverse", "pending", "issuing", "recognition"):
        drawn = {e.get("data-id"): e for e in _by_kind(root, kind)}
        expected = [e for e in graph.edges if e.kind == kind]
        assert len(drawn) == len(expected) == len(_by_kind(root, kind)), kind
        for edge in expected:
            element = drawn[edge.key]
            assert f"fg-{edge.status}" in element.get("class").split() and element.get("data-status") == edge.status
            assert element.get("id") == f"fg-edge-{edge.id}"
            assert element.find(f"{SVG}title") is not None
    member = _by_kind(root, "member")[0]
    assert member.get("data-id").startswith("m") and member.get("id").startswith("fg-node-member-")


def test_labels_are_escaped_and_the_legend_speaks_both_languages():
    hostile = '<script>alert("{i}")</script> & {j} "CA"'
    for count in (3, 40):
        svg = render_federation_svg(synthetic(count, name=hostile))
        root = _parse(svg)
        assert "<script" not in svg and not any(e.tag.endswith("script") for e in root.iter())
        texts = "".join(e.text or "" for e in root.iter())
        assert '<script>alert("' in texts and "& " in texts
    english, chinese = render_federation_svg(synthetic(4)), render_federation_svg(synthetic(4), lang="zh")
    assert "Legend" in english and "suspended" in english and "图例" not in english
    assert "图例" in chinese and "已暂停" in chinese and "交叉证书" in chinese and "Legend" not in chinese
    assert _parse(chinese).get("lang") == "zh-CN"


def test_highlight_marks_the_member_and_its_certificate():
    graph = synthetic(8)
    root = _parse(render_federation_svg(graph, highlight=["m1", "cross-2"]))
    marked = {e.get("id") for e in root.iter() if "fg-highlight" in (e.get("class") or "").split()}
    assert marked == {"fg-node-member-m1", "fg-edge-cross-2"}


def test_a_real_bridge_and_a_suspension(tmp_path):
    from bridge.service import BridgeCA

    with bridge_env():
        ca = BridgeCA.init(tmp_path / "home", base_url="https://bridge.gd.example")
    try:
        joined = {}
        for code in ("HK", "GD", "MO"):
            member = make_member(code)
            view = ca.enroll(name=f"{code} <CA> & co", jurisdiction=code, root_certificate=pem(member.root),
                             policy_mappings=member.mappings())
            serial = ca.approve(view["id"])["serial"]
            ca.upload_reverse(view["id"], pem(member.reverse_certificate(ca.certificate)))
            joined[code] = (view["id"], serial, member)
        root = _parse(render_federation_svg(federation_graph(ca, issuing_cas=[m.issuing for _, _, m in joined.values()])))
        crosses = {e.get("data-id"): e for e in _by_kind(root, "cross")}
        assert set(crosses) == {serial for _, serial, _ in joined.values()}
        assert all("fg-active" in e.get("class").split() for e in crosses.values())
        assert len(_by_kind(root, "reverse")) == 3 and len(_by_kind(root, "issuing_ca")) == 3
        # The mappings are written on the edges at this size.
        hk_id, hk_serial, hk = joined["HK"]
        assert hk.policy.rsplit(".", 2)[-2] in "".join(crosses[hk_serial].itertext())

        ca.suspend(hk_id, reason="under review")
        after = _parse(render_federation_svg(federation_graph(ca), lang="zh"))
        edge = next(e for e in _by_kind(after, "cross") if e.get("data-id") == hk_serial)
        assert "fg-suspended" in edge.get("class").split() and "fg-active" not in edge.get("class").split()
        reverse = next(e for e in _by_kind(after, "reverse") if e.get("id").startswith("fg-edge-reverse-"))
        assert reverse is not None
        member = next(e for e in _by_kind(after, "member") if e.get("data-id") == hk_id)
        assert member.get("data-status") == "suspended" and "HK <CA> & co" in "".join(member.itertext())
    finally:
        ca.close()


def test_a_generated_federation(tmp_path):
    """tests/fedgen.py's federation (what the benchmark and the screenshots use), drawn: each state where it
    was put, a recognised list, and the radial layout on real data."""
    from collections import Counter

    from bridge.service import BridgeCA
    from tests.fedgen import build_federation, init_env

    with bridge_env() as mp:
        for name, value in init_env().items():
            mp.setenv(name, value)
        ca = BridgeCA.init(tmp_path / "home", base_url="https://bridge.gba.example")
    try:
        members = build_federation(ca, BOXES_UP_TO + 1)  # the smallest drawn radially
        graph = federation_graph(ca, issuing_cas=[m.issuing for m in members])
        states = Counter(m.state for m in members)
        crosses = Counter(e.status for e in graph.edges if e.kind == "cross")
        assert crosses["suspended"] == states["suspended"] == 1 and crosses["revoked"] == states["revoked"] == 1
        assert crosses["expiring"] == states["expiring"] == 1 and crosses["superseded"] == states["renewed"] == 1
        assert len([e for e in graph.edges if e.kind == "pending"]) == states["pending"] == 1
        assert len(graph.members()) == BOXES_UP_TO + 1 and [n.kind for n in graph.nodes].count("trust_list") == 1
        root = _parse(render_federation_svg(graph))
        assert root.get("data-layout") == "radial" and len(_by_kind(root, "issuing_ca")) == BOXES_UP_TO + 1
        _assert_no_overlap(_node_boxes(root))
    finally:
        ca.close()
