"""TLS to Marketo: certificates and host names are always verified, and no source file
of the worker turns that off. Plain http to a non-loopback host is refused by the settings: see
tests/unit/test_settings.py::test_http_to_another_host_requires_tls, and there is no key to
disable verification: test_settings.py::test_tls_verification_cannot_be_turned_off."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.fakes import IDENTITY, FakeMarketo, RecordingLimiter, ServeMarketo, ok
from worker.errors import MarketoUnavailable
from worker.marketo.client import MarketoClient
from worker.marketo.transport import Transport

WORKER = Path(__file__).resolve().parents[2] / "worker"
# every way Python, aiohttp or requests-style code can switch certificate checks off
UNSAFE = re.compile(
    r"ssl\s*=\s*False|verify_ssl\s*=\s*False|verify\s*=\s*False|CERT_NONE|CERT_OPTIONAL"
    r"|check_hostname\s*=\s*False|_create_unverified_context|PYTHONHTTPSVERIFY"
)
MakeCertificate = Callable[[str], Path]
USAGE = "/rest/v1/stats/usage.json"


def test_no_source_file_turns_certificate_checks_off() -> None:
    """No module under worker/ disables certificate or host-name verification."""
    assert UNSAFE.search("aiohttp.TCPConnector(ssl=False)")  # the scan would see one
    assert (WORKER / "marketo" / "transport.py") in set(WORKER.rglob("*.py"))
    offenders = [
        f"{path.relative_to(WORKER)}: {match.group(0)}"
        for path in sorted(WORKER.rglob("*.py"))
        for match in UNSAFE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.fixture
def make_certificate(tmp_path: Path) -> MakeCertificate:
    """Write a self-signed certificate and key for a subjectAltName; return the cert's path."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")

    def make(alt_name: str) -> Path:
        cert, key = tmp_path / f"{alt_name}.crt", tmp_path / f"{alt_name}.key"
        command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt"]
        command += ["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=test"]
        command += ["-addext", f"subjectAltName={alt_name}", "-keyout", str(key), "-out", str(cert)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        return cert

    return make


async def serve_over_tls(serve_marketo: ServeMarketo, cert: Path) -> tuple[FakeMarketo, str]:
    """Serve a fake knowing today's usage on 127.0.0.1 over TLS with `cert`; return it, its URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert.with_suffix(".key"))
    fake = FakeMarketo()
    fake.script(USAGE, ok([{"date": "d", "total": 42}]))
    return fake, await serve_marketo(fake, context)


def client_for(url: str, ca_bundle: Path | None = None) -> MarketoClient:
    """A client that tries once, so a refused handshake surfaces at once."""
    secret = SecretStr("tls-test-secret")
    return MarketoClient(
        Transport(
            url, SecretStr("id"), secret, RecordingLimiter(), max_attempts=1, ca_bundle=ca_bundle
        )
    )


async def test_untrusted_certificate_is_refused_before_the_secret_is_sent(
    make_certificate: MakeCertificate, serve_marketo: ServeMarketo
) -> None:
    """A self-signed certificate outside the trust store fails the handshake: no request lands."""
    cert = make_certificate("IP:127.0.0.1")
    fake, url = await serve_over_tls(serve_marketo, cert)
    async with client_for(url) as client:
        with pytest.raises(MarketoUnavailable) as caught:
            await client.usage_today()
    assert "Certificate" in str(caught.value)
    assert fake.seen == []


async def test_ca_bundle_adds_trust_for_that_certificate(
    make_certificate: MakeCertificate, serve_marketo: ServeMarketo
) -> None:
    """With the certificate in ca_bundle the same server is trusted and answers."""
    cert = make_certificate("IP:127.0.0.1")
    fake, url = await serve_over_tls(serve_marketo, cert)
    async with client_for(url, ca_bundle=cert) as client:
        assert await client.usage_today() == 42
    assert [seen.path for seen in fake.seen] == [IDENTITY, USAGE]


async def test_trusted_certificate_for_another_host_name_is_refused(
    make_certificate: MakeCertificate, serve_marketo: ServeMarketo
) -> None:
    """A trusted certificate that names another host fails the host-name check."""
    cert = make_certificate("DNS:marketo.invalid")
    fake, url = await serve_over_tls(serve_marketo, cert)
    async with client_for(url, ca_bundle=cert) as client:
        with pytest.raises(MarketoUnavailable) as caught:
            await client.usage_today()
    assert "Certificate" in str(caught.value)
    assert fake.seen == []
