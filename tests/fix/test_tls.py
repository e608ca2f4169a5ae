"""TLS to the acceptor: executor behind socat's TLS terminator, a throwaway certificate.

socat (Debian) terminates TLS in the acceptor's network namespace and forwards to executor;
the venue connects with ``tls = true`` and verifies the certificate against its own CA file.
"""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal

import pytest

from protocols import OrderStatus
from tests.conftest import wait_until

from .conftest import limit, live, needs_peers

pytestmark = [needs_peers, pytest.mark.skipif(not (shutil.which("socat") and shutil.which("openssl")),
                                              reason="socat and openssl are needed for the TLS test (.ci/run installs socat)")]


@pytest.fixture
def tls_terminator(peer, tmp_path):
    executor = peer("executor")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = executor.port + 1
    prefix = ["nsenter", f"--net=/proc/{executor.process.pid}/ns/net"] if executor.netns else []
    if not executor.netns:
        from protocols.venues.fix._peer import free_port

        port = free_port()
    proc = subprocess.Popen([*prefix, "socat", f"OPENSSL-LISTEN:{port},reuseaddr,fork,cert={cert},key={key},verify=0",
                             f"TCP:127.0.0.1:{executor.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connect = executor.connector()

    def listening() -> bool:
        try:
            connect("127.0.0.1", port, 0.5).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, 10, "socat listening")
        yield executor, port, cert
    finally:
        proc.kill()
        proc.wait(5)


def test_orders_over_tls_fill_and_a_wrong_ca_never_logs_on(tls_terminator, fix_runtime, tmp_path) -> None:
    executor, port, cert = tls_terminator
    rt = fix_runtime(executor, "CLIENT1", "EXECUTOR", port=port, tls=True, tls_ca_file=str(cert),
                     tls_server_name="localhost")
    report = rt.submit(limit("BUY", "0.5", "100", tif="GTC"), live()).result(timeout=10)
    assert report.status is OrderStatus.FILLED and report.avg_px == Decimal("100")
    assert rt.health().venues["fix"]["state"] == "ACTIVE"
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other)], check=True, capture_output=True, timeout=60)
    untrusted = fix_runtime(executor, "CLIENT2", "EXECUTOR", port=port, tls=True, tls_ca_file=str(other),
                            tls_server_name="localhost")
    wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in (untrusted.health().venues["fix"]["last_disconnect"] or ""), 10,
               "the certificate refused")
    assert untrusted.health().venues["fix"]["state"] != "ACTIVE"
