#!/usr/bin/env python3
"""An independent implementation of the Bitnami Sealed Secrets format, for tests.

It shares no code with sealant: it is written against the format description in
docs/design.md with the `cryptography` package, so that a round trip through it and
sealant proves wire compatibility rather than self-consistency.

    seal   --cert CERT.pem [--scope strict|namespace-wide|cluster-wide]  < Secret.json  > SealedSecret.json
    unseal --key KEY.pem                                                 < SealedSecret.json > Secret.json

JSON only (no YAML), one document per call. Exit code 1 and a message on stderr when
a value cannot be decrypted.
"""
import argparse
import base64
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"


def oaep(label):
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=label or None,
    )


def label_for(scope, namespace, name):
    if scope == "cluster-wide":
        return b""
    if scope == "namespace-wide":
        return namespace.encode()
    return f"{namespace}/{name}".encode()


def scope_of(metadata):
    annotations = metadata.get("annotations") or {}
    if annotations.get(CLUSTER_WIDE) == "true":
        return "cluster-wide"
    if annotations.get(NAMESPACE_WIDE) == "true":
        return "namespace-wide"
    return "strict"


def encrypt(public_key, plaintext, label):
    session_key = os.urandom(32)
    rsa_ct = public_key.encrypt(session_key, oaep(label))
    aes_ct = AESGCM(session_key).encrypt(b"\0" * 12, plaintext, None)
    return struct.pack(">H", len(rsa_ct)) + rsa_ct + aes_ct


def decrypt(private_key, blob, label):
    if len(blob) < 2:
        raise ValueError("blob too short")
    (rsa_len,) = struct.unpack(">H", blob[:2])
    if len(blob) < 2 + rsa_len:
        raise ValueError("length prefix past the end")
    session_key = private_key.decrypt(blob[2 : 2 + rsa_len], oaep(label))
    return AESGCM(session_key).decrypt(b"\0" * 12, blob[2 + rsa_len :], None)


def seal(args):
    secret = json.load(sys.stdin)
    cert = x509.load_pem_x509_certificate(open(args.cert, "rb").read())
    meta = secret.get("metadata") or {}
    name, namespace = meta["name"], meta.get("namespace", "default")
    scope = args.scope or scope_of(meta)
    label = label_for(scope, namespace, name)
    values = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    values.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    annotations = {}
    if scope == "cluster-wide":
        annotations[CLUSTER_WIDE] = "true"
    elif scope == "namespace-wide":
        annotations[NAMESPACE_WIDE] = "true"
    metadata = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    sealed = {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": metadata,
        "spec": {
            "encryptedData": {
                k: base64.b64encode(encrypt(cert.public_key(), v, label)).decode()
                for k, v in sorted(values.items())
            },
            "template": {"metadata": dict(metadata), "type": secret.get("type", "Opaque")},
        },
    }
    json.dump(sealed, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def unseal(args):
    sealed = json.load(sys.stdin)
    key = serialization.load_pem_private_key(open(args.key, "rb").read(), password=None)
    meta = sealed["metadata"]
    label = label_for(scope_of(meta), meta.get("namespace", "default"), meta["name"])
    data = {}
    for k, v in sorted(sealed["spec"].get("encryptedData", {}).items()):
        try:
            data[k] = base64.b64encode(decrypt(key, base64.b64decode(v), label)).decode()
        except Exception:  # noqa: BLE001 - any failure is "cannot decrypt", as in sealant
            sys.stderr.write(f"cannot decrypt spec.encryptedData.{k}\n")
            sys.exit(1)
    template = sealed["spec"].get("template") or {}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace", "default")},
        "type": template.get("type", "Opaque"),
        "data": data,
    }
    json.dump(secret, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_seal = sub.add_parser("seal")
    p_seal.add_argument("--cert", required=True)
    p_seal.add_argument("--scope", choices=["strict", "namespace-wide", "cluster-wide"])
    p_seal.set_defaults(func=seal)
    p_unseal = sub.add_parser("unseal")
    p_unseal.add_argument("--key", required=True)
    p_unseal.set_defaults(func=unseal)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
