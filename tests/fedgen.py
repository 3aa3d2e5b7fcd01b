"""A generated federation of many members, for the console's trust graph, its
benchmark (benchmarks/bench_console.py) and `make screenshots`.

``build_federation(ca, 60)`` enrolls ``count`` fictional member roots
(P-256) across the Greater Bay Area's jurisdictions through the bridge's own
domain calls (enroll, approve, reverse certificate upload, suspend, revoke,
renew), so the store holds what a real federation of that size would. Each
member gets an issuing CA and a leaf (not stored by the bridge: the caller
passes the issuing CAs to the graph). About one member in twelve ends
suspended, one in fifteen revoked, a few expire within the month, a few
wait for approval, one was renewed (a superseded cross-certificate beside its
new one), and, with ``trust_list=True``, an external trusted list is
recognised.

The bridge must accept the jurisdictions (``JURISDICTIONS``) and roots that
run out within a month (``min_member_root_validity_days`` below 20):
``init_env()`` gives the environment for ``BridgeCA.init``.

Run as a script to make a home for `bridgeca serve`:
    python -m tests.fedgen HOME [--members 60]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.bridge.members import (
    ARC,
    BRIDGE_MEDIUM,
    ec_key,
    issue,
    make_root,
    name,
    pem,
    policy_mappings_extension,
)

JURISDICTIONS = {
    "GD": ("CN", "Guangdong"), "GZ": ("CN", "Guangzhou"), "SZ": ("CN", "Shenzhen"), "ZH": ("CN", "Zhuhai"),
    "FS": ("CN", "Foshan"), "DG": ("CN", "Dongguan"), "HK": ("HK", "Hong Kong"), "MO": ("MO", "Macao"),
}
SECTORS = ("Finance", "Health", "Customs", "Tax", "Courts", "Transport", "Education", "Telecom", "Energy", "Ports")
ACTOR = "fedgen"


def init_env() -> dict[str, str]:
    """Settings a bridge needs at init for a generated federation (written to its config.json)."""
    return {"BRIDGECA_JURISDICTIONS": ",".join(JURISDICTIONS), "BRIDGECA_MIN_MEMBER_ROOT_VALIDITY_DAYS": "7"}


@dataclass
class GeneratedMember:
    index: int
    name: str
    jurisdiction: str
    policy: str
    root: x509.Certificate
    root_key: object
    issuing: x509.Certificate
    issuing_key: object
    leaf: x509.Certificate
    state: str  # active, suspended, revoked, expiring, pending, renewed
    enrollment_id: str = ""
    serials: list[str] = field(default_factory=list)

    def chain_body(self) -> dict:
        return {"certificate": pem(self.leaf).decode(), "intermediates": [pem(self.issuing).decode()]}


def _state(index: int, count: int) -> str:
    """Which members end in which state: spread over the ring, the same for the same count."""
    if count < 8:
        return "active"
    if index % 12 == 5:
        return "suspended"
    if index % 15 == 7:
        return "revoked"
    if index % 17 == 3:
        return "expiring"
    if index % 23 == 11:
        return "pending"
    if index == 1:
        return "renewed"
    return "active"


def make_member(index: int, count: int) -> GeneratedMember:
    codes = list(JURISDICTIONS)
    code = codes[index % len(codes)]
    country, place = JURISDICTIONS[code]
    sector = SECTORS[(index // len(codes)) % len(SECTORS)]
    round_ = index // (len(codes) * len(SECTORS))
    display = f"{place} {sector} CA" + (f" {round_ + 1}" if round_ else "")
    policy = f"{ARC}.{100 + index}.1"
    state = _state(index, count)
    root_key, root = make_root(name(country, f"{display} (fictional)", f"{display} Root"),
                               days=20 if state == "expiring" else 3650)
    issuing_key = ec_key()
    issuing = issue(root, root_key, name(country, f"{display} (fictional)", f"{display} Issuing CA"),
                    issuing_key.public_key(), ca=True, policies=[policy], path_length=0)
    leaf = issue(issuing, issuing_key, name(country, f"{display} (fictional)", f"signer{index}.{code.lower()}.example"),
                 ec_key().public_key(), ca=False, policies=[policy], days=365)
    return GeneratedMember(index, display, code, policy, root, root_key, issuing, issuing_key, leaf, state)


def reverse_certificate(member: GeneratedMember, bridge: x509.Certificate) -> x509.Certificate:
    return issue(member.root, member.root_key, bridge.subject, bridge.public_key(), ca=True, policies=[member.policy],
                 extra=[(policy_mappings_extension([(member.policy, BRIDGE_MEDIUM)]), True)])


def build_federation(ca, count: int = 60, *, trust_list: bool = True) -> list[GeneratedMember]:
    """Enroll ``count`` generated members into ``ca`` (a BridgeCA) and bring each to its state."""
    members = [make_member(i, count) for i in range(count)]
    for m in members:
        view = ca.enroll(name=m.name, jurisdiction=m.jurisdiction, root_certificate=pem(m.root).decode(),
                         policy_mappings=[{"bridge_policy": BRIDGE_MEDIUM, "member_policy": m.policy}], actor=ACTOR)
        m.enrollment_id = view["id"]
        if m.state == "pending":
            continue
        approved = ca.approve(m.enrollment_id, actor=ACTOR)
        m.serials.append(approved["serial"])
        ca.upload_reverse(m.enrollment_id, reverse_certificate(m, ca.certificate).public_bytes(serialization.Encoding.PEM),
                          actor=ACTOR)
        if m.state == "suspended":
            ca.suspend(m.enrollment_id, reason="audit finding under review", actor=ACTOR)
        elif m.state == "revoked":
            ca.revoke(approved["serial"], "cessationOfOperation", actor=ACTOR)
        elif m.state == "renewed":
            m.serials.append(ca.renew(m.enrollment_id, reason="yearly renewal", actor=ACTOR)["serial"])
    if trust_list:
        _recognise_list(ca)
    return members


def _recognise_list(ca) -> None:
    from tests.api.tl_writer import ListedService, write_list

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    root_key, root = make_root(name("SG", "Lion City Trust Services (fictional)", "Lion City Root CA"))
    signer_key, signer = make_root(name("SG", "Lion City TL Operator (fictional)", "Lion City TL signer"))
    xml = write_list(territory="SG", operator="Lion City TL Operator (fictional)", tsp="Lion City Trust Services",
                     sequence=1, issued=now - dt.timedelta(minutes=5), next_update=now + dt.timedelta(days=30),
                     services=[ListedService("Lion City Root CA", root, "granted", now - dt.timedelta(days=1))],
                     signer_key=signer_key, signer_cert=signer)
    ca.trust_lists.register(name="Lion City trusted list (fictional)", url=None, xml=xml,
                            allowed_signers=[pem(signer)], actor=ACTOR)


def issuing_cas(members: list[GeneratedMember]) -> list[x509.Certificate]:
    return [m.issuing for m in members]


def write_issuing_cas(home: Path, members: list[GeneratedMember]) -> Path:
    """The issuing CAs as one PEM bundle beside the home (the console may show them; the bridge does not store them)."""
    path = home / "issuing-cas.pem"
    path.write_bytes(b"".join(pem(c) for c in issuing_cas(members)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make a bridge home holding a generated federation")
    parser.add_argument("home", type=Path)
    parser.add_argument("--members", type=int, default=60)
    parser.add_argument("--no-trust-list", action="store_true")
    args = parser.parse_args(argv)
    from bridge.service import BridgeCA

    os.environ.update(init_env())
    os.environ.setdefault("BRIDGECA_KEY_PASSPHRASE", "fedgen-not-secret")
    with BridgeCA.init(args.home, base_url="https://bridge.gba.example", actor=ACTOR) as ca:
        members = build_federation(ca, args.members, trust_list=not args.no_trust_list)
        write_issuing_cas(args.home, members)
        summary = {m.name: {"id": m.enrollment_id, "state": m.state} for m in members}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
