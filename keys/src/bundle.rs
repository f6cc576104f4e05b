//! Key bundles: encrypted backups and escrow bundles of a controller's keys.
//!
//! ```text
//!   plaintext (a YAML List of key Secrets, built by the caller)
//!     ├─ seal(recipients, ..) ────────────┐
//!     └─ seal_with_passphrase(pass, ..) ──┴─▶ age v1 file ─▶ ASCII armor ─▶ text for Git
//!
//!   file (armored or binary age) ─▶ open(identities, ..) / open_with_passphrase(..) ─▶ plaintext
//! ```
//!
//! A bundle is a plain age v1 file, written with age's ASCII armor
//! (`-----BEGIN AGE ENCRYPTED FILE-----`, base64 in 64-column lines). Its plaintext is
//! whatever the caller hands in, byte for byte, with no sealant envelope: sealant
//! stores a Kubernetes `List` of key Secrets in Bitnami's shape there, so at 3 a.m. the
//! stock tools restore it too:
//!
//! ```text
//!   age -d -i escrow.key bundle.age | kubectl apply -f -
//! ```
//!
//! Unlike a sealed value, a bundle carries no scope label: it is not bound to an object,
//! and whoever holds the identity (or passphrase) is meant to get every key in it.
//!
//! Guarantees:
//! - [`open`] and [`open_with_passphrase`] accept the armored and the binary form, never
//!   panic on any input, and report every failure as [`Error::Decrypt`];
//! - passphrase files use scrypt at [`age_envelope::PASSPHRASE_WORK_FACTOR`], and a file
//!   asking for more than [`age_envelope::MAX_PASSPHRASE_WORK_FACTOR`] is refused before
//!   any scrypt work (see [`age_envelope`]);
//! - the plaintext is returned in a zeroizing [`Plaintext`].

use std::io::{Read as _, Write as _};

use ::age::armor::{ArmoredReader, ArmoredWriter, Format};

use crate::{AgeIdentity, AgeRecipient, Error, Plaintext, age_envelope};

/// The first line of an ASCII-armored age file.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// True when `file` is an age file, armored (leading whitespace allowed) or binary:
/// something [`open`] or [`open_with_passphrase`] may decrypt, as opposed to a
/// plaintext key backup.
pub fn is_encrypted(file: &[u8]) -> bool {
    trim_start(file).starts_with(ARMOR_BEGIN.as_bytes()) || age_envelope::is_age(file)
}

/// `file` without leading ASCII whitespace (a binary age file never starts with any).
fn trim_start(file: &[u8]) -> &[u8] {
    let start = file
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(file.len());
    &file[start..]
}

/// True when `file` is an age file protected by a passphrase (an scrypt stanza) rather
/// than by recipients, so a caller can ask for the right secret. False for anything
/// that is not a readable age file.
pub fn is_passphrase_protected(file: &[u8]) -> bool {
    dearmor(file).is_ok_and(|binary| {
        ::age::Decryptor::new_buffered(&binary[..]).is_ok_and(|d| d.is_scrypt())
    })
}

/// Encrypts `plaintext` to every recipient in `recipients` (any one identity opens
/// it), as ASCII-armored text.
pub fn seal(recipients: &[AgeRecipient], plaintext: &[u8]) -> Result<String, Error> {
    if recipients.is_empty() {
        return Err(Error::NoAgeRecipients);
    }
    age_envelope::check_recipient_count(recipients.len())?;
    let recipients = recipients
        .iter()
        .map(|r| r.as_age() as &dyn ::age::Recipient);
    armor(&age_envelope::encrypt(recipients, plaintext)?)
}

/// Encrypts `plaintext` to a passphrase, as ASCII-armored text; see
/// [`age_envelope::seal_with_passphrase`] for the work factor.
pub fn seal_with_passphrase(passphrase: &str, plaintext: &[u8]) -> Result<String, Error> {
    armor(&age_envelope::seal_with_passphrase(passphrase, plaintext)?)
}

/// [`seal_with_passphrase`] with an explicit scrypt work factor (tests use small ones).
pub fn seal_with_passphrase_work_factor(
    passphrase: &str,
    plaintext: &[u8],
    log_n: u8,
) -> Result<String, Error> {
    armor(&age_envelope::seal_with_passphrase_work_factor(
        passphrase, plaintext, log_n,
    )?)
}

/// Decrypts a bundle (armored or binary) with whichever of `identities` can.
pub fn open(identities: &[AgeIdentity], file: &[u8]) -> Result<Plaintext, Error> {
    let binary = dearmor(file)?;
    let identities = identities
        .iter()
        .map(|i| i.as_age() as &dyn ::age::Identity);
    let plaintext = age_envelope::decrypt(identities, &binary)?;
    Ok(age_envelope::into_plaintext(plaintext))
}

/// Decrypts a passphrase-protected bundle (armored or binary).
pub fn open_with_passphrase(passphrase: &str, file: &[u8]) -> Result<Plaintext, Error> {
    age_envelope::open_with_passphrase(passphrase, &dearmor(file)?)
}

/// Wraps a binary age file in age's ASCII armor.
fn armor(binary: &[u8]) -> Result<String, Error> {
    let mut out = Vec::with_capacity(binary.len() * 4 / 3 + 128);
    let mut writer =
        ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|_| Error::Encrypt)?;
    writer.write_all(binary).map_err(|_| Error::Encrypt)?;
    writer.finish().map_err(|_| Error::Encrypt)?;
    String::from_utf8(out).map_err(|_| Error::Encrypt)
}

/// The binary age file inside `file`, which may be armored (leading whitespace
/// allowed, say from a YAML block) or already binary. Anything else, and a header
/// longer than [`age_envelope::MAX_HEADER`], is `Decrypt`.
fn dearmor(file: &[u8]) -> Result<Vec<u8>, Error> {
    if !is_encrypted(file) {
        return Err(Error::Decrypt);
    }
    let file = if age_envelope::is_age(file) {
        file
    } else {
        trim_start(file)
    };
    let mut binary = Vec::with_capacity(file.len());
    ArmoredReader::new(file)
        .read_to_end(&mut binary)
        .map_err(|_| Error::Decrypt)?;
    if !age_envelope::header_fits(&binary) {
        return Err(Error::Decrypt);
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[u8] = b"apiVersion: v1\nkind: List\nitems: []\n";

    #[test]
    fn sealed_bundle_is_armored_text_any_recipient_opens() {
        let (a, b) = (AgeIdentity::generate(), AgeIdentity::generate());
        let text = seal(&[a.recipient().clone(), b.recipient().clone()], LIST).expect("seal");
        assert!(text.starts_with(ARMOR_BEGIN));
        assert!(
            text.trim_end()
                .ends_with("-----END AGE ENCRYPTED FILE-----")
        );
        assert!(text.lines().all(|l| l.len() <= 64));
        assert!(is_encrypted(text.as_bytes()));
        assert!(!is_passphrase_protected(text.as_bytes()));
        for id in [a, b] {
            let opened = open(&[AgeIdentity::generate(), id], text.as_bytes()).expect("open");
            assert_eq!(opened.expose_secret(), LIST);
        }
    }

    #[test]
    fn binary_and_indented_armored_bundles_open() {
        let id = AgeIdentity::generate();
        let binary =
            age_envelope::encrypt(std::iter::once(id.recipient().as_age() as _), LIST).unwrap();
        let opened = open(std::slice::from_ref(&id), &binary).expect("binary");
        assert_eq!(opened.expose_secret(), LIST);
        let text = format!("\n  {}", seal(&[id.recipient().clone()], LIST).unwrap());
        let opened = open(&[id], text.as_bytes()).expect("leading whitespace");
        assert_eq!(opened.expose_secret(), LIST);
    }

    #[test]
    fn wrong_identity_tampering_truncation_and_plaintext_fail_with_decrypt() {
        let id = AgeIdentity::generate();
        let text = seal(&[id.recipient().clone()], LIST).unwrap();
        let other = AgeIdentity::generate();
        assert!(matches!(
            open(&[other], text.as_bytes()),
            Err(Error::Decrypt)
        ));
        assert!(matches!(open(&[], text.as_bytes()), Err(Error::Decrypt)));
        // Flip one base64 character in the body (not the armor lines).
        let mut tampered = text.clone().into_bytes();
        let body = tampered.len() / 2;
        tampered[body] = if tampered[body] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            open(std::slice::from_ref(&id), &tampered),
            Err(Error::Decrypt)
        ));
        let cut = &text.as_bytes()[..text.len() - 40];
        assert!(matches!(
            open(std::slice::from_ref(&id), cut),
            Err(Error::Decrypt)
        ));
        assert!(!is_encrypted(LIST));
        assert!(matches!(
            open(std::slice::from_ref(&id), LIST),
            Err(Error::Decrypt)
        ));
        assert!(matches!(open(&[id], b""), Err(Error::Decrypt)));
    }

    #[test]
    fn passphrase_bundle_opens_only_with_its_passphrase() {
        let text = seal_with_passphrase_work_factor("correct horse", LIST, 2).unwrap();
        assert!(text.starts_with(ARMOR_BEGIN));
        assert!(is_passphrase_protected(text.as_bytes()));
        let opened = open_with_passphrase("correct horse", text.as_bytes()).expect("open");
        assert_eq!(opened.expose_secret(), LIST);
        assert!(matches!(
            open_with_passphrase("wrong", text.as_bytes()),
            Err(Error::Decrypt)
        ));
        assert!(matches!(
            open(&[AgeIdentity::generate()], text.as_bytes()),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let id = AgeIdentity::generate();
        for input in [
            &b"-----BEGIN AGE ENCRYPTED FILE-----\n"[..],
            b"-----BEGIN AGE ENCRYPTED FILE-----\n!!!!\n-----END AGE ENCRYPTED FILE-----\n",
            b"age-encryption.org/v1\n",
            b"\xff\xfe",
        ] {
            assert!(open(std::slice::from_ref(&id), input).is_err());
            assert!(open_with_passphrase("p", input).is_err());
            assert!(!is_passphrase_protected(input));
        }
    }
}
