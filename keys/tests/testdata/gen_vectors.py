#!/usr/bin/env python3
"""Generates the known-answer vectors for sealant-keys with an independent implementation.

Regenerate (from the repository root) with:

    "${SEALANT_PYTHON:-python3}" keys/tests/testdata/gen_vectors.py

It needs the `cryptography` package (written against 48.0.0; scripts/python-env.sh
pins it). The RSA keys are generated only when their PEM file is missing, so a rerun
keeps the committed keys; the certificates are then byte-identical too (fixed serial,
fixed validity, deterministic PKCS#1 v1.5 signatures). The blobs are not: RSA-OAEP and
the session keys are random by design, so a rerun rewrites every cases/*.json with new
blobs that mean the same thing. Commit the output.

Layout written beside this script:

    keys.json           one entry per key: PEM file, certificate file, bits, encoding and
                        the Bitnami/SSH SHA-256 fingerprint computed here
    <key>.pem           RSA private keys (PKCS#1 `RSA PRIVATE KEY`, one PKCS#8 `PRIVATE KEY`)
    <key>.crt.pem       a self-signed certificate for each key
    cases/<case>.json   one test case per file (as age's testkit does):
        key, scope, namespace, name   the key and the label to OPEN with
        plaintext                     base64 of the expected plaintext ("ok") or of
                                      what was sealed ("fail")
        blob                          base64 of the blob
        expected                      "ok" or "fail"
        behaviour                     the group a Rust test checks it under
        description                   what the case shows
"""

import base64
import datetime
import hashlib
import json
import os
import pathlib
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import open_blob  # noqa: E402  (the independent decryptor, used as a self-check)

KEYS = {
    # name: (bits, PEM encoding)
    "rsa2048-a": (2048, "pkcs1"),
    "rsa2048-b": (2048, "pkcs1"),
    "rsa2048-pkcs8": (2048, "pkcs8"),
    "rsa4096": (4096, "pkcs1"),
}


def load_or_make_key(name: str, bits: int, encoding: str) -> rsa.RSAPrivateKey:
    path = HERE / f"{name}.pem"
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits, path
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    fmt = {
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
        "pkcs8": serialization.PrivateFormat.PKCS8,
    }[encoding]
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    return key


def self_signed(name: str, key: rsa.RSAPrivateKey) -> bytes:
    """A certificate shaped like the Bitnami controller's: CA, SHA-256 with RSA."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sealant-vectors-{name}")])
    serial = int.from_bytes(hashlib.sha256(name.encode()).digest()[:16], "big") >> 1
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def ssh_fingerprint(key: rsa.RSAPrivateKey) -> str:
    """`SHA256:` + unpadded base64 of the SHA-256 of the SSH wire public key."""
    openssh = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    wire = base64.b64decode(openssh.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


def seal(public: rsa.RSAPublicKey, plaintext: bytes, oaep_label: bytes) -> bytes:
    """The Bitnami hybrid format, written from its description."""
    session_key = os.urandom(32)
    oaep = padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=oaep_label or None,
    )
    rsa_part = public.encrypt(session_key, oaep)
    aes_part = AESGCM(session_key).encrypt(b"\x00" * 12, plaintext, None)
    return struct.pack(">H", len(rsa_part)) + rsa_part + aes_part


def flip(blob: bytes, index: int) -> bytes:
    b = bytearray(blob)
    b[index] ^= 0x01
    return bytes(b)


def main() -> None:
    keys = {}
    manifest = {}
    for name, (bits, encoding) in KEYS.items():
        key = load_or_make_key(name, bits, encoding)
        keys[name] = key
        cert_file = f"{name}.crt.pem"
        (HERE / cert_file).write_bytes(self_signed(name, key))
        manifest[name] = {
            "pem": f"{name}.pem",
            "cert": cert_file,
            "bits": bits,
            "encoding": encoding,
            "fingerprint": ssh_fingerprint(key),
        }
    (HERE / "keys.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    large = hashlib.shake_256(b"sealant 64 KiB value").digest(64 * 1024)
    non_utf8 = bytes([0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28, 0xED, 0xA0, 0x80, 0x0A, 0x00])
    cases = {}

    def case(case_name, behaviour, description, key, scope, ns, nm, plaintext, blob, expected):
        assert case_name not in cases, case_name
        cases[case_name] = {
            "key": name_of[key],
            "scope": scope,
            "namespace": ns,
            "name": nm,
            "plaintext": base64.b64encode(plaintext).decode(),
            "blob": base64.b64encode(blob).decode(),
            "expected": expected,
            "behaviour": behaviour,
            "description": description,
        }

    name_of = {k: n for n, k in keys.items()}

    def sealed(key_name, scope, ns, nm, plaintext):
        key = keys[key_name]
        return key, seal(key.public_key(), plaintext, open_blob.label(scope, ns, nm))

    # --- round trips: every scope, both sizes, both PEM encodings, edge values ---
    for key_name in ("rsa2048-a", "rsa4096"):
        for scope in open_blob.SCOPES:
            value = f"s3cret for {scope} under {key_name}".encode()
            key, blob = sealed(key_name, scope, "prod", "db", value)
            case(f"ok-{scope}-{key_name}", "roundtrip",
                 f"{scope} value sealed to {key_name} opens as prod/db",
                 key, scope, "prod", "db", value, blob, "ok")
    key, blob = sealed("rsa2048-pkcs8", "strict", "prod", "db", b"from a PKCS#8 key")
    case("ok-strict-pkcs8-key", "roundtrip", "a PKCS#8 PEM key opens its strict value",
         key, "strict", "prod", "db", b"from a PKCS#8 key", blob, "ok")
    key, blob = sealed("rsa2048-a", "strict", "prod", "db", b"")
    case("ok-empty-value", "roundtrip", "an empty value seals to a tag-only AES part",
         key, "strict", "prod", "db", b"", blob, "ok")
    key, blob = sealed("rsa4096", "strict", "prod", "big", large)
    case("ok-large-64k-value", "roundtrip", "a 64 KiB value (RSA-4096)",
         key, "strict", "prod", "big", large, blob, "ok")
    key, blob = sealed("rsa2048-a", "namespace-wide", "prod", "bin", non_utf8)
    case("ok-non-utf8-value", "roundtrip", "raw bytes that are not UTF-8 survive unchanged",
         key, "namespace-wide", "prod", "bin", non_utf8, blob, "ok")
    key, blob = sealed("rsa2048-a", "namespace-wide", "prod", "db", b"any name")
    case("ok-namespace-wide-opens-under-other-name", "roundtrip",
         "a namespace-wide value opens as any name in its namespace",
         key, "namespace-wide", "prod", "other-name", b"any name", blob, "ok")
    key, blob = sealed("rsa2048-a", "cluster-wide", "prod", "db", b"anywhere")
    case("ok-cluster-wide-opens-in-other-namespace", "roundtrip",
         "a cluster-wide value opens in any namespace under any name",
         key, "cluster-wide", "elsewhere", "other", b"anywhere", blob, "ok")

    # --- wrong label: the value was moved ---
    v = b"bound to prod/db"
    key, strict = sealed("rsa2048-a", "strict", "prod", "db", v)
    case("fail-strict-moved-to-other-namespace", "label-mismatch",
         "strict prod/db opened as dev/db", key, "strict", "dev", "db", v, strict, "fail")
    case("fail-strict-moved-to-other-name", "label-mismatch",
         "strict prod/db opened as prod/other", key, "strict", "prod", "other", v, strict, "fail")
    case("fail-strict-opened-as-cluster-wide", "label-mismatch",
         "strict prod/db opened with the empty cluster-wide label",
         key, "cluster-wide", "prod", "db", v, strict, "fail")
    case("fail-strict-opened-as-namespace-wide", "label-mismatch",
         "strict prod/db opened with the namespace-wide label prod",
         key, "namespace-wide", "prod", "db", v, strict, "fail")
    key, nsw = sealed("rsa2048-a", "namespace-wide", "prod", "db", v)
    case("fail-namespace-wide-moved-to-other-namespace", "label-mismatch",
         "namespace-wide prod opened in dev", key, "namespace-wide", "dev", "db", v, nsw, "fail")
    key, cw = sealed("rsa4096", "cluster-wide", "prod", "db", v)
    case("fail-cluster-wide-opened-as-strict", "label-mismatch",
         "cluster-wide (empty label) opened with the strict label prod/db",
         key, "strict", "prod", "db", v, cw, "fail")

    # --- wrong key ---
    _, other = sealed("rsa2048-b", "strict", "prod", "db", v)
    case("fail-wrong-key-same-size", "wrong-key",
         "sealed to rsa2048-b, opened with rsa2048-a", keys["rsa2048-a"],
         "strict", "prod", "db", v, other, "fail")
    _, big = sealed("rsa4096", "strict", "prod", "db", v)
    case("fail-wrong-key-other-size", "wrong-key",
         "sealed to rsa4096, opened with rsa2048-a (prefix 512 vs a 256-byte key)",
         keys["rsa2048-a"], "strict", "prod", "db", v, big, "fail")

    # --- malformed blobs ---
    k = keys["rsa2048-a"]
    case("fail-empty-blob", "malformed", "no bytes at all", k, "strict", "prod", "db", v, b"", "fail")
    case("fail-one-byte-blob", "malformed", "half a length prefix",
         k, "strict", "prod", "db", v, strict[:1], "fail")
    case("fail-prefix-only-blob", "malformed", "a length prefix and nothing else",
         k, "strict", "prod", "db", v, strict[:2], "fail")
    case("fail-truncated-by-one-byte", "malformed", "the last tag byte is missing",
         k, "strict", "prod", "db", v, strict[:-1], "fail")
    case("fail-truncated-inside-rsa-part", "malformed", "cut in the middle of the RSA part",
         k, "strict", "prod", "db", v, strict[:130], "fail")
    case("fail-truncated-to-rsa-part", "malformed", "the whole AES part (even its tag) is gone",
         k, "strict", "prod", "db", v, strict[: 2 + 256], "fail")
    case("fail-length-prefix-past-end", "malformed", "prefix 0xffff, far longer than the blob",
         k, "strict", "prod", "db", v, b"\xff\xff" + strict[2:], "fail")
    case("fail-length-prefix-one-too-long", "malformed", "prefix 257 for a 2048-bit key",
         k, "strict", "prod", "db", v, struct.pack(">H", 257) + strict[2:], "fail")
    case("fail-length-prefix-one-too-short", "malformed", "prefix 255 for a 2048-bit key",
         k, "strict", "prod", "db", v, struct.pack(">H", 255) + strict[2:], "fail")
    case("fail-length-prefix-zero", "malformed", "prefix 0: everything is read as AES",
         k, "strict", "prod", "db", v, b"\x00\x00" + strict[2:], "fail")

    # --- tampered blobs ---
    case("fail-flipped-gcm-tag-byte", "tampered", "last byte of the GCM tag flipped",
         k, "strict", "prod", "db", v, flip(strict, len(strict) - 1), "fail")
    case("fail-flipped-gcm-ciphertext-byte", "tampered", "first AES ciphertext byte flipped",
         k, "strict", "prod", "db", v, flip(strict, 2 + 256), "fail")
    case("fail-flipped-rsa-byte", "tampered", "a byte in the middle of the RSA part flipped",
         k, "strict", "prod", "db", v, flip(strict, 2 + 128), "fail")
    case("fail-flipped-rsa-first-byte", "tampered", "the first RSA byte flipped",
         k, "strict", "prod", "db", v, flip(strict, 2), "fail")
    case("fail-trailing-garbage", "tampered", "one extra byte after the tag",
         k, "strict", "prod", "db", v, strict + b"\x00", "fail")
    modulus = k.public_key().public_numbers().n.to_bytes(256, "big")
    case("fail-rsa-part-equals-modulus", "tampered", "RSA ciphertext = n, out of range",
         k, "strict", "prod", "db", v, strict[:2] + modulus + strict[2 + 256:], "fail")
    _, empty_cw = sealed("rsa2048-a", "cluster-wide", "", "", b"")
    case("fail-empty-value-under-wrong-label", "label-mismatch",
         "an empty cluster-wide value opened with the label of dev/x",
         k, "strict", "dev", "x", b"", empty_cw, "fail")

    # Self-check every case against the independent decryptor before writing it.
    out = HERE / "cases"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    for case_name, c in sorted(cases.items()):
        blob = base64.b64decode(c["blob"])
        lbl = open_blob.label(c["scope"], c["namespace"], c["name"])
        try:
            got = open_blob.open_blob(keys[c["key"]], blob, lbl)
            outcome = "ok" if got == base64.b64decode(c["plaintext"]) else "wrong plaintext"
        except open_blob.DecryptError:
            outcome = "fail"
        assert outcome == c["expected"], (case_name, outcome)
        (out / f"{case_name}.json").write_text(json.dumps(c, indent=2) + "\n")
    print(f"wrote {len(cases)} cases and {len(keys)} keys to {HERE}")


if __name__ == "__main__":
    main()
