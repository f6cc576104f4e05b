#!/usr/bin/env python3
"""Independent decryptor for the Bitnami Sealed Secrets hybrid format.

Written against the format description only (see keys/src/hybrid.rs), with the Python
`cryptography` package, so that a bug shared by our Rust code and its own tests cannot
hide. keys/tests/python_open.rs runs it on blobs sealed by sealant-keys.

    blob = u16 BE L | RSA-OAEP(SHA-256, MGF1-SHA-256, label) of a 32-byte session key
           (L bytes) | AES-256-GCM(session key, 12 zero bytes nonce, no AAD) + 16-byte tag

Usage:
    python3 open_blob.py --key KEY.pem --scope strict|namespace-wide|cluster-wide \
        --namespace NS --name NAME BLOB_FILE

BLOB_FILE holds the raw blob bytes (not base64). The plaintext is written raw to stdout.
Exit codes: 0 opened, 1 cannot decrypt (any cause, as coarse as the Rust side), 2 usage.
"""

import argparse
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_KEY_LEN = 32
TAG_LEN = 16
SCOPES = ("strict", "namespace-wide", "cluster-wide")


class DecryptError(Exception):
    """Any failure to open a blob. Deliberately carries no detail."""


def label(scope: str, namespace: str, name: str) -> bytes:
    """The OAEP label of a scope, as Bitnami builds it."""
    if scope == "strict":
        return f"{namespace}/{name}".encode()
    if scope == "namespace-wide":
        return namespace.encode()
    if scope == "cluster-wide":
        return b""
    raise ValueError(f"unknown scope {scope!r}")


def open_blob(key: rsa.RSAPrivateKey, blob: bytes, oaep_label: bytes) -> bytes:
    """Opens one blob or raises DecryptError."""
    if len(blob) < 2:
        raise DecryptError()
    rsa_len = int.from_bytes(blob[:2], "big")
    rest = blob[2:]
    if len(rest) < rsa_len + TAG_LEN or rsa_len != key.key_size // 8:
        raise DecryptError()
    oaep = padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=oaep_label or None,
    )
    try:
        session_key = key.decrypt(rest[:rsa_len], oaep)
    except ValueError as e:
        raise DecryptError() from e
    if len(session_key) != SESSION_KEY_LEN:
        raise DecryptError()
    try:
        return AESGCM(session_key).decrypt(b"\x00" * 12, rest[rsa_len:], None)
    except InvalidTag as e:
        raise DecryptError() from e


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="PEM private key, PKCS#1 or PKCS#8")
    parser.add_argument("--scope", required=True, choices=SCOPES)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--name", default="")
    parser.add_argument("blob", help="file holding the raw blob bytes")
    args = parser.parse_args()

    with open(args.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        print("error: not an RSA private key", file=sys.stderr)
        return 2
    with open(args.blob, "rb") as f:
        blob = f.read()
    try:
        plaintext = open_blob(key, blob, label(args.scope, args.namespace, args.name))
    except DecryptError:
        print("error: cannot decrypt with the given key and label", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(plaintext)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
