"""Bridge commands of ``bridgeca``: init, audit verify (tokens and the other
administration commands are in cli_admin.py).

Nothing prompts: the key passphrase comes from BRIDGECA_KEY_PASSPHRASE (the
PKCS#11 PIN from BRIDGECA_PKCS11_PIN, else the passphrase), the database from
BRIDGECA_DATABASE_URL (default: SQLite in the home).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072", "sm2")


def _fail(exc) -> int:
    """A BridgeError as one line on stderr; usage-like errors exit 2, the rest 1."""
    print(f"bridgeca: {exc.code}: {exc.message}", file=sys.stderr)
    return 2 if exc.kind == "malformed" else 1


def cmd_init(args: argparse.Namespace) -> int:
    from bridge.errors import BridgeError
    from bridge.home import check_base_url
    from bridge.service import BridgeCA

    try:
        # Checked before anything is written: the URL goes into certificates
        # valid for years, and the old default (loopback) sent every relying
        # party's CRL and OCSP fetches to itself.
        base_url = check_base_url(args.base_url or os.environ.get("BRIDGECA_BASE_URL"),
                                  allow_loopback=args.allow_loopback_url)
    except BridgeError as exc:
        return _fail(exc)
    try:
        ca = BridgeCA.init(
            args.home,
            key_type=args.key_type,
            subject=args.subject,
            base_url=base_url,
            signer=args.signer,
            pkcs11_module=args.pkcs11_module,
            pkcs11_token_label=args.pkcs11_token,
            pkcs11_key_label=args.pkcs11_key_label,
            second_key_type=args.second_key_type,
        )
    except BridgeError as exc:
        return _fail(exc)
    with ca:
        cert = ca.certificate
        settings = ca.settings
        if args.json:
            print(json.dumps({
                "home": str(settings.home), "subject": cert.subject.rfc4514_string(), "key_type": settings.key_type,
                "signer": settings.signer, "second_key_type": settings.second_key_type, "database": ca.store.safe_url,
                "certificate": str(settings.cert_path), "base_url": settings.base_url, "crl_url": settings.crl_url,
                "ocsp_url": settings.ocsp_url, "ca_issuers_url": settings.ca_issuers_url,
            }, indent=2))
            return 0
        print(f"bridge CA created in {ca.settings.home}")
        print(f"subject: {cert.subject.rfc4514_string()}")
        print(f"key: {ca.settings.key_type} ({ca.settings.signer})")
        if ca.settings.second_key_type:
            print(f"second key: {ca.settings.second_key_type} (software), certificate {ca.settings.second_cert_path}, "
                  f"link certificates {ca.settings.links_path}")
        print(f"database: {ca.store.safe_url}")
        print(f"certificate: {ca.settings.cert_path}")
        print("every cross-certificate will carry these URLs (the service must answer there):")
        print(f"  CRL distribution point: {settings.crl_url}")
        print(f"  OCSP:                   {settings.ocsp_url}")
        print(f"  CA issuers:             {settings.ca_issuers_url}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from bridge.errors import BridgeError
    from bridge.service import BridgeCA

    try:
        store = BridgeCA.open_store_only(args.home)
        try:
            finding = store.verify_audit()
        finally:
            store.close()
    except BridgeError as exc:
        return _fail(exc)
    except Exception as exc:  # a mangled database: report, do not trace back
        print(f"bridgeca: audit log unreadable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"intact": finding.intact, "message": finding.message}))
        return 0 if finding.intact else 1
    if finding.intact:
        print(finding.message)
        return 0
    print(f"TAMPERED: {finding.message}")
    return 1


def register(subparsers) -> None:
    init = subparsers.add_parser("init", help="create a bridge CA (key, self-signed certificate, database) in a home directory")
    init.add_argument("--home", required=True, help="directory for the bridge (created if missing)")
    init.add_argument("--key-type", choices=KEY_TYPES, default=None,
                      help="bridge key type (default ec-p256; sm2 signs SM2-with-SM3, software signer only)")
    init.add_argument("--second-key-type", choices=KEY_TYPES, default=None,
                      help="make a dual-key bridge: a second key under the same name (one of the two keys sm2, the other "
                           "ECDSA/RSA); SM2 member roots are cross-certified by the SM2 key, the others by the other key")
    init.add_argument("--subject", default=None, help="bridge subject, RFC 4514 (default: the Guangdong bridge's)")
    init.add_argument("--base-url", default=None,
                      help="public URL of this service, required (or BRIDGECA_BASE_URL): every cross-certificate's CRL, "
                           "OCSP and CA-issuers URLs point under it")
    init.add_argument("--allow-loopback-url", action="store_true",
                      help="accept a localhost/loopback --base-url (a bridge used from this host only)")
    init.add_argument("--json", action="store_true", help="print what was created, and the URLs, as JSON")
    init.add_argument("--signer", choices=("software", "pkcs11"), default=None, help="where the key lives (default software)")
    init.add_argument("--pkcs11-module", default=None, help="PKCS#11 module path (signer pkcs11)")
    init.add_argument("--pkcs11-token", default=None, help="PKCS#11 token label (signer pkcs11)")
    init.add_argument("--pkcs11-key-label", default=None, help="label of the key generated on the token")
    init.set_defaults(handler=cmd_init)

    audit = subparsers.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=subparsers._parser_class)
    verify = audit_sub.add_parser("verify", help="check the audit chain: exit 0 intact, 1 tampered")
    verify.add_argument("--home", required=True)
    verify.add_argument("--json", action="store_true", help='print {"intact": ..., "message": ...}')
    verify.set_defaults(handler=cmd_audit_verify)
    from . import cli_governance  # --checkpoints and the state replay for verify; show, export

    cli_governance.register_audit(audit_sub, verify)
