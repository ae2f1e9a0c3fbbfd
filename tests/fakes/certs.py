"""Self-signed RSA key pairs for SAML peers and TLS servers in tests (made with ``cryptography``, as an operator
would with openssl)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def key_and_cert(
    common_name: str,
    *,
    valid_from: datetime.timedelta = datetime.timedelta(hours=-1),
    valid_until: datetime.timedelta = datetime.timedelta(days=365),
    hosts: Sequence[str] = (),
) -> tuple[str, str]:
    """(private key PEM, certificate PEM), valid from ``valid_from`` to ``valid_until`` from now (by default from
    an hour ago for a year; two negative offsets make an expired certificate); ``hosts``: the DNS names a TLS
    server's certificate is for (subjectAltName)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid_from)
        .not_valid_after(now + valid_until)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host) for host in hosts]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def cert_body(cert_pem: str) -> str:
    """The base64 body of a PEM certificate (what SAML metadata's X509Certificate holds)."""
    return "".join(line for line in cert_pem.strip().splitlines() if not line.startswith("-----"))
