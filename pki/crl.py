"""CRLs parsed and checked once, when loaded.

A CRL is indexed by (certificate issuer, serial) when it is loaded, so a
status check is one dictionary lookup however long the CRL is. Indirect CRLs
(RFC 5280 5.3.3) change the certificate issuer with the certificateIssuer
entry extension; the index follows it.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import warnings
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from . import der as derlib
from .errors import InputError
from .loading import pem_blocks
from .names import NameKey, name_key, render

_HANDLED_CRL_EXTENSIONS = frozenset(
    {
        ExtensionOID.CRL_NUMBER.dotted_string,
        ExtensionOID.DELTA_CRL_INDICATOR.dotted_string,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT.dotted_string,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME.dotted_string,
        ExtensionOID.FRESHEST_CRL.dotted_string,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string,
    }
)
_HANDLED_ENTRY_EXTENSIONS = frozenset(
    {
        CRLEntryExtensionOID.CRL_REASON.dotted_string,
        CRLEntryExtensionOID.CERTIFICATE_ISSUER.dotted_string,
        CRLEntryExtensionOID.INVALIDITY_DATE.dotted_string,
        "2.5.29.23",  # holdInstructionCode
    }
)


@dataclass(frozen=True)
class CrlEntry:
    serial: int
    revocation_date: dt.datetime
    reason: str | None  # RFC 5280 reason name (keyCompromise, removeFromCRL, ...)


@dataclass(frozen=True, eq=False)
class Crl:
    der: bytes
    sha256: bytes
    tbs: bytes
    signature_algorithm: bytes
    signature: bytes
    issuer: x509.Name
    issuer_key: NameKey
    this_update: dt.datetime
    next_update: dt.datetime | None
    number: int | None
    delta_base: int | None  # deltaCRLIndicator: the base CRL number; None for a complete CRL
    issuing_distribution_point: x509.IssuingDistributionPoint | None
    authority_key_id: bytes | None
    entries: dict[tuple[NameKey, int], CrlEntry] = field(repr=False)
    unhandled_critical: tuple[str, ...] = ()
    defect: str | None = None
    freshest_crl: tuple[x509.DistributionPoint, ...] = ()
    number_critical: bool = False  # the strict profile refuses it (RFC 5280 5.2.3)

    @property
    def is_delta(self) -> bool:
        return self.delta_base is not None

    @property
    def is_indirect(self) -> bool:
        idp = self.issuing_distribution_point
        return bool(idp and idp.indirect_crl)

    @functools.cached_property
    def label(self) -> str:
        # Named in every status the CRL decides: rendered once.
        number = f" number {self.number}" if self.number is not None else ""
        kind = "delta CRL" if self.is_delta else "CRL"
        return f"{kind}{number} of {render(self.issuer)}"

    def lookup(self, issuer_key: NameKey, serial: int) -> CrlEntry | None:
        return self.entries.get((issuer_key, serial))


_REASON_NAMES = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.ca_compromise: "cACompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
    x509.ReasonFlags.certificate_hold: "certificateHold",
    x509.ReasonFlags.privilege_withdrawn: "privilegeWithdrawn",
    x509.ReasonFlags.aa_compromise: "aACompromise",
    x509.ReasonFlags.remove_from_crl: "removeFromCRL",
}


def reason_name(flag: x509.ReasonFlags) -> str:
    return _REASON_NAMES[flag]


def parse_crl(data: bytes) -> Crl:
    data = bytes(data)
    tbs, sig_alg, signature = derlib.split_signed(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            crl = x509.load_der_x509_crl(data)
        except (ValueError, x509.InvalidVersion) as exc:
            raise InputError(f"not a parseable CRL: {exc}") from None
        try:
            issuer = crl.issuer
            issuer_key = name_key(issuer)
            this_update = crl.last_update_utc
            next_update = crl.next_update_utc
        except ValueError as exc:
            raise InputError(f"not a parseable CRL: {exc}") from None
        defect = None
        unhandled: list[str] = []
        number = delta_base = idp = aki = None
        number_critical = False
        freshest: tuple = ()
        try:
            derlib.algorithm_identifier(sig_alg)
        except InputError as exc:
            defect = f"unreadable signature algorithm: {exc}"
        try:
            extensions = list(crl.extensions)
        except Exception as exc:
            extensions, defect = [], f"malformed CRL extensions: {exc}"
        for ext in extensions:
            v = ext.value
            if isinstance(v, x509.CRLNumber):
                number = v.crl_number
                number_critical = ext.critical
            elif isinstance(v, x509.DeltaCRLIndicator):
                delta_base = v.crl_number
            elif isinstance(v, x509.IssuingDistributionPoint):
                idp = v
            elif isinstance(v, x509.AuthorityKeyIdentifier):
                aki = v.key_identifier
            elif isinstance(v, x509.FreshestCRL):
                freshest = tuple(v)
            if ext.critical and ext.oid.dotted_string not in _HANDLED_CRL_EXTENSIONS:
                unhandled.append(ext.oid.dotted_string)
        entries: dict[tuple[NameKey, int], CrlEntry] = {}
        # 5.3.3: an entry's certificateIssuer applies to it and to the
        # entries after it, until the next one; the first entries belong to
        # the CRL issuer. Each directoryName it lists gets an index key.
        current_issuers: tuple[NameKey, ...] = (issuer_key,)
        indirect = bool(idp and idp.indirect_crl)
        try:
            for revoked in crl:
                reason = None
                for ext in revoked.extensions:
                    v = ext.value
                    if isinstance(v, x509.CRLReason):
                        reason = reason_name(v.reason)
                    elif isinstance(v, x509.CertificateIssuer):
                        if not indirect and defect is None:
                            defect = "certificateIssuer entry extension in a CRL that is not indirect"
                        names = tuple(name_key(g.value) for g in v if isinstance(g, x509.DirectoryName))
                        # An issuer named only by other name forms matches no certificate.
                        current_issuers = names or ((frozenset({("unmatchable", "non-directory certificateIssuer")}),),)
                    if ext.critical and ext.oid.dotted_string not in _HANDLED_ENTRY_EXTENSIONS:
                        unhandled.append(f"entry {revoked.serial_number}: {ext.oid.dotted_string}")
                entry = CrlEntry(revoked.serial_number, revoked.revocation_date_utc, reason)
                for issuer_name in current_issuers:
                    key = (issuer_name, revoked.serial_number)
                    if key in entries and defect is None:
                        defect = f"serial {revoked.serial_number:x} is listed twice"
                    entries[key] = entry
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
            # cryptography decodes entries lazily, and not every decoding
            # error is a ValueError (a duplicate entry extension is not).
            defect = f"malformed CRL entries: {exc}"
    return Crl(
        der=data,
        sha256=hashlib.sha256(data).digest(),
        tbs=tbs,
        signature_algorithm=sig_alg,
        signature=signature,
        issuer=issuer,
        issuer_key=issuer_key,
        this_update=this_update,
        next_update=next_update,
        number=number,
        delta_base=delta_base,
        issuing_distribution_point=idp,
        authority_key_id=aki,
        entries=entries,
        unhandled_critical=tuple(unhandled),
        defect=defect,
        freshest_crl=freshest,
        number_critical=number_critical,
    )


def load_crls(data: bytes | str, what: str = "CRL") -> list[Crl]:
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    if b"-----BEGIN" in data:
        blocks = [body for label, body in pem_blocks(data) if label == "X509 CRL"]
        if not blocks:
            raise InputError(f"{what}: no X509 CRL PEM block")
    else:
        blocks = [data]
    out = []
    for body in blocks:
        try:
            out.append(parse_crl(body))
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    return out
