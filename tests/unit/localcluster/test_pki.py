"""The generated PKI is a real chain that strict X.509 verification accepts."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mlops_operator.localcluster import pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_leaves_chain_to_the_ca_with_key_identifiers(tmp_path: Path) -> None:
    ca_path, _ = pki.ensure_ca(tmp_path)
    serving, _ = pki.ensure_serving_cert(tmp_path, "api", ["127.0.0.1"], ["localhost"])
    client, _ = pki.ensure_client_cert(
        tmp_path, pki.ClientIdentity("admin", "alice", ("system:masters",))
    )
    ca = _cert(ca_path)
    for path in (serving, client):
        leaf = _cert(path)
        leaf.verify_directly_issued_by(ca)
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == ski.digest
    subject = _cert(client).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    usage = _cert(serving).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_strict_python_ssl_accepts_the_chain(tmp_path: Path) -> None:
    ca_path, _ = pki.ensure_ca(tmp_path)
    context = ssl.create_default_context(cafile=str(ca_path))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    assert context.get_ca_certs()[0]["subject"][0][0][1] == "mlops-local-cluster-ca"


def test_existing_material_is_kept(tmp_path: Path) -> None:
    ca_path, _ = pki.ensure_ca(tmp_path)
    first = ca_path.read_bytes()
    pki.ensure_ca(tmp_path)
    assert ca_path.read_bytes() == first
    key, pub = pki.ensure_sa_keys(tmp_path)
    assert b"PRIVATE KEY" in key.read_bytes()
    assert b"PUBLIC KEY" in pub.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_a_client_certificate_lasts_a_year_or_until_asked(tmp_path: Path) -> None:
    pki.ensure_ca(tmp_path)
    yearly, _ = pki.ensure_client_cert(tmp_path, pki.ClientIdentity("yearly", "alice"))
    until = datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    short, _ = pki.ensure_client_cert(tmp_path, pki.ClientIdentity("short", "bob"), not_after=until)
    lifetime = _cert(yearly).not_valid_after_utc - _cert(yearly).not_valid_before_utc
    assert lifetime > datetime.timedelta(days=365)
    assert _cert(short).not_valid_after_utc == until
