"""``bridgeca trust-list``: others' ETSI TS 119 612 lists (bridge/trust_lists.py).

- ``verify FILE [--signer CERT]... [--schema-dir DIR]``: the file's schema and
  signature (at its ListIssueDateTime). Exit 0 when both hold (and the signer
  is one of ``--signer`` when given), 1 when not, 2 when the file is not a list.
- ``show FILE`` or ``show ID --home DIR``: a list's summary and services; a
  registered list's versions.
- ``register --home DIR --name N (--url URL | --file FILE) --signer CERT... [--mapping JSON]``,
  ``list --home DIR``, ``fetch ID --home DIR``: the admin routes' work on a
  home directly (audited as ``cli``).
``--json`` prints the full result. One line on stderr for every refusal.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli import UsageError

ACTOR = "cli"


def register(sub) -> None:
    parser = sub.add_parser("trust-list", help="external ETSI TS 119 612 trusted lists: show, verify, register, fetch")
    commands = parser.add_subparsers(dest="trust_list_command", required=True, parser_class=type(parser))

    verify = commands.add_parser("verify", help="check a list file's schema and signature (at its issue time)")
    verify.add_argument("file")
    verify.add_argument("--signer", action="append", default=[], metavar="CERT", help="a certificate allowed to sign it (repeatable)")
    verify.add_argument("--schema-dir", help="directory with ts_119612v020401_xsd.xsd and catalog.xml; else structural checks only")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    show = commands.add_parser("show", help="a list file's summary, or a registered list's (with --home)")
    show.add_argument("target", help="a list file, or a registered list's id with --home")
    show.add_argument("--home")
    show.add_argument("--services", action="store_true", help="every service with its status history")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    reg = commands.add_parser("register", help="register a list to recognise (URL fetched now, or a file)")
    reg.add_argument("--home", required=True)
    reg.add_argument("--name", required=True)
    source = reg.add_mutually_exclusive_group(required=True)
    source.add_argument("--url")
    source.add_argument("--file")
    reg.add_argument("--signer", action="append", required=True, metavar="CERT", help="a certificate allowed to sign it (repeatable)")
    reg.add_argument("--mapping", help='JSON: {"service_types": {...}, "statuses": {...}, "policies": [{"prefix", "bridge_policy"}]}')
    reg.add_argument("--json", action="store_true")
    reg.set_defaults(handler=_register)

    listing = commands.add_parser("list", help="the registered lists")
    listing.add_argument("--home", required=True)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    fetch = commands.add_parser("fetch", help="fetch a registered list now")
    fetch.add_argument("list_id")
    fetch.add_argument("--home", required=True)
    fetch.add_argument("--json", action="store_true")
    fetch.set_defaults(handler=_fetch)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _refused(exc) -> int:
    print(f"bridgeca: {getattr(exc, 'code', 'refused')}: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
    return 1


def _registry(home: str):
    from bridge.errors import BridgeError
    from bridge.service import BridgeCA
    from bridge.settings import BridgeSettings
    from bridge.trust_lists import TrustListRegistry

    try:
        store = BridgeCA.open_store_only(home)
    except BridgeError as exc:
        raise UsageError(exc.message) from None
    return store, TrustListRegistry(store, BridgeSettings.load(home))


def _run_on_home(home: str, work) -> int:
    from bridge.store import NotFound, StoreError
    from bridge.trust_lists import TrustListError

    store, registry = _registry(home)
    try:
        return work(registry)
    except NotFound as exc:
        return _refused(exc)
    except TrustListError as exc:
        if exc.kind == "malformed":
            raise UsageError(exc.message) from None
        return _refused(exc)
    except StoreError as exc:
        return _refused(exc)
    finally:
        store.close()


def _print(value, as_json: bool, lines) -> None:
    if as_json:
        print(json.dumps(value, indent=2, ensure_ascii=False))
    else:
        for line in lines(value):
            print(line)


def _summary_lines(summary: dict) -> list[str]:
    return [f"{summary['territory']}  {summary['operator']}",
            f"  TSL version {summary['version']}, sequence number {summary['sequence_number']}, issued {summary['issued']}, "
            f"next update {summary['next_update']}",
            f"  {summary['providers']} providers, {summary['services']} services ({summary['history_entries']} history entries), "
            f"{summary['pointers']} pointers, {summary['mra_equivalences']} MRA equivalences"]


def _verify(args) -> int:
    from bridge.trust_lists import TrustListError, _certificate_ders, read_trust_list

    data = _read(args.file)
    try:
        allowed = _certificate_ders([_read(p) for p in args.signer]) if args.signer else None
        reading = read_trust_list(data, allowed=allowed, schema_dir=args.schema_dir)
    except TrustListError as exc:
        raise UsageError(f"{args.file}: {exc.message}") from None
    result = reading.to_dict()
    _print(result, args.json, lambda r: _summary_lines(r) + [
        f"schema     {r['schema']['checked']}: {'valid' if r['schema']['valid'] else 'INVALID: ' + '; '.join(r['schema']['errors'][:2])}",
        f"signature  {r['signature']['status']} at {r['signature']['at']} by {r['signature']['signer']}"
        + (f" ({r['signature']['detail']})" if r['signature']['detail'] else "")])
    return 0 if reading.acceptable else 1


def _show(args) -> int:
    from bridge.trust_lists import TrustListError, parse_trust_list, service_view

    if args.home:
        def work(registry):
            view = registry.view(args.target)
            if args.services:
                view["services"] = registry.services(args.target)
            _print(view, args.json, lambda v: [f"{v['id']}  {v['name']}  ({v['trust_anchor']})", f"  url {v['url']}"]
                   + (_summary_lines(v["latest"]) if v["latest"] else ["  no accepted version yet"])
                   + [f"  version {x['sequence_number']} issued {x['issued']}, signature {x['signature']}" for x in v["versions"]])
            return 0
        return _run_on_home(args.home, work)
    try:
        trust_list = parse_trust_list(_read(args.target))
    except TrustListError as exc:
        raise UsageError(f"{args.target}: {exc.message}") from None
    summary = trust_list.summary()
    if args.services:
        summary["services_listed"] = [service_view(s) for s in trust_list.services]
    _print(summary, args.json, lambda s: _summary_lines(s) + [
        f"  {v['name']}: {v['status'].rsplit('/', 1)[-1]} since {v['status_start']} ({len(v['history'])} earlier)"
        for v in s.get("services_listed", [])])
    return 0


def _register(args) -> int:
    try:
        mapping = json.loads(args.mapping) if args.mapping else None
    except ValueError:
        raise UsageError("--mapping is not JSON") from None
    signers = [_read(p) for p in args.signer]
    xml = _read(args.file) if args.file else None

    def work(registry):
        view = registry.register(name=args.name, url=args.url, xml=xml, allowed_signers=signers, mapping=mapping, actor=ACTOR)
        _print(view, args.json, lambda v: [f"{v['id']}  {v['name']}  trust_anchor {v['trust_anchor']}",
                                          f"  {json.dumps(v['outcome'])}"])
        return 0 if (view["outcome"] or {}).get("error") is None else 1
    return _run_on_home(args.home, work)


def _list(args) -> int:
    def work(registry):
        views = registry.views()
        _print(views, args.json, lambda vs: [f"{v['id']}  {v['name']}  seq {v['latest']['sequence_number'] if v['latest'] else '-'}  "
                                            f"{v['url'] or '(uploaded)'}" for v in vs])
        return 0
    return _run_on_home(args.home, work)


def _fetch(args) -> int:
    def work(registry):
        outcome = registry.fetch(args.list_id, actor=ACTOR, force=True)
        _print(outcome, args.json, lambda o: [json.dumps(o)])
        return 0
    return _run_on_home(args.home, work)
