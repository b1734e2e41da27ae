"""Images signed with content credentials (C2PA) the way a provider signs its output, under a
certificate chain made here with `cryptography`: a root CA and a leaf for "OpenAI".

Nothing leaves the machine: no timestamp authority (so a signature carries no time) and no
OCSP. `tampered` rewrites a text chunk of a signed PNG with a correct CRC, so the file still
decodes but its bytes are no longer the ones signed.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from io import BytesIO

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class TestChain:
    """A leaf certificate, its root, and the leaf's private key, all PEM."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    chain: bytes  # leaf then root
    root: bytes
    key: bytes


def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def signing_chain(organisation: str = "OpenAI") -> TestChain:
    """A root CA and a signing leaf whose subject's organisation is `organisation` (one chain
    per organisation for the session, however the argument is passed)."""
    return _chain(organisation)


@cache
def _chain(organisation: str) -> TestChain:
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("imagelog tests", "imagelog test root")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(organisation, f"{organisation} test signer"))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TestChain(
        chain=leaf.public_bytes(pem) + root.public_bytes(pem),
        root=root.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def sign(
    image: bytes,
    media_type: str = "image/png",
    *,
    generator: str = "DALL·E 3",
    organisation: str = "OpenAI",
) -> bytes:
    """`image` with an embedded manifest: made by `generator`, a generative model."""
    chain = signing_chain(organisation)
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain.chain, chain.key, None))
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "generated image",
        "format": media_type,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED,
                            "softwareAgent": {"name": generator},
                        }
                    ]
                },
            }
        ],
    }
    signed = BytesIO()
    c2pa.Builder.from_json(json.dumps(manifest)).sign(signer, media_type, BytesIO(image), signed)
    return signed.getvalue()


def tampered(signed_png: bytes) -> bytes:
    """A signed PNG with a tEXt chunk added after its header: still a well-formed PNG (the
    chunk's CRC is right), but not the bytes the manifest's hash covers."""
    header_end = 8 + 8 + 13 + 4  # signature, then IHDR's length, type, data and CRC
    body = b"tEXt" + b"Comment\x00edited after signing"
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return signed_png[:header_end] + chunk + signed_png[header_end:]


def with_broken_manifest(signed_png: bytes) -> bytes:
    """A signed PNG whose manifest chunk (caBX) has its inside scrambled, CRC fixed up: the
    manifest is there but cannot be parsed."""
    at = signed_png.index(b"caBX") - 4
    (length,) = struct.unpack(">I", signed_png[at : at + 4])
    data = bytearray(signed_png[at + 8 : at + 8 + length])
    for index in range(16, len(data), 7):
        data[index] ^= 0x5A
    body = b"caBX" + bytes(data)
    chunk = signed_png[at : at + 4] + body + struct.pack(">I", zlib.crc32(body))
    return signed_png[:at] + chunk + signed_png[at + 12 + length :]
