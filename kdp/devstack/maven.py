"""Download Kafka's jars and the registry's archive from Maven Central into the cache, once.

Layout of the cache (`StackConfig.cache`):

    kafka-<version>/libs/*.jar          the classpath of every Kafka JVM (`kafka-pom.xml`'s runtime closure)
    apicurio-registry-<version>/        the unpacked registry archive, `quarkus-run.jar` at its root
    keycloak-<version>/                 the unpacked and built OIDC server of the secure stack (`kdp.devstack.oidc`)
    logs/maven-*.log                    the output of the last Maven run of each kind (shown when it fails)

Contract: an install folder exists if and only if it is complete. Maven writes into a fresh temporary folder
beside it (so no jar of an older resolve lingers on the classpath), which is renamed into place at the end; a
crash or Ctrl-C leaves only a temporary folder, removed on the next try. Maven uses a private local repository
inside that temporary folder (deleted with it): the cache then holds each file once, and an empty cache really
means a cold start. A lock file per install folder serialises concurrent installs of the same thing (two test
sessions starting at once).
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kdp.devstack.errors import StackError
from kdp.devstack.logfiles import excerpt
from kdp.devstack.versions import KAFKA_VERSION, OIDC_ARTIFACT, OIDC_VERSION, REGISTRY_ARTIFACT, REGISTRY_VERSION

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
KAFKA_POM = Path(__file__).with_name("kafka-pom.xml")

log = logging.getLogger(__name__)


def kafka_libs(cache: Path) -> Path:
    """Where Kafka's jars are (or will be) installed."""
    return cache / f"kafka-{KAFKA_VERSION}" / "libs"


def registry_home(cache: Path) -> Path:
    """Where the registry is (or will be) unpacked."""
    return cache / f"apicurio-registry-{REGISTRY_VERSION}"


def install_kafka(cache: Path) -> Path:
    """Kafka's libs folder, downloaded first when absent; StackError when Maven is missing or fails."""

    def download(staging: Path) -> None:
        libs = staging / "libs"
        _run_maven(
            [
                "-f",
                str(KAFKA_POM),
                f"-Dkafka.version={KAFKA_VERSION}",
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ],
            staging,
            cache / "logs" / "maven-kafka.log",
            f"Kafka {KAFKA_VERSION}",
        )
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise StackError(f"Maven finished but {libs} holds no kafka_2.13 jar; see {cache / 'logs'}.")

    _install(cache, kafka_libs(cache).parent, download, f"Kafka {KAFKA_VERSION}")
    return kafka_libs(cache)


def install_registry(cache: Path) -> Path:
    """The registry's folder (with `quarkus-run.jar`), downloading and unpacking it first when absent."""

    def download(staging: Path) -> None:
        downloads = staging / "download"
        _run_maven(
            [
                f"{DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={REGISTRY_ARTIFACT}",
                f"-DoutputDirectory={downloads}",
            ],
            staging,
            cache / "logs" / "maven-registry.log",
            f"Apicurio Registry {REGISTRY_VERSION}",
        )
        archives = list(downloads.glob("*.tar.gz"))
        if len(archives) != 1:
            raise StackError(f"Maven finished but {downloads} holds no registry archive; see {cache / 'logs'}.")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(staging, filter="data")
        shutil.rmtree(downloads)
        if not (staging / "quarkus-run.jar").is_file():
            raise StackError(f"The registry archive {archives[0].name} has no quarkus-run.jar at its root.")

    _install(cache, registry_home(cache), download, f"Apicurio Registry {REGISTRY_VERSION}")
    return registry_home(cache)


def oidc_home(cache: Path) -> Path:
    """Where the OIDC server (Keycloak) is (or will be) unpacked and built."""
    return cache / f"keycloak-{OIDC_VERSION}"


def install_oidc(cache: Path, build: Callable[[Path], None]) -> Path:
    """The OIDC server's folder, downloaded, unpacked and built first when absent (`build(folder)` runs its
    one-time build, a minute or two of CPU, before the folder is renamed into place)."""

    def download(staging: Path) -> None:
        downloads = staging / "download"
        _run_maven(
            [f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={OIDC_ARTIFACT}", f"-DoutputDirectory={downloads}"],
            staging,
            cache / "logs" / "maven-oidc.log",
            f"Keycloak {OIDC_VERSION}",
        )
        archives = list(downloads.glob("*.tar.gz"))
        if len(archives) != 1:
            raise StackError(f"Maven finished but {downloads} holds no Keycloak archive; see {cache / 'logs'}.")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(downloads, filter="data")
        unpacked = downloads / f"keycloak-{OIDC_VERSION}"
        if not (unpacked / "lib" / "quarkus-run.jar").is_file():
            raise StackError(f"The Keycloak archive {archives[0].name} has no {unpacked.name}/lib/quarkus-run.jar.")
        for entry in unpacked.iterdir():
            entry.rename(staging / entry.name)
        shutil.rmtree(downloads)
        build(staging)

    _install(cache, oidc_home(cache), download, f"Keycloak {OIDC_VERSION}")
    return oidc_home(cache)


def _install(cache: Path, target: Path, download: Callable[[Path], None], what: str) -> None:
    """Make `target` exist, complete: unless it already does, `download` fills a staging folder renamed to it.

    Holding the cache's lock, leftovers of an interrupted install (`.<name>.partial-*`) are safe to delete.
    The staging folder's private Maven repository (`.m2/`) is removed before the rename.
    """
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return
        for leftover in cache.glob(f".{target.name}.partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        log.info("Downloading %s from Maven Central into %s (once per machine)", what, target)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=cache))
        try:
            download(staging)
            shutil.rmtree(staging / ".m2", ignore_errors=True)
            staging.chmod(0o755)  # mkdtemp made it private; the installed folder is ordinary
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("Downloaded %s in %.1f s", what, time.monotonic() - started)


def _run_maven(arguments: list[str], staging: Path, log_file: Path, what: str) -> None:
    maven = shutil.which("mvn")
    if maven is None:
        raise StackError(
            f"Maven (`mvn`) is needed once, to download {what} from Maven Central into the cache. "
            "Install it (Debian/Ubuntu: `sudo apt-get install maven`; macOS: `brew install maven`), "
            "or point KDP_CACHE at a cache that already holds the downloads."
        )
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [
        maven,
        "-B",
        "-ntp",
        "-Dstyle.color=never",
        f"-Dmaven.repo.local={staging / '.m2'}",
        *arguments,
    ]
    with log_file.open("w") as output:
        output.write(" ".join(command) + "\n")
        output.flush()
        completed = subprocess.run(command, cwd=staging, stdout=output, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise StackError(
            f"Downloading {what} with Maven failed (exit {completed.returncode}). Check network access to "
            f"Maven Central (or the mirror in ~/.m2/settings.xml), then run again.\n{excerpt(log_file, 25)}"
        )
