"""``bridgeca verify``: RFC 5280 path building and validation from files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pki import Verifier
from pki.errors import InputError

from .cli import UsageError


def register(sub) -> None:
    p = sub.add_parser("verify", help="validate an end-entity certificate by RFC 5280 path building and validation")
    p.add_argument("certificate", metavar="CERT", help="end-entity certificate (PEM, DER or PKCS#7)")
    p.add_argument("--anchor", action="append", default=[], metavar="FILE", help="trust anchor certificate(s); repeatable")
    p.add_argument("--untrusted", action="append", default=[], metavar="FILE", help="intermediate and cross-certificates; repeatable")
    p.add_argument("--crl", action="append", default=[], metavar="FILE", help="CRL (complete or delta), PEM or DER; repeatable")
    p.add_argument("--ocsp", action="append", default=[], metavar="FILE", help="OCSP response (DER or PEM), used beside the CRLs; repeatable")
    p.add_argument("--at", metavar="TIME", help="validation time, ISO 8601; default now")
    p.add_argument("--policy", action="append", default=[], metavar="OID", help="user-initial-policy-set member; repeatable")
    p.add_argument("--explicit-policy", action="store_true", help="initial-explicit-policy = true")
    p.add_argument("--inhibit-policy-mapping", action="store_true", help="initial-policy-mapping-inhibit = true")
    p.add_argument("--inhibit-any-policy", action="store_true", help="initial-any-policy-inhibit = true")
    p.add_argument("--revocation", choices=("auto", "require", "off"), default="auto")
    p.add_argument("--profile", choices=("strict", "rfc5280"), default="strict",
                   help="strict (default): RFC 5280 6.1 plus section 4's rules for conforming CAs; rfc5280: 6.1 alone")
    p.add_argument("--anchor-constraints", action=argparse.BooleanOptionalAction, default=True,
                   help="honour the trust anchor certificate's validity, CA-ness, critical extensions and constraints "
                        "(RFC 5937; default); --no-anchor-constraints: the anchor is a bare name and key")
    p.add_argument("--key-usage", action="append", default=[], metavar="NAME",
                   help="a keyUsage bit the end-entity certificate must allow (digitalSignature, nonRepudiation, "
                        "keyEncipherment, ...); repeatable, all required")
    p.add_argument("--extended-key-usage", action="append", default=[], metavar="OID_OR_NAME",
                   help="a purpose the path must allow (OID, or serverAuth, clientAuth, codeSigning, emailProtection, "
                        "timeStamping, documentSigning, ...); repeatable, one required")
    p.add_argument("--max-chain-depth", type=int, metavar="N",
                   help="intermediate certificates allowed between CERT and the trust anchor (0 to 64)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(handler=run)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    if not args.anchor:
        raise UsageError("at least one --anchor is required")
    try:
        verifier = Verifier(
            anchors=[_read(f, "trust anchor") for f in args.anchor],
            untrusted=[_read(f, "certificate") for f in args.untrusted],
            crls=[_read(f, "CRL") for f in args.crl],
            ocsp_responses=[_read(f, "OCSP response") for f in args.ocsp],
        )
        result = verifier.verify(
            _read(args.certificate, "certificate"),
            at=args.at,
            policies=args.policy or None,
            explicit_policy=args.explicit_policy,
            inhibit_policy_mapping=args.inhibit_policy_mapping,
            inhibit_any_policy=args.inhibit_any_policy,
            revocation=args.revocation,
            profile=args.profile,
            anchor_constraints=args.anchor_constraints,
            key_usage=args.key_usage,
            extended_key_usage=args.extended_key_usage,
            max_chain_depth=args.max_chain_depth,
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if result.valid:
            policies = ", ".join(sorted(result.policies or ())) or "none"
            print(f"valid: {len(result.path)} certificates to {result.path[-1].subject_text}; policies: {policies}; revocation: {result.revocation}")
        else:
            assert result.error is not None  # a result that is not valid always says why
            print(f"not valid: {result.error.code}: {result.error}")
    return 0 if result.valid else 1
