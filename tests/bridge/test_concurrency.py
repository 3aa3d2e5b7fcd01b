"""Concurrent approvals and revocations (the issue's PostgreSQL "Done when"; SQLite too).

Twenty threads, split over two BridgeCA instances on the same database (as two
server processes would be), each approve one member and revoke its
cross-certificate at the same moment."""
from __future__ import annotations

import threading

from cryptography import x509
from sqlmodel import Session, select

from bridge.service import BridgeCA
from bridge.store import Crl

from .members import BRIDGE_MEDIUM, der, make_root, name

WORKERS = 20


def test_concurrent_approvals_and_revocations(bridge, bridge_home):
    enrollment_ids = []
    for i in range(WORKERS):
        _key, root = make_root(name("CN", f"Member {i}", f"Member {i} Root"))
        enrollment_ids.append(
            bridge.enroll(
                name=f"Member {i}", jurisdiction=("GD", "SZ", "HK", "MO")[i % 4], root_certificate=der(root),
                policy_mappings=[{"bridge_policy": BRIDGE_MEDIUM, "member_policy": f"1.3.6.1.4.1.32473.77.{100 + i}.1"}],
            )["id"]
        )
    second = BridgeCA.open(bridge_home)
    instances = (bridge, second)
    barrier = threading.Barrier(WORKERS)
    results: dict[int, tuple[str, int]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        ca = instances[i % 2]
        try:
            barrier.wait()
            serial = ca.approve(enrollment_ids[i], actor=f"admin-{i}")["serial"]
            crl_number = ca.revoke(serial, "cessationOfOperation", actor=f"admin-{i}")["crl_number"]
            results[i] = (serial, crl_number)
        except BaseException as exc:  # reported below with the thread's index
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [], errors
        serials = [s for s, _ in results.values()]
        assert len(set(serials)) == WORKERS
        numbers = [n for _, n in results.values()]
        assert len(set(numbers)) == WORKERS  # no two revocations share a CRL number

        # Every stored CRL, by number: numbers strictly increase, and each CRL
        # lists everything its predecessor listed (no revocation is ever lost).
        with Session(bridge.store.engine) as session:
            crls = session.exec(select(Crl).order_by(Crl.number)).all()
        stored_numbers = [c.number for c in crls]
        assert stored_numbers == sorted(set(stored_numbers)) and set(numbers) <= set(stored_numbers)
        previous: set[int] = set()
        for row in crls:
            crl = x509.load_der_x509_crl(row.der)
            assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == row.number
            listed = {r.serial_number for r in crl}
            assert previous <= listed, f"CRL {row.number} dropped {previous - listed}"
            previous = listed

        final = x509.load_der_x509_crl(bridge.current_crl())
        assert {r.serial_number for r in final} == {int(s, 16) for s in serials}
        assert all(bridge.issuer(e)["status"] == "revoked" for e in enrollment_ids)
        assert len(bridge.store.cross_certificates(statuses=("revoked",))) == WORKERS
        # The audit chain stayed one chain under concurrent appends.
        finding = bridge.verify_audit()
        assert finding.intact, finding.message
    finally:
        second.close()


def test_approving_one_enrollment_twice_at_once_issues_one_certificate(bridge, bridge_home):
    from bridge.errors import BridgeError

    _key, root = make_root(name("HK", "Race", "Race Root"))
    enrollment = bridge.enroll(
        name="Race", jurisdiction="HK", root_certificate=der(root),
        policy_mappings=[{"bridge_policy": BRIDGE_MEDIUM, "member_policy": "1.3.6.1.4.1.32473.77.99.1"}],
    )["id"]
    second = BridgeCA.open(bridge_home)
    barrier = threading.Barrier(2)
    outcomes: list = []

    def work(ca) -> None:
        barrier.wait()
        try:
            outcomes.append(ca.approve(enrollment)["serial"])
        except BridgeError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=work, args=(ca,)) for ca in (bridge, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    serials = [o for o in outcomes if isinstance(o, str)]
    refusals = [o for o in outcomes if isinstance(o, BridgeError)]
    assert len(serials) == 1 and len(refusals) == 1
    assert refusals[0].kind == "conflict"
    issued = bridge.store.cross_certificates(statuses=("issued",))
    assert [c.serial for c in issued] == serials
    assert [format(c.serial_number, "x") for c in bridge.issued_by_bridge()] == serials
