"""Issue 12's evidence service, in process: what a time-stamp and a receipt
cost, as ratios against a reference measured in the same run.

- TSA: ``TimeStampAuthority.respond`` (read the query, take a serial from the
  store, build and sign the TSTInfo) against the bridge's OCSP responder
  answering one request (``BridgeCA.ocsp_response``: one signature by a key
  of the same type, no database write).
- Receipt: a chain verification with ``receipt`` (the verification, then the
  evidence gathered, kept in the database and the document signed) against
  the same verification without (a cached answer: the receipt's own cost).

    BRIDGECA_KEY_PASSPHRASE=x .venv/bin/python benchmarks/bench_evidence.py [--rounds N]

Prints min and median milliseconds per call and the ratios of the medians,
for an ECDSA P-256 bridge and an SM2 one.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(call, rounds: int) -> list[float]:
    call()  # warm: keys loaded, caches filled
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _row(name: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"  {name:<52} min {min(times):8.2f} ms   median {median:8.2f} ms")
    return median


def run(key_type: str, rounds: int) -> None:
    import hashlib

    from asn1crypto import tsp
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from api.app import create_app
    from api.routes_evidence import evidence_services
    from api.schemas import VerifyChainRequest
    from bridge.receipts import ReceiptRequest
    from bridge.service import BridgeCA
    from bridge.service_keys import TSA

    home = Path(tempfile.mkdtemp()) / "home"
    ca = BridgeCA.init(home, base_url="https://bridge.example", key_type=key_type)
    app = create_app(ca)
    services = evidence_services(app)
    verification = app.state.verification
    tsa_pem = services.keys.get(TSA).certificate.public_bytes(serialization.Encoding.PEM).decode()
    query = tsp.TimeStampReq({"version": "v1", "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"contract").digest()}}).dump()
    # An OCSP request about the TSA certificate (issued by the bridge, so the responder answers it).
    tsa_certificate = x509.load_pem_x509_certificate(tsa_pem.encode())
    ocsp_request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        hashlib.sha1(ca.certificate.subject.public_bytes()).digest(),
        hashlib.sha1(_subject_public_key(ca.certificate)).digest(),
        tsa_certificate.serial_number, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    options = {"extended_key_usage": ["timeStamping"]}
    body = VerifyChainRequest(certificate=tsa_pem, receipt=True, **options)
    request = ReceiptRequest("chain", body.model_dump(mode="json", exclude={"certificate", "intermediates", "receipt"}),
                             certificate=tsa_pem)

    def verify():
        return verification.verify_chain(tsa_pem, **options)

    def verify_with_receipt():
        return services.receipts.issue(request, verify())

    print(f"{key_type} bridge ({rounds} rounds)")
    ocsp_ms = _row("OCSP response (reference)", _timed(lambda: ca.ocsp_response(ocsp_request), rounds))
    tsa_ms = _row("POST /v1/tsa's work: TimeStampAuthority.respond", _timed(lambda: services.tsa.respond(query), rounds))
    verify_ms = _row("chain verification, cached answer (reference)", _timed(verify, rounds))
    receipt_ms = _row("the same with a receipt", _timed(verify_with_receipt, rounds))
    print(f"  ratios of medians: time-stamp / OCSP response {tsa_ms / ocsp_ms:.2f}; "
          f"receipt's own cost (with - without) / OCSP response {(receipt_ms - verify_ms) / ocsp_ms:.2f}")
    ca.close()


def _subject_public_key(certificate) -> bytes:
    from bridge.signer import certificate_spki
    from pki.der import spki_parts

    return spki_parts(certificate_spki(certificate))[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("BRIDGECA_KEY_PASSPHRASE", "benchmark passphrase")
    for key_type in ("ec-p256", "sm2"):
        run(key_type, args.rounds)


if __name__ == "__main__":
    main()
