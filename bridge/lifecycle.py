"""A member's life after approval: withdraw, suspend and reinstate, renew,
change terms, and the maintenance that expires stale enrollments and warns
of cross-certificates near their end.

The BridgeCA methods of the same names delegate here; routes and the CLI
reach them through bridge/governance.py. Each change is one store
transaction that writes the status history, the audit entry and (for
anything a verifier must see) bumps the revocation epoch, so every worker
sees it within EPOCH_POLL_SECONDS.

Enrollment states added here: ``suspended`` (its cross-certificates on hold:
the bridge's CRL lists them with certificateHold, OCSP answers
revoked/certificateHold, and paths through it fail with ``suspended``) and
``withdrawn`` (by the issuer that enrolled it or an administrator).

Renewal and new terms issue the new cross-certificate first and publish it
(its own transaction and epoch), then revoke the old one with reason
superseded (a second transaction, which issues the CRL). Between the two,
both certificates are in force, so every Verifier, whichever epoch it was
built at, holds at least one good certificate for the member: there is no
moment at which its leaves fail. Revoking rather than silently retiring the
old certificate keeps one plain status per certificate (the CRL and the
audit log say it is superseded) and, for new terms, is required: the old
terms must stop applying. Relying parties that build paths from
issued-by-bridge.p7c see the new one there before the CRL lists the old.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from . import registration
from .authority import MemberTerms, PreparedCertificate

if TYPE_CHECKING:  # pragma: no cover
    from .service import BridgeCA

log = logging.getLogger("bridgeca.lifecycle")

WITHDRAWN, SUSPENDED = "withdrawn", "suspended"


def _view(ca: "BridgeCA", enrollment_id: str, **extra) -> dict:
    return {**ca._issuer_view(ca.store.get_enrollment(enrollment_id)), **extra}


def withdraw(ca: "BridgeCA", enrollment_id: str, *, reason: str = "", actor: str) -> dict:
    from .errors import translated

    with translated():
        serials, crl = ca.store.withdraw_enrollment(actor=actor, enrollment_id=enrollment_id, reason=reason,
                                                    build_crl=ca.authority.build_crl)
        return _view(ca, enrollment_id, revoked_serials=serials, crl_number=crl.number if crl else None)


def suspend(ca: "BridgeCA", enrollment_id: str, *, reason: str = "", actor: str) -> dict:
    from .errors import translated

    with translated():
        serials, crl = ca.store.suspend_member(actor=actor, enrollment_id=enrollment_id, reason=reason,
                                               build_crl=ca.authority.build_crl)
        return _view(ca, enrollment_id, held_serials=serials, crl_number=crl.number)


def reinstate(ca: "BridgeCA", enrollment_id: str, *, reason: str = "", actor: str) -> dict:
    from .errors import translated

    with translated():
        serials, crl = ca.store.reinstate_member(actor=actor, enrollment_id=enrollment_id, reason=reason,
                                                 build_crl=ca.authority.build_crl)
        return _view(ca, enrollment_id, released_serials=serials, crl_number=crl.number)


def _reissue(ca: "BridgeCA", enrollment_id: str, terms: MemberTerms, *, action: str, reason: str, actor: str,
             new_terms: dict | None) -> dict:
    """Issue a cross-certificate on ``terms`` beside the member's current
    ones, publish it, then supersede those (see the module docstring)."""
    from . import clock
    from .store import SerialCollision
    from .views import pem

    record = ca.store.get_enrollment(enrollment_id)
    if record.status != "active":
        raise registration.EnrollmentError("invalid_state", f"enrollment {enrollment_id} is {record.status}; only an active "
                                                            "member's cross-certificate can be renewed or reissued")
    old = [c.serial for c in ca.store.cross_certificates(statuses=("issued",), enrollment_id=enrollment_id)]
    now = clock.now()
    registration.check_validity(terms.root, now, timedelta(days=ca.settings.min_member_root_validity_days))
    def reserve(prepared: PreparedCertificate) -> bool:
        try:
            ca.store.reserve_reissue(actor=actor, enrollment_id=enrollment_id, serial=prepared.serial,
                                     tbs_sha256=prepared.tbs_sha256, purpose=f"cross-certificate ({action})")
        except SerialCollision:
            return False
        return True

    prepared, certificate = ca.authority.issue_reserved(terms, now, reserve)
    ca.store.complete_reissue(
        actor=actor, action=action, enrollment_id=enrollment_id, serial=prepared.serial,
        der=certificate.public_bytes(serialization.Encoding.DER), not_before=prepared.not_before,
        not_after=prepared.not_after, supersedes=old, reason=reason, terms=new_terms,
    )
    crl = ca.store.supersede(actor=actor, enrollment_id=enrollment_id, serials=old, build_crl=ca.authority.build_crl)
    return _view(ca, enrollment_id, cross_certificate=pem(certificate), serial=format(prepared.serial, "x"),
                 superseded_serials=old, crl_number=crl.number if crl else None)


def renew(ca: "BridgeCA", enrollment_id: str, *, reason: str = "", actor: str) -> dict:
    """A new cross-certificate on the same terms (subject, key, mappings, constraints), new serial and validity."""
    from .errors import translated

    with translated():
        record = ca.store.get_enrollment(enrollment_id)
        return _reissue(ca, enrollment_id, ca._terms(record), action="certificate.renew", reason=reason, actor=actor,
                        new_terms=None)


_KEEP = object()


def change_terms(ca: "BridgeCA", enrollment_id: str, *, policy_mappings=_KEEP, permitted_subtrees=_KEEP,
                 excluded_subtrees=_KEEP, path_length=_KEEP, reason: str = "", actor: str) -> dict:
    """Reissue with new policy mappings / name constraints / path length (each
    kept when not given; path_length None means the bridge's default), the
    old cross-certificate revoked with reason superseded."""
    from .errors import translated

    with translated():
        record = ca.store.get_enrollment(enrollment_id)
        current = ca._terms(record)
        mappings = current.policy_mappings if policy_mappings is _KEEP else registration.parse_policy_mappings(policy_mappings)
        permitted = current.permitted_subtrees if permitted_subtrees is _KEEP else registration.parse_subtrees(permitted_subtrees)
        excluded = current.excluded_subtrees if excluded_subtrees is _KEEP else registration.parse_subtrees(excluded_subtrees)
        length = current.path_length if path_length is _KEEP else path_length
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
            raise registration.EnrollmentError("invalid_path_length", f"path_length {length!r} is not a non-negative integer")
        terms = MemberTerms(current.root, tuple(mappings), tuple(permitted), tuple(excluded), length)
        if terms == current:
            raise registration.EnrollmentError("unchanged_terms", "the new terms are the member's current terms; "
                                                                   "renew the cross-certificate instead")
        new_terms = {
            "policy_mappings": [m.to_dict() for m in terms.policy_mappings],
            "permitted_subtrees": [s.to_dict() for s in terms.permitted_subtrees],
            "excluded_subtrees": [s.to_dict() for s in terms.excluded_subtrees],
            "path_length": terms.path_length,
        }
        return _reissue(ca, enrollment_id, terms, action="issuer.change_terms", reason=reason, actor=actor, new_terms=new_terms)


# --------------------------------------------------------------------------- maintenance


def expiring(ca: "BridgeCA", days: float | None = None, *, now: datetime | None = None) -> list[dict]:
    """Cross-certificates in force (or on hold) whose notAfter is within ``days`` (default: the setting)."""
    from . import clock
    from .errors import translated

    now = now or clock.now()
    horizon = now + timedelta(days=ca.settings.expiry_warning_days if days is None else days)
    with translated():
        names = {r.id: r.member for r in ca.store.list_enrollments()}
        found = []
        for c in ca.store.cross_certificates(statuses=("issued", "held")):
            if c.not_after is not None and now < c.not_after <= horizon:
                found.append({
                    "serial": c.serial, "enrollment": c.enrollment_id, "name": names.get(c.enrollment_id), "status": c.status,
                    "not_after": c.not_after.isoformat(), "days_left": round((c.not_after - now).total_seconds() / 86400, 1),
                    "warned_at": c.expiry_warned_at.isoformat() if c.expiry_warned_at else None,
                })
        return sorted(found, key=lambda item: item["not_after"])


def run_maintenance(ca: "BridgeCA", *, actor: str = "bridgeca-maintenance", now: datetime | None = None) -> dict:
    """Expire stale pending enrollments and members with nothing left in
    force; log and audit (once per certificate) cross-certificates near expiry.
    Idempotent, so several workers (or cron beside the service) may run it."""
    from . import clock
    from .errors import translated

    now = now or clock.now()
    with translated():
        stale = ca.store.expire_pending(actor=actor, created_before=now - timedelta(days=ca.settings.pending_enrollment_max_days))
        ran_out = ca.store.expire_enrollments(actor=actor, now=now)
    warnings = expiring(ca, now=now)
    newly_warned = []
    for item in warnings:
        log.warning("cross-certificate %s of %s (%s) expires %s, in %.1f days: renew it",
                    item["serial"], item["name"], item["enrollment"], item["not_after"], item["days_left"])
        with translated():
            if ca.store.mark_expiry_warned(actor=actor, serial=item["serial"], not_after=datetime.fromisoformat(item["not_after"]),
                                           enrollment_id=item["enrollment"], days_left=item["days_left"]):
                newly_warned.append(item["serial"])
    for enrollment_id in stale:
        log.info("pending enrollment %s expired: not approved within %s days", enrollment_id, ca.settings.pending_enrollment_max_days)
    return {"expired_pending": stale, "expired_members": ran_out, "expiring": warnings, "newly_warned": newly_warned}

