"""``bridgeca demo``: build (or reuse) a demo bridge with the federation in certs/, then serve it.

Steps, each skipped when already done, so a rerun on the same home is cheap
and prints the same tokens:

1. the home (default ``./demo-home``, git-ignored): created with a marker
   file; a home the demo made but did not finish (no config.json, or the
   bridge cannot be opened) is removed and rebuilt; a non-empty directory
   without the marker is refused, never touched;
2. ``bridgeca init`` (key passphrase from BRIDGECA_KEY_PASSPHRASE, else the
   fixed demo passphrase below, and the output says which);
3. admin / issuer / platform tokens, kept in ``<home>/demo-tokens.json``;
4. each member of ``certs/federation.json``: enrolled (by the issuer token),
   approved (the bridge cross-certifies the root), and the reverse
   certificate uploaded -- the member root, whose demo key is in certs/,
   issues it to the bridge's name and key with a member -> bridge policy
   mapping. A member whose cross-certificate was revoked (demo step c) is
   enrolled again, so the printed commands give the README's answers again;
5. request bodies in ``<home>/requests/`` and the curl commands that send them;
6. ``bridgeca serve`` on --host/--port unless --no-serve.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from bridge.errors import BridgeError
from bridge.home import write_private
from bridge.roles import ROLES
from bridge.service import BridgeCA

from .cli import UsageError

REPO = Path(__file__).resolve().parent.parent
CERTS = REPO / "certs"
MARKER = ".bridgeca-demo"
TOKENS_FILE = "demo-tokens.json"
REQUESTS_DIR = "requests"
ACTOR = "bridgeca-demo"
# Used only when BRIDGECA_KEY_PASSPHRASE is not set; it is printed, so it protects nothing.
DEMO_PASSPHRASE = "bridgeca-demo-not-secret"
REVERSE_VALIDITY = dt.timedelta(days=1095)
POLICY_MAPPINGS_OID = x509.ObjectIdentifier("2.5.29.33")


@dataclass
class Member:
    code: str
    name: str
    jurisdiction: str
    policy: str
    root: x509.Certificate
    root_pem: str
    root_key: CertificateIssuerPrivateKeyTypes
    issuing_pem: str
    signer_pem: str
    signer_subject: str
    document_cms: bytes

    def mappings(self, bridge_policy: str) -> list[dict]:
        return [{"bridge_policy": bridge_policy, "member_policy": self.policy}]


@dataclass
class Enrolled:
    member: Member
    id: str
    serial: str
    changed: list[str]


# ---------------------------------------------------------------------- the federation on disk


def load_federation(certs: Path = CERTS) -> tuple[str, list[Member]]:
    manifest_path = certs / "federation.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the demo federation {manifest_path}: {exc} (regenerate it: python certs/generate.py)") from None
    members = []
    for m in manifest["members"]:
        def read(rel: str) -> bytes:
            return (certs / rel).read_bytes()

        signer = next(leaf for leaf in m["leaves"] if leaf["role"] == "signer")
        members.append(
            Member(
                code=m["code"], name=m["name"], jurisdiction=m["jurisdiction"], policy=m["policy"],
                root=x509.load_pem_x509_certificate(read(m["root"]["file"])),
                root_pem=read(m["root"]["file"]).decode("ascii"),
                root_key=_signing_key(read(m["root"]["key"]), m["root"]["key"]),
                issuing_pem=read(m["issuing_ca"]["file"]).decode("ascii"),
                signer_pem=read(signer["file"]).decode("ascii"),
                signer_subject=m["document"]["signer"],
                document_cms=read(m["document"]["cms"]),
            )
        )
    return manifest["bridge_policy"], members


def _signing_key(pem: bytes, name: str) -> CertificateIssuerPrivateKeyTypes:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
                            ed448.Ed448PrivateKey, dsa.DSAPrivateKey)):
        raise UsageError(f"the demo federation's {name} is not a key that can sign certificates")
    return key


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def reverse_certificate(member: Member, bridge: x509.Certificate, bridge_policy: str, now: dt.datetime) -> x509.Certificate:
    """What the member root issues to the bridge: the bridge's name and key, member -> bridge policy mapping."""
    mapping = asn1_x509.PolicyMappings(
        [{"issuer_domain_policy": member.policy, "subject_domain_policy": bridge_policy}]
    ).dump()
    not_before = max(now - dt.timedelta(hours=1), member.root.not_valid_before_utc)
    not_after = min(now + REVERSE_VALIDITY, member.root.not_valid_after_utc)
    root_ski = member.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(bridge.subject)
        .issuer_name(member.root.subject)
        .public_key(bridge.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(bridge.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(member.policy), None)]), critical=False
        )
        .add_extension(x509.UnrecognizedExtension(POLICY_MAPPINGS_OID, mapping), critical=True)
        .sign(member.root_key, hashes.SHA256())
    )


# ---------------------------------------------------------------------- the home


def _is_marked(home: Path) -> bool:
    return (home / MARKER).exists()


def _fresh_home(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)  # mkdir's mode passes through the umask
    (home / MARKER).write_text("made by 'bridgeca demo': a demo bridge with public demo keys; safe to delete\n")


def _open_or_build(home: Path, base_url: str) -> tuple[BridgeCA, str]:
    """The demo bridge in ``home`` and what was done: "created", "reused" or "rebuilt (why)"."""
    if home.exists() and not home.is_dir():
        raise UsageError(f"{home} exists and is not a directory")
    if home.exists() and any(home.iterdir()) and not _is_marked(home):
        raise UsageError(
            f"{home} is not empty and was not made by 'bridgeca demo' (no {MARKER}); "
            "it is left alone: pick another --home or remove it"
        )
    how = "created"
    if home.exists() and _is_marked(home):
        why = None
        if not (home / "config.json").exists():
            why = "an earlier run did not finish"
        else:
            try:
                return BridgeCA.open(home), "reused"
            except BridgeError as exc:
                why = f"it cannot be opened: {exc.code}: {exc.message}"
        shutil.rmtree(home)
        how = f"rebuilt ({why})"
    _fresh_home(home)
    try:
        ca = BridgeCA.init(home, base_url=base_url, actor=ACTOR)
    except BridgeError as exc:
        raise UsageError(f"bridgeca init failed: {exc.code}: {exc.message}") from None
    return ca, how


def _tokens(ca: BridgeCA, home: Path) -> tuple[dict[str, str], bool]:
    """admin / issuer / platform tokens: the stored ones while they still work, else new ones."""
    path = home / TOKENS_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    tokens: dict[str, str] = {}
    new = False
    for role in ROLES:
        token = stored.get(role)
        who = ca.principal(token) if isinstance(token, str) else None
        if who is None or who[1] != role:
            token = ca.create_token(role, actor=ACTOR)
            new = True
        tokens[role] = token
    if new or tokens != stored:
        write_private(path, (json.dumps(tokens, indent=2) + "\n").encode())  # never readable by others, not even briefly
    return tokens, new


# ---------------------------------------------------------------------- the federation in the bridge


def _enroll_member(ca: BridgeCA, member: Member, bridge_policy: str, issuer_token_id: int) -> Enrolled:
    changed: list[str] = []
    spki = _spki(member.root)
    views = [v for v in ca.issuers() if _spki(x509.load_pem_x509_certificate(v["root_certificate"].encode())) == spki]
    current = next((v for v in reversed(views) if v["status"] in ("active", "pending")), None)
    if current is None:
        if views:
            changed.append(f"enrolled again (the previous enrollment is {views[-1]['status']})")
        else:
            changed.append("enrolled")
        current = ca.enroll(
            name=member.name, jurisdiction=member.jurisdiction, root_certificate=member.root_pem,
            policy_mappings=member.mappings(bridge_policy), actor=ACTOR, owner=issuer_token_id,
        )
    if current["status"] == "pending":
        current = ca.approve(current["id"], actor=ACTOR)
        changed.append("approved")
    issued = [c for c in current["cross_certificates"] if c["status"] == "issued"]
    if not issued:  # pragma: no cover - an active enrollment always has one in force
        raise UsageError(f"{member.name}: the enrollment {current['id']} is active but has no cross-certificate in force")
    reverse_for_this = [r for r in ca.store.reverse_certificates() if r.enrollment_id == current["id"]]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if not any(r.not_after > now for r in reverse_for_this):  # the store returns aware datetimes
        reverse = reverse_certificate(member, ca.certificate, bridge_policy, now)
        ca.upload_reverse(current["id"], reverse.public_bytes(serialization.Encoding.PEM), actor=ACTOR)
        changed.append("reverse certificate uploaded")
    return Enrolled(member, current["id"], issued[-1]["serial"], changed)


def _federate(ca: BridgeCA, members: list[Member], bridge_policy: str, issuer_token: str) -> dict[str, Enrolled]:
    who = ca.principal(issuer_token)
    if who is None:  # pragma: no cover - _tokens() just checked or made it
        raise UsageError("the demo issuer token is not known to the bridge")
    try:
        return {m.code: _enroll_member(ca, m, bridge_policy, who[0]) for m in members}
    except BridgeError as exc:
        raise UsageError(f"setting up the demo federation failed: {exc.code}: {exc.message}") from None


# ---------------------------------------------------------------------- requests and commands


def _display(path: Path) -> str:
    """``path`` relative to the working directory when under it (as the printed commands use it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _write_requests(home: Path, bridge_policy: str, enrolled: dict[str, Enrolled]) -> dict[str, Path]:
    directory = home / REQUESTS_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    gd, hk, mo = enrolled["GD"], enrolled["HK"], enrolled["MO"]
    bodies = {
        "hk-leaf-from-gd.json": {
            "certificate": hk.member.signer_pem,
            "intermediates": [hk.member.issuing_pem],
            "trust_anchor": gd.id,
            "policies": [gd.member.policy],
        },
        "mo-signed-document.json": {
            "cms": base64.b64encode(mo.member.document_cms).decode("ascii"),
            "trust_anchor": "bridge",
            "policies": [bridge_policy],
        },
        # cessationOfOperation: a keyCompromise revocation would also blacklist the
        # root key, and the next demo run could not enroll Hong Kong again.
        "revoke-hk.json": {"reason": "cessationOfOperation"},
    }
    paths = {}
    for name, body in bodies.items():
        path = directory / name
        path.write_text(json.dumps(body, indent=2) + "\n")
        paths[name] = path
    return paths


def _curl(token_var: str, body: Path, url: str) -> str:
    return (
        f'curl -s -H "Authorization: Bearer ${token_var}" -H \'Content-Type: application/json\' '
        f"--data @{shlex.quote(_display(body))} {url}"
    )


def _report(*, home: Path, how: str, passphrase_note: str, notes: list[str], ca: BridgeCA, bridge_policy: str,
            enrolled: dict[str, Enrolled], tokens: dict[str, str], new_tokens: bool, requests: dict[str, Path],
            base: str, serve: bool, listen: str) -> str:
    gd, hk, mo = enrolled["GD"], enrolled["HK"], enrolled["MO"]
    lines = [
        "bridgeca demo: a fictional federation (certs/); every key in it is a public demo key",
        "",
        f"bridge   {ca.certificate.subject.rfc4514_string()}",
        f"home     {_display(home)}/ ({how})",
        f"key      {passphrase_note}",
        *[f"note     {n}" for n in notes],
        f"policy   bridge {bridge_policy}",
        "",
        "members (enrolled by the issuer token, cross-certified by the bridge, reverse certificate uploaded):",
    ]
    for e in enrolled.values():
        m = e.member
        status = ", ".join(e.changed) if e.changed else "already in place"
        lines.append(f"  {m.code}  {m.name:<25} policy {m.policy}  ({status})")
        lines.append(f"      issuer id {e.id}  cross-certificate {e.serial}")
    lines += [
        "",
        f"tokens ({'new' if new_tokens else 'the same as last time'}; kept in {_display(home / TOKENS_FILE)}):",
        f"export ADMIN={tokens['admin']}",
        f"export ISSUER={tokens['issuer']}",
        f"export PLATFORM={tokens['platform']}",
        "",
        "(a) a Hong Kong certificate, seen from the Guangdong root (trust_anchor GD, policy GD's):",
        _curl("PLATFORM", requests["hk-leaf-from-gd.json"], f"{base}/v1/verify/chain"),
        f'    -> "valid": true, "policies": ["{gd.member.policy}"]',
        "",
        "(b) a document signed in Macao (CMS SignedData, attached), seen from the bridge (policy the bridge's):",
        _curl("PLATFORM", requests["mo-signed-document.json"], f"{base}/v1/verify/signature"),
        f'    -> "valid": true, "signer": {{"subject": "{mo.member.signer_subject}", ...}}, "chain": {{"valid": true, ...}}',
        "",
        "(c) revoke the Hong Kong cross-certificate, then ask (a) again:",
        _curl("ADMIN", requests["revoke-hk.json"], f"{base}/v1/cross-certificates/{hk.serial}/revoke"),
        _curl("PLATFORM", requests["hk-leaf-from-gd.json"], f"{base}/v1/verify/chain"),
        '    -> "status": "revoked", then "valid": false, "error": {"code": "revoked", ...}',
        "    (running the demo again enrolls Hong Kong anew, so (a) is valid again; the demo revokes for",
        "    cessationOfOperation: a keyCompromise revocation also blacklists the root key, which then cannot enroll again)",
        "",
    ]
    if serve:
        lines.append(f"serving on {listen} (API docs at {base}/docs); Ctrl-C stops it")
    else:
        env = "" if passphrase_note.startswith("from") else f"BRIDGECA_KEY_PASSPHRASE={DEMO_PASSPHRASE} "
        lines.append(f"to serve it: {env}bridgeca serve --home {shlex.quote(_display(home))}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- entry point


def run(args: argparse.Namespace) -> int:
    home = Path(args.home)
    host, port = args.host, args.port
    if not (1 <= port <= 65535):
        raise UsageError(f"port {port} is out of range")
    url_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in url_host:
        url_host = f"[{url_host}]"
    base = f"http://{url_host}:{port}"

    notes: list[str] = []
    if os.environ.get("BRIDGECA_KEY_PASSPHRASE"):
        passphrase_note = "from BRIDGECA_KEY_PASSPHRASE"
    else:
        os.environ["BRIDGECA_KEY_PASSPHRASE"] = DEMO_PASSPHRASE
        passphrase_note = f"BRIDGECA_KEY_PASSPHRASE is not set: the demo uses {DEMO_PASSPHRASE!r} (demo only)"
    if os.environ.pop("BRIDGECA_DATABASE_URL", None):
        notes.append("BRIDGECA_DATABASE_URL is ignored: the demo keeps its database (SQLite) in its home")

    bridge_policy, members = load_federation()
    ca, how = _open_or_build(home, base)
    with ca:
        tokens, new_tokens = _tokens(ca, home)
        enrolled = _federate(ca, members, bridge_policy, tokens["issuer"])
        requests = _write_requests(home, bridge_policy, enrolled)
        print(
            _report(home=home, how=how, passphrase_note=passphrase_note, notes=notes, ca=ca, bridge_policy=bridge_policy,
                    enrolled=enrolled, tokens=tokens, new_tokens=new_tokens, requests=requests, base=base,
                    serve=not args.no_serve, listen=f"http://{host}:{port}"),
            flush=True,
        )
    if args.no_serve:
        return 0
    from .cli_service import cmd_serve

    return cmd_serve(argparse.Namespace(home=str(home), host=host, port=port, workers=1, max_body_bytes=None))
