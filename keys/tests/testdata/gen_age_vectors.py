#!/usr/bin/env python3
"""Generates the age known-answer vectors for sealant-keys with an independent implementation.

age v1 (c2sp.org/age) is implemented here directly on Python `cryptography`: X25519,
HKDF-SHA-256, ChaCha20-Poly1305, HMAC-SHA-256, scrypt, unpadded base64 wrapped at 64
columns, Bech32, and the 64 KiB STREAM payload with its last-chunk flag. On top of it
sits the sealant envelope (keys/src/age.rs):

    payload = b"sealant.dev/age/v1\\n" || u16 BE len(label) || label || value

Regenerate (from the repository root) with:

    "${SEALANT_PYTHON:-python3}" keys/tests/testdata/gen_age_vectors.py

It needs the `cryptography` package (written against 48.0.0; scripts/python-env.sh
pins it). The identities are derived from fixed seeds, so they never change; the blobs
do (ephemeral keys, file keys and nonces are random by design), so a rerun rewrites every
age/*.json with new blobs that mean the same thing. Commit the output. Every case is
checked against the independent decryptor open_age_blob.py before it is written.

Layout written beside this script:

    age-identity-a.txt   identity "a" as an age-keygen style identity file (comments)
    age/<case>.json      one test case per file (as age's testkit does):
        identity         the AGE-SECRET-KEY-1... to OPEN with (null for passphrase cases)
        recipient        that identity's age1... recipient (null for passphrase cases)
        passphrase       the passphrase to OPEN with (null for X25519 cases)
        sealed_to        the recipients the blob was sealed to (empty for passphrase cases)
        scope, namespace, name, label
                         the scope to open under and the label it gives (label is
                         base64; passphrase cases carry no label: scope "none")
        plaintext        base64 of the expected plaintext ("ok") or what was sealed ("fail")
        blob             base64 of the blob (the raw age file)
        expected         "ok" or "fail"
        behaviour        the group a Rust test checks it under
        description      what the case shows
"""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import open_age_blob as age  # noqa: E402  (the independent decryptor, used as a self-check)

# Fixed identities: 32 bytes each. "spec" is the example of the age specification.
SEEDS = {
    "a": hashlib.sha256(b"sealant age vector identity a").digest(),
    "b": hashlib.sha256(b"sealant age vector identity b").digest(),
    "spec": b"\x42" * 32,
}


def identity_text(raw: bytes) -> str:
    return age.bech32_encode("AGE-SECRET-KEY-", raw).upper()


def recipient_text(raw_public: bytes) -> str:
    return age.bech32_encode("age", raw_public)


class Identity:
    def __init__(self, seed: bytes):
        self.key = X25519PrivateKey.from_private_bytes(seed)
        self.public = self.key.public_key().public_bytes_raw()
        self.text = identity_text(seed)
        self.recipient = recipient_text(self.public)


# --- age v1, written from the specification ---


def wrap_lines(text: str) -> bytes:
    """A stanza body: base64 wrapped at 64 columns, ending in a line shorter than 64."""
    lines = [text[i: i + 64] for i in range(0, len(text), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")
    return "".join(line + "\n" for line in lines).encode()


def x25519_stanza(file_key: bytes, recipient_public: bytes, ephemeral=None):
    esk = ephemeral or X25519PrivateKey.generate()
    share = esk.public_key().public_bytes_raw()
    shared = esk.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    body = ChaCha20Poly1305(age.x25519_wrap_key(shared, share, recipient_public)).encrypt(
        b"\0" * 12, file_key, None
    )
    return [b"X25519", age.b64(share).encode()], body


def scrypt_stanza(file_key: bytes, passphrase: bytes, log_n: int, real=True):
    salt = os.urandom(16)
    key = age.scrypt_wrap_key(passphrase, salt, log_n) if real else os.urandom(32)
    body = ChaCha20Poly1305(key).encrypt(b"\0" * 12, file_key, None)
    return [b"scrypt", age.b64(salt).encode(), str(log_n).encode()], body


def header(file_key: bytes, stanzas) -> bytes:
    out = age.VERSION_LINE
    for args, body in stanzas:
        out += b"-> " + b" ".join(args) + b"\n" + wrap_lines(age.b64(body))
    out += b"---"
    mac = hmac.new(age.hkdf(file_key, b"", b"header"), out, "sha256").digest()
    return out + b" " + age.b64(mac).encode() + b"\n"


def stream_encrypt(key: bytes, plaintext: bytes, empty_last_chunk=False) -> bytes:
    aead = ChaCha20Poly1305(key)
    chunks = [plaintext[i: i + age.CHUNK] for i in range(0, len(plaintext), age.CHUNK)] or [b""]
    if empty_last_chunk:
        chunks.append(b"")  # forbidden by the spec unless the file is empty
    out = b""
    for counter, chunk in enumerate(chunks):
        out += aead.encrypt(age.stream_nonce(counter, counter == len(chunks) - 1), chunk, None)
    return out


def age_file(stanzas_for, plaintext: bytes, **stream) -> bytes:
    """stanzas_for(file_key) -> list of (args, body); returns the binary age file."""
    file_key = os.urandom(16)
    nonce = os.urandom(16)
    head = header(file_key, stanzas_for(file_key))
    return head + nonce + stream_encrypt(age.hkdf(file_key, nonce, b"payload"), plaintext, **stream)


def envelope(scope_label: bytes, value: bytes) -> bytes:
    return age.MAGIC + struct.pack(">H", len(scope_label)) + scope_label + value


def seal(recipients, scope_label: bytes, value: bytes, **stream) -> bytes:
    return age_file(
        lambda fk: [x25519_stanza(fk, r.public) for r in recipients],
        envelope(scope_label, value),
        **stream,
    )


def flip(blob: bytes, index: int) -> bytes:
    b = bytearray(blob)
    b[index] ^= 0x01
    return bytes(b)


def mac_line_start(blob: bytes) -> int:
    return blob.index(b"\n--- ") + 1


def payload_start(blob: bytes) -> int:
    """Offset of the 16-byte nonce."""
    return blob.index(b"\n", mac_line_start(blob)) + 1


def main() -> None:
    ids = {name: Identity(seed) for name, seed in SEEDS.items()}
    a, b, spec = ids["a"], ids["b"], ids["spec"]
    assert spec.text == "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    assert spec.recipient == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
    (HERE / "age-identity-a.txt").write_text(
        "# sealant age vector identity a (test data, not a secret)\n"
        f"# public key: {a.recipient}\n{a.text}\n"
    )

    cases = {}

    def case(name, behaviour, description, plaintext, blob, expected, *, opener=None,
             sealed_to=(), scope="strict", ns="prod", nm="db", passphrase=None):
        assert name not in cases, name
        cases[name] = {
            "identity": opener.text if opener else None,
            "recipient": opener.recipient if opener else None,
            "passphrase": passphrase,
            "sealed_to": [r.recipient for r in sealed_to],
            "scope": scope,
            "namespace": ns,
            "name": nm,
            "label": base64.b64encode(age.label(scope, ns, nm)).decode() if scope != "none" else "",
            "plaintext": base64.b64encode(plaintext).decode(),
            "blob": base64.b64encode(blob).decode(),
            "expected": expected,
            "behaviour": behaviour,
            "description": description,
        }

    lbl = age.label
    large = hashlib.shake_256(b"sealant age 64 KiB value").digest(64 * 1024 + 1000)
    non_utf8 = bytes([0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28, 0xED, 0xA0, 0x80, 0x0A, 0x00])

    # --- round trips ---
    for scope in age.SCOPES:
        v = f"s3cret for {scope}".encode()
        case(f"ok-{scope}", "roundtrip", f"{scope} value sealed to identity a opens as prod/db",
             v, seal([a], lbl(scope, "prod", "db"), v), "ok", opener=a, sealed_to=[a], scope=scope)
    case("ok-empty-value", "roundtrip", "an empty strict value",
         b"", seal([a], b"prod/db", b""), "ok", opener=a, sealed_to=[a])
    case("ok-smallest-envelope", "roundtrip",
         "cluster-wide and empty: the 21-byte payload magic || 00 00",
         b"", seal([a], b"", b""), "ok", opener=a, sealed_to=[a], scope="cluster-wide")
    case("ok-larger-than-one-chunk", "roundtrip",
         "a 65,536 + 1,000 byte value: two STREAM chunks",
         large, seal([a], b"prod/big", large), "ok", opener=a, sealed_to=[a], nm="big")
    exact = large[: age.CHUNK - len(envelope(b"prod/db", b""))]
    case("ok-payload-exactly-one-chunk", "roundtrip",
         "a payload of exactly 64 KiB: one full chunk that is also the last",
         exact, seal([a], b"prod/db", exact), "ok", opener=a, sealed_to=[a])
    two = (large * 2)[: 2 * age.CHUNK - len(envelope(b"prod/db", b""))]
    case("ok-payload-exactly-two-chunks", "roundtrip",
         "a payload of exactly 128 KiB: the full second chunk is the last",
         two, seal([a], b"prod/db", two), "ok", opener=a, sealed_to=[a])
    case("ok-non-utf8-value", "roundtrip", "raw bytes that are not UTF-8 survive unchanged",
         non_utf8, seal([a], b"prod", non_utf8), "ok", opener=a, sealed_to=[a],
         scope="namespace-wide", nm="bin")
    v = b"for two clusters"
    both = seal([a, b], b"prod/db", v)
    case("ok-two-recipients-opened-by-first", "roundtrip", "sealed to a and b, opened by a",
         v, both, "ok", opener=a, sealed_to=[a, b])
    case("ok-two-recipients-opened-by-second", "roundtrip", "sealed to a and b, opened by b",
         v, both, "ok", opener=b, sealed_to=[a, b])
    case("ok-namespace-wide-opens-under-other-name", "roundtrip",
         "a namespace-wide value opens as any name in its namespace",
         b"any name", seal([a], b"prod", b"any name"), "ok", opener=a, sealed_to=[a],
         scope="namespace-wide", nm="other-name")
    case("ok-cluster-wide-opens-in-other-namespace", "roundtrip",
         "a cluster-wide value opens in any namespace under any name",
         b"anywhere", seal([a], b"", b"anywhere"), "ok", opener=a, sealed_to=[a],
         scope="cluster-wide", ns="elsewhere", nm="other")
    case("ok-spec-example-identity", "roundtrip", "sealed to the age spec's example recipient",
         b"spec", seal([spec], b"prod/db", b"spec"), "ok", opener=spec, sealed_to=[spec])
    v = b"unknown stanza first"
    unknown = age_file(
        lambda fk: [([b"sealant.dev/test-unknown", b"arg"], os.urandom(48)),
                    x25519_stanza(fk, a.public)],
        envelope(b"prod/db", v),
    )
    case("ok-unknown-stanza-is-ignored", "roundtrip",
         "an unrecognised stanza (48-byte body: a full line then an empty one) is skipped",
         v, unknown, "ok", opener=a, sealed_to=[a])

    # --- the value was moved: label mismatch ---
    v = b"bound to prod/db"
    strict = seal([a], b"prod/db", v)
    for name, desc, scope, ns, nm in [
        ("fail-strict-moved-to-other-namespace", "strict prod/db opened as dev/db", "strict", "dev", "db"),
        ("fail-strict-moved-to-other-name", "strict prod/db opened as prod/other", "strict", "prod", "other"),
        ("fail-strict-opened-as-namespace-wide", "strict prod/db opened with label prod",
         "namespace-wide", "prod", "db"),
        ("fail-strict-opened-as-cluster-wide", "strict prod/db opened with the empty label",
         "cluster-wide", "prod", "db"),
        ("fail-strict-label-prefix", "strict prod/db opened as prod/d (a prefix of the label)",
         "strict", "prod", "d"),
        ("fail-strict-label-extended", "strict prod/db opened as prod/dbx", "strict", "prod", "dbx"),
    ]:
        case(name, "label-mismatch", desc, v, strict, "fail", opener=a, sealed_to=[a],
             scope=scope, ns=ns, nm=nm)
    nsw = seal([a], b"prod", v)
    case("fail-namespace-wide-moved-to-other-namespace", "label-mismatch",
         "namespace-wide prod opened in dev", v, nsw, "fail", opener=a, sealed_to=[a],
         scope="namespace-wide", ns="dev")
    case("fail-namespace-wide-opened-as-strict", "label-mismatch",
         "namespace-wide prod opened with the strict label prod/db", v, nsw, "fail",
         opener=a, sealed_to=[a])
    cw = seal([a], b"", v)
    case("fail-cluster-wide-opened-as-strict", "label-mismatch",
         "cluster-wide opened with the strict label prod/db", v, cw, "fail",
         opener=a, sealed_to=[a])
    case("fail-empty-value-under-wrong-label", "label-mismatch",
         "an empty cluster-wide value opened with the label of dev/x",
         b"", seal([a], b"", b""), "fail", opener=a, sealed_to=[a], ns="dev", nm="x")

    # --- wrong identity ---
    case("fail-wrong-identity", "wrong-identity", "sealed to a, opened with b",
         v, strict, "fail", opener=b, sealed_to=[a])
    case("fail-wrong-identity-spec-key", "wrong-identity", "sealed to b, opened with the spec key",
         v, seal([b], b"prod/db", v), "fail", opener=spec, sealed_to=[b])

    # --- malformed files ---
    body_at = payload_start(strict) + 16
    for name, desc, blob in [
        ("fail-empty-blob", "no bytes at all", b""),
        ("fail-version-line-only", "the version line and nothing else", age.VERSION_LINE),
        ("fail-truncated-inside-header", "cut in the middle of the X25519 stanza", strict[:60]),
        ("fail-truncated-before-nonce", "the header ends, the nonce is missing",
         strict[: payload_start(strict)]),
        ("fail-truncated-inside-nonce", "half a payload nonce", strict[: payload_start(strict) + 8]),
        ("fail-truncated-before-payload", "header and nonce, but no chunk at all", strict[:body_at]),
        ("fail-truncated-by-one-byte", "the last tag byte is missing", strict[:-1]),
        ("fail-trailing-garbage", "one extra byte after the final chunk", strict + b"\x00"),
        ("fail-version-v2", "an unknown age version line",
         strict.replace(b"age-encryption.org/v1\n", b"age-encryption.org/v2\n", 1)),
        ("fail-armored", "an ASCII-armored age file (only binary is accepted)",
         b"-----BEGIN AGE ENCRYPTED FILE-----\n"
         + base64.encodebytes(strict).replace(b"\n", b"")[:64] + b"\n"
         + b"-----END AGE ENCRYPTED FILE-----\n"),
    ]:
        case(name, "malformed", desc, v, blob, "fail", opener=a, sealed_to=[a])
    two_chunks = seal([a], b"prod/big", large)
    start = payload_start(two_chunks) + 16
    case("fail-final-chunk-dropped", "malformed",
         "a two-chunk file cut after its first (non-final) chunk",
         large, two_chunks[: start + age.CHUNK + age.TAG], "fail", opener=a, sealed_to=[a], nm="big")
    exact_env = envelope(b"prod/db", exact)
    case("fail-empty-final-chunk", "malformed",
         "a full chunk flagged non-final, then an empty final chunk (forbidden by the spec)",
         exact, age_file(lambda fk: [x25519_stanza(fk, a.public)], exact_env, empty_last_chunk=True),
         "fail", opener=a, sealed_to=[a])
    no_stanza = age.VERSION_LINE + b"--- " + age.b64(os.urandom(32)).encode() + b"\n"
    case("fail-no-stanza", "malformed", "a header with no recipient stanza",
         v, no_stanza + os.urandom(16) + os.urandom(40), "fail", opener=a, sealed_to=[a])
    # A non-canonical encoding of the same ephemeral share, with a MAC recomputed over
    # it, so that only the spec's canonical-base64 rule rejects it.
    fk = os.urandom(16)
    args, body = x25519_stanza(fk, a.public)
    share_text = args[1].decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # 32 bytes = 43 chars; the last char carries 2 unused low bits, zero when canonical.
    idx = alphabet.index(share_text[-1])
    assert idx % 4 == 0
    args[1] = (share_text[:-1] + alphabet[idx | 1]).encode()
    assert args[1] != share_text.encode()
    nonce = os.urandom(16)
    noncanon = header(fk, [(args, body)]) + nonce + stream_encrypt(
        age.hkdf(fk, nonce, b"payload"), envelope(b"prod/db", v))
    case("fail-non-canonical-share-base64", "malformed",
         "the ephemeral share in non-canonical base64 (unused bits set), MAC recomputed",
         v, noncanon, "fail", opener=a, sealed_to=[a])
    fk = os.urandom(16)
    _, body = x25519_stanza(fk, a.public)
    nonce = os.urandom(16)
    zero_share = header(fk, [([b"X25519", age.b64(b"\0" * 32).encode()], body)]) + nonce + \
        stream_encrypt(age.hkdf(fk, nonce, b"payload"), envelope(b"prod/db", v))
    case("fail-all-zero-ephemeral-share", "malformed",
         "an all-zero ephemeral share (shared secret all zero: must abort), MAC recomputed",
         v, zero_share, "fail", opener=a, sealed_to=[a])

    # --- tampered files ---
    mac_at = mac_line_start(strict) + 4
    for name, desc, blob in [
        ("fail-flipped-payload-byte", "first byte of the encrypted payload flipped", flip(strict, body_at)),
        ("fail-flipped-final-tag-byte", "last byte of the final chunk's tag flipped",
         flip(strict, len(strict) - 1)),
        ("fail-flipped-payload-nonce", "a byte of the 16-byte payload nonce flipped",
         flip(strict, payload_start(strict))),
        ("fail-flipped-header-mac", "a character of the header MAC changed",
         strict[:mac_at] + (b"B" if strict[mac_at:mac_at + 1] == b"A" else b"A") + strict[mac_at + 1:]),
        ("fail-flipped-ephemeral-share", "the first character of the X25519 share changed",
         (lambda i: strict[:i] + (b"B" if strict[i:i + 1] == b"A" else b"A") + strict[i + 1:])(
             strict.index(b"-> X25519 ") + 10)),
        ("fail-flipped-stanza-body", "the first character of the stanza body changed",
         (lambda i: strict[:i] + (b"B" if strict[i:i + 1] == b"A" else b"A") + strict[i + 1:])(
             strict.index(b"\n", len(age.VERSION_LINE)) + 1)),
        ("fail-stanza-tag-renamed", "the stanza type X25519 renamed x25519",
         strict.replace(b"-> X25519 ", b"-> x25519 ", 1)),
    ]:
        case(name, "tampered", desc, v, blob, "fail", opener=a, sealed_to=[a])
    case("fail-second-chunk-flipped", "tampered", "a byte in the second (final) chunk flipped",
         large, flip(two_chunks, start + age.CHUNK + age.TAG + 3), "fail", opener=a,
         sealed_to=[a], nm="big")

    # --- valid age files whose payload is not a valid envelope ---
    def raw(payload):
        return age_file(lambda fk: [x25519_stanza(fk, a.public)], payload)

    for name, desc, payload in [
        ("fail-no-magic", "a plain value with no envelope at all", v),
        ("fail-empty-payload", "an empty age payload", b""),
        ("fail-garbled-magic", "magic sealant.dev/age/v2", b"sealant.dev/age/v2\n\x00\x07prod/db" + v),
        ("fail-magic-without-newline", "magic without its trailing newline",
         b"sealant.dev/age/v1\x00\x07prod/db" + v),
        ("fail-magic-upper-case", "magic in upper case", b"SEALANT.DEV/AGE/V1\n\x00\x07prod/db" + v),
        ("fail-magic-only", "the magic and nothing else", age.MAGIC),
        ("fail-half-a-length", "the magic and one byte of the length", age.MAGIC + b"\x00"),
        ("fail-label-length-past-end", "the length announces more label than there is",
         age.MAGIC + b"\x00\x08prod/db"),
        ("fail-label-length-little-endian", "the length 7 written little-endian",
         age.MAGIC + b"\x07\x00prod/db" + v),
    ]:
        case(name, "envelope", desc, v, raw(payload), "fail", opener=a, sealed_to=[a])

    # --- passphrase files (no envelope, no label) ---
    pw = "correct horse battery staple"
    pwb = pw.encode()

    def pw_file(plaintext, log_n=10, real=True, extra=()):
        return age_file(lambda fk: [scrypt_stanza(fk, pwb, log_n, real)]
                        + [x25519_stanza(fk, r.public) for r in extra], plaintext)

    backup = b"-----BEGIN RSA PRIVATE KEY-----\n(not really)\n"
    for name, desc, plaintext, blob, expected, passphrase in [
        ("ok-passphrase", "a passphrase file, work factor 2^10", backup, pw_file(backup), "ok", pw),
        ("ok-passphrase-empty-plaintext", "an empty passphrase file", b"", pw_file(b""), "ok", pw),
        ("ok-passphrase-larger-than-one-chunk", "two STREAM chunks under a passphrase",
         large, pw_file(large), "ok", pw),
        ("fail-wrong-passphrase", "opened with another passphrase", backup, pw_file(backup),
         "fail", "correct horse battery stapler"),
        ("fail-passphrase-work-factor-above-limit",
         "work factor 2^21, above sealant's limit of 2^20: refused before any scrypt work",
         backup, pw_file(backup, log_n=21, real=False), "fail", pw),
        ("fail-passphrase-mixed-with-x25519", "an scrypt stanza beside an X25519 stanza",
         backup, pw_file(backup, extra=[a]), "fail", pw),
        ("fail-passphrase-flipped-payload", "a payload byte flipped",
         backup, (lambda f: flip(f, payload_start(f) + 16))(pw_file(backup)), "fail", pw),
    ]:
        case(name, "passphrase", desc, plaintext, blob, expected, scope="none", ns="", nm="",
             passphrase=passphrase)

    # Self-check every case against the independent decryptor before writing it.
    out = HERE / "age"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    for name, c in sorted(cases.items()):
        blob = base64.b64decode(c["blob"])
        try:
            if c["passphrase"] is not None:
                got = age.decrypt(blob, passphrase=c["passphrase"].encode())
            else:
                got = age.open_value([age.identity_to_key(c["identity"])], blob,
                                     base64.b64decode(c["label"]))
            outcome = "ok" if got == base64.b64decode(c["plaintext"]) else "wrong plaintext"
        except age.DecryptError:
            outcome = "fail"
        assert outcome == c["expected"], (name, outcome)
        if c["identity"]:
            key = age.identity_to_key(c["identity"])
            assert recipient_text(key.public_key().public_bytes_raw()) == c["recipient"], name
        (out / f"{name}.json").write_text(json.dumps(c, indent=2) + "\n")
    print(f"wrote {len(cases)} age cases to {out}")


if __name__ == "__main__":
    main()
