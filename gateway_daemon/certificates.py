"""A small private CA: the certificates servers, runners, clients and etcd use.

``make_ca`` makes a self-signed CA; ``make_certificate`` makes a leaf signed by
it for a list of host names and IP addresses (subject alternative names), for
TLS servers, TLS clients (client-certificate auth) or both; ``write_pair``
writes ``NAME.crt`` and ``NAME.key`` (the key readable by its owner only).

Keys are ECDSA P-256 unless asked otherwise (``key_algo`` "ecdsa" with 256,
384 or 521 bits, or "rsa" with 2048, 3072 or 4096), everything is PEM, private
keys are unencrypted PKCS#8.  Leaf certificates are valid for 825 days (the
longest most TLS clients accept), the CA for ten years, unless ``days`` says.
``subject`` adds country, state, locality, org and ou to the common name.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
_BACKDATE = datetime.timedelta(minutes=5)  # tolerate small clock differences between machines


KEY_SIZES = {"ecdsa": (256, 384, 521), "rsa": (2048, 3072, 4096)}
_CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}
SUBJECT_FIELDS = {"country": NameOID.COUNTRY_NAME, "state": NameOID.STATE_OR_PROVINCE_NAME,
                  "locality": NameOID.LOCALITY_NAME, "org": NameOID.ORGANIZATION_NAME,
                  "ou": NameOID.ORGANIZATIONAL_UNIT_NAME}


def check_key_choice(key_algo: str, key_size: int | None) -> int:
    """The key size to use for `key_algo` (its smallest when None); ValueError naming the choices."""
    if key_algo not in KEY_SIZES:
        raise ValueError(f"key algorithm {key_algo!r} is not one of {', '.join(KEY_SIZES)}")
    sizes = KEY_SIZES[key_algo]
    if key_size is None:
        return sizes[0]
    if key_size not in sizes:
        raise ValueError(f"{key_algo} keys have {', '.join(map(str, sizes))} bits, not {key_size}")
    return key_size


def _new_key(key_algo: str = "ecdsa", key_size: int | None = None):
    size = check_key_choice(key_algo, key_size)
    if key_algo == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    return ec.generate_private_key(_CURVES[size]())


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _name(common_name: str, subject: dict[str, str] | None = None) -> x509.Name:
    """CN, then the other subject fields given (country must be two letters: ValueError otherwise)."""
    attributes = [x509.NameAttribute(SUBJECT_FIELDS[field], value)
                  for field, value in (subject or {}).items() if value]
    return x509.Name(attributes + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - _BACKDATE, now + datetime.timedelta(days=days)


def _not_valid_after(cert: x509.Certificate) -> datetime.datetime:
    if hasattr(cert, "not_valid_after_utc"):  # cryptography >= 42
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=datetime.UTC)


def subject_alternative_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """IP addresses become IPAddress entries, anything else a DNSName ("[::1]" is an IP)."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        host = host.strip()
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_ca(common_name: str = "gateway CA", days: int = CA_DAYS, key_algo: str = "ecdsa",
            key_size: int | None = None, subject: dict[str, str] | None = None) -> tuple[bytes, bytes]:
    """A new self-signed CA. Returns (certificate PEM, private key PEM)."""
    key = _new_key(key_algo, key_size)
    not_before, not_after = _validity(days)
    public = key.public_key()
    name = _name(common_name, subject)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def make_certificate(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    common_name: str,
    hosts: Iterable[str] = DEFAULT_HOSTS,
    client: bool = True,
    server: bool = True,
    days: int = LEAF_DAYS,
    key_algo: str = "ecdsa",
    key_size: int | None = None,
    subject: dict[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """A new certificate signed by the CA. Returns (certificate PEM, private key PEM).

    `hosts` are the names and addresses a server certificate is valid for;
    `server` and `client` choose the extended key usages (TLS server auth,
    TLS client auth); at least one must be true.
    """
    if not (client or server):
        raise ValueError("a certificate needs client or server use (or both)")
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if _spki(ca_key.public_key()) != _spki(ca_cert.public_key()):
        raise ValueError("the CA private key does not belong to the CA certificate")

    key = _new_key(key_algo, key_size)
    public = key.public_key()
    not_before, not_after = _validity(days)
    not_after = min(not_after, _not_valid_after(ca_cert))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, subject))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=key_algo == "rsa",
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    names = subject_alternative_names(hosts)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_pair(directory: str | os.PathLike, name: str, cert_pem: bytes, key_pem: bytes,
               cert_suffix: str = ".crt", key_suffix: str = ".key") -> tuple[Path, Path]:
    """Write DIRECTORY/NAME.crt and DIRECTORY/NAME.key (mode 0600), or other suffixes (iagctl's NAME.pem and
    NAME-key.pem). Returns both paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path = folder / f"{name}{cert_suffix}"
    key_path = folder / f"{name}{key_suffix}"
    cert_path.write_bytes(cert_pem)
    with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # also when the file was already there with wider permissions
        handle.write(key_pem)
    return cert_path, key_path
