"""pkilint's RFC 5280 validators (the ones behind lint_pkix_cert and lint_crl),
returning the findings at ERROR severity or worse."""
from __future__ import annotations

from functools import lru_cache

from pkilint import loader, pkix
from pkilint.pkix import certificate, crl, extension, name
from pkilint.validation import ValidationFindingSeverity


@lru_cache(maxsize=1)
def _certificate_validator():
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


@lru_cache(maxsize=1)
def _crl_validator():
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container([]),
            crl.create_extensions_validator_container([]),
        ],
    )


def _errors(results) -> list[str]:
    return [
        f"{d.finding.code} ({d.finding.severity.name}) at {r.node.path}: {d.message or ''}"
        for r in results
        for d in r.finding_descriptions
        if d.finding.severity <= ValidationFindingSeverity.ERROR
    ]


def certificate_errors(der: bytes) -> list[str]:
    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
    return _errors(_certificate_validator().validate(doc.root))


def crl_errors(der: bytes) -> list[str]:
    doc = loader.RFC5280CertificateListDocumentLoader().load_der_document(der, "crl")
    return _errors(_crl_validator().validate(doc.root))
