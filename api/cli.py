"""The ``bridgeca`` command.

Exit status (INTERFACE.md): 0 valid / success, 1 not valid, 2 usage error or
unreadable input, with one line on stderr and never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence


class UsageError(Exception):
    """A one-line message for stderr; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage; we print one line
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bridgeca", description="Bridge CA and RFC 5280 verification service")
    parser.add_argument("--version", action="version", version=f"bridgeca {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from . import cli_verify

    cli_verify.register(sub)
    try:
        from . import cli_bridge
    except ImportError:  # the bridge commands land with the bridge CA
        pass
    else:
        cli_bridge.register(sub)
    try:
        from . import cli_service
    except ImportError:
        pass
    else:
        cli_service.register(sub)
    from . import cli_admin

    cli_admin.register(sub)
    from . import cli_blacklist

    cli_blacklist.register(sub)
    from . import cli_governance

    cli_governance.register(sub)  # bridgeca proposal list|confirm|cancel
    from . import cli_lifecycle  # adds to `issuer`, so after cli_admin

    cli_lifecycle.register(sub)
    from . import cli_trust_list

    cli_trust_list.register(sub)
    from . import cli_receipt

    cli_receipt.register(sub)  # bridgeca receipt verify
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bridgeca")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --version, --help: printed; return rather than exit (main is called in-process too)
            return int(exc.code or 0)
        return int(args.handler(args) or 0)
    except UsageError as exc:
        print(f"bridgeca: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one line, never a traceback
        from pki.errors import InputError

        if isinstance(exc, InputError):
            print(f"bridgeca: {exc}", file=sys.stderr)
            return 2
        print(f"bridgeca: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
