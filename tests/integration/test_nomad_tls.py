"""The Nomad client verifies the agent's certificate by default and presents its own when asked.

A real TLS server on loopback (the fake Nomad served by uvicorn over HTTPS) with a throw-away CA:
the CA and the client certificate come from the settings or from NOMAD_CACERT,
NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY, as for the `nomad` CLI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.settings import NomadSettings
from scheduler.executors.nomad_api import NomadError, NomadHttpApi
from tests.fakes.nomad import FakeNomad, serve_fake_nomad

pytestmark = [pytest.mark.anyio]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    folder: Path,
    stem: str,
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(subject)
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    certificate = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{stem}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return name, key


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = _issue(tmp_path, "ca", "test Nomad CA", None, ca=True)
    _issue(tmp_path, "server", "server.global.nomad", ca, server=True)
    _issue(tmp_path, "client", "conveyor", ca)
    return Pki(
        tmp_path / "ca.pem",
        tmp_path / "server.pem",
        tmp_path / "server-key.pem",
        tmp_path / "client.pem",
        tmp_path / "client-key.pem",
    )


@pytest.fixture
def clean_nomad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOMAD_CACERT", "NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY", "NOMAD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _serve(tmp_path: Path, pki: Pki, *, mutual: bool) -> Iterator[FakeNomad]:
    tls: dict[str, object] = {"certfile": str(pki.server_cert), "keyfile": str(pki.server_key)}
    if mutual:
        tls |= {"ca_certs": str(pki.ca), "cert_reqs": ssl.CERT_REQUIRED}
    root = tmp_path / "allocs"
    root.mkdir()
    try:
        with serve_fake_nomad(root, {}, tls=tls) as fake:
            yield fake
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def https_nomad(tmp_path: Path, pki: Pki, clean_nomad_env: None) -> Iterator[FakeNomad]:
    yield from _serve(tmp_path, pki, mutual=False)


@pytest.fixture
def mutual_nomad(tmp_path: Path, pki: Pki, clean_nomad_env: None) -> Iterator[FakeNomad]:
    yield from _serve(tmp_path, pki, mutual=True)


async def _version(settings: NomadSettings) -> str:
    api = NomadHttpApi(settings)
    try:
        info = await api.agent_self()
    finally:
        await api.close()
    return str(info["config"]["Version"]["Version"])


async def test_an_unknown_certificate_is_refused_by_default(https_nomad: FakeNomad) -> None:
    with pytest.raises(NomadError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        await _version(NomadSettings(address=https_nomad.url))
    assert refused.value.status is None
    assert https_nomad.requests == [], "nothing was sent to an agent that was not verified"


async def test_the_ca_from_the_settings_or_nomad_cacert_verifies_the_agent(
    https_nomad: FakeNomad, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _version(NomadSettings(address=https_nomad.url, ca_cert=str(pki.ca))) == "1.8.4"
    monkeypatch.setenv("NOMAD_CACERT", str(pki.ca))
    assert await _version(NomadSettings(address=https_nomad.url)) == "1.8.4"


async def test_skipping_verification_is_explicit(https_nomad: FakeNomad) -> None:
    settings = NomadSettings(address=https_nomad.url, tls_skip_verify=True)
    assert await _version(settings) == "1.8.4"


async def test_mutual_tls_presents_the_client_certificate(
    mutual_nomad: FakeNomad, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    without = NomadSettings(address=mutual_nomad.url, ca_cert=str(pki.ca))
    with pytest.raises(NomadError):
        await _version(without)
    with_cert = without.model_copy(
        update={"client_cert": str(pki.client_cert), "client_key": str(pki.client_key)}
    )
    assert await _version(with_cert) == "1.8.4"
    monkeypatch.setenv("NOMAD_CLIENT_CERT", str(pki.client_cert))
    monkeypatch.setenv("NOMAD_CLIENT_KEY", str(pki.client_key))
    assert await _version(without) == "1.8.4"


def test_a_client_key_without_its_certificate_is_refused(pki: Pki, clean_nomad_env: None) -> None:
    with pytest.raises(ValueError, match="NOMAD_CLIENT_CERT"):
        NomadHttpApi(NomadSettings(client_key=str(pki.client_key)))
