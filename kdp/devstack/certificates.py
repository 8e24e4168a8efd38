"""TLS for the secure stack: a certificate authority made at the stack's start, and the one certificate it signs.

`kdp stack up --secure` encrypts every client connection (Kafka's SASL_SSL listener and the registry's HTTPS
API). The trust is local and made on the spot, as a private CA would be in production:

- At the first secure start (and whenever the files are missing), a new CA key signs one server certificate
  valid for the stack's host (an IP address SAN, plus `localhost`), which every node and the registry present.
  The CA's private key is then discarded: it is never written anywhere, so nobody can sign another certificate
  this stack would trust. A new CA is made with new data (`kdp stack down --purge`).
- `<home>/tls/ca.pem` is what clients trust (`KDP_SSL_CA_LOCATION`); `server.pem` and `server-key.pem` are the
  server's certificate and unencrypted key. Folder 0700, files 0600. Nothing here prints or logs a key.

Keys are ECDSA P-256 (fast handshakes; Java, librdkafka/OpenSSL and Python's `ssl` all accept them).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kdp.devstack.private_files import write_private

FOLDER = "tls"
VALIDITY = datetime.timedelta(days=825)
"""The longest validity clients commonly accept for a server certificate."""


@dataclass(frozen=True)
class TlsFiles:
    """The secure stack's certificate files (paths only)."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate: what clients trust."""
        return self.folder / "ca.pem"

    @property
    def certificate(self) -> Path:
        """The server certificate, signed by the CA."""
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        """The server's private key (PKCS#8, unencrypted: the file's mode protects it)."""
        return self.folder / "server-key.pem"

    def exist(self) -> bool:
        return all(path.exists() for path in (self.ca, self.certificate, self.key))


def tls_files(home: Path) -> TlsFiles:
    return TlsFiles(home / FOLDER)


def ensure_certificates(home: Path, host: str) -> TlsFiles:
    """The stack's CA and server certificate for `host`, made now when they are missing or name another host."""
    files = tls_files(home)
    if files.exist() and _names_host(files.certificate, host):
        _protect(files)
        return files
    files.folder.mkdir(parents=True, exist_ok=True)
    files.folder.chmod(0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kdp local stack CA ({home})"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_alternative_names(host), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    write_private(files.ca, ca_certificate.public_bytes(pem).decode())
    write_private(files.certificate, server_certificate.public_bytes(pem).decode())
    write_private(
        files.key,
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )
    return files  # ca_key goes out of scope here: it is never stored


def forget_certificates(home: Path) -> None:
    """Delete the CA and server certificate (with the cluster's data)."""
    shutil.rmtree(tls_files(home).folder, ignore_errors=True)


def _alternative_names(host: str) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
    if host != "127.0.0.1":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return x509.SubjectAlternativeName(names)


def _names_host(certificate_file: Path, host: str) -> bool:
    certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ipaddress.ip_address(host) in names.get_values_for_type(x509.IPAddress)


def _protect(files: TlsFiles) -> None:
    files.folder.chmod(0o700)
    for path in (files.ca, files.certificate, files.key):
        path.chmod(0o600)
