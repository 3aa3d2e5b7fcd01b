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

import hashlib
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.names import name_key

from . import clock, registration, tokens
from .audit import AuditFinding
from .authority import (
    BridgeAuthority,
    CertificateStatus,
    MemberTerms,
    PreparedCertificate,
    certs_only_p7c,
)
from .errors import BridgeError, translated
from .home import create_home, open_home, open_store
from .registration import EnrollmentError, EnrollmentRequest, PolicyMapping, Subtree
from .settings import BridgeSettings
from .signer import Signer
from .store import NotFound, SerialCollision, Store
from .views import cross_der, issuer_view, pem


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
        """Create the bridge (bridge/home.py): database, key, self-signed certificate, first CRL, config.

        ``key_type`` may be ``sm2`` (software signer only). ``second_key_type``
        makes a dual-key bridge (one SM2 and one ECDSA/RSA key, see above):
        the second key is a software key in the home, encrypted with the same
        passphrase.

        config.json is written last: a home without it is not a bridge, and a
        failed init removes the key and certificate files it wrote.
        """
        return cls(*create_home(
            home, key_type=key_type, subject=subject, base_url=base_url, signer=signer, pkcs11_module=pkcs11_module,
            pkcs11_token_label=pkcs11_token_label, pkcs11_key_label=pkcs11_key_label, actor=actor,
            second_key_type=second_key_type,
        ))

    @classmethod
    def open(cls, home: Path | str, **overrides) -> "BridgeCA":
        return cls(*open_home(home, **overrides))

    @classmethod
    def open_store_only(cls, home: Path | str) -> Store:
        """The database of a bridge home, without the key (for audit verification)."""
        return open_store(home)

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
        return pem(self.certificate)

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
        return "".join(pem(c) for c in self.bridge_certificates() + self.link_certificates())

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
                now=clock.now(),
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
            now = clock.now()
            registration.check_validity(terms.root, now, timedelta(days=self.settings.min_member_root_validity_days))
            def reserve(prepared: PreparedCertificate) -> bool:
                try:
                    self.store.reserve_serial(actor=actor, enrollment_id=enrollment_id, serial=prepared.serial,
                                              tbs_sha256=prepared.tbs_sha256, purpose="cross-certificate")
                except SerialCollision:
                    return False
                return True

            prepared, certificate = self.authority.issue_reserved(terms, now, reserve)
            self.store.complete_issuance(
                actor=actor, enrollment_id=enrollment_id, serial=prepared.serial,
                der=certificate.public_bytes(serialization.Encoding.DER),
                not_before=prepared.not_before, not_after=prepared.not_after,
            )
            view = self._issuer_view(self.store.get_enrollment(enrollment_id))
            view["cross_certificate"] = pem(certificate)
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
            return self.store.expire_enrollments(actor=actor, now=at or clock.now())

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
            registration.check_reverse_certificate(reverse, root, self.certificate, clock.now(), self.authority.certificates[1:])
            der = reverse.public_bytes(serialization.Encoding.DER)
            certified_key = registration.spki_der(reverse)
            self.store.add_reverse_certificate(
                actor=actor, enrollment_id=enrollment_id, der=der, sha256=hashlib.sha256(der).hexdigest(),
                not_after=reverse.not_valid_after_utc,
                # One per enrollment and bridge key: a new one replaces the old.
                same_key=lambda old: registration.spki_der(x509.load_der_x509_certificate(old)) == certified_key,
            )
            return {"id": enrollment_id, "sha256": hashlib.sha256(der).hexdigest(), "certificate": pem(reverse)}

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
            now = clock.now()
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
        now = clock.now()
        with translated():
            return [
                x509.load_der_x509_certificate(cross_der(c))
                # On hold too: the CRL says so, and reinstating needs no republication.
                for c in self.store.cross_certificates(statuses=("issued", "held"))
                if c.not_after is None or c.not_after > now
            ] + self.link_certificates()

    def issued_to_bridge(self) -> list[x509.Certificate]:
        """Reverse certificates of active members, then (dual-key bridge) the
        link certificates, which the bridge's keys issued to each other."""
        now = clock.now()
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
                effective_at=blacklist.check_effective_at(effective_at, clock.now()),
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
        return tokens.create(self.store, role, actor, expires_in)[0]

    def principal(self, token: str) -> tuple[int, str] | None:
        """(token id, role) of an API token, or None when it is unknown, revoked or expired."""
        found = tokens.lookup(self.store, token)
        return found[0] if found is not None else None

    def principal_until(self, token: str) -> tuple[tuple[int, str], float | None] | None:
        """((token id, role), expiry as a POSIX time or None for never), or None
        when the token is unknown, revoked or expired (bridge/tokens.py)."""
        return tokens.lookup(self.store, token)

    def tokens(self) -> list[dict]:
        return tokens.views(self.store)

    def revoke_token(self, token_id: int, *, actor: str = "admin") -> dict:
        return tokens.revoke(self.store, token_id, actor)

    def issue_crl(self, *, actor: str = "admin") -> dict:
        """Issue a CRL now (it is otherwise issued at revocations and once half the current one's life has passed)."""
        with translated():
            record = self.store.issue_crl(actor=actor, build_crl=self.authority.build_crl)
        return {"crl_number": record.number, "this_update": record.this_update.isoformat(),
                "next_update": record.next_update.isoformat()}

    def authenticate(self, token: str) -> str | None:
        """The role of an API token, or None when it is unknown, revoked or expired."""
        found = tokens.lookup(self.store, token)
        return found[0][1] if found is not None else None

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
