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
    p.add_argument("--max-body-bytes", type=int, default=None,
                   help="request body limit (default 1 MiB, at least 1024; or BRIDGECA_MAX_BODY_BYTES)")
    p.add_argument("--tls-cert", default=None, help="serve HTTPS with this certificate chain (PEM, the server's first)")
    p.add_argument("--tls-key", default=None, help="the private key of --tls-cert (PEM, unencrypted)")
    p.add_argument("--tls-client-ca", default=None,
                   help="require client certificates issued by these CAs (PEM) in the TLS handshake")
    p.add_argument("--proxy-headers", action="store_true",
                   help="take the client address and scheme from X-Forwarded-For/-Proto sent by --forwarded-allow-ips")
    p.add_argument("--forwarded-allow-ips", default=None,
                   help="comma-separated addresses or networks of trusted reverse proxies (implies --proxy-headers; "
                        "default 127.0.0.1)")
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

    from bridge.errors import BridgeError
    from bridge.service import BridgeCA

    if not (1 <= args.port <= 65535):
        raise UsageError(f"port {args.port} is out of range")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.max_body_bytes is not None:
        from bridge.settings import BridgeSettings

        field = BridgeSettings.model_fields["max_body_bytes"]
        minimum = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), 1)
        if args.max_body_bytes < minimum:
            raise UsageError(f"--max-body-bytes must be at least {minimum}")
    # The workers read the settings (BridgeSettings, where the environment
    # wins over config.json) themselves: the flag goes through the
    # environment, and is checked here by the same validation, so a value the
    # settings refuse is one line now rather than every worker dying at start.
    if args.max_body_bytes is not None:
        os.environ["BRIDGECA_MAX_BODY_BYTES"] = str(args.max_body_bytes)
    from .server import ProxyOptions, TlsOptions, TlsSetupError, serve

    tls = None
    if getattr(args, "tls_cert", None) or getattr(args, "tls_key", None) or getattr(args, "tls_client_ca", None):
        if not getattr(args, "tls_cert", None):
            raise UsageError("--tls-key and --tls-client-ca need --tls-cert")
        tls = TlsOptions(args.tls_cert, args.tls_key, getattr(args, "tls_client_ca", None))
        try:
            tls.context()  # fail fast on unreadable or mismatched files, in one line
        except TlsSetupError as exc:
            raise UsageError(str(exc)) from None
    allow_ips = getattr(args, "forwarded_allow_ips", None)
    proxy = ProxyOptions(allow_ips or "127.0.0.1") if allow_ips or getattr(args, "proxy_headers", False) else None
    if getattr(args, "log_format", None):
        os.environ["BRIDGECA_LOG_FORMAT"] = args.log_format  # the workers' settings read it too
    try:
        with BridgeCA.open(args.home) as ca:  # fail fast, with one line, on a bad home, passphrase or setting
            log_format = ca.settings.log_format
    except BridgeError as exc:
        raise UsageError(f"{exc.code}: {exc.message}") from None
    os.environ["BRIDGECA_HOME"] = str(args.home)

    try:
        return serve(args.host, args.port, args.workers, tls=tls, proxy=proxy, log_format=log_format)
    except KeyboardInterrupt:
        return 0


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from . import demo
    except ImportError:
        raise UsageError("the demo federation is not available in this build") from None
    return demo.run(args)
