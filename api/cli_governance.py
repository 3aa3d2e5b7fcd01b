"""Governance commands of ``bridgeca``:

    bridgeca proposal list [--status S]          (two-person control, approvals_required 2)
    bridgeca proposal confirm ID
    bridgeca proposal cancel ID [--reason TEXT]
    bridgeca audit verify --home DIR [--checkpoints FILE_OR_URL]
    bridgeca audit show --home DIR [--action A] [--actor X] [--since TIME] [--limit N]
    bridgeca audit export --home DIR [same filters]          (JSON lines)

Proposals, like api/cli_admin.py, work on the home (``--home DIR``, as the
one admin identity ``cli``: a proposal made there must be confirmed by an
admin token through ``--url``, and the other way round) or on a server
(``--url URL --token T``, as that token). Exit 0 done, 1 refused or failed,
2 bad usage; one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from .cli import UsageError
from .cli_admin import ACTOR, Home, Server, _run, add_target

PROPOSAL_STATUSES = ("pending", "confirmed", "failed", "cancelled", "expired")


# --------------------------------------------------------------------------- proposals


def _home_call(where: Home, fn):
    from bridge.home import store_of

    def run():
        with store_of(where.path) as store:
            return fn(store)

    return where._call(run)


def _list(where, status: str | None) -> list[dict]:
    from bridge import governance

    if isinstance(where, Home):
        return _home_call(where, lambda store: governance.proposals(store, status, actor=ACTOR))
    return where._request("GET", "/v1/proposals" + (f"?status={Server._q(status)}" if status else ""))


def _confirm(where, proposal_id: str) -> dict:
    from bridge import governance

    if isinstance(where, Home):
        from bridge.service import BridgeCA

        def run():
            with BridgeCA.open(where.path) as ca:
                return governance.confirm(ca, proposal_id, actor=ACTOR)

        return where._call(run)
    return where._request("POST", f"/v1/proposals/{Server._q(proposal_id)}/confirm")


def _cancel(where, proposal_id: str, reason: str) -> dict:
    from bridge import governance

    if isinstance(where, Home):
        return {"proposal": _home_call(where, lambda store: governance.cancel(store, proposal_id, actor=ACTOR, reason=reason))}
    return where._request("POST", f"/v1/proposals/{Server._q(proposal_id)}/cancel", {"reason": reason})


def _proposal_line(view: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(view["params"].items()) if v not in (None, "", []))
    decided = f"  {view['status']} by {view['decided_by']}" if view.get("decided_by") else f"  {view['status']}"
    return f"{view['id']}  {view['action']}({params})  proposed by {view['proposer']} {view['created_at']}, expires {view['expires_at']}{decided}"


def cmd_proposal_list(args: argparse.Namespace) -> int:
    def show(views: list[dict]) -> None:
        for view in views:
            print(_proposal_line(view))
        if not views:
            print("no proposals")

    return _run(args, lambda t: _list(t, args.status), show)


def cmd_proposal_confirm(args: argparse.Namespace) -> int:
    def show(outcome: dict) -> None:
        view = outcome["proposal"]
        print(f"confirmed {view['id']}: {view['action']} done by {view['decided_by']} (proposed by {view['proposer']})")

    return _run(args, lambda t: _confirm(t, args.id), show)


def cmd_proposal_cancel(args: argparse.Namespace) -> int:
    return _run(args, lambda t: _cancel(t, args.id, args.reason),
                lambda outcome: print(f"cancelled {outcome['proposal']['id']} ({outcome['proposal']['action']})"))


# --------------------------------------------------------------------------- the audit log


def _fail(exc) -> int:
    print(f"bridgeca: {exc.code}: {exc.message}", file=sys.stderr)
    return 2 if exc.kind == "malformed" else 1


def _trusted_certificates(home: str):
    """The home's own bridge certificates: what a checkpoint must be signed by."""
    from cryptography import x509

    from bridge.settings import BridgeSettings

    settings = BridgeSettings.load(home)
    found = []
    for path in (settings.cert_path, settings.second_cert_path):
        if path.exists():
            found += x509.load_pem_x509_certificates(path.read_bytes())
    return found


def audit_findings(store, home: str, checkpoints_source: str | None) -> tuple[list[str], list[str]]:
    """(findings, notes): the chain, the checkpoints held elsewhere, and a
    replay of the log against the state tables (only over a log that passed
    the first two: replaying a log known to be altered proves nothing)."""
    from bridge import audit as audit_chain
    from bridge import checkpoints

    chain = store.verify_audit()
    findings = [] if chain.intact else [chain.message]
    notes = [chain.message] if chain.intact else []
    entries = store.audit_entries()
    if checkpoints_source is not None:
        document = checkpoints.load(checkpoints_source)
        found = checkpoints.verify_log(document, _trusted_certificates(home), entries)
        findings += found
        if not found:
            newest = max(document["checkpoints"], key=lambda c: int(c["entries"]), default=None)
            notes.append(f"checkpoints: {len(document['checkpoints'])} verified"
                         + (f", the newest covering {newest['entries']} entries ({newest['at']})" if newest else ""))
    if not findings:
        state = store.state_snapshot()
        replayed = audit_chain.replay(entries, state)
        findings += replayed
        if not replayed:
            notes.append(f"state tables match the log: {len(state.crosses)} cross-certificates, {len(state.enrollments)} "
                         f"enrollments, {len(state.tokens)} tokens, {len(state.reverses)} reverse certificates, "
                         f"{len(state.blacklist or [])} blacklist entries")
    return findings, notes


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from bridge.checkpoints import CheckpointSourceError
    from bridge.errors import BridgeError
    from bridge.service import BridgeCA

    try:
        store = BridgeCA.open_store_only(args.home)
        try:
            findings, notes = audit_findings(store, args.home, args.checkpoints)
        finally:
            store.close()
    except BridgeError as exc:
        return _fail(exc)
    except CheckpointSourceError as exc:
        print(f"bridgeca: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a mangled database: report, do not trace back
        print(f"bridgeca: audit log unreadable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"intact": not findings, "message": findings[0] if findings else notes[0], "findings": findings,
                          "notes": notes}))
    elif findings:
        for finding in findings:
            print(f"TAMPERED: {finding}")
    else:
        for note in notes:
            print(note)
    return 1 if findings else 0


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not an ISO 8601 time (e.g. 2026-11-23T00:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _entries(args: argparse.Namespace):
    """The filtered entries, page by page (an export of a long log is not held in memory at once)."""
    from bridge.service import BridgeCA

    since = _since(args.since)
    store = BridgeCA.open_store_only(args.home)
    try:
        after, left = 0, args.limit
        while left is None or left > 0:
            page = store.audit_page(action=args.action, actor=args.actor, since=since, after_seq=after,
                                    limit=min(1000, left) if left is not None else 1000)
            if not page:
                return
            yield from page
            after = page[-1].seq
            if left is not None:
                left -= len(page)
    finally:
        store.close()


def _entry_dict(row) -> dict:
    return {"seq": int(row.seq), "at": row.at, "actor": row.actor, "action": row.action, "details": json.loads(row.details),
            "prev_hash": row.prev_hash, "entry_hash": row.entry_hash}


def _audit_listing(args: argparse.Namespace, line) -> int:
    from bridge.errors import BridgeError

    try:
        for row in _entries(args):
            print(line(row))
    except BridgeError as exc:
        return _fail(exc)
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    return _audit_listing(args, lambda r: f"{r.seq:>6}  {r.at}  {r.actor:<14}  {r.action:<20}  {r.details}")


def cmd_audit_export(args: argparse.Namespace) -> int:
    return _audit_listing(args, lambda r: json.dumps(_entry_dict(r), sort_keys=True, ensure_ascii=False))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register_audit(audit_sub, verify: argparse.ArgumentParser) -> None:
    """Adds to ``bridgeca audit`` (api/cli_bridge.py makes it): verify's checkpoints and replay, show, export."""
    verify.add_argument("--checkpoints", default=None, metavar="FILE_OR_URL",
                        help="checkpoints held elsewhere (a saved GET /v1/audit/checkpoints, or its URL): finds a rewritten, "
                             "reordered, truncated or emptied log")
    verify.set_defaults(handler=cmd_audit_verify)
    for name, handler, text in (("show", cmd_audit_show, "entries, one a line: seq, time, actor, action, details"),
                                ("export", cmd_audit_export, "entries as JSON lines (hashes included)")):
        command = audit_sub.add_parser(name, help=text)
        command.add_argument("--home", required=True)
        command.add_argument("--action", default=None, help="an action (certificate.revoke) or a prefix ending in '.' (certificate.)")
        command.add_argument("--actor", default=None, help="e.g. admin:3, cli")
        command.add_argument("--since", default=None, help="ISO 8601 time")
        command.add_argument("--limit", default=None, type=_positive, help="at most this many entries")
        command.set_defaults(handler=handler)


def register(subparsers) -> None:
    parser_class = subparsers._parser_class
    proposal = subparsers.add_parser("proposal", help="two-person control: proposals of admin actions")
    proposal_sub = proposal.add_subparsers(dest="proposal_command", required=True, parser_class=parser_class)
    listing = proposal_sub.add_parser("list", help="proposals, oldest first (expired ones are marked so first)")
    listing.add_argument("--status", choices=PROPOSAL_STATUSES, default=None)
    add_target(listing)
    listing.set_defaults(handler=cmd_proposal_list)
    confirm = proposal_sub.add_parser("confirm", help="confirm a proposal: the action is done now (a different admin "
                                                      "than its proposer; --home acts as the admin 'cli')")
    confirm.add_argument("id")
    add_target(confirm)
    confirm.set_defaults(handler=cmd_proposal_confirm)
    cancel = proposal_sub.add_parser("cancel", help="cancel a pending proposal")
    cancel.add_argument("id")
    cancel.add_argument("--reason", default="", help="recorded in the audit log")
    add_target(cancel)
    cancel.set_defaults(handler=cmd_proposal_cancel)
