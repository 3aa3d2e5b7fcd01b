"""The federation as a graph, for the console's overview (api/console/graph_svg.py draws it).

Nodes: the bridge; each member root (one node per root certificate, however
often it was enrolled: a member re-enrolled after a revocation keeps its place,
with its old edges beside the new); the issuing CAs under a root, where the
caller knows them (the bridge stores roots only); each recognised external
trusted list. Edges are directed, issuer to subject: a cross-certificate
(bridge -> member root), a reverse certificate (member root -> bridge), an
enrollment waiting for approval (bridge -> root, ``pending``), an issuing CA
under its root, the bridge's recognition of a list.

Read in one pass (``store.federation_rows``: a fixed number of plain
queries whatever the federation's size), each certificate parsed once and
its facts remembered, so 60 members render a console page well within
200 ms (benchmarks/bench_console.py).

The values are plain and immutable; ``to_dict`` gives JSON-ready data.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from asn1crypto import x509 as asn1_x509
from cryptography import x509

from . import store as store_module

NodeKind = Literal["bridge", "member", "issuing_ca", "trust_list"]
EdgeKind = Literal["cross", "reverse", "pending", "issuing", "recognition"]
# How an edge stands now. ``expiring``: in force, notAfter within the warning
# window; ``superseded``: revoked because a renewal or new terms replaced it;
# ``inactive``: a reverse certificate of a member that left (no longer
# published, nobody revoked it).
EdgeStatus = Literal["active", "expiring", "suspended", "revoked", "superseded", "expired", "pending", "inactive"]
EDGE_STATUSES: tuple[str, ...] = ("active", "expiring", "suspended", "revoked", "superseded", "expired", "pending", "inactive")
EXPIRING_DAYS = 30.0
POLICY_MAPPINGS_OID = x509.ObjectIdentifier("2.5.29.33")
# Enrollments that never made a member: not drawn.
NOT_DRAWN = ("rejected",)

BRIDGE_ID = "bridge"


@dataclass(frozen=True)
class StatusChange:
    status: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class NameConstraints:
    permitted: tuple[str, ...] = ()  # "dNSName:example.hk", "directoryName:C=HK,O=..."
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    id: str  # unique in the graph: "bridge", "member-<enrollment id>", "ca-<sha256 prefix>", "list-<list id>"
    kind: NodeKind
    key: str  # what the console links to: the member's (newest) enrollment id, a list id, a certificate's SHA-256
    label: str
    subject: str = ""
    status: str = "active"  # a member's newest enrollment's status; a list: "active" or "pending" (no version yet)
    jurisdiction: str = ""
    parent: str | None = None  # an issuing CA's root node
    enrollment_ids: tuple[str, ...] = ()  # a member root's enrollments, oldest first
    serial: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    sha256: str | None = None
    sha1: str | None = None
    name_constraints: NameConstraints = NameConstraints()
    history: tuple[StatusChange, ...] = ()
    details: tuple[tuple[str, str], ...] = ()  # anything else worth showing, in order (a list's URL, sequence number)


@dataclass(frozen=True)
class Edge:
    id: str  # unique: "cross-<serial>", "reverse-<sha256 prefix>", "pending-<enrollment id>", "issuing-...", "recognition-<list id>"
    kind: EdgeKind
    source: str  # node id of the issuer
    target: str  # node id of the subject
    status: EdgeStatus
    key: str  # the serial of a cross-certificate, a reverse certificate's SHA-256, an enrollment or list id
    member_id: str | None = None  # the enrollment it belongs to
    serial: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    sha256: str | None = None
    sha1: str | None = None
    policy_mappings: tuple[tuple[str, str], ...] = ()  # (issuerDomainPolicy, subjectDomainPolicy)
    name_constraints: NameConstraints = NameConstraints()
    path_length: int | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    history: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class FederationGraph:
    bridge: Node
    nodes: tuple[Node, ...]  # the bridge first, then member roots (by jurisdiction, name), issuing CAs, lists
    edges: tuple[Edge, ...]
    at: datetime  # the time the statuses are computed for
    expiring_days: float = EXPIRING_DAYS  # the window of ``expiring``
    _by_id: Mapping[str, Node] = field(default_factory=dict, repr=False, compare=False)

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def members(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "member")

    def edges_of(self, node_id: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if node_id in (e.source, e.target))

    def to_dict(self) -> dict:
        return {"at": _iso(self.at), "nodes": [_plain(n) for n in self.nodes], "edges": [_plain(e) for e in self.edges]}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _plain(item: Node | Edge) -> dict:
    out: dict[str, object] = {}
    for name in item.__dataclass_fields__:
        value = getattr(item, name)
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, NameConstraints):
            value = {"permitted": list(value.permitted), "excluded": list(value.excluded)}
        elif name == "history":
            value = [{"status": h.status, "at": _iso(h.at), "reason": h.reason} for h in value]
        elif name == "policy_mappings":
            value = [{"issuer_domain_policy": a, "subject_domain_policy": b} for a, b in value]
        elif name == "details":
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


# --------------------------------------------------------------------------- certificate facts


@dataclass(frozen=True)
class _Facts:
    subject: str
    serial: str
    not_before: datetime
    not_after: datetime
    sha256: str
    sha1: str
    policy_mappings: tuple[tuple[str, str], ...]
    name_constraints: NameConstraints
    path_length: int | None
    ski: bytes | None
    aki: bytes | None
    issuer: x509.Name
    subject_name: x509.Name


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return f"directoryName:{name.value.rfc4514_string()}"
    if isinstance(name, x509.IPAddress):
        return f"iPAddress:{name.value}"
    kind = {x509.DNSName: "dNSName", x509.RFC822Name: "rfc822Name", x509.UniformResourceIdentifier: "uniformResourceIdentifier"}
    return f"{kind.get(type(name), type(name).__name__)}:{name.value}"


# Certificates never change: what a page showed once is looked up the next time
# (parsing is most of a graph's cost). Bounded: a few federations' worth.
@functools.lru_cache(maxsize=4096)
def _facts(der: bytes) -> _Facts:
    certificate = x509.load_der_x509_certificate(der)
    extensions = certificate.extensions
    mappings: tuple[tuple[str, str], ...] = ()
    constraints = NameConstraints()
    path_length = None
    ski = aki = None
    for extension in extensions:
        value = extension.value
        if extension.oid == POLICY_MAPPINGS_OID and isinstance(value, x509.UnrecognizedExtension):
            mappings = tuple((m["issuer_domain_policy"].dotted, m["subject_domain_policy"].dotted)
                             for m in asn1_x509.PolicyMappings.load(value.value))
        elif isinstance(value, x509.NameConstraints):
            constraints = NameConstraints(tuple(_general_name(n) for n in value.permitted_subtrees or ()),
                                          tuple(_general_name(n) for n in value.excluded_subtrees or ()))
        elif isinstance(value, x509.BasicConstraints):
            path_length = value.path_length
        elif isinstance(value, x509.SubjectKeyIdentifier):
            ski = value.digest
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            aki = value.key_identifier
    return _Facts(
        subject=certificate.subject.rfc4514_string(), serial=format(certificate.serial_number, "x"),
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(), sha1=hashlib.sha1(der, usedforsecurity=False).hexdigest(),
        policy_mappings=mappings, name_constraints=constraints, path_length=path_length, ski=ski, aki=aki,
        issuer=certificate.issuer, subject_name=certificate.subject,
    )


def _der(item: bytes | x509.Certificate) -> bytes:
    if isinstance(item, x509.Certificate):
        from cryptography.hazmat.primitives.serialization import Encoding

        return item.public_bytes(Encoding.DER)
    return item


# --------------------------------------------------------------------------- statuses


def _in_force_status(not_after: datetime | None, now: datetime, window: timedelta) -> EdgeStatus:
    if not_after is not None and not_after <= now:
        return "expired"
    if not_after is not None and not_after - now <= window:
        return "expiring"
    return "active"


def _cross_status(row, now: datetime, window: timedelta) -> EdgeStatus:
    if row.status == "held":
        return "suspended"
    if row.status == "revoked":
        return "superseded" if row.revocation_reason == "superseded" else "revoked"
    return _in_force_status(row.not_after, now, window)


def _reverse_status(enrollment_status: str, superseded: bool, not_after: datetime, now: datetime, window: timedelta) -> EdgeStatus:
    if superseded:
        return "superseded"
    if enrollment_status == "suspended":
        return "suspended"
    if enrollment_status not in ("active", "pending"):
        return "inactive"  # issued_to_bridge publishes active members' only
    return _in_force_status(not_after, now, window)


def _history(rows) -> tuple[StatusChange, ...]:
    return tuple(StatusChange(r.status, r.at, r.reason or "") for r in rows)


def _serials(row) -> list[str]:
    try:
        return list(json.loads(row.details or "{}").get("serials", []))
    except (ValueError, AttributeError):
        return []


# --------------------------------------------------------------------------- the graph


def federation_graph(source, *, now: datetime | None = None, issuing_cas: Iterable[bytes | x509.Certificate] = (),
                     expiring_days: float | None = None) -> FederationGraph:
    """The federation as it stands at ``now`` (default: the current time).

    ``source``: a ``BridgeCA`` (its store, the bridge's certificate and its
    expiry warning window) or a bare ``Store`` (the bridge node then has no
    certificate details).
    ``issuing_cas``: certificates the caller knows to be issuing CAs of
    member roots (DER or cryptography certificates); each is drawn under the
    root whose name and key identifier issued it, the others are ignored.
    ``expiring_days``: the window for ``expiring`` (default: the bridge's
    expiry_warning_days, else 30).
    """
    store = getattr(source, "store", source)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    if expiring_days is None:
        settings = getattr(source, "settings", None)
        expiring_days = float(getattr(settings, "expiry_warning_days", EXPIRING_DAYS))
    window = timedelta(days=expiring_days)

    bridge_certificate = getattr(source, "certificate", None)
    if bridge_certificate is not None:
        from cryptography.hazmat.primitives.serialization import Encoding

        facts = _facts(bridge_certificate.public_bytes(Encoding.DER))
        bridge = Node(BRIDGE_ID, "bridge", BRIDGE_ID, _common_name(facts.subject_name) or "Bridge CA", subject=facts.subject,
                      serial=facts.serial, not_before=facts.not_before, not_after=facts.not_after, sha256=facts.sha256,
                      sha1=facts.sha1)
    else:
        bridge = Node(BRIDGE_ID, "bridge", BRIDGE_ID, "Bridge CA")

    rows = store_module.federation_rows(store)
    enrollments = [r for r in rows.enrollments if r.status not in NOT_DRAWN]
    crosses = rows.cross_certificates
    reverses = rows.reverse_certificates
    histories: dict[str, list] = {}
    for change in rows.status_changes:
        histories.setdefault(change.enrollment_id, []).append(change)

    # One node per root certificate, its enrollments in the order they were made: by creation time, and
    # within a second (the times' resolution) by their first status change (an autoincremented id).
    first_change: dict[str, int] = {}
    for index, change in enumerate(rows.status_changes):
        first_change.setdefault(change.enrollment_id, index)
    enrollments.sort(key=lambda r: (r.created_at, first_change.get(r.id, len(first_change)), r.id))
    roots: dict[str, list] = {}
    for record in enrollments:
        roots.setdefault(hashlib.sha256(record.root_der).hexdigest(), []).append(record)
    # A root whose only enrollments expired unapproved never made a member.
    roots = {k: v for k, v in roots.items()
             if any(r.status != "expired" or any(h.status == "active" for h in histories.get(r.id, ())) for r in v)}

    node_of_enrollment: dict[str, str] = {}
    members: list[Node] = []
    root_facts: dict[str, _Facts] = {}
    for records in roots.values():
        newest = records[-1]
        node_id = f"member-{newest.id}"
        facts = _facts(newest.root_der)
        root_facts[node_id] = facts
        for r in records:
            node_of_enrollment[r.id] = node_id
        members.append(Node(
            node_id, "member", newest.id, newest.member, subject=facts.subject, status=newest.status,
            jurisdiction=newest.jurisdiction, enrollment_ids=tuple(r.id for r in records), serial=facts.serial,
            not_before=facts.not_before, not_after=facts.not_after, sha256=facts.sha256, sha1=facts.sha1,
            name_constraints=facts.name_constraints,
            history=tuple(h for r in records for h in _history(histories.get(r.id, ()))),
        ))
    members.sort(key=lambda n: (n.jurisdiction, n.label.casefold(), n.id))
    status_of = {r.id: r.status for r in enrollments}

    edges: list[Edge] = []
    for row in crosses:
        target = node_of_enrollment.get(row.enrollment_id)
        if target is None or row.der is None:
            continue
        facts = _facts(row.der)
        events = tuple(StatusChange(h.status, h.at, h.reason or "") for h in histories.get(row.enrollment_id, ())
                       if row.serial in _serials(h))
        if row.revoked_at is not None and row.status == "revoked" and not any(e.at == row.revoked_at for e in events):
            events += (StatusChange("revoked", row.revoked_at, row.revocation_reason or ""),)
        edges.append(Edge(
            f"cross-{row.serial}", "cross", BRIDGE_ID, target, _cross_status(row, now, window), row.serial,
            member_id=row.enrollment_id, serial=row.serial, not_before=row.not_before, not_after=row.not_after,
            sha256=facts.sha256, sha1=facts.sha1, policy_mappings=facts.policy_mappings,
            name_constraints=facts.name_constraints, path_length=facts.path_length, revoked_at=row.revoked_at,
            revocation_reason=row.revocation_reason, history=events,
        ))
    with_cross = {row.enrollment_id for row in crosses}
    for record in enrollments:
        if record.status == "pending" and record.id not in with_cross and record.id in node_of_enrollment:
            edges.append(Edge(
                f"pending-{record.id}", "pending", BRIDGE_ID, node_of_enrollment[record.id], "pending", record.id,
                member_id=record.id,
                policy_mappings=tuple((m["bridge_policy"], m["member_policy"]) for m in json.loads(record.policy_mappings)),
                name_constraints=NameConstraints(
                    tuple(f"{s['type']}:{s['value']}" for s in json.loads(record.permitted_subtrees)),
                    tuple(f"{s['type']}:{s['value']}" for s in json.loads(record.excluded_subtrees))),
                path_length=record.path_length, history=_history(histories.get(record.id, ())),
            ))
    newest_reverse: dict[str, int] = {}
    for index, row in enumerate(reverses):
        newest_reverse[row.enrollment_id] = index  # reverse_certificates is ordered by id
    for index, row in enumerate(reverses):
        source_node = node_of_enrollment.get(row.enrollment_id)
        if source_node is None:
            continue
        facts = _facts(row.der)
        status = _reverse_status(status_of.get(row.enrollment_id, ""), newest_reverse[row.enrollment_id] != index,
                                 row.not_after, now, window)
        edges.append(Edge(
            f"reverse-{row.sha256[:16]}", "reverse", source_node, BRIDGE_ID, status, row.sha256, member_id=row.enrollment_id,
            serial=facts.serial, not_before=facts.not_before, not_after=row.not_after, sha256=row.sha256, sha1=facts.sha1,
            policy_mappings=facts.policy_mappings, name_constraints=facts.name_constraints, path_length=facts.path_length,
            history=(StatusChange("uploaded", row.created_at),),
        ))

    issuing_nodes = _issuing_cas(issuing_cas, members, root_facts, edges, now, window)
    list_nodes = _trust_lists(rows, edges, now)
    nodes = (bridge, *members, *issuing_nodes, *list_nodes)
    edges.sort(key=lambda e: (_KIND_ORDER[e.kind], e.source, e.target, e.id))
    return FederationGraph(bridge, nodes, tuple(edges), now, expiring_days, {n.id: n for n in nodes})


_KIND_ORDER = {"cross": 0, "pending": 1, "reverse": 2, "issuing": 3, "recognition": 4}


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _issuing_cas(certificates: Iterable[bytes | x509.Certificate], members: list[Node], root_facts: dict[str, _Facts],
                 edges: list[Edge], now: datetime, window: timedelta) -> list[Node]:
    by_name_and_key = {(facts.subject_name, facts.ski): node_id for node_id, facts in root_facts.items()}
    by_name = {facts.subject_name: node_id for node_id, facts in root_facts.items()}
    jurisdiction = {m.id: m.jurisdiction for m in members}
    nodes: dict[str, Node] = {}
    for item in certificates:
        facts = _facts(_der(item))
        parent = by_name_and_key.get((facts.issuer, facts.aki)) or (by_name.get(facts.issuer) if facts.aki is None else None)
        node_id = f"ca-{facts.sha256[:16]}"
        if parent is None or node_id in nodes or facts.subject_name == facts.issuer:
            continue
        nodes[node_id] = Node(node_id, "issuing_ca", facts.sha256, _common_name(facts.subject_name) or facts.subject,
                              subject=facts.subject, status="active", jurisdiction=jurisdiction.get(parent, ""),
                              parent=parent, serial=facts.serial, not_before=facts.not_before, not_after=facts.not_after,
                              sha256=facts.sha256, sha1=facts.sha1, name_constraints=facts.name_constraints)
        edges.append(Edge(f"issuing-{facts.sha256[:16]}", "issuing", parent, node_id,
                          _in_force_status(facts.not_after, now, window), facts.sha256, serial=facts.serial,
                          not_before=facts.not_before, not_after=facts.not_after, sha256=facts.sha256, sha1=facts.sha1,
                          policy_mappings=facts.policy_mappings, name_constraints=facts.name_constraints,
                          path_length=facts.path_length))
    order = {m.id: i for i, m in enumerate(members)}
    return sorted(nodes.values(), key=lambda n: (order.get(n.parent or "", 0), n.label.casefold(), n.id))


def _trust_lists(rows: store_module.FederationRows, edges: list[Edge], now: datetime) -> list[Node]:
    newest: dict[str, Any] = {}
    for version in rows.trust_list_versions:  # newest sequence number first
        newest.setdefault(version.list_id, version)
    nodes = []
    for row in rows.trust_lists:
        latest = newest.get(row.id)
        details: list[tuple[str, str]] = [("trust_anchor", f"list:{row.id}")]
        if row.url:
            details.append(("url", row.url))
        if latest is not None:
            details += [("sequence_number", str(latest.sequence_number)), ("issued", _iso(latest.issued_at) or ""),
                        ("next_update", _iso(latest.next_update) or ""), ("sha256", latest.sha256)]
            stale = latest.next_update is not None and latest.next_update <= now
            status: EdgeStatus = "expired" if stale else "active"
        else:
            status = "pending"
        if row.last_fetch_error:
            details.append(("last_fetch_error", row.last_fetch_error))
        node_id = f"list-{row.id}"
        nodes.append(Node(node_id, "trust_list", row.id, row.name, status=status,
                          not_before=latest.issued_at if latest else None, not_after=latest.next_update if latest else None,
                          sha256=latest.sha256 if latest else None, details=tuple(details),
                          history=(StatusChange("recognised", row.created_at, row.created_by),)))
        edges.append(Edge(f"recognition-{row.id}", "recognition", BRIDGE_ID, node_id, status, row.id,
                          not_before=latest.issued_at if latest else None, not_after=latest.next_update if latest else None,
                          sha256=latest.sha256 if latest else None))
    return nodes
