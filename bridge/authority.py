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
the signer signs the result. The same path serves software, PKCS#11 and SM2
keys (the signer sets its own signature algorithm in the to-be-signed bytes).

A dual-key bridge holds two keys under one name, one SM2 and one ECDSA or
RSA: each has a self-signed certificate, and two link certificates (each key
certifying the other) join them. A member root is cross-certified by the key
of its own family (SM2 roots by the SM2 key, the others by the ECDSA/RSA key),
so a path inside one family never needs the other algorithm, and a path
between families crosses one link certificate; path building finds whichever
completes. Every CRL is signed by each key (same number, same entries), and
the OCSP responder answers with the key the request's issuerKeyHash names.
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
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID, NameOID

from pki.der import spki_parts
from pki.sm2 import is_sm2_public_key

from .errors import BridgeError
from .registration import REVOCATION_REASONS, PolicyMapping, Subtree
from .signer import (
    SM2,
    Signer,
    _throwaway_key,
    certificate_spki,
    key_identifier,
    signed_object_verifies,
    verify_with_spki,
)

POLICY_MAPPINGS_OID = x509.ObjectIdentifier("2.5.29.33")
ANY_POLICY_OID = x509.ObjectIdentifier("2.5.29.32.0")
SERIAL_BITS = 127  # >= 64 bits of entropy (CA/B BR 7.1), positive, fits 20 octets
# What the CRL and OCSP may say: the reasons an administrator revokes with,
# plus certificateHold, which only a member's suspension puts on a certificate.
STATUS_REASONS = {**REVOCATION_REASONS, "certificateHold": x509.ReasonFlags.certificate_hold}


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
    # The subjectKeyIdentifier of the bridge key that is to sign it.
    issuer_key_id: bytes = field(default=b"", repr=False)

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
        # From the key bits, so that keys cryptography cannot load (SM2) work too.
        return x509.SubjectKeyIdentifier(key_identifier(certificate_spki(certificate)))


def _builder_public_key(spki: bytes, signer: Signer):
    """(key for a CertificateBuilder, SPKI to put in afterwards or None).

    cryptography cannot hold SM2 keys: the builder then gets a placeholder
    and the real SubjectPublicKeyInfo replaces it in the to-be-signed bytes.
    """
    try:
        return serialization.load_der_public_key(spki), None
    except (ValueError, UnsupportedAlgorithm):
        return _throwaway_key(signer.draft_key_type).public_key(), spki


def _key_hash(algorithm_name: str, spki: bytes) -> bytes:
    # RFC 6960 4.1.1: issuerKeyHash is the hash of the subjectPublicKey BIT STRING value.
    return hashlib.new(algorithm_name, spki_parts(spki)[2]).digest()


@dataclass(frozen=True)
class BridgeKey:
    """One signing key of the bridge with its self-signed certificate."""

    signer: Signer = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    spki: bytes = field(repr=False)
    key_id: bytes

    @property
    def is_sm2(self) -> bool:
        return self.signer.key_type == SM2

    @property
    def key_type(self) -> str:
        return self.signer.key_type


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
    def __init__(self, signer: Signer, certificate: x509.Certificate, profile: CrossCertificateProfile, *, crl_hours: float, ocsp_hours: float,
                 second: tuple[Signer, x509.Certificate] | None = None, links: Sequence[x509.Certificate] = ()):
        """``second``: the other key of a dual-key bridge and its self-signed
        certificate; ``links``: the certificates its two keys issued each other."""
        keys = [(signer, certificate)] + ([second] if second is not None else [])
        self.keys: tuple[BridgeKey, ...] = ()
        for key_signer, key_certificate in keys:
            key_signer.check_matches(key_certificate)  # at load, as boulder's issuer does
            if key_certificate.subject != certificate.subject:
                raise ProfileViolation("the bridge's keys must share one name")
            self.keys += (BridgeKey(key_signer, key_certificate, certificate_spki(key_certificate), _ski_of(key_certificate).digest),)
        if len(self.keys) == 2 and self.keys[0].is_sm2 == self.keys[1].is_sm2:
            raise ProfileViolation("a dual-key bridge holds one SM2 key and one ECDSA or RSA key")
        self._signer = signer
        self.certificate = certificate
        self.links = tuple(links)
        self._check_links()
        self.profile = profile
        self.crl_validity = timedelta(hours=crl_hours)
        self.ocsp_validity = timedelta(hours=ocsp_hours)
        self._ski = _ski_of(certificate)

    def _check_links(self) -> None:
        if len(self.keys) == 1:
            if self.links:
                raise ProfileViolation("link certificates without a second bridge key")
            return
        wanted = {(a.key_id, b.spki) for a in self.keys for b in self.keys if a is not b}
        found = set()
        for link in self.links:
            for key in self.keys:
                if signed_object_verifies(link.public_bytes(serialization.Encoding.DER), key.spki):
                    found.add((key.key_id, certificate_spki(link)))
        if not wanted <= found:
            raise ProfileViolation("the link certificates between the bridge's two keys are missing or do not verify")

    # -- the keys ---------------------------------------------------------------

    @property
    def primary(self) -> BridgeKey:
        return self.keys[0]

    def key_for(self, root: x509.Certificate) -> BridgeKey:
        """The key that cross-certifies ``root``: an SM2 root gets the SM2 key
        when the bridge has one, every other root the ECDSA/RSA key."""
        sm2_root = is_sm2_public_key(certificate_spki(root))
        for key in self.keys:
            if key.is_sm2 == sm2_root:
                return key
        return self.primary

    def _key(self, key_id: bytes) -> BridgeKey:
        for key in self.keys:
            if key.key_id == key_id or (not key_id and key is self.primary):
                return key
        raise ProfileViolation("the prepared certificate names no key of this bridge")

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The bridge's self-signed certificates, the primary first."""
        return tuple(key.certificate for key in self.keys)

    @property
    def spkis(self) -> tuple[bytes, ...]:
        return tuple(key.spki for key in self.keys)

    # -- the bridge's own certificate -------------------------------------------

    @staticmethod
    def create_self_signed(signer: Signer, subject: x509.Name, validity_days: int, now: datetime | None = None) -> x509.Certificate:
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        spki = signer.public_key_spki()
        public_key, spki_override = _builder_public_key(spki, signer)
        ski = x509.SubjectKeyIdentifier(key_identifier(spki))
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
        return signer.sign_certificate(builder, subject_public_key_info=spki_override)

    @staticmethod
    def create_link_certificate(issuer: Signer, issuer_certificate: x509.Certificate, subject_certificate: x509.Certificate,
                                now: datetime | None = None) -> x509.Certificate:
        """One key of a dual-key bridge certifying the other (same name).

        A self-issued CA certificate, like a key-rollover link: it does not
        count towards path lengths (RFC 5280 6.1.4 (l)). It asserts anyPolicy,
        which a self-issued intermediate passes on even under
        inhibitAnyPolicy (6.1.3 (d)(2)), so the bridge policies mapped by the
        certificate before it reach the cross-certificate after it.
        """
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        spki = certificate_spki(subject_certificate)
        public_key, spki_override = _builder_public_key(spki, issuer)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_certificate.subject)
            .issuer_name(issuer_certificate.subject)
            .public_key(public_key)
            .serial_number(new_serial())
            .not_valid_before(now)
            .not_valid_after(min(issuer_certificate.not_valid_after_utc, subject_certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski_of(subject_certificate), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier(_ski_of(issuer_certificate).digest, None, None), critical=False)
            .add_extension(x509.CertificatePolicies([x509.PolicyInformation(ANY_POLICY_OID, None)]), critical=False)
        )
        link = issuer.sign_certificate(builder, subject_public_key_info=spki_override)
        if not signed_object_verifies(link.public_bytes(serialization.Encoding.DER), certificate_spki(issuer_certificate)):
            raise ProfileViolation("the link certificate does not verify with the issuing bridge key")
        return link

    # -- cross-certificates -------------------------------------------------------

    def prepare_cross_certificate(self, terms: MemberTerms, serial: int, now: datetime) -> PreparedCertificate:
        now = now.replace(microsecond=0)
        root = terms.root
        key = self.key_for(root)
        publication = self.profile.publication
        not_after = min(
            now + timedelta(days=self.profile.validity.max_days),
            key.certificate.not_valid_after_utc,
            root.not_valid_after_utc,
        )
        path_length = terms.path_length if terms.path_length is not None else self.profile.default_path_length
        bridge_policies = list(dict.fromkeys(m.bridge_policy for m in terms.policy_mappings))

        raw_subject, raw_spki = _raw_subject_and_spki(root)
        builder = (
            x509.CertificateBuilder()
            .subject_name(root.subject)
            .issuer_name(key.certificate.subject)
            .public_key(_builder_public_key(raw_spki, key.signer)[0])  # replaced below
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
            .add_extension(x509.AuthorityKeyIdentifier(key.key_id, None, None), critical=False)
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

        # Copy the member root's subject and key byte for byte into the TBS.
        tbs_der = key.signer.draft_tbs_certificate(
            builder, subject_public_key_info=raw_spki, replacements={"subject": asn1_x509.Name.load(raw_subject)}
        )
        prepared = PreparedCertificate(serial, tbs_der, key.signer.signature_algorithm(), now, not_after, key.key_id)
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
        key = self._key(prepared.issuer_key_id)
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
        need(cert.issuer == key.certificate.subject, "issuer is not the bridge")
        need(cert.not_valid_before_utc <= cert.not_valid_after_utc, "validity period is inverted")
        need(cert.not_valid_after_utc <= key.certificate.not_valid_after_utc, "validity extends beyond the bridge certificate")
        need(cert.not_valid_after_utc <= root.not_valid_after_utc, "validity extends beyond the member root")
        tbs_algorithm = asn1_x509.TbsCertificate.load(prepared.tbs_der)["signature"].dump()
        need(tbs_algorithm == key.signer.signature_algorithm_der == prepared.signature_algorithm.dump(),
             "signature algorithm does not match the bridge key")
        need(key is self.key_for(root), "the member root is not cross-certified by the key of its algorithm family")

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
        need(aki is not None and aki.value.key_identifier == key.key_id, "authorityKeyIdentifier is not the signing bridge key's")
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

    def issue_reserved(self, terms: MemberTerms, now: datetime,
                       reserve: Callable[[PreparedCertificate], bool]) -> tuple[PreparedCertificate, x509.Certificate]:
        """A cross-certificate whose serial and to-be-signed hash were
        committed before the key signed it: a serial is drawn, ``reserve``
        commits it (False: the serial is taken, another is drawn), then the
        key signs. If storing the certificate later fails, the reservation
        stays behind as evidence of a key use that produced nothing anyone
        received. Approval and reissue both issue through here."""
        for _attempt in range(5):
            prepared = self.prepare_cross_certificate(terms, new_serial(), now)
            if reserve(prepared):
                return prepared, self.sign_prepared(prepared)
        # 127-bit serials do not collide five times
        raise BridgeError("serial_exhausted", "could not draw an unused serial number", "internal")  # pragma: no cover

    def sign_prepared(self, prepared: PreparedCertificate) -> x509.Certificate:
        key = self._key(prepared.issuer_key_id)
        certificate = self._assemble(prepared, key.signer.sign(prepared.tbs_der))
        # A faulty token must not go unnoticed.
        if not signed_object_verifies(certificate.public_bytes(serialization.Encoding.DER), key.spki):
            raise ProfileViolation("the signed cross-certificate does not verify with the bridge key")
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
                revoked_builder = revoked_builder.add_extension(x509.CRLReason(STATUS_REASONS[entry.reason]), critical=False)
            builder = builder.add_revoked_certificate(revoked_builder.build())
        crl = self._signer.sign_crl(builder)
        der = crl.public_bytes(serialization.Encoding.DER)
        if not signed_object_verifies(der, self.primary.spki):
            raise ProfileViolation("the signed CRL does not verify with the bridge certificate")
        return der, this_update, next_update

    def companion_crls(self, crl_der: bytes) -> list[bytes]:
        """For a dual-key bridge: ``crl_der`` (signed by the primary key) signed
        by each other key too, with that key's authorityKeyIdentifier, so
        certificates issued by either key have a CRL signed by their issuer's
        own key (RFC 5280 5.2.1: a CA with several concurrent keys). Same
        number, dates and entries: it is the same CRL."""
        companions = []
        for key in self.keys[1:]:
            der = key.signer.resign_crl(crl_der, key.key_id)
            if not signed_object_verifies(der, key.spki):
                raise ProfileViolation("the companion CRL does not verify with the bridge's second key")
            companions.append(der)
        return companions

    # -- detached signatures over published documents -------------------------------------

    def sign_detached(self, content: bytes, now: datetime | None = None) -> bytes:
        """A detached CMS SignedData (RFC 5652) over ``content`` by the primary
        key, with the bridge certificate, so a relying party holding the
        bridge certificate checks a published document offline, e.g.
        ``openssl cms -verify -binary -content FILE -inform DER -CAfile bridge.pem -purpose any``.

        A dual-key bridge signs with its ECDSA/RSA key: OpenSSL 3.0's CMS
        verifies SM2 signatures with an empty signer ID, not GM/T 0009's
        default one that the SM2 signer uses, so an SM2 signature is checked
        with a GM/T-aware tool only. An SM2-only bridge signs with SM2."""
        key = next((k for k in self.keys if not k.is_sm2), self.primary)
        digest_name = key.signer.hash_algorithm.name  # sha256, sha384, sm3
        digest_oid = {"sm3": "1.2.156.10197.1.401"}.get(digest_name, digest_name)
        digest = hashlib.new(digest_name, content).digest()
        signing_time = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        # In DER order (SET OF sorts by encoding; here the lengths decide):
        # relying parties re-encode the attributes before checking the signature.
        attributes = asn1_cms.CMSAttributes([
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [asn1_cms.Time({"utc_time": signing_time})]},
            {"type": "message_digest", "values": [digest]},
        ])
        to_sign = attributes.dump()
        signature = key.signer.sign(to_sign)
        if not verify_with_spki(key.spki, key.signer.signature_algorithm_der, signature, to_sign):
            raise ProfileViolation("the detached signature does not verify with the bridge key")
        certificate = asn1_x509.Certificate.load(key.certificate.public_bytes(serialization.Encoding.DER))
        signer_info = asn1_cms.SignerInfo({
            "version": "v1",
            "sid": asn1_cms.SignerIdentifier({"issuer_and_serial_number": asn1_cms.IssuerAndSerialNumber({
                "issuer": certificate.issuer, "serial_number": certificate.serial_number})}),
            "digest_algorithm": {"algorithm": digest_oid},
            "signed_attrs": attributes,
            "signature_algorithm": asn1_cms.SignedDigestAlgorithm.load(key.signer.signature_algorithm_der),
            "signature": signature,
        })
        signed_data = asn1_cms.SignedData({
            "version": "v1",
            "digest_algorithms": [{"algorithm": digest_oid}],
            "encap_content_info": {"content_type": "data"},  # detached: no eContent
            "certificates": [certificate],
            "signer_infos": [signer_info],
        })
        return asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()

    # -- signatures inside published documents (the XML trust list, bridge/trust_list.py) ------------

    def can_sign_documents(self) -> bool:
        """Whether a key can make XML-DSig signatures: ECDSA or RSA (XML-DSig defines no SM2)."""
        return any(not k.is_sm2 for k in self.keys)

    def document_key(self) -> BridgeKey:
        """The key that signs XML documents: the ECDSA/RSA one (a dual-key bridge's non-SM2 key)."""
        key = next((k for k in self.keys if not k.is_sm2), None)
        if key is None:
            raise ProfileViolation("this bridge has no ECDSA or RSA key to sign XML documents with")
        return key

    def sign_checkpoint(self, message: bytes) -> tuple[bytes, bytes, x509.Certificate]:
        """A signature over an audit checkpoint message (bridge/checkpoints.py)
        by the primary key: (signature, AlgorithmIdentifier DER, certificate),
        checked before it is returned. The message starts with a text tag, so
        it can never pass for a certificate's or CRL's DER."""
        key = self.primary
        signature = key.signer.sign(message)
        if not verify_with_spki(key.spki, key.signer.signature_algorithm_der, signature, message):
            raise ProfileViolation("the checkpoint signature does not verify with the bridge key")
        return signature, key.signer.signature_algorithm_der, key.certificate

    def sign_document(self, data: bytes) -> bytes:
        """A signature over ``data`` (a canonical XML-DSig SignedInfo) by
        ``document_key``: DER ECDSA or PKCS#1 v1.5 RSA with the key's hash,
        checked before it is returned."""
        key = self.document_key()
        signature = key.signer.sign(data)
        if not verify_with_spki(key.spki, key.signer.signature_algorithm_der, signature, data):
            raise ProfileViolation("the document signature does not verify with the bridge key")
        return signature

    # -- the bridge's own service keys (bridge/service_keys.py: TSA, receipts) -----------------

    def certify_service_key(self, builder: x509.CertificateBuilder, spki: bytes) -> x509.Certificate:
        """Sign ``builder`` (an end-entity certificate for one of the bridge's
        service keys, profiled by bridge/service_keys.py) with the primary key,
        its SubjectPublicKeyInfo put in byte for byte; checked before it is returned."""
        key = self.primary
        public_key, spki_override = _builder_public_key(spki, key.signer)
        certificate = key.signer.sign_certificate(builder.public_key(public_key), subject_public_key_info=spki_override)
        if not signed_object_verifies(certificate.public_bytes(serialization.Encoding.DER), key.spki):
            raise ProfileViolation("the service key's certificate does not verify with the bridge key")
        return certificate

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
        # Each key answers for what it issued, and signs the answer itself.
        key = next((k for k in self.keys if request.issuer_key_hash == _key_hash(algorithm.name, k.spki)), None)
        if request.issuer_name_hash != name_hash or key is None:
            # Not one of ours: this responder is authoritative only for the bridge.
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)

        status = lookup(serial)
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        cert_status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}.get(status.status, ocsp.OCSPCertStatus.UNKNOWN)
        reason = None
        if status.status == "revoked" and status.reason and status.reason != "unspecified":
            reason = STATUS_REASONS[status.reason]
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
        return key.signer.sign_ocsp(builder, key.certificate).public_bytes(serialization.Encoding.DER)


def bridge_subject(text: str) -> x509.Name:
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise ValueError(f"subject {text!r} is not an RFC 4514 name: {exc}") from exc
    if not name.get_attributes_for_oid(NameOID.COMMON_NAME) and not name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        raise ValueError(f"subject {text!r} names neither a CN nor an O")
    return name

