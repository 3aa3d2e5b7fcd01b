"""``bridgeca receipt verify FILE --anchor bridge.pem`` (bridge/receipts.py).

Checks a receipt offline: its CMS signature, the receipt key's chain to the
anchor (at the receipt's signing time), and that the signed document is the
canonical form of itself; then prints the document. With ``--evidence-dir
DIR`` (files named by their SHA-256, as ``GET /v1/evidence/{sha256}`` serves
them) or ``--url URL`` (the bridge's evidence route, with ``--token`` or
BRIDGECA_TOKEN) every piece of evidence the receipt names that the bridge
keeps must be there and hash to its name. Exit 0 valid, 1 invalid, 2 bad
input (one line on stderr).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .cli import UsageError


def register(sub) -> None:
    parser = sub.add_parser("receipt", help="signed verification receipts: verify one offline")
    commands = parser.add_subparsers(dest="receipt_command", required=True, parser_class=type(parser))
    verify = commands.add_parser("verify", help="check a receipt's signature, its chain to the anchor and (optionally) its evidence")
    verify.add_argument("file", help="the receipt: DER, base64 (as the verify routes return it) or PEM")
    verify.add_argument("--anchor", action="append", required=True, metavar="CERT",
                        help="the bridge certificate (PEM or DER) the receipt key must chain to; repeatable")
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--evidence-dir", metavar="DIR", help="evidence files named by their SHA-256 (hex)")
    source.add_argument("--url", help="the bridge's base URL: fetch each piece of evidence from /v1/evidence/{sha256}")
    verify.add_argument("--token", help="bearer token (platform or admin) for --url; default BRIDGECA_TOKEN")
    verify.add_argument("--json", action="store_true", help="print the receipt's document and the checks as one JSON object")
    verify.set_defaults(handler=_verify)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def _anchors(paths: list[str]):
    from cryptography import x509

    anchors = []
    for path in paths:
        data = _read(path, "anchor")
        try:
            anchors += x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise UsageError(f"{path} holds no certificate (PEM or DER)") from None
    return anchors


def _from_dir(directory: str):
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"--evidence-dir {directory} is not a directory")
    files = {p.name.split(".")[0].lower(): p for p in root.iterdir() if p.is_file()}

    def fetch(sha256: str) -> bytes | None:
        path = files.get(sha256)
        return path.read_bytes() if path is not None else None

    return fetch


def _from_url(url: str, token: str | None):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url {url!r} is not an http:// or https:// URL")
    token = token or os.environ.get("BRIDGECA_TOKEN")
    if not token:
        raise UsageError("--url needs a platform or admin token: --token or BRIDGECA_TOKEN")

    def fetch(sha256: str) -> bytes | None:
        request = urllib.request.Request(f"{url.rstrip('/')}/v1/evidence/{sha256}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise UsageError(f"{url}: GET /v1/evidence answered {exc.code}") from None
        except OSError as exc:
            raise UsageError(f"cannot reach {url}: {exc}") from None

    return fetch


def _verify(args) -> int:
    from bridge.receipts import ReceiptInvalid, ReceiptUnreadable, check_receipt, named_evidence, read_receipt

    anchors = _anchors(args.anchor)
    try:
        der = read_receipt(_read(args.file, "receipt"))
        checked = check_receipt(der, anchors)
        problems: list[str] = []
    except ReceiptUnreadable as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    except ReceiptInvalid as exc:
        checked, problems = None, [str(exc)]
    evidence: list[dict] = []
    if checked is not None and (args.evidence_dir or args.url):
        fetch = _from_dir(args.evidence_dir) if args.evidence_dir else _from_url(args.url, args.token)
        for sha256, what in sorted(named_evidence(checked.document).items()):
            data = fetch(sha256)
            status = "missing" if data is None else ("ok" if hashlib.sha256(data).hexdigest() == sha256 else "mismatch")
            evidence.append({"sha256": sha256, "what": what, "status": status})
            if status != "ok":
                problems.append(f"evidence {sha256} ({what}): {status}")
    valid = checked is not None and not problems
    if args.json:
        print(json.dumps({"valid": valid, "problems": problems, "receipt": checked.document if checked else None,
                          "signer": checked.signer if checked else None, "evidence": evidence}, indent=2, ensure_ascii=False))
    else:
        if checked is not None:
            print(json.dumps(checked.document, indent=2, ensure_ascii=False))
        print(f"receipt {'VALID' if valid else 'INVALID'}" + (f": {'; '.join(problems)}" if problems else "")
              + (f" ({len(evidence)} pieces of evidence checked)" if evidence and valid else ""),
              file=sys.stdout if valid else sys.stderr)
    return 0 if valid else 1
