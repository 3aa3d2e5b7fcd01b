"""``bridgeca blacklist add|remove|list``: the blacklist (黑名单) on a bridge
home (``--home``: through bridge/governance.py, audited as ``cli``) or on a
running server (``--url`` and an admin token: the admin routes, audited as
that token). ``--json`` prints what the HTTP routes return.

Exit status: 0 done, 1 refused (conflict, not found, unreachable), 2 bad usage or input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli import UsageError
from .cli_admin import ACTOR, Home, Refused, Server, _run, add_target

KINDS = ("spki_sha256", "certificate_sha256", "issuer_serial", "subject_identity")


def _add_params(args: argparse.Namespace) -> dict:
    given = [name for name in ("value", "certificate", "issuer", "identity") if getattr(args, name) is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --value, --certificate, --issuer with --serial, or --identity OID=VALUE")
    params: dict = {"kind": args.kind, "reason": args.reason}
    if args.value is not None:
        params["value"] = args.value
    elif args.certificate is not None:
        try:
            params["certificate"] = Path(args.certificate).read_bytes().decode("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--certificate {args.certificate}: cannot read a PEM file: {exc}") from None
    elif args.issuer is not None:
        if args.serial is None:
            raise UsageError("--issuer needs --serial")
        params["value"] = {"issuer": args.issuer, "serial": args.serial}
    else:
        oid, sep, text = args.identity.partition("=")
        if not sep:
            raise UsageError("--identity is OID=VALUE, e.g. organizationIdentifier=91440300MA5XXXXX0X")
        params["value"] = {"oid": oid, "value": text}
    for name in ("public_note", "internal_note", "evidence", "effective_at"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    return params


def _perform(where, action: str, params: dict) -> dict:
    if isinstance(where, Server):
        if action == "blacklist_add":
            return where._request("POST", "/v1/blacklist/entries", params)
        entry = params.pop("entry_id")
        return where._request("POST", f"/v1/blacklist/entries/{Server._q(entry)}/remove", params)

    def run():
        from datetime import datetime

        from bridge import governance
        from bridge.service import BridgeCA

        if isinstance(params.get("effective_at"), str):
            try:
                params["effective_at"] = datetime.fromisoformat(params["effective_at"])
            except ValueError:
                from bridge.errors import BridgeError

                raise BridgeError("invalid_request", f"--effective-at {params['effective_at']!r} is not an ISO 8601 time", "malformed") from None
        with BridgeCA.open(where.path) as ca:
            return governance.perform(ca, action, params, actor=ACTOR)

    return where._call(run)


def _entries(where) -> list[dict]:
    if isinstance(where, Server):
        return where._request("GET", "/v1/blacklist/entries")

    def run():
        from bridge import blacklist
        from bridge.home import store_of

        with store_of(where.path) as store:
            return [blacklist.admin_view(r) for r in store.blacklist_entries()]

    return where._call(run)


def _line(view: dict) -> str:
    value = view["value"]
    shown = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) if isinstance(value, dict) else value
    return f"{view['id']}  {view['status']:<7}  {view['kind']:<18}  {shown}  ({view['reason']})"


def cmd_add(args: argparse.Namespace) -> int:
    params = _add_params(args)
    return _run(args, lambda where: _perform(where, "blacklist_add", params), lambda v: print(f"blacklisted: {_line(v)}"))


def cmd_remove(args: argparse.Namespace) -> int:
    params = {"entry_id": args.id, "reason": args.reason}
    return _run(args, lambda where: _perform(where, "blacklist_remove", params), lambda v: print(f"removed: {_line(v)}"))


def cmd_list(args: argparse.Namespace) -> int:
    def show(views: list[dict]) -> None:
        for view in views:
            if args.all or view["status"] == "active":
                print(_line(view))
        if not views:
            print("the blacklist is empty")

    return _run(args, lambda where: [v for v in _entries(where) if args.all or args.json or v["status"] == "active"], show)


def register(subparsers) -> None:
    parser_class = subparsers._parser_class
    blacklist = subparsers.add_parser("blacklist", help="the blacklist: keys, certificates, issuer+serial, subject identities")
    sub = blacklist.add_subparsers(dest="blacklist_command", required=True, parser_class=parser_class)

    add = sub.add_parser("add", help="list an entry; every verification refuses paths through it")
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument("--value", default=None, help="hex SHA-256 for spki_sha256 / certificate_sha256")
    add.add_argument("--certificate", default=None, metavar="PEM_FILE", help="take the key, certificate or issuer+serial from it")
    add.add_argument("--issuer", default=None, help="issuer_serial: the issuer name, RFC 4514")
    add.add_argument("--serial", default=None, help="issuer_serial: the serial, hexadecimal")
    add.add_argument("--identity", default=None, metavar="OID=VALUE", help="subject_identity, e.g. organizationIdentifier=9144...")
    add.add_argument("--reason", required=True)
    add.add_argument("--public-note", default="", help="published with the entry")
    add.add_argument("--internal-note", default="", help="administrators only")
    add.add_argument("--evidence", default="", help="evidence reference (administrators only)")
    add.add_argument("--effective-at", default=None, help="ISO 8601 with a time zone, not in the future (default now)")
    add_target(add)
    add.set_defaults(handler=cmd_add)

    remove = sub.add_parser("remove", help="end an entry (it stays listed, as removed)")
    remove.add_argument("id", help="the entry id")
    remove.add_argument("--reason", default="", help="recorded with the removal")
    add_target(remove)
    remove.set_defaults(handler=cmd_remove)

    listing = sub.add_parser("list", help="entries in force (--all: removed ones too)")
    listing.add_argument("--all", action="store_true")
    add_target(listing)
    listing.set_defaults(handler=cmd_list)


__all__ = ["register", "Home", "Refused"]
