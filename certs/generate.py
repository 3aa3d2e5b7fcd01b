"""Regenerate the demo federation in certs/ (fictional CAs, demo keys only).

    .venv/bin/python certs/generate.py            # rewrite certs/ in place
    .venv/bin/python certs/generate.py --out DIR  # write elsewhere (tests compare)

Four member PKIs -- Guangdong, Shenzhen, Hong Kong, Macao -- each with a
root, an issuing CA, two leaf certificates (a document signer and a TLS
server) and a document signed by the signer (CMS SignedData, attached).

Everything is a function of SEED: each private key is derived from
SHA-256(SEED / label), serial numbers likewise, and validity periods are
fixed dates (roots 2026-01-01 for 10 years, issuing CAs 8 years, leaves 5
years). Rerunning gives the same keys, names, serials, extensions and
to-be-signed bytes; only the ECDSA signature values (randomised) and the
CMS signing-time differ. The bridge itself is not here: ``bridgeca demo``
creates it (and its key) and has each member root issue its reverse
certificate to it then.

Policies are under 1.3.6.1.4.1.32473 (RFC 5612's documentation enterprise
number), domains under .example (RFC 2606). The private keys are committed
for the demo only: anyone can read them, so nothing they sign means anything.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SEED = b"bridgeca demo federation v1"
HERE = Path(__file__).resolve().parent

# RFC 5612 documentation arc; .5 is this demo's (the tests use .77).
ARC = "1.3.6.1.4.1.32473.5"
BRIDGE_POLICY = f"{ARC}.1.1"  # the bridge's "medium assurance" policy

MEMBERS = [
    # code, enrollment name, country, short name for CNs, region, member policy, domain
    ("GD", "Guangdong Demo CA", "CN", "Guangdong Demo", "Guangdong", f"{ARC}.10.1", "gd.example"),
    ("SZ", "Shenzhen Demo CA", "CN", "Shenzhen Demo", "Shenzhen", f"{ARC}.20.1", "sz.example"),
    ("HK", "Hong Kong Demo e-Cert CA", "HK", "Hong Kong Demo e-Cert", "Hong Kong", f"{ARC}.30.1", "hk.example"),
    ("MO", "Macao Demo CA", "MO", "Macao Demo", "Macao", f"{ARC}.40.1", "mo.example"),
]

ROOT_FROM = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
ROOT_UNTIL = dt.datetime(2036, 1, 1, tzinfo=dt.timezone.utc)
ISSUING_UNTIL = dt.datetime(2034, 1, 1, tzinfo=dt.timezone.utc)
LEAF_UNTIL = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)

CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)
SIGNER_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)
SERVER_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)

DOCUMENT = """\
DEMO DOCUMENT - NOT A REAL TRANSACTION

Cross-boundary service agreement no. {code}-2026-0001
Issued in: {place}
Signed by: {signer}, {org}

The parties confirm that this text is sample content for the bridgeca
demonstration federation. Every name, key and certificate involved is
fictional; the signing key is published in the bridgeca repository.
"""
PLACES = {"GD": "Guangzhou, Guangdong Province", "SZ": "Shenzhen, Guangdong Province", "HK": "Hong Kong SAR", "MO": "Macao SAR"}


def _digest(label: str) -> bytes:
    return hashlib.sha256(SEED + b"/" + label.encode("utf-8")).digest()


def derive_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key that depends only on SEED and label."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(_digest("key/" + label), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def derive_serial(label: str) -> int:
    """A positive serial of at most 127 bits (fits RFC 5280's 20 octets)."""
    return (int.from_bytes(_digest("serial/" + label)[:16], "big") >> 1) or 1


def _name(country: str, org: str, cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _ski(key) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _builder(label, subject, issuer_name, key, not_after):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(derive_serial(label))
        .not_valid_before(ROOT_FROM)
        .not_valid_after(not_after)
        .add_extension(_ski(key), critical=False)
    )


def _aki(issuer_key) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer_key))


def _policies(*oids):
    return x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in oids])


def build_member(code, display, country, short, region, policy, domain):
    """The member's keys, certificates and signed document, as {filename: bytes}."""
    label = code.lower()
    org = display
    root_key = derive_key(f"{label}/root")
    issuing_key = derive_key(f"{label}/issuing-ca")
    signer_key = derive_key(f"{label}/signer")
    server_key = derive_key(f"{label}/server")

    root_name = _name(country, org, f"{short} Root CA G1")
    root = (
        _builder(f"{label}/root", root_name, root_name, root_key, ROOT_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .sign(root_key, hashes.SHA256())
    )
    issuing_name = _name(country, org, f"{short} Issuing CA G1")
    issuing = (
        _builder(f"{label}/issuing-ca", issuing_name, root_name, issuing_key, ISSUING_UNTIL)
        .add_extension(_aki(root_key), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .add_extension(_policies(policy), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    signer_org = f"{region} Demo Trading Co. (fictional)"
    signer_cn = f"{code} Demo Signer 01"
    signer = (
        _builder(f"{label}/signer", _name(country, signer_org, signer_cn), issuing_name, signer_key, LEAF_UNTIL)
        .add_extension(_aki(issuing_key), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(SIGNER_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(f"signer01@{domain}")]), critical=False)
        .add_extension(_policies(policy), critical=False)
        .sign(issuing_key, hashes.SHA256())
    )
    server_host = f"portal.{domain}"
    server = (
        _builder(f"{label}/server", _name(country, org, server_host), issuing_name, server_key, LEAF_UNTIL)
        .add_extension(_aki(issuing_key), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(SERVER_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_host)]), critical=False)
        .add_extension(_policies(policy), critical=False)
        .sign(issuing_key, hashes.SHA256())
    )

    document = DOCUMENT.format(code=code, place=PLACES[code], signer=signer_cn, org=signer_org).encode()
    cms = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(document)
        .add_signer(signer, signer_key, hashes.SHA256())
        .add_certificate(issuing)
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )

    def cert_pem(c):
        return c.public_bytes(serialization.Encoding.PEM)

    def key_pem(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    files = {
        "root.pem": cert_pem(root),
        "root-key.pem": key_pem(root_key),
        "issuing-ca.pem": cert_pem(issuing),
        "issuing-ca-key.pem": key_pem(issuing_key),
        "signer.pem": cert_pem(signer),
        "signer-key.pem": key_pem(signer_key),
        "server.pem": cert_pem(server),
        "server-key.pem": key_pem(server_key),
        "document.txt": document,
        "document.p7m": cms,
    }
    manifest = {
        "code": code,
        "name": display,
        "jurisdiction": code,
        "policy": policy,
        "domain": domain,
        "dir": label,
        "root": {"subject": root.subject.rfc4514_string(), "file": f"{label}/root.pem", "key": f"{label}/root-key.pem"},
        "issuing_ca": {"subject": issuing.subject.rfc4514_string(), "file": f"{label}/issuing-ca.pem"},
        "leaves": [
            {"role": "signer", "subject": signer.subject.rfc4514_string(), "file": f"{label}/signer.pem",
             "key": f"{label}/signer-key.pem"},
            {"role": "server", "subject": server.subject.rfc4514_string(), "file": f"{label}/server.pem",
             "key": f"{label}/server-key.pem"},
        ],
        "document": {"content": f"{label}/document.txt", "cms": f"{label}/document.p7m",
                     "signer": signer.subject.rfc4514_string()},
    }
    return files, manifest


def generate(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    members = []
    for spec in MEMBERS:
        files, manifest = build_member(*spec)
        directory = out / manifest["dir"]
        directory.mkdir(exist_ok=True)
        for filename, data in files.items():
            (directory / filename).write_bytes(data)
        members.append(manifest)
    federation = {
        "comment": "Demo federation for bridgeca: fictional CAs; the private keys here are public demo keys, never for real use. "
                   "Regenerate with: python certs/generate.py",
        "seed": SEED.decode(),
        "bridge_policy": BRIDGE_POLICY,
        "validity": {"roots": [ROOT_FROM.isoformat(), ROOT_UNTIL.isoformat()],
                     "issuing_cas": [ROOT_FROM.isoformat(), ISSUING_UNTIL.isoformat()],
                     "leaves": [ROOT_FROM.isoformat(), LEAF_UNTIL.isoformat()]},
        "members": members,
    }
    (out / "federation.json").write_text(json.dumps(federation, indent=2) + "\n")
    return federation


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: certs/ itself)")
    args = parser.parse_args(argv)
    federation = generate(args.out)
    for member in federation["members"]:
        print(f"{member['code']}  {member['name']:<26} {member['policy']}  -> {args.out / member['dir']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
