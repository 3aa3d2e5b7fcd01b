"""Member PKIs for the bridge tests, made with cryptography: a root, an
issuing CA and a leaf per member, each with its own policy OIDs, plus the
CRLs a member publishes and the reverse certificate it issues to the bridge.

OIDs live under enterprise number 32473, which RFC 5612 reserves for
documentation, so none collides with a real policy. (pkilint's decoder
rejects the 2.999 example arc and 2.25 UUID arcs: arcs over 32 bits.)
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ARC = "1.3.6.1.4.1.32473.77"
BRIDGE_MEDIUM = f"{ARC}.1.1"  # the bridge's "medium assurance" policy
BRIDGE_HIGH = f"{ARC}.1.2"

MEMBER_POLICIES = {
    "GD": ("Guangdong", f"{ARC}.10.1"),
    "SZ": ("Shenzhen", f"{ARC}.20.1"),
    "HK": ("Hong Kong", f"{ARC}.30.1"),
    "MO": ("Macau", f"{ARC}.40.1"),
}
COUNTRY = {"GD": "CN", "SZ": "CN", "HK": "HK", "MO": "MO"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def der(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER)


def name(country: str, org: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
LEAF_USAGE = x509.KeyUsage(True, True, False, False, False, False, False, False, False)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def policy_mappings_extension(pairs):
    value = asn1_x509.PolicyMappings(
        [{"issuer_domain_policy": a, "subject_domain_policy": b} for a, b in pairs]
    ).dump()
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.33"), value)


def make_root(subject: x509.Name, key=None, *, days: int = 3650, not_before=None, ca=True, usage=CA_USAGE,
              sign_key=None, issuer=None, hash_algorithm=None):
    key = key or ec_key()
    now = not_before or utcnow() - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    cert = builder.sign(sign_key or key, hash_algorithm or hashes.SHA256())
    return key, cert


def issue(issuer_cert, issuer_key, subject: x509.Name, public_key, *, ca: bool, policies=(), path_length=None,
          days: int = 730, extra=()):
    now = utcnow() - dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(min(now + dt.timedelta(days=days), issuer_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(CA_USAGE if ca else LEAF_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
    )
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]),
            critical=False,
        )
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def empty_crl(issuer_cert, issuer_key, number: int = 1):
    now = utcnow() - dt.timedelta(minutes=5)
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass
class Member:
    code: str
    display: str
    policy: str
    root_key: object
    root: x509.Certificate
    issuing_key: object
    issuing: x509.Certificate
    leaf: x509.Certificate
    crls: list = field(default_factory=list)

    def mappings(self, bridge_policy: str = BRIDGE_MEDIUM):
        return [{"bridge_policy": bridge_policy, "member_policy": self.policy}]

    def reverse_certificate(self, bridge_cert: x509.Certificate, bridge_policy: str = BRIDGE_MEDIUM):
        """What the member root issues to the bridge: bridge's name and key, member→bridge mapping."""
        return issue(
            self.root, self.root_key, bridge_cert.subject, bridge_cert.public_key(), ca=True,
            policies=[self.policy], path_length=None,
            extra=[(policy_mappings_extension([(self.policy, bridge_policy)]), True)],
        )


def make_member(code: str) -> Member:
    display, policy = MEMBER_POLICIES[code]
    country = COUNTRY[code]
    root_key, root = make_root(name(country, f"{display} Certification Authority", f"{display} Root CA"))
    issuing_key = ec_key()
    issuing = issue(root, root_key, name(country, f"{display} Certification Authority", f"{display} Issuing CA 1"),
                    issuing_key.public_key(), ca=True, policies=[policy], path_length=0)
    leaf_key = ec_key()
    leaf = issue(issuing, issuing_key, name(country, f"{display} Example Org", f"signer.{code.lower()}.example"),
                 leaf_key.public_key(), ca=False, policies=[policy], days=365)
    member = Member(code, display, policy, root_key, root, issuing_key, issuing, leaf)
    member.crls = [der(empty_crl(root, root_key)), der(empty_crl(issuing, issuing_key))]
    return member
