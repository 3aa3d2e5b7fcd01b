"""The certification authority: the only code that uses the bridge's signer.

Issuance is in two steps, as in boulder: ``prepare_cross_certificate`` builds
the to-be-signed certificate and checks it against the cross-certificate
profile (``check_cross_certificate``); ``sign_prepared`` signs exactly those
bytes. In between the service reserves the serial in the store, so a key is
never used for a certificate the store has not heard of.

The to-be-signed bytes are built with cryptography's CertificateBuilder
(signed by a throwaway key of the bridge's key type, which puts the right
signature AlgorithmIdentifier inside), then the member root's subject and
SubjectPublicKeyInfo are put in byte for byte with asn1crypto (cryptography
re-encodes names and keys, which is usually but not always identical), and
the signer signs the result. The same path serves software and PKCS#11 keys.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID, NameOID

from .registration import PolicyMapping, Subtree, REVOCATION_REASONS
from .signer import Signer, _throwaway_key

POLICY_MAPPINGS_OID = x509.ObjectIdentifier("2.5.29.33")
SERIAL_BITS = 127  # >= 64 bits of entropy (CA/B BR 7.1), positive, fits 20 octets


class ProfileViolation(Exception):
    """The to-be-signed certificate does not match the profile; nothing was signed."""


# --------------------------------------------------------------------------- profile options


@dataclass(frozen=True)
class ValidityOptions:
    max_days: int = 1095


@dataclass(frozen=True)
class PolicyConstraintOptions:
    require_explicit_policy: int | None = None
    inhibit_policy_mapping: int | None = None
    inhibit_any_policy: int | None = 0


@dataclass(frozen=True)
class PublicationOptions:
    crl_url: str
    ocsp_url: str
    ca_issuers_url: str


@dataclass(frozen=True)
class CrossCertificateProfile:
    validity: ValidityOptions
    constraints: PolicyConstraintOptions
    publication: PublicationOptions
    default_path_length: int | None = 1


@dataclass(frozen=True)
class MemberTerms:
    """What the registration authority decided for one member root."""

    root: x509.Certificate
    policy_mappings: Sequence[PolicyMapping]
    permitted_subtrees: Sequence[Subtree] = ()
    excluded_subtrees: Sequence[Subtree] = ()
    path_length: int | None = None


@dataclass(frozen=True)
class PreparedCertificate:
    serial: int
    tbs_der: bytes
    signature_algorithm: asn1_x509.SignedDigestAlgorithm = field(repr=False)
    not_before: datetime
    not_after: datetime

    @property
    def tbs_sha256(self) -> str:
        return hashlib.sha256(self.tbs_der).hexdigest()


@dataclass(frozen=True)
class CertificateStatus:
    """What the OCSP responder needs to know about one serial."""

    status: str  # good, revoked, unknown
    revoked_at: datetime | None = None
    reason: str | None = None


# --------------------------------------------------------------------------- encoding helpers


def encode_policy_mappings(mappings: Sequence[PolicyMapping]) -> bytes:
    """RFC 5280 4.2.1.5 PolicyMappings (cryptography has no builder for it)."""
    return asn1_x509.PolicyMappings(
        [
            {"issuer_domain_policy": m.bridge_policy, "subject_domain_policy": m.member_policy}
            for m in mappings
        ]
    ).dump()


def decode_policy_mappings(der: bytes) -> list[PolicyMapping]:
    return [
        PolicyMapping(item["issuer_domain_policy"].dotted, item["subject_domain_policy"].dotted)
        for item in asn1_x509.PolicyMappings.load(der)
    ]


def new_serial() -> int:
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial.bit_length() >= 64:  # a tiny serial would betray low entropy
            return serial


def _raw_subject_and_spki(certificate: x509.Certificate) -> tuple[bytes, bytes]:
    tbs = asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)
    return tbs["subject"].dump(), tbs["subject_public_key_info"].dump()


def _ski_of(certificate: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())


def _key_hash_material(public_key) -> bytes:
    # RFC 6960 4.1.1: issuerKeyHash is the hash of the subjectPublicKey BIT STRING value.
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def certs_only_p7c(certificates: Sequence[x509.Certificate]) -> bytes:
    """A certs-only CMS SignedData (RFC 5652 / RFC 5280 4.2.2.1 .p7c); empty when there are none."""
    if certificates:
        return pkcs7.serialize_certificates(list(certificates), serialization.Encoding.DER)
    signed_data = asn1_cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data"},
            "certificates": [],
            "signer_infos": [],
        }
    )
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


# --------------------------------------------------------------------------- the authority


class BridgeAuthority:
    def __init__(self, signer: Signer, certificate: x509.Certificate, profile: CrossCertificateProfile, *, crl_hours: float, ocsp_hours: float):
        signer.check_matches(certificate)  # at load, as boulder's issuer does
        self._signer = signer
        self.certificate = certificate
        self.profile = profile
        self.crl_validity = timedelta(hours=crl_hours)
        self.ocsp_validity = timedelta(hours=ocsp_hours)
        self._ski = _ski_of(certificate)

    # -- the bridge's own certificate -------------------------------------------

    @staticmethod
    def create_self_signed(signer: Signer, subject: x509.Name, validity_days: int, now: datetime | None = None) -> x509.Certificate:
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        public_key = signer.public_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(new_serial())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
        )
        return signer.sign_certificate(builder)

    # -- cross-certificates -------------------------------------------------------

    def prepare_cross_certificate(self, terms: MemberTerms, serial: int, now: datetime) -> PreparedCertificate:
        now = now.replace(microsecond=0)
        root = terms.root
        publication = self.profile.publication
        not_after = min(
            now + timedelta(days=self.profile.validity.max_days),
            self.certificate.not_valid_after_utc,
            root.not_valid_after_utc,
        )
        path_length = terms.path_length if terms.path_length is not None else self.profile.default_path_length
        bridge_policies = list(dict.fromkeys(m.bridge_policy for m in terms.policy_mappings))

        builder = (
            x509.CertificateBuilder()
            .subject_name(root.subject)
            .issuer_name(self.certificate.subject)
            .public_key(root.public_key())
            .serial_number(serial)
            .not_valid_before(now)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski_of(root), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier(self._ski.digest, None, None), critical=False)
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(oid), None) for oid in bridge_policies]),
                critical=False,
            )
            # RFC 5280 4.2.1.5: conforming CAs SHOULD mark policyMappings critical.
            .add_extension(x509.UnrecognizedExtension(POLICY_MAPPINGS_OID, encode_policy_mappings(terms.policy_mappings)), critical=True)
            .add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(publication.crl_url)], None, None, None)]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(publication.ca_issuers_url)),
                        x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(publication.ocsp_url)),
                    ]
                ),
                critical=False,
            )
        )
        if terms.permitted_subtrees or terms.excluded_subtrees:
            builder = builder.add_extension(
                x509.NameConstraints(
                    [s.general_name() for s in terms.permitted_subtrees] or None,
                    [s.general_name() for s in terms.excluded_subtrees] or None,
                ),
                critical=True,
            )
        constraints = self.profile.constraints
        if constraints.require_explicit_policy is not None or constraints.inhibit_policy_mapping is not None:
            builder = builder.add_extension(
                x509.PolicyConstraints(constraints.require_explicit_policy, constraints.inhibit_policy_mapping), critical=True
            )
        if constraints.inhibit_any_policy is not None:
            builder = builder.add_extension(x509.InhibitAnyPolicy(constraints.inhibit_any_policy), critical=True)

        draft = builder.sign(_throwaway_key(self._signer.key_type), self._signer.hash_algorithm)
        draft_parsed = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))
        raw_subject, raw_spki = _raw_subject_and_spki(root)
        draft_tbs = draft_parsed["tbs_certificate"]
        # Copy the member root's subject and key byte for byte into the TBS.
        fields = {
            name: draft_tbs[name]
            for name, _spec, *_ in asn1_x509.TbsCertificate._fields
            if not isinstance(draft_tbs[name], asn1_core.Void)
        }
        fields["subject"] = asn1_x509.Name.load(raw_subject)
        fields["subject_public_key_info"] = asn1_x509.PublicKeyInfo.load(raw_spki)
        tbs_der = asn1_x509.TbsCertificate(fields).dump()

        prepared = PreparedCertificate(serial, tbs_der, draft_parsed["signature_algorithm"], now, not_after)
        self.check_cross_certificate(prepared, terms)
        return prepared

    def _assemble(self, prepared: PreparedCertificate, signature: bytes) -> x509.Certificate:
        certificate = asn1_x509.Certificate(
            {
                "tbs_certificate": asn1_x509.TbsCertificate.load(prepared.tbs_der),
                "signature_algorithm": prepared.signature_algorithm,
                "signature_value": asn1_core.OctetBitString(signature),
            }
        )
        return x509.load_der_x509_certificate(certificate.dump())

    def check_cross_certificate(self, prepared: PreparedCertificate, terms: MemberTerms) -> None:
        """The profile, checked on the to-be-signed bytes before the key is used."""
        # Any signature will do for parsing: the checks read only the TBS.
        cert = self._assemble(prepared, b"\x00")
        root = terms.root
        problems: list[str] = []

        def need(condition: bool, text: str) -> None:
            if not condition:
                problems.append(text)

        need(cert.version == x509.Version.v3, "version is not v3")
        need(0 < cert.serial_number and cert.serial_number.bit_length() >= 64 and len(format(cert.serial_number, "x")) <= 40,
             "serial number is not a positive integer of 64 to 159 bits")
        raw_subject, raw_spki = _raw_subject_and_spki(cert)
        root_subject, root_spki = _raw_subject_and_spki(root)
        need(raw_subject == root_subject, "subject is not the member root's, byte for byte")
        need(raw_spki == root_spki, "public key is not the member root's, byte for byte")
        need(cert.issuer == self.certificate.subject, "issuer is not the bridge")
        need(cert.not_valid_before_utc <= cert.not_valid_after_utc, "validity period is inverted")
        need(cert.not_valid_after_utc <= self.certificate.not_valid_after_utc, "validity extends beyond the bridge certificate")
        need(cert.not_valid_after_utc <= root.not_valid_after_utc, "validity extends beyond the member root")
        need(cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == self._signer.hash_algorithm.name,
             "signature algorithm does not match the bridge key")

        extensions = {ext.oid: ext for ext in cert.extensions}
        expected_length = terms.path_length if terms.path_length is not None else self.profile.default_path_length
        basic = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
        need(basic is not None and basic.critical and basic.value.ca and basic.value.path_length == expected_length,
             "basicConstraints is not critical CA with the configured pathLen")
        usage = extensions.get(ExtensionOID.KEY_USAGE)
        need(usage is not None and usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
             and not usage.value.digital_signature, "keyUsage is not critical keyCertSign + cRLSign")
        ski, aki = extensions.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER), extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        need(ski is not None and ski.value == _ski_of(root), "subjectKeyIdentifier is not the member root's")
        need(aki is not None and aki.value.key_identifier == self._ski.digest, "authorityKeyIdentifier is not the bridge's")
        policies = extensions.get(ExtensionOID.CERTIFICATE_POLICIES)
        bridge_policies = {m.bridge_policy for m in terms.policy_mappings}
        need(policies is not None and {p.policy_identifier.dotted_string for p in policies.value} == bridge_policies,
             "certificatePolicies are not the bridge policies of the mappings")
        mappings = extensions.get(POLICY_MAPPINGS_OID)
        need(mappings is not None and mappings.critical and decode_policy_mappings(mappings.value.value) == list(terms.policy_mappings),
             "policyMappings do not carry the enrollment's mappings")
        constraints = extensions.get(ExtensionOID.NAME_CONSTRAINTS)
        wants_constraints = bool(terms.permitted_subtrees or terms.excluded_subtrees)
        need((constraints is not None) == wants_constraints and (constraints is None or constraints.critical),
             "nameConstraints do not match the enrollment")
        publication = self.profile.publication
        crldp = extensions.get(ExtensionOID.CRL_DISTRIBUTION_POINTS)
        need(crldp is not None and crldp.value[0].full_name == [x509.UniformResourceIdentifier(publication.crl_url)],
             "cRLDistributionPoints does not point at the bridge's CRL")
        aia = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
        aia_urls = {(d.access_method, d.access_location.value) for d in aia.value} if aia is not None else set()
        need(aia_urls == {(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, publication.ca_issuers_url),
                          (x509.oid.AuthorityInformationAccessOID.OCSP, publication.ocsp_url)},
             "authorityInfoAccess does not point at the bridge's certificate and OCSP responder")
        if problems:
            raise ProfileViolation("cross-certificate profile violated: " + "; ".join(problems))

    def sign_prepared(self, prepared: PreparedCertificate) -> x509.Certificate:
        certificate = self._assemble(prepared, self._signer.sign(prepared.tbs_der))
        certificate.verify_directly_issued_by(self.certificate)  # a faulty token must not go unnoticed
        return certificate

    # -- CRLs -----------------------------------------------------------------------

    def build_crl(self, number: int, revoked: Sequence, now: datetime) -> tuple[bytes, datetime, datetime]:
        """Sign a complete CRL. ``revoked`` holds store.RevokedEntry values."""
        this_update = now.replace(microsecond=0)
        next_update = this_update + self.crl_validity
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier(self._ski.digest, None, None), critical=False)
        )
        for entry in revoked:
            revoked_builder = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
            # RFC 5280 5.3.1: the reasonCode unspecified SHOULD be absent.
            if entry.reason and entry.reason != "unspecified":
                revoked_builder = revoked_builder.add_extension(x509.CRLReason(REVOCATION_REASONS[entry.reason]), critical=False)
            builder = builder.add_revoked_certificate(revoked_builder.build())
        crl = self._signer.sign_crl(builder)
        if not crl.is_signature_valid(self.certificate.public_key()):
            raise ProfileViolation("the signed CRL does not verify with the bridge certificate")
        return crl.public_bytes(serialization.Encoding.DER), this_update, next_update

    # -- OCSP ---------------------------------------------------------------------------

    def ocsp_response(self, request_der: bytes, lookup: Callable[[int], CertificateStatus], now: datetime | None = None) -> bytes:
        """An RFC 6960 response for a request about a certificate this bridge issued."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            serial = request.serial_number
            algorithm = request.hash_algorithm
        except Exception:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        name_hash = hashlib.new(algorithm.name, self.certificate.subject.public_bytes()).digest()
        key_hash = hashlib.new(algorithm.name, _key_hash_material(self.certificate.public_key())).digest()
        if request.issuer_name_hash != name_hash or request.issuer_key_hash != key_hash:
            # Not one of ours: this responder is authoritative only for the bridge.
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)

        status = lookup(serial)
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        cert_status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}.get(status.status, ocsp.OCSPCertStatus.UNKNOWN)
        reason = None
        if status.status == "revoked" and status.reason and status.reason != "unspecified":
            reason = REVOCATION_REASONS[status.reason]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=cert_status,
            this_update=now,
            next_update=now + self.ocsp_validity,
            revocation_time=status.revoked_at if status.status == "revoked" else None,
            revocation_reason=reason,
        )
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
            builder = builder.add_extension(nonce, critical=False)
        except x509.ExtensionNotFound:
            pass
        return self._signer.sign_ocsp(builder, self.certificate).public_bytes(serialization.Encoding.DER)


def bridge_subject(text: str) -> x509.Name:
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise ValueError(f"subject {text!r} is not an RFC 4514 name: {exc}") from exc
    if not name.get_attributes_for_oid(NameOID.COMMON_NAME) and not name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        raise ValueError(f"subject {text!r} names neither a CN nor an O")
    return name

