#!/usr/bin/env python3
"""Generates the key-bundle known-answer vectors with an independent implementation.

A sealant key bundle (keys/src/bundle.rs) is an age v1 file, ASCII-armored, whose
plaintext is a YAML List of key Secrets, with no sealant envelope. The age files here
come from gen_age_vectors.py (age v1 written from the specification on Python
`cryptography`); the armor is written below from c2sp.org/age ("ASCII armor"), and every
case is checked against open_age_blob.py's strict de-armorer and decryptor before it is
written.

Regenerate (from the repository root) with:

    "${SEALANT_PYTHON:-python3}" keys/tests/testdata/gen_bundle_vectors.py

Layout written beside this script:

    bundle/<case>.json
        identity     the AGE-SECRET-KEY-1... to open with (null for passphrase cases)
        passphrase   the passphrase to open with (null for X25519 cases)
        file         base64 of the bundle file exactly as it would sit in Git
        plaintext    base64 of the expected plaintext ("ok") or what was encrypted ("fail")
        expected     "ok" or "fail"
        description  what the case shows
"""

import base64
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_age_vectors as gen  # noqa: E402
import open_age_blob as age  # noqa: E402

LIST = (
    b"apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    tls.crt: Y2VydA==\n"
    b"    tls.key: a2V5\n  kind: Secret\n  metadata:\n    labels:\n"
    b"      sealedsecrets.bitnami.com/sealed-secrets-key: active\n"
    b"    name: sealed-secrets-keyabcde\n    namespace: kube-system\n"
    b"  type: kubernetes.io/tls\nkind: List\nmetadata: {}\n"
)


def armor(binary: bytes, width: int = 64, newline: bytes = b"\n") -> bytes:
    """age's ASCII armor: padded standard base64 in lines of `width` columns."""
    text = base64.b64encode(binary)
    lines = [text[i: i + width] for i in range(0, len(text), width)]
    return newline.join([age.ARMOR_BEGIN, *lines, age.ARMOR_END]) + newline


def to(identities, plaintext=LIST):
    return gen.age_file(lambda fk: [gen.x25519_stanza(fk, i.public) for i in identities], plaintext)


def main() -> None:
    a = gen.Identity(gen.SEEDS["a"])
    b = gen.Identity(gen.SEEDS["b"])
    out = HERE / "bundle"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()

    cases = {}

    def case(name, description, file, expected, *, opener=None, passphrase=None, plaintext=LIST):
        assert name not in cases, name
        cases[name] = {
            "identity": opener.text if opener else None,
            "passphrase": passphrase,
            "file": base64.b64encode(file).decode(),
            "plaintext": base64.b64encode(plaintext).decode(),
            "expected": expected,
            "description": description,
        }
        # Self-check with the independent de-armorer and decryptor.
        try:
            got = age.decrypt(
                age.dearmor(file),
                identities=[opener.key] if opener else (),
                passphrase=passphrase.encode() if passphrase is not None else None,
            )
            ok = got == plaintext
        except age.DecryptError:
            ok = False
        assert ok == (expected == "ok"), name

    to_a = to([a])
    case("ok-armored-to-one-recipient", "armored bundle to identity a", armor(to_a), "ok", opener=a)
    case("ok-armored-to-two-recipients-opened-by-second",
         "bundle to a and b opens with b alone", armor(to([a, b])), "ok", opener=b)
    case("ok-binary", "a binary (not armored) age file is accepted", to_a, "ok", opener=a)
    case("ok-surrounding-whitespace", "blank lines and spaces around the armor are allowed",
         b"\n\n  " + armor(to_a) + b"\n  \n", "ok", opener=a)
    case("ok-crlf", "CRLF line endings inside the armor are allowed",
         armor(to_a, newline=b"\r\n"), "ok", opener=a)
    passphrase = "correct horse battery staple"
    scrypt_file = gen.age_file(
        lambda fk: [gen.scrypt_stanza(fk, passphrase.encode(), 10)], LIST)
    case("ok-passphrase", "armored bundle to a passphrase (scrypt, N=2^10)",
         armor(scrypt_file), "ok", passphrase=passphrase)
    big = LIST * 225  # > 64 KiB: several STREAM chunks
    case("ok-large-multi-chunk", "a plaintext over 64 KiB (several STREAM chunks)",
         armor(to([a], big)), "ok", opener=a, plaintext=big)

    case("fail-wrong-identity", "bundle to a, opened with b", armor(to_a), "fail", opener=b)
    case("fail-wrong-passphrase", "passphrase bundle opened with another passphrase",
         armor(scrypt_file), "fail", passphrase="wrong")
    case("fail-recipient-bundle-with-passphrase", "an X25519 bundle opened with a passphrase",
         armor(to_a), "fail", passphrase=passphrase)
    tampered = bytearray(to_a)
    tampered[-20] ^= 1
    case("fail-tampered-payload", "one bit flipped in the payload", armor(bytes(tampered)),
         "fail", opener=a)
    case("fail-truncated-armor", "the END line is missing", armor(to_a)[:-40], "fail", opener=a)
    case("fail-truncated-payload", "the last 17 bytes of the age file are missing",
         armor(to_a[:-17]), "fail", opener=a)
    case("fail-long-armor-lines", "armor lines of 76 columns (PEM-style) are not age armor",
         armor(to_a, width=76), "fail", opener=a)
    padded = next(f for f in (to([a], LIST + b"#" * k) for k in range(3)) if len(f) % 3)
    case("fail-unpadded-armor", "the armor's base64 must keep its padding",
         armor(padded).replace(b"=", b""), "fail", opener=a)
    case("fail-garbage-after-armor", "text after the END line",
         armor(to_a) + b"trailing\n", "fail", opener=a)
    case("fail-plaintext-list", "an unencrypted List is not a bundle", LIST, "fail", opener=a)
    case("fail-empty-file", "an empty file", b"", "fail", opener=a)
    expensive = gen.age_file(lambda fk: [gen.scrypt_stanza(fk, b"p", 22, real=False)], LIST)
    case("fail-work-factor-too-high", "scrypt N=2^22 is refused before any work",
         armor(expensive), "fail", passphrase="p")

    for name, data in cases.items():
        (out / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
