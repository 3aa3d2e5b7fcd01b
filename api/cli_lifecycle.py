"""Member lifecycle commands of ``bridgeca`` (bridge/lifecycle.py):

    bridgeca issuer withdraw|suspend|reinstate|renew ID [--reason TEXT]
    bridgeca issuer terms ID [--mapping BRIDGE=MEMBER ...] [--permit TYPE=VALUE ...] [--exclude TYPE=VALUE ...]
                             [--path-length N | --default-path-length] [--reason TEXT]
    bridgeca issuer history ID
    bridgeca maintenance run --home DIR          (for cron: expiry, near-expiry warnings)
    bridgeca maintenance expiring [--days N]

Like api/cli_admin.py: ``--home DIR`` (through bridge/governance.py, audited
as ``cli``) or ``--url URL --token T`` (the HTTP routes, audited as the
token); ``--json``; exit 0 done, 1 refused, 2 bad usage, one line on stderr.
"""
from __future__ import annotations

import argparse
import urllib.parse

from .cli import UsageError
from .cli_admin import ACTOR, Home, Server, _run, add_target

ACTIONS = {
    "withdraw": "withdraw the enrollment: pending -> withdrawn; active -> cross-certificates revoked (cessationOfOperation)",
    "suspend": "suspend a member: cross-certificates on hold (certificateHold) until reinstated",
    "reinstate": "reinstate a suspended member: cross-certificates off hold",
    "renew": "issue a new cross-certificate on the same terms, then revoke the old one (superseded)",
}
SUBTREE_TYPES = ("directoryName", "dNSName", "rfc822Name", "uniformResourceIdentifier", "iPAddress")


def _perform(where, action: str, enrollment_id: str, params: dict, route: str, method: str = "POST") -> dict:
    if isinstance(where, Home):
        from bridge import governance
        from bridge.service import BridgeCA

        def run():
            with BridgeCA.open(where.path) as ca:
                return governance.perform(ca, action, {"enrollment_id": enrollment_id, **params}, actor=ACTOR)

        return where._call(run)
    return where._request(method, f"/v1/issuers/{Server._q(enrollment_id)}/{route}", params)


def _summary(action: str):
    def show(view: dict) -> None:
        line = f"{view['id']} ({view['name']}): {view['status']}"
        for key, words in (("held_serials", "on hold"), ("released_serials", "off hold"), ("revoked_serials", "revoked"),
                           ("superseded_serials", "superseded")):
            if view.get(key):
                line += f"; {words}: {', '.join(view[key])}"
        if view.get("serial"):
            line += f"; new cross-certificate {view['serial']}"
        if view.get("crl_number") is not None:
            line += f"; CRL number {view['crl_number']}"
        print(f"{action}: {line}")

    return show


def cmd_action(args: argparse.Namespace) -> int:
    return _run(args, lambda t: _perform(t, args.lifecycle_action, args.id, {"reason": args.reason}, args.lifecycle_action),
                _summary(args.lifecycle_action))


def _pairs(items, what: str, sep: str = "=") -> list[tuple[str, str]]:
    out = []
    for item in items or ():
        if item is None:  # the flag alone: an empty list
            continue
        left, found, right = item.partition(sep)
        if not found or not left.strip() or not right.strip():
            raise UsageError(f"{what} {item!r}: give {'BRIDGE_OID=MEMBER_OID' if what == '--mapping' else 'TYPE=VALUE'}")
        out.append((left.strip(), right.strip()))
    return out


def _subtrees(items, what: str) -> list[dict]:
    subtrees = []
    for kind, value in _pairs(items, what):
        if kind not in SUBTREE_TYPES:
            raise UsageError(f"{what} {kind}={value}: the type is one of {', '.join(SUBTREE_TYPES)}")
        subtrees.append({"type": kind, "value": value})
    return subtrees


def cmd_terms(args: argparse.Namespace) -> int:
    params: dict = {"reason": args.reason}
    if args.mapping:
        params["policy_mappings"] = [{"bridge_policy": b, "member_policy": m} for b, m in _pairs(args.mapping, "--mapping")]
    if args.permit is not None:
        params["permitted_subtrees"] = _subtrees(args.permit, "--permit")
    if args.exclude is not None:
        params["excluded_subtrees"] = _subtrees(args.exclude, "--exclude")
    if args.path_length is not None and args.default_path_length:
        raise UsageError("give --path-length N or --default-path-length, not both")
    if args.path_length is not None:
        if args.path_length < 0:
            raise UsageError("--path-length must be 0 or more")
        params["path_length"] = args.path_length
    elif args.default_path_length:
        params["path_length"] = None
    if set(params) == {"reason"}:
        raise UsageError("give at least one of --mapping, --permit, --exclude, --path-length, --default-path-length")
    return _run(args, lambda t: _perform(t, "change_terms", args.id, params, "terms", "PUT"), _summary("new terms"))


def cmd_history(args: argparse.Namespace) -> int:
    def fetch(where):
        if isinstance(where, Home):
            return where.issuer(args.id)["status_history"]
        return where._request("GET", f"/v1/issuers/{Server._q(args.id)}/history")

    def show(items: list[dict]) -> None:
        for item in items:
            serials = f"  [{', '.join(item['serials'])}]" if item.get("serials") else ""
            print(f"{item['at']}  {item['status']:<9}  {item['reason']}{serials}")

    return _run(args, fetch, show)


def cmd_maintenance_run(args: argparse.Namespace) -> int:
    if not args.home:
        raise UsageError("maintenance run needs --home DIR (it runs in the service itself too)")
    where = Home(args.home)

    def run(_where):
        from bridge.service import BridgeCA

        def go():
            with BridgeCA.open(where.path) as ca:
                return ca.maintenance(actor=ACTOR)

        return where._call(go)

    def show(result: dict) -> None:
        print(f"expired pending enrollments: {len(result['expired_pending'])}; expired members: {len(result['expired_members'])}")
        for item in result["expiring"]:
            print(f"warning: cross-certificate {item['serial']} of {item['name']} expires {item['not_after']} "
                  f"({item['days_left']} days)")

    return _run(args, run, show)


def cmd_expiring(args: argparse.Namespace) -> int:
    if args.days is not None and not (0 <= args.days <= 36500):
        raise UsageError("--days must be between 0 and 36500")

    def fetch(where):
        if isinstance(where, Home):
            from bridge.service import BridgeCA

            def go():
                with BridgeCA.open(where.path) as ca:
                    return ca.expiring(args.days)

            return where._call(go)
        query = f"?days={urllib.parse.quote(str(args.days))}" if args.days is not None else ""
        return where._request("GET", f"/v1/cross-certificates/expiring{query}")

    def show(items: list[dict]) -> None:
        for item in items:
            print(f"{item['serial']}  {item['not_after']}  {item['days_left']:>6} days  {item['name']} ({item['enrollment']})")
        if not items:
            print("no cross-certificate expires within the window")

    return _run(args, fetch, show)


def _subcommands(parser: argparse.ArgumentParser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def register(subparsers) -> None:
    """Adds to ``bridgeca issuer`` (api/cli_admin.py registers it first) and adds ``bridgeca maintenance``."""
    parser_class = subparsers._parser_class
    issuer_sub = _subcommands(subparsers.choices["issuer"])
    for action, text in ACTIONS.items():
        command = issuer_sub.add_parser(action, help=text)
        command.add_argument("id", help="the enrollment id")
        command.add_argument("--reason", default="", help="recorded in the status history and the audit log")
        add_target(command)
        command.set_defaults(handler=cmd_action, lifecycle_action=action)

    terms = issuer_sub.add_parser("terms", help="reissue with new policy mappings / name constraints / path length "
                                                "(the old cross-certificate is revoked, superseded)")
    terms.add_argument("id", help="the enrollment id")
    terms.add_argument("--mapping", action="append", metavar="BRIDGE_OID=MEMBER_OID",
                       help="a policy mapping; repeatable; replaces all current mappings")
    terms.add_argument("--permit", action="append", nargs="?", const=None, metavar="TYPE=VALUE",
                       help="a permitted subtree, e.g. directoryName=C=HK; repeatable; replaces the current ones "
                            "(--permit alone: none)")
    terms.add_argument("--exclude", action="append", nargs="?", const=None, metavar="TYPE=VALUE",
                       help="an excluded subtree; repeatable; replaces the current ones (--exclude alone: none)")
    terms.add_argument("--path-length", type=int, default=None, help="pathLenConstraint of the new cross-certificate")
    terms.add_argument("--default-path-length", action="store_true", help="use the bridge's default pathLenConstraint")
    terms.add_argument("--reason", default="", help="recorded in the status history and the audit log")
    add_target(terms)
    terms.set_defaults(handler=cmd_terms)

    history = issuer_sub.add_parser("history", help="the enrollment's status history")
    history.add_argument("id", help="the enrollment id")
    add_target(history)
    history.set_defaults(handler=cmd_history)

    maintenance = subparsers.add_parser("maintenance", help="expiry of stale enrollments, near-expiry warnings (for cron)")
    maintenance_sub = maintenance.add_subparsers(dest="maintenance_command", required=True, parser_class=parser_class)
    run = maintenance_sub.add_parser("run", help="expire pending enrollments older than pending_enrollment_max_days and "
                                                 "members with nothing in force; warn of cross-certificates near expiry")
    run.add_argument("--home", required=True, help="the bridge home")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.set_defaults(handler=cmd_maintenance_run, url=None, token=None)
    expiring = maintenance_sub.add_parser("expiring", help="cross-certificates whose notAfter is within --days")
    expiring.add_argument("--days", type=float, default=None, help="look-ahead in days (default: expiry_warning_days)")
    add_target(expiring)
    expiring.set_defaults(handler=cmd_expiring)
