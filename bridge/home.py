"""A bridge home: made once (``create_home``: database, keys, self-signed
certificates, first CRL, config.json), then opened (``open_home``).

config.json is written last: a home without it is not a bridge, and a failed
``create_home`` undoes what it did (``_Rollback``: the files it wrote, the keys
and database it opened). The bridge's certified keys are made in one place,
``_certified_keys``, and recorded in the audit log by ``_record_keys``.

Dual-key bridges (``second_key_type``, see bridge/service.py): the second key
is a software key in the home, encrypted with the same passphrase; the two
keys certify each other (link certificates).
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .authority import (
    BridgeAuthority,
    CrossCertificateProfile,
    PolicyConstraintOptions,
    PublicationOptions,
    ValidityOptions,
    bridge_subject,
)
from .errors import BridgeError, translate, translated
from .settings import CONFIG_FILE, DATABASE_FILE, BridgeSettings
from .signer import Pkcs11Signer, Signer, SignerError, SoftwareSigner
from .store import Store


class HomeParts(NamedTuple):
    """What an opened home gives the BridgeCA facade (its constructor's arguments, in order)."""

    settings: BridgeSettings
    store: Store
    authority: BridgeAuthority
    signer: Signer
    second_signer: Signer | None


def check_base_url(url: str | None, *, allow_loopback: bool = False) -> str:
    """The public base URL ``create_home`` writes into every cross-certificate (CRL
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


def _settings_problem(exc: Exception) -> str:
    """One line saying what is wrong with the settings (pydantic's own first line only counts the errors)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or 'settings'}: {e['msg']}" for e in errors())
        except Exception:
            pass
    return str(exc).splitlines()[0]


def _passphrase(settings: BridgeSettings) -> str | None:
    return settings.key_passphrase.get_secret_value() if settings.key_passphrase else None


def cross_certificate_profile(settings: BridgeSettings) -> CrossCertificateProfile:
    return CrossCertificateProfile(
        validity=ValidityOptions(settings.cross_certificate_validity_days),
        constraints=PolicyConstraintOptions(
            settings.require_explicit_policy, settings.inhibit_policy_mapping, settings.inhibit_any_policy
        ),
        publication=PublicationOptions(settings.crl_url, settings.ocsp_url, settings.ca_issuers_url),
        default_path_length=settings.default_path_length,
    )


def _authority(settings: BridgeSettings, keys: "CertifiedKeys | OpenedKeys") -> BridgeAuthority:
    return BridgeAuthority(
        keys.signer, keys.certificate, cross_certificate_profile(settings),
        crl_hours=settings.crl_next_update_hours, ocsp_hours=settings.ocsp_next_update_hours,
        second=keys.second, links=keys.links,
    )


# --------------------------------------------------------------------------- create


class _Rollback:
    """What a failed ``create_home`` undoes: files it wrote (removed), keys and the database it opened (closed)."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self._closers: list[Callable[[], None]] = []

    def wrote(self, path: Path) -> Path:
        """``path`` is about to be written: it is ours to remove if ``create_home`` fails."""
        self.paths.append(path)
        return path

    def opened(self, close: Callable[[], None]) -> None:
        self._closers.append(close)

    def undo(self) -> None:
        for close in reversed(self._closers):
            close()
        for path in self.paths:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class CertifiedKeys:
    """The bridge's keys and their certificates, as ``create_home`` made them."""

    signer: Signer
    certificate: x509.Certificate
    second_signer: Signer | None = None
    second_certificate: x509.Certificate | None = None
    links: tuple[x509.Certificate, ...] = ()

    @property
    def second(self) -> tuple[Signer, x509.Certificate] | None:
        if self.second_signer is None or self.second_certificate is None:
            return None
        return self.second_signer, self.second_certificate

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [self.certificate] + ([self.second_certificate] if self.second_certificate is not None else [])


def _certified_keys(settings: BridgeSettings, name: x509.Name, rollback: _Rollback) -> CertifiedKeys:
    """Make every key of the bridge and certify it: the primary key (software
    or PKCS#11) with its self-signed certificate, and for a dual-key bridge
    the second key, its certificate and the two link certificates. Each file
    written and key opened is registered with ``rollback`` before it exists."""
    pem = serialization.Encoding.PEM
    if settings.signer == "pkcs11":
        pin = settings.pkcs11_pin or settings.key_passphrase
        signer: Signer = Pkcs11Signer.generate(
            settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_key_label,
            pin.get_secret_value() if pin else None, settings.key_type,
        )
    else:
        passphrase = _passphrase(settings)
        if not passphrase:
            raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the bridge key")
        if settings.key_path.exists():
            raise BridgeError("already_initialised", f"{settings.key_path} already exists", "conflict")
        signer = SoftwareSigner.generate(rollback.wrote(settings.key_path), settings.key_type, passphrase)
    rollback.opened(signer.close)
    certificate = BridgeAuthority.create_self_signed(signer, name, settings.bridge_validity_days)
    write_private(rollback.wrote(settings.cert_path), certificate.public_bytes(pem))
    if not settings.second_key_type:
        return CertifiedKeys(signer, certificate)

    for path in (settings.second_key_path, settings.second_cert_path, settings.links_path):
        if path.exists():
            raise BridgeError("already_initialised", f"{path} already exists", "conflict")
    second_passphrase = _passphrase(settings)
    if not second_passphrase:
        raise SignerError("BRIDGECA_KEY_PASSPHRASE is not set: it encrypts the second bridge key")
    second_signer = SoftwareSigner.generate(rollback.wrote(settings.second_key_path), settings.second_key_type, second_passphrase)
    rollback.opened(second_signer.close)
    second_certificate = BridgeAuthority.create_self_signed(second_signer, name, settings.bridge_validity_days)
    links = (
        BridgeAuthority.create_link_certificate(signer, certificate, second_certificate),
        BridgeAuthority.create_link_certificate(second_signer, second_certificate, certificate),
    )
    write_private(rollback.wrote(settings.second_cert_path), second_certificate.public_bytes(pem))
    write_private(rollback.wrote(settings.links_path), b"".join(c.public_bytes(pem) for c in links))
    return CertifiedKeys(signer, certificate, second_signer, second_certificate, links)


def _sha256(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _record_keys(store: Store, actor: str, settings: BridgeSettings, keys: CertifiedKeys) -> None:
    """The audit log's first entries: each key made by ``_certified_keys``."""
    store.append_audit(actor, "bridge.init", {
        "subject": keys.certificate.subject.rfc4514_string(),
        "key_type": settings.key_type,
        "signer": settings.signer,
        "certificate_sha256": _sha256(keys.certificate),
    })
    if keys.second_certificate is not None:
        store.append_audit(actor, "bridge.second_key", {
            "key_type": settings.second_key_type,
            "certificate_sha256": _sha256(keys.second_certificate),
            "link_sha256": [_sha256(c) for c in keys.links],
        })


def create_home(
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
) -> HomeParts:
    """Create the bridge in ``home`` (see BridgeCA.init)."""
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
    rollback = _Rollback()
    try:
        with translated():
            if settings.database_url is None and not (settings.home / DATABASE_FILE).exists():
                # Created empty and private before SQLite opens it: SQLite
                # would create it with the umask's mode (often 0644), and
                # gives its journal files the database file's mode.
                write_private(rollback.wrote(settings.home / DATABASE_FILE), b"")
            store = Store.open(settings.database_url_resolved, create=True)
            rollback.opened(store.close)
            if store.audit_counter() > 0:
                raise BridgeError("already_initialised", f"database {store.safe_url} already holds a bridge", "conflict")
            keys = _certified_keys(settings, name, rollback)
            authority = _authority(settings, keys)
            _record_keys(store, actor, settings, keys)
            store.issue_crl(actor=actor, build_crl=authority.build_crl)
            _certify_service_keys(settings, authority, store, actor, rollback)
            settings.save()
    except BaseException:
        rollback.undo()
        raise
    return HomeParts(settings, store, authority, keys.signer, keys.second_signer)


def _certify_service_keys(settings: BridgeSettings, authority: BridgeAuthority, store: Store, actor: str,
                          rollback: _Rollback) -> None:
    """The time-stamping and receipt keys (bridge/service_keys.py), certified by the new bridge. A home
    made before them gets them when first needed."""
    from .service_keys import LOCK_FILE, PURPOSES, ServiceKeys

    service_keys = ServiceKeys(settings, authority, store)
    for purpose in PURPOSES:
        for path in (service_keys.key_path(purpose), service_keys.cert_path(purpose)):
            rollback.wrote(path)
            rollback.wrote(path.with_suffix(".tmp"))
    rollback.wrote(settings.home / LOCK_FILE)
    try:
        service_keys.create_all(actor=actor)
    finally:
        service_keys.close()


# --------------------------------------------------------------------------- open


@dataclass(frozen=True)
class OpenedKeys:
    """The keys of an existing home, loaded."""

    signer: Signer
    certificate: x509.Certificate
    second: tuple[Signer, x509.Certificate] | None
    links: tuple[x509.Certificate, ...]


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
    return (SoftwareSigner.load(settings.second_key_path, _passphrase(settings)), certificate), links


def _open_signer(settings: BridgeSettings) -> Signer:
    if settings.signer == "pkcs11":
        pin = settings.pkcs11_pin or settings.key_passphrase
        return Pkcs11Signer.load(
            settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_key_label, pin.get_secret_value() if pin else None
        )
    return SoftwareSigner.load(settings.key_path, _passphrase(settings))


def _settings_of(home: Path, hint: str, **overrides) -> BridgeSettings:
    if not (home / CONFIG_FILE).exists():
        raise BridgeError("not_initialised", f"{home} is not a bridge home (no {CONFIG_FILE}){hint}", "malformed")
    try:
        return BridgeSettings.load(home, **overrides)
    except ValueError as exc:
        raise BridgeError("invalid_settings", _settings_problem(exc), "malformed") from exc


def open_home(home: Path | str, **overrides) -> HomeParts:
    """An existing bridge home: its settings, database and keys (see BridgeCA.open)."""
    settings = _settings_of(Path(home), "; run 'bridgeca init'", **overrides)
    with translated():
        try:
            certificate = x509.load_pem_x509_certificate(settings.cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise BridgeError("not_initialised", f"cannot read the bridge certificate {settings.cert_path}: {exc}", "malformed") from exc
        signer = _open_signer(settings)
        second = None
        try:
            second, links = _open_second_key(settings)
            authority = _authority(settings, OpenedKeys(signer, certificate, second, tuple(links)))
            store = Store.open(_database_url(settings))
        except BaseException:
            signer.close()
            if second is not None:
                second[0].close()
            raise
    return HomeParts(settings, store, authority, signer, second[0] if second else None)


def open_store(home: Path | str) -> Store:
    """The database of a bridge home, without the key (for audit verification)."""
    settings = _settings_of(Path(home), "")
    with translated():
        return Store.open(_database_url(settings))


@contextlib.contextmanager
def store_of(home: Path | str) -> Iterator[Store]:
    """The database of a bridge home, without the key, closed afterwards."""
    store = open_store(home)
    try:
        yield store
    finally:
        store.close()
