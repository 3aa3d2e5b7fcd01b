"""What the console's pages show, read through the bridge's own calls: the
facts of a certificate, an enrollment's check findings, where a blacklist
entry bites, and the detail panel of a node or edge of the trust graph.
Read-only: actions go through bridge/governance.py (api/console/pages.py)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from bridge import blacklist, registration


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_description(certificate: x509.Certificate) -> str:
    try:
        key = certificate.public_key()
    except (ValueError, TypeError):  # SM2 and other keys cryptography does not load
        return certificate.public_key_algorithm_oid.dotted_string if hasattr(certificate, "public_key_algorithm_oid") else "?"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def _policy_mappings(der: bytes) -> list[dict]:
    from asn1crypto import x509 as asn1_x509

    value = asn1_x509.Certificate.load(der).policy_mappings_value
    if value is None:
        return []
    return [{"bridge_policy": m["issuer_domain_policy"].dotted, "member_policy": m["subject_domain_policy"].dotted}
            for m in value]


def _general_name(name: x509.GeneralName) -> dict:
    kinds = {x509.DirectoryName: "directoryName", x509.DNSName: "dNSName", x509.RFC822Name: "rfc822Name",
             x509.UniformResourceIdentifier: "uniformResourceIdentifier", x509.IPAddress: "iPAddress"}
    value = name.value.rfc4514_string() if isinstance(name, x509.DirectoryName) else str(name.value)
    return {"type": kinds.get(type(name), type(name).__name__), "value": value}


def certificate_facts(certificate: x509.Certificate) -> dict:
    """Subject, serial, validity, fingerprints, mappings, name constraints, path length."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    facts: dict = {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": format(certificate.serial_number, "x"),
        "not_before": _iso(certificate.not_valid_before_utc),
        "not_after": _iso(certificate.not_valid_after_utc),
        "sha256": hashlib.sha256(der).hexdigest(),
        "spki_sha256": hashlib.sha256(registration.raw_spki(certificate)).hexdigest(),
        "key": key_description(certificate),
        "mappings": [],
        "permitted": [],
        "excluded": [],
        "path_length": None,
    }
    try:
        facts["mappings"] = _policy_mappings(der)
    except ValueError:
        pass
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.NameConstraints).value
        facts["permitted"] = [_general_name(n) for n in constraints.permitted_subtrees or ()]
        facts["excluded"] = [_general_name(n) for n in constraints.excluded_subtrees or ()]
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        facts["path_length"] = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except (x509.ExtensionNotFound, ValueError):
        pass
    return facts


def enrollment_findings(ca, pending: list[dict]) -> dict[str, list[dict]]:
    """Enrollment id -> the enrollment checks as they stand now, for pending
    enrollments (their API views): each {"level": ok|warn|fail, "key": a
    catalogue key, "values": {...}}. The same functions as enrollment and
    approval (bridge/registration.py, bridge/blacklist.py), so what fails
    here fails the approval too."""
    if not pending:
        return {}
    entries, enrollments = ca.store.blacklist_entries(), ca.store.list_enrollments()
    reversed_ids = {r.enrollment_id for r in ca.store.reverse_certificates(enrollment_statuses=("pending",))}
    now = _now()
    findings = {}
    for view in pending:
        root = x509.load_pem_x509_certificate(view["root_certificate"].encode())
        found = []
        try:
            registration.check_validity(root, now, timedelta(days=ca.settings.min_member_root_validity_days))
            days = (root.not_valid_after_utc - now).days
            found.append({"level": "ok", "key": "finding.validity",
                          "values": {"not_after": _iso(root.not_valid_after_utc), "days": days}})
        except registration.EnrollmentError as exc:
            found.append({"level": "fail", "key": "finding.validity_short", "values": {"detail": exc.message}})
        why = blacklist.refusal(root, entries, enrollments)
        if why is None:
            found.append({"level": "ok", "key": "finding.blacklist_clear", "values": {}})
        else:
            found.append({"level": "fail", "key": "finding.blacklisted", "values": {"detail": why}})
        found.append({"level": "ok", "key": "finding.key", "values": {"key": key_description(root)}})
        mappings = view.get("policy_mappings") or []
        if mappings:
            found.append({"level": "ok", "key": "finding.mappings", "values": {"count": len(mappings)}})
        else:
            found.append({"level": "warn", "key": "finding.no_mappings", "values": {}})
        if view["id"] in reversed_ids:
            found.append({"level": "ok", "key": "finding.reverse", "values": {}})
        else:
            found.append({"level": "warn", "key": "finding.no_reverse", "values": {}})
        if view.get("replaces"):
            found.append({"level": "warn", "key": "finding.rollover", "values": {"id": view["replaces"]}})
        findings[view["id"]] = found
    return findings


def blacklist_bites(ca, entries: list[dict]) -> dict[str, list[dict]]:
    """Entry id -> the enrolled roots it matches now (by the same match the
    verifiers use, pki's Blocklist), each {"name", "status", "id"}: where
    each entry has bitten in the federation. An entry added for a
    keyCompromise revocation also names that enrollment."""
    from pki.errors import InputError
    from pki.loading import load_certificate

    rows = ca.store.blacklist_entries()
    enrollments = ca.store.list_enrollments()
    bites: dict[str, list[dict]] = {entry["id"]: [] for entry in entries}
    for row in rows:
        if row.id not in bites:
            continue
        listed = blacklist.blocklist([row], enrollments) if row.ended_at is None else None
        for record in enrollments:
            hit = False
            if listed is not None and len(listed):
                try:
                    hit = listed.match(load_certificate(record.root_der)) is not None
                except InputError:
                    hit = False
            if not hit and row.kind == "spki_sha256" and row.ended_at is None:
                hit = record.spki_sha256 == blacklist._stored_value(row)
            if hit:
                bites[row.id].append({"name": record.member, "status": record.status, "id": record.id})
    return bites


def _constraint(text: str) -> dict:
    kind, _, value = text.partition(":")
    return {"type": kind, "value": value}


def _when(value: datetime | None) -> str | None:
    return _iso(value) if value is not None else None


def detail(ca, kind: str, ident: str) -> dict | None:
    """The detail panel of a node or an edge of the trust graph (its data-id:
    the graph's id, or the key the graph links to: an enrollment id, a
    serial, a SHA-256, a list id), from bridge/federation_graph.py, the data
    the graph is drawn from."""
    from bridge.federation_graph import Edge, federation_graph

    graph = federation_graph(ca)
    items = list(graph.nodes) + list(graph.edges)
    # data-kind and data-id (the key) name one element; a graph id alone does too.
    found = (next((i for i in items if i.kind == kind and i.key == ident), None)
             or next((i for i in items if i.id == ident), None) or next((i for i in items if i.key == ident), None))
    if found is None:
        return None
    facts: dict = {
        "subject": getattr(found, "subject", "") or "", "issuer": "", "serial": found.serial,
        "not_before": _when(found.not_before), "not_after": _when(found.not_after), "sha256": found.sha256,
        "sha1": found.sha1, "mappings": [], "permitted": [_constraint(c) for c in found.name_constraints.permitted],
        "excluded": [_constraint(c) for c in found.name_constraints.excluded], "path_length": None,
    }
    member_id = None
    if isinstance(found, Edge):  # issuer -> subject
        source, target = graph.node(found.source), graph.node(found.target)
        facts.update(subject=target.subject, issuer=source.subject, path_length=found.path_length,
                     mappings=[{"bridge_policy": a, "member_policy": b} for a, b in found.policy_mappings])
        title = f"{source.label} → {target.label}"
        member_id = found.member_id
        extra = [("details.revoked_at", _when(found.revoked_at)), ("details.revocation_reason", found.revocation_reason)]
    else:
        title = found.label
        member_id = found.enrollment_ids[-1] if found.enrollment_ids else None
        extra = list(found.details)  # the graph's own labels (a list's URL, sequence number), shown as they are
    return {"kind": found.kind, "title": title, "status": found.status, "facts": facts, "member_id": member_id,
            "history": [{"status": h.status, "at": _iso(h.at), "reason": h.reason, "serials": []} for h in found.history],
            "extra": [(k, v) for k, v in extra if v]}
