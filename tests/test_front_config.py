"""The ``front`` section: defaults per stage, TLS choices, and one clear error per bad value."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.config import ConfigError, MappingConfigSource, load_stage_config
from components.config.front import CADDY_IMAGE

DEV = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
PROD = {
    "lobechatUrl": "https://chat.example.com",
    "logto": {"endpoint": "https://auth.example.com", "adminEndpoint": "https://auth-admin.example.com"},
}
FIXED_TIME = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)


def self_signed_pem(names: list[str]) -> tuple[str, str]:
    """A self-signed certificate for ``names`` (valid 2020-2120, so no test depends on today) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(FIXED_TIME)
        .not_valid_after(FIXED_TIME + datetime.timedelta(days=36500))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key.decode()


def ca_signed_pem(names: list[str]) -> tuple[str, str, str]:
    """A test CA, and a leaf certificate for ``names`` signed by it with its key (valid 2020-2120)."""
    ca_pem, ca_key_pem = self_signed_pem(["lobechat-logto test CA"])
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(FIXED_TIME).not_valid_after(FIXED_TIME + datetime.timedelta(days=36000))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca_pem, leaf.public_bytes(serialization.Encoding.PEM).decode(), pem_key.decode()


def load(values: dict, secrets: dict | None = None, stack: str = "dev"):
    return load_stage_config(MappingConfigSource(values, secrets), stack)


def problems(values: dict, secrets: dict | None = None, stack: str = "prod") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(values, secrets, stack)
    return [str(p) for p in info.value.problems]


def test_staging_and_prod_default_to_the_stacks_caddy_and_dev_to_none():
    for stack in ("staging", "prod"):
        front = load(PROD, stack=stack).front
        assert (front.mode, front.image, front.tls, front.bind_address, front.http_port, front.https_port) == (
            "caddy", CADDY_IMAGE, "acme", "0.0.0.0", 80, 443,
        )
    assert load(PROD, stack="prod").front.hsts is True
    assert load(PROD, stack="staging").front.hsts is False
    assert load(DEV).front.mode == "none"
    assert load({**DEV, "front": {"mode": "caddy"}}).front.bind_address == "127.0.0.1"


def test_the_caddy_image_is_pinned():
    _, tag = CADDY_IMAGE.split(":")
    assert tag[0].isdigit() and tag != "latest"
    assert any("front.image" in p and "pin" in p for p in problems({**PROD, "front": {"image": "caddy:latest"}}))


def test_acme_takes_the_account_email_and_an_optional_ca():
    front = load({**PROD, "front": {"acmeEmail": "ops@example.com", "acmeCa": "https://ca.example.net/dir"}}, stack="prod").front
    assert (front.acme_email, front.acme_ca) == ("ops@example.com", "https://ca.example.net/dir")


def test_certificate_files_come_from_secret_config_and_are_never_quoted():
    cert, key = self_signed_pem(["chat.example.com"])
    front = load({**PROD, "front": {"tls": "files"}}, {"frontTlsCertificate": cert, "frontTlsKey": key}, "prod").front
    assert (front.tls, front.certificate, front.private_key) == ("files", cert, key)
    found = problems({**PROD, "front": {"tls": "files"}}, {"frontTlsCertificate": key, "frontTlsKey": "s3cr3t-not-a-key"})
    assert len(found) == 2 and all("is not" in p for p in found)
    assert not any("s3cr3t" in p or "PRIVATE KEY-----\n" in p for p in found)
    missing = problems({**PROD, "front": {"tls": "files"}})
    assert [p.split(":")[1] for p in missing] == ["frontTlsCertificate", "frontTlsKey"]
    assert all("pulumi config set --secret" in p for p in missing)


@pytest.mark.parametrize(
    ("values", "secrets", "stack", "key", "fragment"),
    [
        ({**PROD, "front": {"mode": "nginx"}}, None, "prod", "front.mode", "\"caddy\""),
        ({**PROD, "front": {"tls": "letsencrypt"}}, None, "prod", "front.tls", "\"acme\""),
        ({**PROD, "front": {"acmeEmail": "not-an-address"}}, None, "prod", "front.acmeEmail", "e-mail"),
        ({**PROD, "front": {"acmeCa": "http://ca.example.net"}}, None, "prod", "front.acmeCa", "https://"),
        ({**PROD, "front": {"tls": "internal", "acmeEmail": "ops@example.com"}}, None, "prod", "front.acmeEmail", "only applies"),
        ({**PROD, "front": {"httpPort": 443}}, None, "prod", "front.httpsPort", "differ"),
        ({**PROD, "front": {"httpsPort": 70000}}, None, "prod", "front.httpsPort", "1 to 65535"),
        ({**PROD, "front": {"drainSeconds": -1}}, None, "prod", "front.drainSeconds", "0 to 3600"),
        ({**PROD, "front": {"bindAddress": "anywhere"}}, None, "prod", "front.bindAddress", "IP address"),
        ({**PROD, "front": {"colour": "blue"}}, None, "prod", "front.colour", "unknown setting"),
        ({**PROD, "front": {"mode": "external", "tls": "acme"}}, None, "prod", "front.tls", "only applies"),
        ({**PROD, "proxyOnDockerHost": True}, None, "prod", "proxyOnDockerHost", "network aliases"),
        ({**PROD, "publish": {"enabled": False}}, None, "prod", "publish", "only container publishing"),
        ({**PROD, "lobechatUrl": "https://chat.example.com:8443"}, None, "prod", "lobechatUrl", "port 443"),
        ({**PROD, "requireHttps": False, "lobechatUrl": "http://chat.example.com"}, None, "staging", "lobechatUrl", "https://"),
        ({**DEV, "front": {"mode": "caddy", "hsts": True}}, None, "dev", "front.hsts", "https names"),
        (DEV, {"frontTlsKey": "x"}, "dev", "frontTlsKey", "only applies"),
    ],
)
def test_bad_value_gives_one_error_naming_the_key(values, secrets, stack, key, fragment):
    found = problems(values, secrets, stack)
    assert len(found) == 1, found
    assert found[0].startswith(f"lobechat-logto:{key}: ") and fragment in found[0], found[0]


def test_external_front_keeps_the_operators_proxy_settings():
    config = load({**PROD, "front": {"mode": "external"}, "proxyOnDockerHost": True}, stack="prod")
    assert config.front.mode == "external" and config.proxied_host_names
