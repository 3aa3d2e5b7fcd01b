"""Administration commands of ``bridgeca``: tokens, issuers, cross-certificates, CRLs.

Each command works on a bridge home directly (``--home DIR``: the same
``bridge.service`` calls the HTTP routes make, audited with actor ``cli``) or
on a running server (``--url URL`` with an admin token from ``--token`` or
BRIDGECA_TOKEN: the HTTP routes, audited as that token). ``--json`` prints
what the HTTP route returns; without it, a few plain lines.

Exit status: 0 done, 1 refused or failed (not found, conflict, server
unreachable), 2 bad usage or input; always one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

from bridge.roles import ROLES

from .cli import UsageError

ACTOR = "cli"
TOKEN_ENV = "BRIDGECA_TOKEN"
_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Refused(Exception):
    """A domain or HTTP refusal: ``code``, ``message``, and whether it is the caller's input (exit 2)."""

    def __init__(self, code: str, message: str, usage: bool = False):
        super().__init__(message)
        self.code, self.message, self.usage = code, message, usage


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"--expires-in {text!r}: give a positive number and a unit, e.g. 30d, 12h, 90m, 2w")
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise UsageError(f"--expires-in {text!r} is too long") from None


# --------------------------------------------------------------------------- targets


class Home:
    """The bridge home, through bridge.service (what the routes call)."""

    def __init__(self, path: str):
        self.path = path

    def _call(self, fn, *args, **kwargs):
        from bridge.errors import BridgeError

        try:
            return fn(*args, **kwargs)
        except BridgeError as exc:
            raise Refused(exc.code, exc.message, usage=exc.kind == "malformed") from None

    def _perform(self, action: str, params: dict) -> dict:
        """A trust-changing action, through the one gate (two-person control)."""
        from bridge import governance
        from bridge.service import BridgeCA

        def run():
            with BridgeCA.open(self.path) as ca:
                return governance.perform(ca, action, params, actor=ACTOR)

        return self._call(run)

    def _with_ca(self, method: str, *args, **kwargs):
        from bridge.service import BridgeCA

        def run():
            with BridgeCA.open(self.path) as ca:
                return getattr(ca, method)(*args, **kwargs)

        return self._call(run)

    def issuers(self) -> list[dict]:
        from bridge.views import issuers_without_key

        return self._call(issuers_without_key, self.path)

    def issuer(self, enrollment_id: str) -> dict:
        from bridge.views import issuer_without_key

        return self._call(issuer_without_key, self.path, enrollment_id)

    def approve(self, enrollment_id: str) -> dict:
        return self._perform("approve", {"enrollment_id": enrollment_id})

    def reject(self, enrollment_id: str, reason: str) -> dict:
        return self._with_ca("reject", enrollment_id, reason=reason, actor=ACTOR)

    def revoke(self, serial: str, reason: str) -> dict:
        return self._perform("revoke", {"serial": serial, "reason": reason})

    def issue_crl(self) -> dict:
        return self._with_ca("issue_crl", actor=ACTOR)

    def tokens(self) -> list[dict]:
        from bridge.tokens import tokens_without_key

        return self._call(tokens_without_key, self.path)

    def revoke_token(self, token_id: int) -> dict:
        from bridge.tokens import revoke_token_without_key

        return self._call(revoke_token_without_key, self.path, token_id, actor=ACTOR)

    def create_token(self, role: str, expires_in: timedelta | None) -> dict:
        from bridge.tokens import create_token_without_key, tokens_without_key

        token, token_id = self._call(create_token_without_key, self.path, role, actor=ACTOR, with_id=True, expires_in=expires_in)
        view = next(t for t in self._call(tokens_without_key, self.path) if t["id"] == token_id)
        return {**view, "token": token}


class Server:
    """A running bridgeca server, through its HTTP API."""

    def __init__(self, url: str, token: str):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--url {url!r} is not an http:// or https:// URL")
        self.base = url.rstrip("/")
        self.token = token

    def _request(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                problem = json.loads(error.read())
                code, detail = problem.get("code", "error"), problem.get("detail") or problem.get("title") or ""
            except (ValueError, AttributeError):
                code, detail = "http_error", f"HTTP {error.code}"
            raise Refused(code, f"{detail} (HTTP {error.code})", usage=error.code == 400) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise Refused("unreachable", f"cannot reach {self.base}: {reason}") from None
        except ValueError:
            raise Refused("bad_response", f"{self.base} answered something that is not JSON") from None

    @staticmethod
    def _q(value) -> str:
        return urllib.parse.quote(str(value), safe="")

    def issuers(self) -> list[dict]:
        return self._request("GET", "/v1/issuers")

    def issuer(self, enrollment_id: str) -> dict:
        return self._request("GET", f"/v1/issuers/{self._q(enrollment_id)}")

    def approve(self, enrollment_id: str) -> dict:
        return self._request("POST", f"/v1/issuers/{self._q(enrollment_id)}/approve")

    def reject(self, enrollment_id: str, reason: str) -> dict:
        return self._request("POST", f"/v1/issuers/{self._q(enrollment_id)}/reject", {"reason": reason})

    def revoke(self, serial: str, reason: str) -> dict:
        return self._request("POST", f"/v1/cross-certificates/{self._q(serial)}/revoke", {"reason": reason})

    def issue_crl(self) -> dict:
        return self._request("POST", "/v1/crl/issue")

    def tokens(self) -> list[dict]:
        return self._request("GET", "/v1/tokens")

    def revoke_token(self, token_id: int) -> dict:
        return self._request("POST", f"/v1/tokens/{int(token_id)}/revoke")

    def create_token(self, role: str, expires_in: timedelta | None) -> dict:
        body: dict = {"role": role}
        if expires_in is not None:
            body["expires_in_seconds"] = int(expires_in.total_seconds())
        return self._request("POST", "/v1/tokens", body)


def target(args: argparse.Namespace):
    if args.home and args.url:
        raise UsageError("give --home or --url, not both")
    if args.home:
        return Home(args.home)
    if not args.url:
        raise UsageError("give --home DIR (the bridge home) or --url URL (a running server, with an admin token)")
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UsageError(f"--url needs an admin token: --token TOKEN or {TOKEN_ENV}")
    return Server(args.url, token)


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", default=None, help="the bridge home (works without a server)")
    parser.add_argument("--url", default=None, help="a running bridgeca server, e.g. https://bridge.example")
    parser.add_argument("--token", default=None, help=f"admin token for --url (default ${TOKEN_ENV}; the variable "
                                                      "keeps it out of the process list)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (what the HTTP route returns)")


def _run(args: argparse.Namespace, action, show) -> int:
    where = target(args)
    try:
        result = action(where)
    except Refused as exc:
        print(f"bridgeca: {exc.code}: {exc.message}", file=sys.stderr)
        return 2 if exc.usage else 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    elif isinstance(result, dict) and set(result) == {"proposal"} and result["proposal"].get("status") == "pending":
        # Two-person control: the action waits for a second administrator.
        proposal = result["proposal"]
        print(f"proposed {proposal.get('action', 'action')} as proposal {proposal['id']}: a different administrator "
              f"confirms it with 'bridgeca proposal confirm {proposal['id']}' before {proposal.get('expires_at', 'it expires')}")
    else:
        show(result)
    return 0


# --------------------------------------------------------------------------- plain output


def _issuer_line(view: dict) -> str:
    crosses = view.get("cross_certificates") or []
    in_force = [c["serial"] for c in crosses if c["status"] == "issued"]
    return (f"{view['id']}  {view['status']:<8}  {view['jurisdiction']:<3}  {view['name']}"
            + (f"  (cross-certificate {', '.join(in_force)})" if in_force else ""))


def _show_issuer(view: dict) -> None:
    print(f"id            {view['id']}")
    print(f"name          {view['name']} ({view['jurisdiction']})")
    print(f"status        {view['status']}")
    print(f"root          {view['root_subject']}")
    for mapping in view.get("policy_mappings") or []:
        print(f"policy        bridge {mapping['bridge_policy']} = member {mapping['member_policy']}")
    print(f"created       {view['created_at']}")
    for cross in view.get("cross_certificates") or []:
        revoked = f", revoked {cross['revoked_at']} ({cross['revocation_reason']})" if cross.get("revoked_at") else ""
        print(f"cross-cert    {cross['serial']}  {cross['status']}  until {cross['not_after']}{revoked}")


def _token_line(view: dict) -> str:
    expires = view["expires_at"] or "never"
    revoked = f"  revoked {view['revoked_at']}" if view["revoked_at"] else ""
    return f"{view['id']:>5}  {view['role']:<8}  {view['state']:<7}  created {view['created_at']}  expires {expires}{revoked}"


# --------------------------------------------------------------------------- commands


def cmd_token_create(args: argparse.Namespace) -> int:
    expires_in = parse_duration(args.expires_in) if args.expires_in else None

    def show(view: dict) -> None:
        until = f", expires {view['expires_at']}" if view["expires_at"] else ""
        print(f"new {view['role']} token, id {view['id']}{until} (shown once; only its hash is stored; "
              f"'bridgeca token revoke --id {view['id']}' revokes it):")
        print(view["token"])

    return _run(args, lambda t: t.create_token(args.role, expires_in), show)


def cmd_token_list(args: argparse.Namespace) -> int:
    def show(views: list[dict]) -> None:
        for view in views:
            print(_token_line(view))
        if not views:
            print("no tokens")

    return _run(args, lambda t: t.tokens(), show)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    return _run(args, lambda t: t.revoke_token(args.id), lambda view: print(f"token {view['id']} revoked"))


def cmd_issuer_list(args: argparse.Namespace) -> int:
    def show(views: list[dict]) -> None:
        for view in views:
            print(_issuer_line(view))
        if not views:
            print("no enrollments")

    return _run(args, lambda t: t.issuers(), show)


def cmd_issuer_show(args: argparse.Namespace) -> int:
    return _run(args, lambda t: t.issuer(args.id), _show_issuer)


def cmd_issuer_approve(args: argparse.Namespace) -> int:
    return _run(args, lambda t: t.approve(args.id),
                lambda view: print(f"approved {view['id']} ({view['name']}): cross-certificate serial {view['serial']}"))


def cmd_issuer_reject(args: argparse.Namespace) -> int:
    return _run(args, lambda t: t.reject(args.id, args.reason), lambda view: print(f"rejected {view['id']} ({view['name']})"))


def cmd_cross_revoke(args: argparse.Namespace) -> int:
    return _run(args, lambda t: t.revoke(args.serial, args.reason),
                lambda r: print(f"cross-certificate {r['serial']} revoked ({r['reason']}); CRL number {r['crl_number']}"))


def cmd_crl_issue(args: argparse.Namespace) -> int:
    return _run(args, lambda t: t.issue_crl(),
                lambda r: print(f"CRL number {r['crl_number']} issued; next update {r['next_update']}"))


def register(subparsers) -> None:
    parser_class = subparsers._parser_class

    token = subparsers.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, parser_class=parser_class)
    create = token_sub.add_parser("create", help="print a new API token (alone on the last line)")
    add_target(create)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--expires-in", default=None, metavar="DURATION",
                        help="the token stops working after this long: 30d, 12h, 90m, 2w (default: never)")
    create.set_defaults(handler=cmd_token_create)
    listing = token_sub.add_parser("list", help="tokens: id, role, state, creation, expiry, revocation (never the token)")
    add_target(listing)
    listing.set_defaults(handler=cmd_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke an API token by its id (printed at creation)")
    add_target(revoke)
    revoke.add_argument("--id", required=True, type=int)
    revoke.set_defaults(handler=cmd_token_revoke)

    issuer = subparsers.add_parser("issuer", help="member enrollments: list, show, approve, reject")
    issuer_sub = issuer.add_subparsers(dest="issuer_command", required=True, parser_class=parser_class)
    for name, handler, text in (("list", cmd_issuer_list, "every enrollment, with its status"),
                                ("show", cmd_issuer_show, "one enrollment and its cross-certificates"),
                                ("approve", cmd_issuer_approve, "issue the cross-certificate (bridge -> member root)"),
                                ("reject", cmd_issuer_reject, "refuse a pending enrollment")):
        command = issuer_sub.add_parser(name, help=text)
        if name != "list":
            command.add_argument("id", help="the enrollment id")
        if name == "reject":
            command.add_argument("--reason", default="", help="recorded in the audit log")
        add_target(command)
        command.set_defaults(handler=handler)

    cross = subparsers.add_parser("cross-certificate", help="cross-certificates the bridge issued")
    cross_sub = cross.add_subparsers(dest="cross_command", required=True, parser_class=parser_class)
    revoke_cross = cross_sub.add_parser("revoke", help="revoke a cross-certificate; the CRL listing it is issued at once")
    revoke_cross.add_argument("serial", help="serial number, hexadecimal")
    revoke_cross.add_argument("--reason", default="unspecified", help="RFC 5280 reason name, e.g. keyCompromise")
    add_target(revoke_cross)
    revoke_cross.set_defaults(handler=cmd_cross_revoke)

    crl = subparsers.add_parser("crl", help="the bridge's CRL")
    crl_sub = crl.add_subparsers(dest="crl_command", required=True, parser_class=parser_class)
    issue = crl_sub.add_parser("issue", help="issue a new CRL now")
    add_target(issue)
    issue.set_defaults(handler=cmd_crl_issue)
