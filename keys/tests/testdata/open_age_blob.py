#!/usr/bin/env python3
"""Independent age v1 decryptor and sealant age envelope reader.

Written from the age specification (c2sp.org/age, age-encryption.org/v1) and the
envelope description in keys/src/age.rs only, with the Python `cryptography` package,
so that a bug shared by the `age` crate, our Rust code and its own tests cannot hide.
keys/tests/python_open_age.rs runs it on blobs sealed by sealant-keys, and
gen_age_vectors.py imports it (Bech32, the strict header parser, the decryptor) to
self-check every vector it writes.

    blob    = age v1 file (binary): header, 16-byte nonce, STREAM payload
    payload = b"sealant.dev/age/v1\\n" || u16 BE len(label) || label || value

Usage:
    python3 open_age_blob.py --identity FILE --scope strict|namespace-wide|cluster-wide \\
        --namespace NS --name NAME BLOB_FILE
    python3 open_age_blob.py --passphrase-file FILE BLOB_FILE
    python3 open_age_blob.py --bundle --identity FILE BUNDLE_FILE
    python3 open_age_blob.py --bundle --passphrase-file FILE BUNDLE_FILE

--bundle reads a sealant key bundle (keys/src/bundle.rs): an age file, ASCII-armored
(c2sp.org/age armor, checked strictly by dearmor() below) or binary, with no envelope.

--identity reads an age identity file (`#` comments allowed, as age-keygen writes it).
With --passphrase-file the file is a passphrase age file and no envelope is expected.
BLOB_FILE holds the raw blob bytes (not base64). The plaintext is written raw to stdout.
Exit codes: 0 opened, 1 cannot decrypt (any cause, as coarse as the Rust side), 2 usage.
"""

import argparse
import base64
import binascii
import hmac
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

VERSION_LINE = b"age-encryption.org/v1\n"
MAGIC = b"sealant.dev/age/v1\n"
X25519_INFO = b"age-encryption.org/v1/X25519"
SCRYPT_SALT_LABEL = b"age-encryption.org/v1/scrypt"
CHUNK = 64 * 1024
TAG = 16
MAX_WORK_FACTOR = 20
SCOPES = ("strict", "namespace-wide", "cluster-wide")


class DecryptError(Exception):
    """Any failure to open a blob. Deliberately carries no detail."""


# --- Bech32 (BIP 173, without its length limit, as the age spec says) ---

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values):
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= GEN[i] if ((top >> i) & 1) else 0
    return chk


def _hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data, frombits, tobits, pad):
    acc = 0
    bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Lower-case Bech32 of `data` under `hrp` (the caller upper-cases identities)."""
    hrp = hrp.lower()
    five = _convertbits(data, 8, 5, True)
    poly = _polymod(_hrp_expand(hrp) + five + [0] * 6) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in five + checksum)


def bech32_decode(text: str):
    """Returns (hrp, bytes) or raises ValueError."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValueError("no separator")
    hrp, data = text[:pos], text[pos + 1:]
    values = [CHARSET.find(c) for c in data]
    if -1 in values:
        raise ValueError("bad character")
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError("bad checksum")
    return hrp, bytes(_convertbits(values[:-6], 5, 8, False))


def identity_to_key(text: str) -> X25519PrivateKey:
    hrp, raw = bech32_decode(text.strip())
    if hrp != "age-secret-key-" or len(raw) != 32:
        raise ValueError("not an X25519 age identity")
    return X25519PrivateKey.from_private_bytes(raw)


def recipient_to_key(text: str) -> X25519PublicKey:
    hrp, raw = bech32_decode(text.strip())
    if hrp != "age" or len(raw) != 32:
        raise ValueError("not an X25519 age recipient")
    return X25519PublicKey.from_public_bytes(raw)


def read_identity_file(text: str):
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(identity_to_key(line))
    if not keys:
        raise ValueError("no identity in the file")
    return keys


# --- primitives as the spec names them ---


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def b64_strict(text: bytes) -> bytes:
    """Canonical unpadded base64 or DecryptError (spec: reject padding, non-canonical)."""
    if b"=" in text:
        raise DecryptError()
    try:
        raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise DecryptError() from e
    if b64(raw).encode() != text:
        raise DecryptError()
    return raw


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def x25519_wrap_key(shared: bytes, share: bytes, recipient: bytes) -> bytes:
    return hkdf(shared, share + recipient, X25519_INFO)


def scrypt_wrap_key(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_SALT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase)


def stream_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# --- the header ---


def parse_header(blob: bytes):
    """Returns (stanzas, header bytes up to and including '---', mac, rest).

    A stanza is (args: list[bytes], body: bytes). Follows the ABNF of the spec."""
    if not blob.startswith(VERSION_LINE):
        raise DecryptError()
    pos = len(VERSION_LINE)
    stanzas = []
    while True:
        end = blob.find(b"\n", pos)
        if end < 0:
            raise DecryptError()
        line = blob[pos:end]
        if line.startswith(b"--- "):
            mac = b64_strict(line[4:])
            if len(mac) != 32 or not stanzas:
                raise DecryptError()
            return stanzas, blob[: pos + 3], mac, blob[end + 1:]
        if not line.startswith(b"-> "):
            raise DecryptError()
        args = line[3:].split(b" ")
        if not args or any(not a or any(c < 0x21 or c > 0x7E for c in a) for a in args):
            raise DecryptError()
        pos = end + 1
        body_text = b""
        while True:
            end = blob.find(b"\n", pos)
            if end < 0:
                raise DecryptError()
            body_line = blob[pos:end]
            pos = end + 1
            if len(body_line) > 64:
                raise DecryptError()
            body_text += body_line
            if len(body_line) < 64:
                break
        stanzas.append((args, b64_strict(body_text)))


def unwrap_x25519(stanzas, key: X25519PrivateKey):
    ours = key.public_key().public_bytes_raw()
    for args, body in stanzas:
        if args[0] != b"X25519":
            continue  # the spec: ignore stanzas of other types
        if len(args) != 2:
            raise DecryptError()
        share = b64_strict(args[1])
        if len(share) != 32 or len(body) != 32:
            raise DecryptError()
        try:
            # cryptography refuses an all-zero shared secret (a low-order share), which
            # the spec says must abort.
            shared = key.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError as e:
            raise DecryptError() from e
        if not any(shared):
            raise DecryptError()
        try:
            return ChaCha20Poly1305(x25519_wrap_key(shared, share, ours)).decrypt(
                b"\0" * 12, body, None
            )
        except InvalidTag:
            continue
    return None


def unwrap_scrypt(stanzas, passphrase: bytes):
    if len(stanzas) != 1 or stanzas[0][0][0] != b"scrypt":
        raise DecryptError()
    args, body = stanzas[0]
    if len(args) != 3 or len(body) != 32:
        raise DecryptError()
    salt = b64_strict(args[1])
    digits = args[2]
    if len(salt) != 16 or not digits.isdigit() or (digits != b"0" and digits.startswith(b"0")):
        raise DecryptError()
    log_n = int(digits)
    if not 1 <= log_n <= MAX_WORK_FACTOR:
        raise DecryptError()
    try:
        return ChaCha20Poly1305(scrypt_wrap_key(passphrase, salt, log_n)).decrypt(
            b"\0" * 12, body, None
        )
    except InvalidTag as e:
        raise DecryptError() from e


def stream_decrypt(key: bytes, payload: bytes) -> bytes:
    aead = ChaCha20Poly1305(key)
    out = []
    counter = 0
    pos = 0
    while True:
        remaining = len(payload) - pos
        if remaining < TAG:
            raise DecryptError()  # no final chunk
        last = remaining <= CHUNK + TAG
        chunk = payload[pos: pos + CHUNK + TAG]
        try:
            plain = aead.decrypt(stream_nonce(counter, last), chunk, None)
        except InvalidTag as e:
            raise DecryptError() from e
        if last and not plain and counter > 0:
            raise DecryptError()  # only an empty file may end in an empty chunk
        out.append(plain)
        if last:
            return b"".join(out)
        pos += CHUNK + TAG
        counter += 1


def decrypt(blob: bytes, identities=(), passphrase=None) -> bytes:
    """Decrypts an age file with X25519 identities or a passphrase."""
    stanzas, header, mac, rest = parse_header(blob)
    if any(args[0] == b"scrypt" for args, _ in stanzas):
        if passphrase is None:
            raise DecryptError()
        file_key = unwrap_scrypt(stanzas, passphrase)
    else:
        if passphrase is not None:
            raise DecryptError()
        file_key = None
        for key in identities:
            file_key = unwrap_x25519(stanzas, key)
            if file_key is not None:
                break
    if file_key is None or len(file_key) != 16:
        raise DecryptError()
    expected = hmac.new(hkdf(file_key, b"", b"header"), header, "sha256").digest()
    if not hmac.compare_digest(expected, mac):
        raise DecryptError()
    if len(rest) < 16:
        raise DecryptError()
    nonce, payload = rest[:16], rest[16:]
    return stream_decrypt(hkdf(file_key, nonce, b"payload"), payload)


ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"


def dearmor(text: bytes) -> bytes:
    """The binary age file inside age's ASCII armor, or the input if it is binary.

    Written from c2sp.org/age "ASCII armor": leading and trailing whitespace around
    the block is allowed; inside it, LF or CRLF line endings, standard padded base64
    in lines of exactly 64 columns except the last, which is shorter or equal (never
    empty), and nothing but whitespace after the end line. Anything else is a
    DecryptError.
    """
    if text.startswith(VERSION_LINE):
        return text
    body = text.strip(b" \t\r\n")
    if not body.startswith(ARMOR_BEGIN) or not body.endswith(ARMOR_END):
        raise DecryptError()
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END or len(lines) < 3:
        raise DecryptError()
    data = lines[1:-1]
    if any(len(line) != 64 for line in data[:-1]) or not 0 < len(data[-1]) <= 64:
        raise DecryptError()
    joined = b"".join(data)
    try:
        raw = base64.b64decode(joined, validate=True)
    except (binascii.Error, ValueError) as e:
        raise DecryptError() from e
    if base64.b64encode(raw) != joined:
        raise DecryptError()
    return raw


def label(scope: str, namespace: str, name: str) -> bytes:
    """The scope label, as Bitnami builds its OAEP label."""
    if scope == "strict":
        return f"{namespace}/{name}".encode()
    if scope == "namespace-wide":
        return namespace.encode()
    if scope == "cluster-wide":
        return b""
    raise ValueError(f"unknown scope {scope!r}")


def unwrap_envelope(payload: bytes, expected_label: bytes) -> bytes:
    if not payload.startswith(MAGIC) or len(payload) < len(MAGIC) + 2:
        raise DecryptError()
    n = int.from_bytes(payload[len(MAGIC): len(MAGIC) + 2], "big")
    start = len(MAGIC) + 2
    if len(payload) < start + n or payload[start: start + n] != expected_label:
        raise DecryptError()
    return payload[start + n:]


def open_value(identities, blob: bytes, expected_label: bytes) -> bytes:
    """Opens one sealant age value or raises DecryptError."""
    return unwrap_envelope(decrypt(blob, identities=identities), expected_label)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identity", help="age identity file (AGE-SECRET-KEY-1...)")
    parser.add_argument("--passphrase-file", help="file holding the passphrase")
    parser.add_argument("--scope", choices=SCOPES)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--name", default="")
    parser.add_argument("--bundle", action="store_true",
                        help="the file is a key bundle: armored or binary, no envelope")
    parser.add_argument("blob", help="file holding the raw blob bytes")
    args = parser.parse_args()
    if (args.identity is None) == (args.passphrase_file is None):
        parser.error("give exactly one of --identity and --passphrase-file")
    if args.identity is not None and args.scope is None and not args.bundle:
        parser.error("--identity needs --scope")

    with open(args.blob, "rb") as f:
        blob = f.read()
    try:
        if args.bundle:
            blob = dearmor(blob)
        if args.identity is not None:
            with open(args.identity, encoding="utf-8") as f:
                keys = read_identity_file(f.read())
            if args.bundle:
                plaintext = decrypt(blob, identities=keys)
            else:
                plaintext = open_value(keys, blob, label(args.scope, args.namespace, args.name))
        else:
            with open(args.passphrase_file, "rb") as f:
                passphrase = f.read()
            plaintext = decrypt(blob, passphrase=passphrase)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DecryptError:
        print("error: cannot decrypt with the given identity and label", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(plaintext)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
