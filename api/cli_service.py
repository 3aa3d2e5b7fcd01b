"""``bridgeca serve`` and ``bridgeca demo``."""
from __future__ import annotations

import argparse

from .cli import UsageError


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--home", required=True, help="the bridge home (bridgeca init)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--max-body-bytes", type=int, default=None, help="request body limit (default 1 MiB)")
    p.add_argument("--log-format", choices=("json", "text"), default=None,
                   help="logs on stderr: one JSON object per line (default) or text; or BRIDGECA_LOG_FORMAT")
    p.set_defaults(handler=cmd_serve)

    d = sub.add_parser("demo", help="set up and serve the demo federation (see README)")
    d.add_argument("--home", default="demo-home", help="where to build the demo bridge (default ./demo-home)")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--no-serve", action="store_true", help="set up and print, but do not start the server")
    d.set_defaults(handler=cmd_demo)


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from bridge.service import BridgeCA, BridgeError

    if not (1 <= args.port <= 65535):
        raise UsageError(f"port {args.port} is out of range")
    if args.max_body_bytes is not None and args.max_body_bytes < 1:
        raise UsageError("--max-body-bytes must be at least 1")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if getattr(args, "log_format", None):
        os.environ["BRIDGECA_LOG_FORMAT"] = args.log_format  # the workers' settings read it too
    try:
        with BridgeCA.open(args.home) as ca:  # fail fast, with one line, on a bad home or passphrase
            log_format = ca.settings.log_format
    except BridgeError as exc:
        raise UsageError(f"{exc.code}: {exc.message}") from None
    os.environ["BRIDGECA_HOME"] = str(args.home)
    if args.max_body_bytes is not None:
        os.environ["BRIDGECA_MAX_BODY_BYTES"] = str(args.max_body_bytes)
    from .server import serve

    try:
        return serve(args.host, args.port, args.workers, log_format=log_format)
    except KeyboardInterrupt:
        return 0


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from . import demo
    except ImportError:
        raise UsageError("the demo federation is not available in this build") from None
    return demo.run(args)
