"""The client over TLS: a ``baton dev --tls-cert/--tls-key`` with a CA and
certificate made here with the ``openssl`` command (no committed keys);
the client trusts it through a CA path or an ``ssl.SSLContext``, and
refuses it without.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton.client import Client
from baton.exceptions import RPCError
from baton.testing import find_baton_binary
from tests.conftest import needs_baton

pytestmark = [
    needs_baton,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = ["-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1"]
    _openssl("req", *ca, "-subj", "/CN=Baton test CA", cwd=d)
    _openssl("req", *ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    sign = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"]
    _openssl(
        "x509", "-req", "-in", "cert.csr", *sign, "-out", "cert.pem", "-extfile", "ext.cnf", cwd=d
    )
    return d


@pytest.fixture(scope="module")
def address(pki: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [
            find_baton_binary(),
            "dev",
            "--db",
            ":memory:",
            "--listen",
            f"127.0.0.1:{port}",
            "--tls-cert",
            str(pki / "cert.pem"),
            "--tls-key",
            str(pki / "key.pem"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    target = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(Client.connect(target, tls=str(pki / "ca.pem")))
                break
            except RPCError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield target
    finally:
        process.kill()
        process.wait()


async def test_a_ca_path_is_trusted(address: str, pki: Path) -> None:
    client = await Client.connect(address, tls=str(pki / "ca.pem"))
    handle = await client.start_workflow("Anything", id="tls-path", task_queue="nobody")
    described = await handle.describe()
    assert described.status.name == "RUNNING"


async def test_an_ssl_context_is_trusted_many_calls_at_once(address: str, pki: Path) -> None:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    client = Client(address, tls=context)
    handles = await asyncio.gather(
        *(
            client.start_workflow("Anything", id=f"tls-ctx-{i}", task_queue="nobody")
            for i in range(20)
        )
    )
    assert len({h.id for h in handles}) == 20


async def test_an_untrusted_server_is_refused(address: str) -> None:
    with pytest.raises(RPCError) as err:
        await Client.connect(address)
    assert err.value.status == 0
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
