"""The facade the CLI and the HTTP layer call: ``BridgeCA``.

It wires the three roles together and owns none of their work: registration
decides, the authority signs, the store persists. Every failure leaves as a
``BridgeError`` (bridge/errors.py) with a stable ``code`` and its ``kind``, so
routers stay thin.

Dual-key bridges (``second_key_type``): one SM2 key and one ECDSA or RSA key
under the same name, rather than two bridges with two names. Each key has a
self-signed certificate and the two keys certify each other (link
certificates, as in a key rollover), so the bridge stays one CA: one name for
members' reverse certificates and policy mappings, one serial space, one CRL
(signed by each key), one OCSP responder, one audit log. SM2 member roots are
cross-certified by the SM2 key and the others by the ECDSA/RSA key; paths
inside a family use one algorithm, paths across families pass one link
certificate, and path building takes whichever completes. See
bridge/authority.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import secrets
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.names import name_key

from . import registration
from .audit import AuditFinding
from .authority import (
    BridgeAuthority,
    CertificateStatus,
    CrossCertificateProfile,
    MemberTerms,
    PolicyConstraintOptions,
    PublicationOptions,
    ValidityOptions,
    bridge_subject,
    certs_only_p7c,
    new_serial,
)
from .errors import BridgeError, translate, translated
from .registration import EnrollmentError, EnrollmentRequest, PolicyMapping, Subtree
from .settings import CONFIG_FILE, DATABASE_FILE, BridgeSettings
from .signer import Pkcs11Signer, Signer, SignerError, SoftwareSigner
from .store import CrossCertificate, NotFound, SerialCollision, Store, StoreError

ROLES = ("admin", "issuer", "platform")
TOKEN_PREFIX = "bca_"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def parse_serial(serial: int | str) -> int:
    if isinstance(serial, int):
        return serial
    text = str(serial).strip().lower().replace(":", "")
    if text.startswith(("-", "+")):
        raise BridgeError("invalid_serial", f"serial {serial!r} is not hexadecimal", "malformed")
    try:
        return int(text, 16)
    except ValueError:
        raise BridgeError("invalid_serial", f"serial {serial!r} is not hexadecimal", "malformed") from None


def _settings_problem(exc: Exception) -> str:
    """One line saying what is wrong with the settings (pydantic's own first line only counts the errors)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or 'settings'}: {e['msg']}" for e in errors())
        except Exception:
            pass
    return str(exc).splitlines()[0]


def check_base_url(url: str | None, *, allow_loopback: bool = False) -> str:
    """The public base URL ``init`` writes into every cross-certificate (CRL
    distribution point, AIA caIssuers, OCSP), checked: those certificates live
    for years, and a relying party elsewhere resolves localhost to itself, so a
    loopback URL is only for a bridge nobody else uses (the demo, tests)."""
    if not url:
        raise BridgeError("base_url_required", "--base-url (or BRIDGECA_BASE_URL) is required: it is the public URL that "
                          "every cross-certificate's CRL, OCSP and CA-issuers URLs point under", "malformed")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BridgeError("invalid_base_url", f"base URL {url!r} is not an http:// or https:// URL with a host", "malformed")
    if parts.query or parts.fragment:
        raise BridgeError("invalid_base_url", f"base URL {url!r} must not have a query or fragment", "malformed")
    host = parts.hostname.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
        local = address.is_loopback or address.is_unspecified
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    if local and not allow_loopback:
        raise BridgeError("loopback_base_url", f"base URL {url} is a loopback address: certificates would send every relying "
                          "party to itself; give the public URL, or --allow-loopback-url for a bridge only this host uses", "malformed")
    return url.rstrip("/")


def write_private(path: Path, data: bytes) -> None:
    """Write a file in a bridge home readable by its owner only (0600), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        handle.write(data)


def _make_private_dir(path: Path) -> None:
    existed = path.exists()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not existed:
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


def _database_url(settings: BridgeSettings) -> str:
    """The database of an existing home. Its SQLite file must already exist:
    connecting would create an empty one, hiding that the home's database is
    elsewhere (a PostgreSQL home opened without its URL)."""
    if settings.database_url is None and not (settings.home / DATABASE_FILE).exists():
        raise BridgeError("database_not_found", f"{settings.home} has no {DATABASE_FILE} and its config.json names no "
                          "database: set BRIDGECA_DATABASE_URL to the database it was initialised with", "malformed")
    return settings.database_url_resolved


def _open_second_key(settings: BridgeSettings) -> tuple[tuple[Signer, x509.Certificate] | None, list[x509.Certificate]]:
    """The second key of a dual-key bridge (a software key), its certificate and the link certificates."""
    if settings.second_key_type is None:
        return None, []
    try:
        certificate = x509.load_pem_x509_certificate(settings.second_cert_path.read_bytes())
        links = x509.load_pem_x509_certificates(settings.links_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BridgeError("not_initialised", f"cannot read the second bridge key's certificates: {exc}", "malformed") from exc
    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    return (SoftwareSigner.load(settings.second_key_path, passphrase), certificate), links


def _open_signer(settings: BridgeSettings) -> Signer:
    if settings.signer == "pkcs11":
        pin = settings.pkcs11_pin or settings.key_passphrase
        return Pkcs11Signer.load(
            settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_key_label, pin.get_secret_value() if pin else None
        )
    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    return SoftwareSigner.load(settings.key_path, passphrase)


def _profile(settings: BridgeSettings) -> CrossCertificateProfile:
    return CrossCertificateProfile(
        validity=ValidityOptions(settings.cross_certificate_validity_days),
        constraints=PolicyConstraintOptions(
            settings.require_explicit_policy, settings.inhibit_policy_mapping, settings.inhibit_any_policy
        ),
        publication=PublicationOptions(settings.crl_url, settings.ocsp_url, settings.ca_issuers_url),
        default_path_length=settings.default_path_length,
    )


class BridgeCA:
    def __init__(self, settings: BridgeSettings, store: Store, authority: BridgeAuthority, signer: Signer,
                 second_signer: Signer | None = None):
        self.settings = settings
        self.store = store
        self.authority = authority
        self._signer = signer
        self._second_signer = second_signer
        # CRL number -> the same CRL signed by the other key(s) of a dual-key bridge.
        self._companion_crls: dict[int, list[bytes]] = {}
        self._companion_lock = threading.Lock()
        from . import checkpoints

        checkpoints.install(self)  # the audit chain's head is signed as entries are appended

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def init(
        cls,
        home: Path | str,
        *,
        key_type: str | None = None,
        subject: str | None = None,
        base_url: str | None = None,
        signer: str | None = None,
        pkcs11_module: str | None = None,
        pkcs11_token_label: str | None = None,
        pkcs11_key_label: str | None = None,
        actor: str = "bridgeca-init",
        second_key_type: str | None = None,
    ) -> "BridgeCA":
        """Create the bridge: database, key, self-signed certificate, first CRL, config.

        ``key_type`` may be ``sm2`` (software signer only). ``second_key_type``
        makes a dual-key bridge (one SM2 and one ECDSA/RSA key, see above):
        the second key is a software key in the home, encrypted with the same
        passphrase.

        config.json is written last: a home without it is not a bridge, and a
        failed init removes the key and certificate files it wrote.
        """
        home = Path(home)
        if (home / CONFIG_FILE).exists():
            raise BridgeError("already_initialised", f"{home} already holds a bridge ({CONFIG_FILE} exists)", "conflict")
        try:
            _make_private_dir(home)
            settings = BridgeSettings.load(
                home, key_type=key_type, subject=subject, base_url=base_url, signer=signer,
                pkcs11_module=pkcs11_module, pkcs11_token_label=pkcs11_token_label, pkcs11_key_label=pkcs11_key_label,
                second_key_type=second_key_type,
            )
            name = bridge_subject(settings.subject)
        except (ValueError, OSError) as exc:
            raise BridgeError("invalid_settings", _settings_problem(exc), "malformed") from exc

        if (settings.signer == "software" or settings.second_key_type) and not settings.key_passphrase:
            raise translate(SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the bridge key"))
        written: list[Path] = []
        if settings.database_url is None and not (settings.home / DATABASE_FILE).exists():
            written.append(settings.home / DATABASE_FILE)  # ours to remove if init fails
        store = None
        signer_obj: Signer | None = None
        second_signer: Signer | None = None
        try:
            with translated():
                if written:
                    # Created empty and private before SQLite opens it: SQLite
                    # would create it with the umask's mode (often 0644), and
                    # gives its journal files the database file's mode.
                    write_private(settings.home / DATABASE_FILE, b"")
                store = Store.open(settings.database_url_resolved, create=True)
                if store.audit_counter() > 0:
                    raise BridgeError("already_initialised", f"database {store.safe_url} already holds a bridge", "conflict")
                if settings.signer == "pkcs11":
                    pin = settings.pkcs11_pin or settings.key_passphrase
                    signer_obj = Pkcs11Signer.generate(
                        settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_key_label,
                        pin.get_secret_value() if pin else None, settings.key_type,
                    )
                else:
                    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
                    if not passphrase:
                        raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the bridge key")
                    if settings.key_path.exists():
                        raise BridgeError("already_initialised", f"{settings.key_path} already exists", "conflict")
                    written.append(settings.key_path)
                    signer_obj = SoftwareSigner.generate(settings.key_path, settings.key_type, passphrase)
                certificate = BridgeAuthority.create_self_signed(signer_obj, name, settings.bridge_validity_days)
                write_private(settings.cert_path, certificate.public_bytes(serialization.Encoding.PEM))
                written.append(settings.cert_path)
                second, links = None, []
                if settings.second_key_type:
                    for path in (settings.second_key_path, settings.second_cert_path, settings.links_path):
                        if path.exists():
                            raise BridgeError("already_initialised", f"{path} already exists", "conflict")
                    written.append(settings.second_key_path)
                    second_passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
                    if not second_passphrase:
                        raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the second bridge key")
                    second_signer = SoftwareSigner.generate(settings.second_key_path, settings.second_key_type, second_passphrase)
                    second_certificate = BridgeAuthority.create_self_signed(second_signer, name, settings.bridge_validity_days)
                    links = [
                        BridgeAuthority.create_link_certificate(signer_obj, certificate, second_certificate),
                        BridgeAuthority.create_link_certificate(second_signer, second_certificate, certificate),
                    ]
                    written += [settings.second_cert_path, settings.links_path]
                    write_private(settings.second_cert_path, second_certificate.public_bytes(serialization.Encoding.PEM))
                    write_private(settings.links_path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in links))
                    second = (second_signer, second_certificate)
                authority = BridgeAuthority(
                    signer_obj, certificate, _profile(settings),
                    crl_hours=settings.crl_next_update_hours, ocsp_hours=settings.ocsp_next_update_hours,
                    second=second, links=links,
                )
                store.append_audit(
                    actor,
                    "bridge.init",
                    {
                        "subject": certificate.subject.rfc4514_string(),
                        "key_type": settings.key_type,
                        "signer": settings.signer,
                        "certificate_sha256": hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest(),
                    },
                )
                if second is not None:
                    store.append_audit(
                        actor,
                        "bridge.second_key",
                        {
                            "key_type": settings.second_key_type,
                            "certificate_sha256": hashlib.sha256(second[1].public_bytes(serialization.Encoding.DER)).hexdigest(),
                            "link_sha256": [hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in links],
                        },
                    )
                store.issue_crl(actor=actor, build_crl=authority.build_crl)
                settings.save()
        except BaseException:
            if second_signer is not None:
                second_signer.close()
            if signer_obj is not None:
                signer_obj.close()
            if store is not None:
                store.close()
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return cls(settings, store, authority, signer_obj, second_signer)

    @classmethod
    def open(cls, home: Path | str, **overrides) -> "BridgeCA":
        home = Path(home)
        if not (home / CONFIG_FILE).exists():
            raise BridgeError("not_initialised", f"{home} is not a bridge home (no {CONFIG_FILE}); run 'bridgeca init'", "malformed")
        try:
            settings = BridgeSettings.load(home, **overrides)
        except ValueError as exc:
            raise BridgeError("invalid_settings", _settings_problem(exc), "malformed") from exc
        with translated():
            try:
                certificate = x509.load_pem_x509_certificate(settings.cert_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise BridgeError("not_initialised", f"cannot read the bridge certificate {settings.cert_path}: {exc}", "malformed") from exc
            signer = _open_signer(settings)
            second = None
            try:
                second, links = _open_second_key(settings)
                authority = BridgeAuthority(
                    signer, certificate, _profile(settings),
                    crl_hours=settings.crl_next_update_hours, ocsp_hours=settings.ocsp_next_update_hours,
                    second=second, links=links,
                )
                store = Store.open(_database_url(settings))
            except BaseException:
                signer.close()
                if second is not None:
                    second[0].close()
                raise
        return cls(settings, store, authority, signer, second[0] if second else None)

    @classmethod
    def open_store_only(cls, home: Path | str) -> Store:
        """The database of a bridge home, without the key (for audit verification)."""
        home = Path(home)
        if not (home / CONFIG_FILE).exists():
            raise BridgeError("not_initialised", f"{home} is not a bridge home (no {CONFIG_FILE})", "malformed")
        try:
            settings = BridgeSettings.load(home)
        except ValueError as exc:
            raise BridgeError("invalid_settings", _settings_problem(exc), "malformed") from exc
        with translated():
            return Store.open(_database_url(settings))

    def close(self) -> None:
        self._signer.close()
        if self._second_signer is not None:
            self._second_signer.close()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ the bridge itself

    @property
    def certificate(self) -> x509.Certificate:
        return self.authority.certificate

    def certificate_pem(self) -> str:
        return _pem(self.certificate)

    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def bridge_certificates(self) -> list[x509.Certificate]:
        """The self-signed certificate of each bridge key, the primary (``certificate``) first."""
        return list(self.authority.certificates)

    def link_certificates(self) -> list[x509.Certificate]:
        """For a dual-key bridge, the certificates its two keys issued each other; else none."""
        return list(self.authority.links)

    def own_certificates_pem(self) -> str:
        """Every certificate of the bridge itself, PEM: each key's self-signed
        certificate (the primary first), then the link certificates."""
        return "".join(_pem(c) for c in self.bridge_certificates() + self.link_certificates())

    def own_certificates_p7c(self) -> bytes:
        return certs_only_p7c(self.bridge_certificates() + self.link_certificates())

    # ------------------------------------------------------------------ enrollment

    def enroll(
        self,
        *,
        name: str,
        jurisdiction: str,
        root_certificate: bytes | str,
        policy_mappings: Sequence,
        permitted_subtrees: Sequence | None = None,
        excluded_subtrees: Sequence | None = None,
        path_length: int | None = None,
        actor: str = "issuer",
        owner: int | None = None,
        rollover_of: str | None = None,
    ) -> dict:
        """Check and record a member root; the enrollment starts ``pending``.

        ``owner`` is the id of the API token that submits it (see principal());
        issuer(id, owner=...) and issuers(owner=...) then show it only to that token.
        ``rollover_of``: the enrollment whose root this one replaces under the
        same name (a key rollover); without it, a root name an active member
        holds under another key is refused (409 name_taken). Blacklisted roots
        are refused (409 blacklisted).
        """
        with translated():
            checked = registration.check_enrollment(
                EnrollmentRequest(name, jurisdiction, root_certificate if isinstance(root_certificate, bytes) else root_certificate.encode(),
                                  list(policy_mappings or []), permitted_subtrees, excluded_subtrees, path_length),
                now=_now(),
                min_remaining=timedelta(days=self.settings.min_member_root_validity_days),
                jurisdictions=tuple(self.settings.jurisdictions),
            )
            if checked.spki_sha256 in {registration.spki_sha256(c) for c in self.authority.certificates}:
                raise EnrollmentError("already_enrolled", "this is the bridge's own key")
            self._refuse_blacklisted(checked.root)
            root_name = name_key(checked.root.subject)
            record = self.store.add_enrollment(
                actor=actor,
                member=checked.member,
                jurisdiction=checked.jurisdiction,
                root_der=checked.root_der,
                root_subject=checked.root.subject.rfc4514_string(),
                spki_sha256=checked.spki_sha256,
                policy_mappings=[m.to_dict() for m in checked.policy_mappings],
                permitted_subtrees=[s.to_dict() for s in checked.permitted_subtrees],
                excluded_subtrees=[s.to_dict() for s in checked.excluded_subtrees],
                path_length=checked.path_length,
                owner_token_id=owner,
                rollover_of=rollover_of,
                same_name=lambda der: name_key(x509.load_der_x509_certificate(der).subject) == root_name,
                # An issuer rolls over its own enrollments; an administrator (or the CLI on the home) any.
                may_roll_over=lambda target: owner is None or target.owner_token_id == owner or actor.startswith("admin"),
            )
            return self._issuer_view(record)

    def _refuse_blacklisted(self, root: x509.Certificate) -> None:
        from . import blacklist

        why = blacklist.refusal(root, self.store.blacklist_entries(), self.store.list_enrollments())
        if why is not None:
            raise BridgeError("blacklisted", why, "conflict")

    def approve(self, enrollment_id: str, *, actor: str = "admin") -> dict:
        """Issue the cross-certificate for a pending enrollment and make it active.

        Reserve, sign, store: the serial and the to-be-signed hash are
        committed before the key is used, and the certificate is returned only
        after it is stored. If storing fails, the reservation stays behind as
        evidence of a key use that produced nothing anyone received.
        """
        with translated():
            record = self.store.get_enrollment(enrollment_id)
            registration.check_transition(record.status, registration.ACTIVE)
            terms = self._terms(record)
            self._refuse_blacklisted(terms.root)  # listed after it was submitted
            now = _now()
            registration.check_validity(terms.root, now, timedelta(days=self.settings.min_member_root_validity_days))
            for _attempt in range(5):
                prepared = self.authority.prepare_cross_certificate(terms, new_serial(), now)
                try:
                    self.store.reserve_serial(
                        actor=actor, enrollment_id=enrollment_id, serial=prepared.serial,
                        tbs_sha256=prepared.tbs_sha256, purpose="cross-certificate",
                    )
                    break
                except SerialCollision:
                    continue
            else:  # pragma: no cover - 127-bit serials do not collide five times
                raise BridgeError("serial_exhausted", "could not draw an unused serial number", "internal")
            certificate = self.authority.sign_prepared(prepared)
            self.store.complete_issuance(
                actor=actor, enrollment_id=enrollment_id, serial=prepared.serial,
                der=certificate.public_bytes(serialization.Encoding.DER),
                not_before=prepared.not_before, not_after=prepared.not_after,
            )
            view = self._issuer_view(self.store.get_enrollment(enrollment_id))
            view["cross_certificate"] = _pem(certificate)
            view["serial"] = format(prepared.serial, "x")
            return view

    def reject(self, enrollment_id: str, *, reason: str = "", actor: str = "admin") -> dict:
        with translated():
            record = self.store.get_enrollment(enrollment_id)
            registration.check_transition(record.status, registration.REJECTED)
            self.store.set_enrollment_status(enrollment_id, from_status=("pending",), to_status="rejected", actor=actor, reason=reason)
            return self._issuer_view(self.store.get_enrollment(enrollment_id))

    def expire_due(self, *, at: datetime | None = None, actor: str = "bridgeca") -> list[str]:
        """Move active enrollments whose cross-certificates have all run out to ``expired``; returns their ids."""
        with translated():
            return self.store.expire_enrollments(actor=actor, now=at or _now())

    # Member lifecycle (bridge/lifecycle.py). Routes and the CLI reach these
    # through bridge/governance.py's perform, never directly.

    def withdraw(self, enrollment_id: str, *, reason: str = "", actor: str = "admin") -> dict:
        from . import lifecycle

        return lifecycle.withdraw(self, enrollment_id, reason=reason, actor=actor)

    def suspend(self, enrollment_id: str, *, reason: str = "", actor: str = "admin") -> dict:
        from . import lifecycle

        return lifecycle.suspend(self, enrollment_id, reason=reason, actor=actor)

    def reinstate(self, enrollment_id: str, *, reason: str = "", actor: str = "admin") -> dict:
        from . import lifecycle

        return lifecycle.reinstate(self, enrollment_id, reason=reason, actor=actor)

    def renew(self, enrollment_id: str, *, reason: str = "", actor: str = "admin") -> dict:
        from . import lifecycle

        return lifecycle.renew(self, enrollment_id, reason=reason, actor=actor)

    def change_terms(self, enrollment_id: str, *, actor: str = "admin", reason: str = "", **terms) -> dict:
        from . import lifecycle

        return lifecycle.change_terms(self, enrollment_id, reason=reason, actor=actor, **terms)

    def expiring(self, days: float | None = None) -> list[dict]:
        from . import lifecycle

        return lifecycle.expiring(self, days)

    def maintenance(self, *, actor: str = "bridgeca-maintenance") -> dict:
        from . import lifecycle

        return lifecycle.run_maintenance(self, actor=actor)

    def issuer(self, enrollment_id: str, owner: int | None = None) -> dict:
        """One enrollment; with ``owner``, only if that token submitted it (else not_found)."""
        with translated():
            record = self.store.get_enrollment(enrollment_id)
            if owner is not None and record.owner_token_id != owner:
                raise NotFound(f"no enrollment {enrollment_id}")
            return self._issuer_view(record)

    def issuers(self, owner: int | None = None) -> list[dict]:
        with translated():
            return [self._issuer_view(r) for r in self.store.list_enrollments(owner)]

    def _terms(self, record) -> MemberTerms:
        return MemberTerms(
            root=x509.load_der_x509_certificate(record.root_der),
            policy_mappings=tuple(PolicyMapping(**m) for m in json.loads(record.policy_mappings)),
            permitted_subtrees=tuple(Subtree(**s) for s in json.loads(record.permitted_subtrees)),
            excluded_subtrees=tuple(Subtree(**s) for s in json.loads(record.excluded_subtrees)),
            path_length=record.path_length,
        )

    def _issuer_view(self, record) -> dict:
        return issuer_view(self.store, record)

    # ------------------------------------------------------------------ reverse certificates

    def upload_reverse(self, enrollment_id: str, certificate: bytes | str, *, actor: str = "issuer") -> dict:
        """Check and publish the certificate a member root issued to the bridge."""
        with translated():
            record = self.store.get_enrollment(enrollment_id)
            if record.status not in ("pending", "active"):
                raise EnrollmentError("invalid_state", f"enrollment {enrollment_id} is {record.status}")
            reverse = registration.load_certificate(certificate if isinstance(certificate, bytes) else certificate.encode(), "reverse certificate")
            root = x509.load_der_x509_certificate(record.root_der)
            registration.check_reverse_certificate(reverse, root, self.certificate, _now(), self.authority.certificates[1:])
            der = reverse.public_bytes(serialization.Encoding.DER)
            certified_key = registration.spki_der(reverse)
            self.store.add_reverse_certificate(
                actor=actor, enrollment_id=enrollment_id, der=der, sha256=hashlib.sha256(der).hexdigest(),
                not_after=reverse.not_valid_after_utc,
                # One per enrollment and bridge key: a new one replaces the old.
                same_key=lambda old: registration.spki_der(x509.load_der_x509_certificate(old)) == certified_key,
            )
            return {"id": enrollment_id, "sha256": hashlib.sha256(der).hexdigest(), "certificate": _pem(reverse)}

    # ------------------------------------------------------------------ revocation and publication

    def revoke(self, serial: int | str, reason: str = "unspecified", *, actor: str = "admin") -> dict:
        """Revoke a cross-certificate; the CRL listing it is signed and stored in the same transaction."""
        number = parse_serial(serial)
        with translated():
            registration.revocation_reason(reason)
            crl = self.store.revoke(actor=actor, serial=number, reason=reason, build_crl=self.authority.build_crl)
            return {"serial": format(number, "x"), "status": "revoked", "reason": reason, "crl_number": crl.number}

    def current_crl(self, *, actor: str = "bridgeca") -> bytes:
        """The latest CRL (DER); a fresh one is issued once half its validity has passed."""
        with translated():
            latest = self.store.latest_crl()
            now = _now()
            if latest is None or now >= latest.next_update - (latest.next_update - latest.this_update) / 2:
                latest = self.store.issue_crl(actor=actor, build_crl=self.authority.build_crl)
            return latest.der

    def current_crls(self, *, actor: str = "bridgeca") -> list[bytes]:
        """The current CRL signed by each bridge key (DER), the primary's first.

        A single-key bridge has one. A dual-key bridge's other key signs the
        same CRL (number, dates, entries) so that certificates it issued have
        a CRL from their own issuer key; that signature is made once per CRL
        number in this process and recorded in the audit log.
        """
        crl = self.current_crl(actor=actor)
        if len(self.authority.keys) == 1:
            return [crl]
        from cryptography.x509 import load_der_x509_crl

        number = load_der_x509_crl(crl).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        with self._companion_lock:
            companions = self._companion_crls.get(number)
            if companions is None:
                with translated():
                    self.store.append_audit(actor, "key.use", {"purpose": "crl", "crl_number": number, "key": "second"})
                    companions = self.authority.companion_crls(crl)
                self._companion_crls = {number: companions}
        return [crl, *companions]

    def ocsp_response(self, request_der: bytes) -> bytes:
        with translated():
            return self.authority.ocsp_response(request_der, self._status_of)

    def _status_of(self, serial: int) -> CertificateStatus:
        try:
            row = self.store.cross_certificate(serial)
        except NotFound:
            return CertificateStatus("unknown")
        if row.status == "issued":
            return CertificateStatus("good")
        if row.status == "revoked":
            return CertificateStatus("revoked", row.revoked_at, row.revocation_reason)
        if row.status == "held":  # a suspended member's: revoked with certificateHold until reinstated
            return CertificateStatus("revoked", row.revoked_at, "certificateHold")
        return CertificateStatus("unknown")  # reserved: never handed out

    def issued_by_bridge(self) -> list[x509.Certificate]:
        """Cross-certificates in force, then (dual-key bridge) the link certificates."""
        now = _now()
        with translated():
            return [
                x509.load_der_x509_certificate(_cross_der(c))
                # On hold too: the CRL says so, and reinstating needs no republication.
                for c in self.store.cross_certificates(statuses=("issued", "held"))
                if c.not_after is None or c.not_after > now
            ] + self.link_certificates()

    def issued_to_bridge(self) -> list[x509.Certificate]:
        """Reverse certificates of active members, then (dual-key bridge) the
        link certificates, which the bridge's keys issued to each other."""
        now = _now()
        with translated():
            return [
                x509.load_der_x509_certificate(r.der)
                for r in self.store.reverse_certificates()
                if r.not_after > now
            ] + self.link_certificates()

    def issued_by_bridge_p7c(self) -> bytes:
        return certs_only_p7c(self.issued_by_bridge())

    def issued_to_bridge_p7c(self) -> bytes:
        return certs_only_p7c(self.issued_to_bridge())

    # ------------------------------------------------------------------ blacklist (bridge/blacklist.py)
    # Routes and the CLI reach blacklist_add / blacklist_remove through bridge/governance.py's perform.

    def blacklist_add(self, *, kind: str, value=None, certificate: bytes | str | None = None, reason: str,
                      public_note: str = "", internal_note: str = "", evidence: str = "",
                      effective_at: datetime | None = None, actor: str = "admin") -> dict:
        from . import blacklist

        with translated():
            parsed = blacklist.parse_entry_value(kind, value, certificate)
            if not (reason or "").strip():
                raise blacklist.BlacklistError("an entry needs a reason")
            row = self.store.add_blacklist_entry(
                actor=actor, kind=parsed.kind, value=parsed.stored, reason=reason.strip(), public_note=public_note or "",
                internal_note=internal_note or "", evidence=evidence or "",
                effective_at=blacklist.check_effective_at(effective_at, _now()),
            )
            return blacklist.admin_view(row)

    def blacklist_remove(self, *, entry_id: str, reason: str = "", actor: str = "admin") -> dict:
        from . import blacklist

        with translated():
            return blacklist.admin_view(self.store.end_blacklist_entry(actor=actor, entry_id=entry_id, reason=reason or ""))

    def blacklist_entries(self, *, include_removed: bool = True) -> list[dict]:
        """Every entry as administrators see it (internal note and evidence included)."""
        from . import blacklist

        with translated():
            rows = self.store.blacklist_entries()
        return [blacklist.admin_view(r) for r in rows if include_removed or r.ended_at is None]

    def blocklist(self):
        """The pki blocklist of the entries in force (for the Verifiers of an epoch)."""
        from . import blacklist

        with translated():
            return blacklist.blocklist(self.store.blacklist_entries(), self.store.list_enrollments())

    def published_blacklist(self, *, actor: str = "bridgeca") -> tuple[bytes, bytes]:
        """(the public JSON document, its detached CMS signature by the bridge), signed once per distinct document."""
        from . import blacklist

        with translated():
            signing_certificate = next((k.certificate for k in self.authority.keys if not k.is_sm2), self.certificate)
            document = blacklist.document(self.store.blacklist_entries(), signing_certificate)
            digest = hashlib.sha256(document).hexdigest()
            publication = self.store.blacklist_publication(digest)
            if publication is None:
                publication = self.store.add_blacklist_publication(actor=actor, sha256=digest, document=document,
                                                                   sign=self.authority.sign_detached)
            return publication.document, publication.signature

    def public_register(self) -> dict:
        """GET /v1/register: members, status histories, disclosed violations (bridge/register.py)."""
        from . import register

        with translated():
            return register.register(self.store)

    # ------------------------------------------------------------------ tokens and audit

    def create_token(self, role: str, *, actor: str = "bridgeca", expires_in: timedelta | None = None) -> str:
        return _new_token(self.store, role, actor, expires_in)[0]

    def principal(self, token: str) -> tuple[int, str] | None:
        """(token id, role) of an API token, or None when it is unknown, revoked or expired."""
        found = self.principal_until(token)
        return found[0] if found is not None else None

    def principal_until(self, token: str) -> tuple[tuple[int, str], float | None] | None:
        """((token id, role), expiry as a POSIX time or None for never), or None
        when the token is unknown, revoked or expired: callers that cache a
        token must stop trusting it at its expiry."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        with translated():
            row = self.store.find_token(hash_token(token))
        if row is None:
            return None
        if row.id is None:  # a stored row always has its primary key
            raise StoreError("a stored API token has no id")
        return (row.id, row.role), (row.expires_at.timestamp() if row.expires_at is not None else None)

    def tokens(self) -> list[dict]:
        with translated():
            return [token_view(r) for r in self.store.list_tokens()]

    def revoke_token(self, token_id: int, *, actor: str = "admin") -> dict:
        with translated():
            self.store.revoke_token(actor=actor, token_id=token_id)
            return next(token_view(r) for r in self.store.list_tokens() if r.id == token_id)

    def issue_crl(self, *, actor: str = "admin") -> dict:
        """Issue a CRL now (it is otherwise issued at revocations and once half the current one's life has passed)."""
        with translated():
            record = self.store.issue_crl(actor=actor, build_crl=self.authority.build_crl)
        return {"crl_number": record.number, "this_update": record.this_update.isoformat(),
                "next_update": record.next_update.isoformat()}

    def authenticate(self, token: str) -> str | None:
        """The role of an API token, or None when it is unknown or revoked."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        with translated():
            row = self.store.find_token(hash_token(token))
        return row.role if row is not None else None

    def verify_audit(self) -> AuditFinding:
        with translated():
            return self.store.verify_audit()

    def published_trust_list(self, epoch: int | None = None):
        """Our federation as a signed ETSI TS 119 612 list, XML and JSON
        (bridge/trust_list.py): the current one for revocation ``epoch`` (read
        from the store when None), re-issued only when its content changed."""
        from .trust_list import publisher_of

        with translated():
            return publisher_of(self).current(epoch)

    def register_trust_list(self, *, name: str, url: str | None = None, xml: str | None = None,
                            allowed_signers: list[str], mapping: dict | None = None, actor: str) -> dict:
        """Recognise an external trusted list (a trust change: through
        governance.perform). ``xml``: an uploaded list, base64, so that the
        parameters of a proposal are plain JSON."""
        return self.trust_lists.register(name=name, url=url, xml=_b64_list(xml), allowed_signers=allowed_signers,
                                         mapping=mapping, actor=actor)

    @property
    def trust_lists(self):
        """External trusted lists this bridge recognises (bridge/trust_lists.py); one registry per process."""
        registry = self.__dict__.get("_trust_list_registry")
        if registry is None:
            from .trust_lists import TrustListRegistry

            registry = self.__dict__.setdefault("_trust_list_registry", TrustListRegistry(self.store, self.settings))
        return registry


def _cross_der(row: CrossCertificate) -> bytes:
    """A handed-out cross-certificate's DER (issued, held and revoked rows have it; only a reservation has none)."""
    if row.der is None:
        raise StoreError(f"cross-certificate {row.serial} is {row.status} but no certificate is stored")
    return row.der


def issuer_view(store: Store, record) -> dict:
    """An enrollment as the API shows it (GET /v1/issuers/{id}); needs the database only."""
    crosses = store.cross_certificates(enrollment_id=record.id)
    return {
        "id": record.id,
        "name": record.member,
        "jurisdiction": record.jurisdiction,
        "status": record.status,
        "root_subject": record.root_subject,
        "root_certificate": _pem(x509.load_der_x509_certificate(record.root_der)),
        "policy_mappings": json.loads(record.policy_mappings),
        "permitted_subtrees": json.loads(record.permitted_subtrees),
        "excluded_subtrees": json.loads(record.excluded_subtrees),
        "path_length": record.path_length,
        "replaces": record.replaces_id,
        "created_at": record.created_at.isoformat(),
        "status_history": [
            {"status": h.status, "at": h.at.isoformat(), "reason": h.reason, "serials": json.loads(h.details).get("serials", [])}
            for h in store.status_history(record.id)
        ],
        "cross_certificates": [
            {
                "serial": c.serial,
                "status": c.status,
                "not_before": c.not_before.isoformat() if c.not_before else None,
                "not_after": c.not_after.isoformat() if c.not_after else None,
                "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
                "revocation_reason": c.revocation_reason,
                "certificate": _pem(x509.load_der_x509_certificate(_cross_der(c))),
            }
            for c in crosses
        ],
    }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_view(row) -> dict:
    """What may be shown of an API token: never the token, nor its hash."""
    now = _now()
    return {
        "id": int(row.id),
        "role": row.role,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at is not None else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at is not None else None,
        "state": "revoked" if row.revoked_at is not None
        else "expired" if row.expires_at is not None and row.expires_at <= now else "active",
    }


def _new_token(store: Store, role: str, actor: str, expires_in: timedelta | None) -> tuple[str, int, datetime | None]:
    if role not in ROLES:
        raise BridgeError("invalid_role", f"role {role!r} is not one of {', '.join(ROLES)}", "malformed")
    if expires_in is not None and expires_in <= timedelta(0):
        raise BridgeError("invalid_expiry", "a token's lifetime must be positive", "malformed")
    expires_at = _now() + expires_in if expires_in is not None else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with translated():
        token_id = store.add_token(actor=actor, role=role, token_hash=hash_token(token), expires_at=expires_at)
    return token, token_id, expires_at


@contextlib.contextmanager
def store_of(home: Path | str):
    """The database of a bridge home, without the key, closed afterwards."""
    store = BridgeCA.open_store_only(home)
    try:
        yield store
    finally:
        store.close()


def create_token_without_key(home: Path | str, role: str, actor: str = "bridgeca", *, with_id: bool = False,
                             expires_in: timedelta | None = None):
    """Tokens need the database, not the bridge key. ``with_id``: return
    (token, token id), the id being what ``revoke_token_without_key`` takes."""
    with store_of(home) as store:
        token, token_id, _ = _new_token(store, role, actor, expires_in)
    return (token, token_id) if with_id else token


def revoke_token_without_key(home: Path | str, token_id: int, actor: str = "bridgeca") -> dict:
    """Revoke an API token by id: it is refused from then on."""
    with store_of(home) as store, translated():
        store.revoke_token(actor=actor, token_id=token_id)
        return next(token_view(r) for r in store.list_tokens() if r.id == token_id)


def tokens_without_key(home: Path | str) -> list[dict]:
    with store_of(home) as store, translated():
        return [token_view(r) for r in store.list_tokens()]


def issuers_without_key(home: Path | str) -> list[dict]:
    """GET /v1/issuers as an admin sees it, from the database alone."""
    with store_of(home) as store, translated():
        return [issuer_view(store, r) for r in store.list_enrollments()]


def issuer_without_key(home: Path | str, enrollment_id: str) -> dict:
    with store_of(home) as store, translated():
        return issuer_view(store, store.get_enrollment(enrollment_id))



def _b64_list(value: str | None) -> bytes | None:
    import base64
    import binascii

    if value is None:
        return None
    try:
        return base64.b64decode("".join(value.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        from .trust_lists import TrustListError

        raise TrustListError("invalid_base64", "xml is not valid base64") from None
