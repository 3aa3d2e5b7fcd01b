"""``bridgeca serve --tls-cert --tls-key [--tls-client-ca]``: a real server
(one worker, and two workers on their own SO_REUSEPORT sockets) with a
certificate from a test CA made here; Python clients (ssl, urllib, httpx)
trust that CA and get /v1/health over https; plain HTTP to the TLS port gets
no HTTP answer; with a client CA, a client without a certificate from it is
refused in the handshake."""
from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import socket
import ssl
import subprocess

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .test_body_limit import start_server
from .test_server import REPO, bridgeca, env, free_port, run, stop

NOW = dt.datetime.now(dt.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bridgeca TLS tests")])


def _ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(hours=1))
            .not_valid_after(NOW + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca, ca_key, cn: str, *, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(hours=1))
               .not_valid_after(NOW + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                                     x509.DNSName("localhost")]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path, cert, key=None):
    data = cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(data)
    if key is not None:
        key_path = path.with_suffix(".key")
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return path, key_path
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ca, ca_key = _ca("Test TLS CA")
    server, server_key = _leaf(ca, ca_key, "127.0.0.1", server=True)
    client_ca, client_ca_key = _ca("Test Client CA")
    client, client_key = _leaf(client_ca, client_ca_key, "platform-client", server=False)
    other_ca, other_ca_key = _ca("Some Other CA")
    stranger, stranger_key = _leaf(other_ca, other_ca_key, "stranger", server=False)
    cert_file, key_file = _write(d / "server.pem", server, server_key)
    client_file, client_key_file = _write(d / "client.pem", client, client_key)
    stranger_file, stranger_key_file = _write(d / "stranger.pem", stranger, stranger_key)
    home = d / "home"
    run("init", "--home", str(home), "--base-url", "https://bridge.gd.example")
    return {"ca": _write(d / "ca.pem", ca), "client_ca": _write(d / "client-ca.pem", client_ca),
            "cert": cert_file, "key": key_file, "client": (client_file, client_key_file),
            "stranger": (stranger_file, stranger_key_file), "home": home}


def _trusting(pki, client=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if client is not None:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    return ctx


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def tls_server(pki, request):
    args = ["--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), "--workers", str(request.param)]
    process, base, log = start_server(pki["home"], args, scheme="https", ssl_context=_trusting(pki))
    try:
        yield {"base": base, "port": int(base.rsplit(":", 1)[1])}
    finally:
        stop(process)
        log.close()


def test_health_over_https_with_the_ssl_module(pki, tls_server):
    ctx = _trusting(pki)
    with socket.create_connection(("127.0.0.1", tls_server["port"]), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            assert peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "127.0.0.1"
            tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b'{"status":"ok"}')


def test_health_over_https_with_httpx_many_connections(pki, tls_server):
    """Several fresh connections: with two workers the kernel spreads them
    over both sockets, and each worker must speak TLS."""
    for _ in range(8):
        with httpx.Client(verify=_trusting(pki), timeout=30) as client:
            r = client.get(tls_server["base"] + "/v1/health")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
            assert r.url.scheme == "https"


def test_a_client_not_trusting_the_ca_refuses_the_server(tls_server):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_server["base"] + "/v1/health", verify=ssl.create_default_context(), timeout=30)


def test_plain_http_to_the_tls_port_gets_no_http_answer(tls_server):
    conn = http.client.HTTPConnection("127.0.0.1", tls_server["port"], timeout=30)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            response.read()
            # Should the server ever answer plain HTTP, it must not be a 200.
            assert response.status != 200
            raise http.client.HTTPException(f"plain HTTP answered {response.status}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def mutual_tls_server(pki):
    args = ["--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), "--tls-client-ca", str(pki["client_ca"])]
    process, base, log = start_server(pki["home"], args, scheme="https", ssl_context=_trusting(pki, pki["client"]))
    try:
        yield base
    finally:
        stop(process)
        log.close()


def test_client_certificate_from_the_client_ca_is_accepted(pki, mutual_tls_server):
    with httpx.Client(verify=_trusting(pki, pki["client"]), timeout=30) as client:
        assert client.get(mutual_tls_server + "/v1/health").status_code == 200


@pytest.mark.parametrize("who", ["none", "stranger"])
def test_client_without_a_certificate_from_the_client_ca_is_refused(pki, mutual_tls_server, who):
    ctx = _trusting(pki, pki["stranger"] if who == "stranger" else None)
    # TLS 1.3 sends the server's refusal after the client's handshake has
    # finished: it shows as an SSL error or a closed connection on the request.
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        with httpx.Client(verify=ctx, timeout=30) as client:
            client.get(mutual_tls_server + "/v1/health")


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file"),
    ("mismatch", "cannot be used together"),
    ("key-only", "--tls-cert"),
])
def test_serve_refuses_unusable_tls_files_in_one_line(pki, tmp_path, case, message):
    other = ec.generate_private_key(ec.SECP256R1())
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    args = {"missing": ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(pki["key"])],
            "mismatch": ["--tls-cert", str(pki["cert"]), "--tls-key", str(wrong_key)],
            "key-only": ["--tls-key", str(pki["key"])]}[case]
    done = subprocess.run(bridgeca() + ["serve", "--home", str(pki["home"]), "--port", str(free_port())] + args,
                          env=env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
