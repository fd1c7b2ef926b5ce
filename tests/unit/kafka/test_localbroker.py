"""The local broker launcher explains each way it can fail in one line that names the fix."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from worker.errors import LocalBrokerError
from worker.kafka import localbroker
from worker.kafka.localbroker import check_java, check_port_free, cluster_id, fetch_jars, free_port


def test_port_in_use_names_the_port_and_the_fix() -> None:
    """A port that something listens on is refused with its number and how to pick another."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(LocalBrokerError, match=rf"port {port} .* in use.*KAFKA_PORT"):
            check_port_free(port)


def test_free_port_is_accepted() -> None:
    """A port nothing listens on passes the check."""
    check_port_free(free_port())


def test_missing_java_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without java on PATH the error says Java 17 is needed and how to get it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalBrokerError, match=r"java not found.*Java 17"):
        check_java()


def test_missing_maven_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without mvn on PATH and no cached jars the error says Maven is needed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalBrokerError, match=r"mvn not found.*Maven"):
        fetch_jars(tmp_path / "home")


@pytest.mark.integration
def test_unreachable_maven_central_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Real Maven pointed at a closed loopback port reports that Maven Central is unreachable."""
    settings = tmp_path / "settings.xml"
    settings.write_text(
        "<settings><localRepository>"
        f"{tmp_path / 'm2'}</localRepository><mirrors><mirror><id>closed</id>"
        f"<url>http://127.0.0.1:{free_port()}/</url><mirrorOf>*</mirrorOf></mirror>"
        "</mirrors></settings>"
    )
    monkeypatch.setenv("MAVEN_SETTINGS", str(settings))
    with pytest.raises(LocalBrokerError, match="could not resolve the Kafka jars from Maven"):
        fetch_jars(tmp_path / "home")
    assert not (tmp_path / "home" / "libs.sha256").exists()


def test_cluster_id_has_kafkas_format() -> None:
    """Cluster ids are 22 URL-safe characters with no '-' (argparse4j would read it as a flag)."""
    ids = {cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and "-" not in i and "=" not in i for i in ids)


def test_deploy_files_exist() -> None:
    """The launcher finds its pom, log4j2 config and properties template in deploy/local/kafka."""
    for name in ("pom.xml", "log4j2.properties", "server.properties.template"):
        assert (localbroker.DEPLOY_DIR / name).is_file()
