//! Sealing and opening values as age files: the sealant age envelope, and
//! passphrase-protected files.
//!
//! ```text
//!  seal(recipients, label, value)
//!    payload = b"sealant.dev/age/v1\n" || u16 BE len(label) || label || value
//!    blob    = age v1 file (binary; one X25519 stanza per recipient) of payload
//!
//!  open(identities, label, blob)
//!    age-decrypt (header MAC, STREAM tags, final chunk) ─▶ payload
//!    magic? ─▶ length fits? ─▶ label == expected? ─▶ value      else Error::Decrypt
//! ```
//!
//! The exact layout, the scope rules and why [`is_age`] can never mistake a Bitnami
//! blob for age are documented, and frozen, in [`crate::age`]. The known-answer
//! vectors in `tests/testdata/age/` pin them.
//!
//! Guarantees:
//! - [`open`] never panics on any input, and every failure is [`Error::Decrypt`]: a
//!   wrong identity, a wrong label, a truncated or tampered file, a missing magic.
//! - The payload is assembled and decrypted only in zeroizing buffers sized up front,
//!   so no reallocation leaves a copy of the value behind.
//!
//! # Passphrase files
//!
//! [`seal_with_passphrase`] and [`open_with_passphrase`] protect arbitrary bytes (for
//! example an encrypted key backup) with an age scrypt recipient. They carry no scope
//! label and no envelope: the plaintext of the age file is the bytes themselves, so
//! `age -d` opens the file with the same passphrase. The work factor is fixed
//! ([`PASSPHRASE_WORK_FACTOR`], N = 2^18, about 256 MiB and a second of CPU), not
//! calibrated to the machine, and [`open_with_passphrase`] refuses files that ask for
//! more than [`MAX_PASSPHRASE_WORK_FACTOR`] before doing any scrypt work, so a hostile
//! file cannot make it spend minutes or gigabytes.

use std::io::{Read as _, Write as _};
use std::iter;

use ::age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{AgeIdentity, AgeRecipient, Error, Plaintext};

/// The first bytes of every age v1 file, and so of every sealant age blob.
pub const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// The first bytes of the age payload (the file's plaintext) of every sealed value.
pub const MAGIC: &[u8] = b"sealant.dev/age/v1\n";

/// The longest scope label the envelope can carry (its length is a u16).
pub const MAX_LABEL_LEN: usize = u16::MAX as usize;

/// The scrypt work factor (log2 N) of [`seal_with_passphrase`].
pub const PASSPHRASE_WORK_FACTOR: u8 = 18;

/// The largest scrypt work factor (log2 N) [`open_with_passphrase`] accepts:
/// 2^20 takes 1 GiB of memory and a few seconds.
pub const MAX_PASSPHRASE_WORK_FACTOR: u8 = 20;

/// Length of the fixed part before the label: the magic and the u16 length.
const PREFIX_LEN: usize = MAGIC.len() + 2;

/// The longest age header sealant hands to age's parser: from the version line to the
/// end of the `---` MAC line. age's header parser takes time quadratic in the header's
/// length (a 75 KiB header took 0.7 s and a 1 MiB one would take minutes: found by the
/// `bundle_open` fuzz target), and the author of a SealedSecret chooses the blob, so a
/// longer header is refused unread, as [`Error::Decrypt`]. 8 KiB parses in
/// milliseconds and holds [`MAX_RECIPIENTS`] recipient stanzas with room to spare.
pub const MAX_HEADER: usize = 8 << 10;

/// The most age recipients one value or bundle is sealed to: their X25519 stanzas
/// (about 100 bytes each) and age's grease stanza fit [`MAX_HEADER`].
pub const MAX_RECIPIENTS: usize = 64;

/// True when the header of the age file `blob` ends, MAC line included, within
/// [`MAX_HEADER`] bytes: one linear pass, before age's parser sees the blob.
pub(crate) fn header_fits(blob: &[u8]) -> bool {
    let head = &blob[..blob.len().min(MAX_HEADER)];
    mac_line(head).is_some_and(|mac| head[mac + 1..].contains(&b'\n'))
}

/// Where the header's `---` MAC line begins (at its preceding newline), if anywhere
/// in `blob`.
fn mac_line(blob: &[u8]) -> Option<usize> {
    blob.windows(5).position(|w| w == b"\n--- ")
}

/// Refuses more recipients than [`MAX_RECIPIENTS`], before anything is sealed.
pub(crate) fn check_recipient_count(given: usize) -> Result<(), Error> {
    if given > MAX_RECIPIENTS {
        return Err(Error::TooManyAgeRecipients {
            given,
            max: MAX_RECIPIENTS,
        });
    }
    Ok(())
}

/// True when `blob` is an age v1 file (binary), false for a Bitnami blob or anything
/// else. Only the version line is looked at; see [`crate::age`] for why the two
/// formats can never be confused.
pub fn is_age(blob: &[u8]) -> bool {
    blob.starts_with(AGE_HEADER)
}

/// The number of recipient stanzas (`-> TAG ...` lines) in the header of the age file
/// `blob`, not counting the random `*-grease` stanzas age adds to every file: how many
/// recipients a value was sealed to. Anything that is not an age file counts 0. Reads
/// only the public header; never decrypts.
pub fn recipient_stanzas(blob: &[u8]) -> usize {
    if !is_age(blob) {
        return 0;
    }
    let header_end = mac_line(blob).unwrap_or(blob.len());
    blob[..header_end]
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"-> "))
        .filter(|stanza| {
            let tag = stanza.split(|b| *b == b' ').next().unwrap_or_default();
            !tag.ends_with(b"-grease")
        })
        .count()
}

/// Seals `plaintext` under `scope_label` to every recipient in `recipients`: any one
/// of their identities opens it, under exactly that label.
pub fn seal(
    recipients: &[AgeRecipient],
    scope_label: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    if recipients.is_empty() {
        return Err(Error::NoAgeRecipients);
    }
    check_recipient_count(recipients.len())?;
    let label_len = u16::try_from(scope_label.len()).map_err(|_| Error::LabelTooLong {
        len: scope_label.len(),
    })?;
    let mut payload = Zeroizing::new(Vec::with_capacity(
        PREFIX_LEN + scope_label.len() + plaintext.len(),
    ));
    payload.extend_from_slice(MAGIC);
    payload.extend_from_slice(&label_len.to_be_bytes());
    payload.extend_from_slice(scope_label);
    payload.extend_from_slice(plaintext);

    let recipients = recipients
        .iter()
        .map(|r| r.as_age() as &dyn ::age::Recipient);
    encrypt(recipients, &payload)
}

/// Opens a sealed value with whichever of `identities` can, and checks that it was
/// sealed under `scope_label`. Every failure is [`Error::Decrypt`].
pub fn open(
    identities: &[AgeIdentity],
    scope_label: &[u8],
    blob: &[u8],
) -> Result<Plaintext, Error> {
    let identities = identities
        .iter()
        .map(|i| i.as_age() as &dyn ::age::Identity);
    let payload = decrypt(identities, blob)?;
    unwrap_envelope(payload, scope_label)
}

/// Opens a sealed value with one identity (the key ring tries them one at a time to
/// report which one opened it).
pub(crate) fn open_one(
    identity: &AgeIdentity,
    scope_label: &[u8],
    blob: &[u8],
) -> Result<Plaintext, Error> {
    let payload = decrypt(iter::once(identity.as_age() as &dyn ::age::Identity), blob)?;
    unwrap_envelope(payload, scope_label)
}

/// Encrypts arbitrary bytes to a passphrase (an age scrypt recipient, work factor
/// [`PASSPHRASE_WORK_FACTOR`]), with no scope label: `age -d` opens the result.
pub fn seal_with_passphrase(passphrase: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    seal_with_passphrase_work_factor(passphrase, plaintext, PASSPHRASE_WORK_FACTOR)
}

/// [`seal_with_passphrase`] with an explicit scrypt work factor `log_n` (N = 2^log_n),
/// from 1 to [`MAX_PASSPHRASE_WORK_FACTOR`]. Small factors are for tests only.
pub fn seal_with_passphrase_work_factor(
    passphrase: &str,
    plaintext: &[u8],
    log_n: u8,
) -> Result<Vec<u8>, Error> {
    if passphrase.is_empty() {
        return Err(Error::EmptyPassphrase);
    }
    if !(1..=MAX_PASSPHRASE_WORK_FACTOR).contains(&log_n) {
        return Err(Error::InvalidWorkFactor {
            log_n,
            max: MAX_PASSPHRASE_WORK_FACTOR,
        });
    }
    let mut recipient = ::age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
    recipient.set_work_factor(log_n);
    encrypt(iter::once(&recipient as &dyn ::age::Recipient), plaintext)
}

/// Decrypts a passphrase-protected age file (binary, one scrypt stanza). Every failure,
/// including a work factor above [`MAX_PASSPHRASE_WORK_FACTOR`], is [`Error::Decrypt`].
pub fn open_with_passphrase(passphrase: &str, blob: &[u8]) -> Result<Plaintext, Error> {
    let mut identity = ::age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
    identity.set_max_work_factor(MAX_PASSPHRASE_WORK_FACTOR);
    let payload = decrypt(iter::once(&identity as &dyn ::age::Identity), blob)?;
    Ok(into_plaintext(payload))
}

pub(crate) fn encrypt<'a>(
    recipients: impl Iterator<Item = &'a dyn ::age::Recipient>,
    payload: &[u8],
) -> Result<Vec<u8>, Error> {
    let encryptor = ::age::Encryptor::with_recipients(recipients).map_err(|_| Error::Encrypt)?;
    // Header (~130 bytes per stanza), nonce, and 16 bytes of tag per 64 KiB chunk.
    let mut blob = Vec::with_capacity(payload.len() + payload.len() / 4096 + 512);
    let mut writer = encryptor
        .wrap_output(&mut blob)
        .map_err(|_| Error::Encrypt)?;
    writer.write_all(payload).map_err(|_| Error::Encrypt)?;
    writer.finish().map_err(|_| Error::Encrypt)?;
    Ok(blob)
}

/// Decrypts a whole age file into a zeroizing buffer; any failure is `Decrypt`.
pub(crate) fn decrypt<'a>(
    identities: impl Iterator<Item = &'a dyn ::age::Identity>,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    if !is_age(blob) || !header_fits(blob) {
        return Err(Error::Decrypt);
    }
    let decryptor = ::age::Decryptor::new_buffered(blob).map_err(|_| Error::Decrypt)?;
    let mut reader = decryptor.decrypt(identities).map_err(|_| Error::Decrypt)?;
    // The plaintext is shorter than the file, so this buffer never reallocates.
    let mut payload = Zeroizing::new(Vec::with_capacity(blob.len()));
    reader
        .read_to_end(&mut payload)
        .map_err(|_| Error::Decrypt)?;
    Ok(payload)
}

/// Checks the magic and the label, and returns the value. Any mismatch is `Decrypt`.
fn unwrap_envelope(
    mut payload: Zeroizing<Vec<u8>>,
    scope_label: &[u8],
) -> Result<Plaintext, Error> {
    let rest = payload.strip_prefix(MAGIC).ok_or(Error::Decrypt)?;
    let (len, rest) = rest.split_first_chunk::<2>().ok_or(Error::Decrypt)?;
    let label_len = usize::from(u16::from_be_bytes(*len));
    let label = rest.get(..label_len).ok_or(Error::Decrypt)?;
    if label != scope_label {
        return Err(Error::Decrypt);
    }
    // Shift the value to the front in place; the buffer (all its capacity) is wiped
    // when `payload` or the returned Plaintext is dropped.
    payload.drain(..PREFIX_LEN + label_len);
    Ok(into_plaintext(payload))
}

pub(crate) fn into_plaintext(mut payload: Zeroizing<Vec<u8>>) -> Plaintext {
    Plaintext::new(std::mem::take(&mut *payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AgeIdentity {
        AgeIdentity::generate()
    }

    #[test]
    fn sealed_value_is_an_age_file_that_opens_under_its_label() {
        let id = identity();
        let blob = seal(&[id.recipient().clone()], b"prod/db", b"s3cret").expect("seal");
        assert!(is_age(&blob));
        assert!(blob.starts_with(b"age-encryption.org/v1\n-> X25519 "));
        let opened = open(&[id], b"prod/db", &blob).expect("open");
        assert_eq!(opened.expose_secret(), b"s3cret");
    }

    #[test]
    fn recipient_stanzas_counts_recipients_without_grease() {
        let (a, b) = (identity(), identity());
        let one = seal(&[a.recipient().clone()], b"", b"v").expect("seal");
        let two = seal(&[a.recipient().clone(), b.recipient().clone()], b"", b"v").expect("seal");
        assert_eq!(recipient_stanzas(&one), 1);
        assert_eq!(recipient_stanzas(&two), 2);
        assert_eq!(recipient_stanzas(b"not age"), 0);
        assert_eq!(recipient_stanzas(AGE_HEADER), 0);
    }

    #[test]
    fn recipient_stanzas_are_counted_in_the_header_only() {
        let blob = b"age-encryption.org/v1\n-> X25519 a\nb\n-> X25519 c\nd\n-> x-grease 1\n\n--- mac\n\n-> body";
        assert_eq!(recipient_stanzas(blob), 2);
        assert_eq!(
            recipient_stanzas(b"age-encryption.org/v1\n-> X25519 a\nb\n--- m\n"),
            1
        );
    }

    #[test]
    fn any_one_of_several_recipients_opens_the_value() {
        let (a, b) = (identity(), identity());
        let blob = seal(
            &[a.recipient().clone(), b.recipient().clone()],
            b"",
            b"shared",
        )
        .expect("seal");
        for id in [a, b] {
            let opened = open(&[identity(), id], b"", &blob).expect("open");
            assert_eq!(opened.expose_secret(), b"shared");
        }
    }

    #[test]
    fn another_label_another_identity_or_no_identity_fails_with_decrypt() {
        let id = identity();
        let blob = seal(&[id.recipient().clone()], b"prod/db", b"v").expect("seal");
        for label in [&b"dev/db"[..], b"prod", b"", b"prod/db\0", b"prod/d"] {
            assert!(matches!(
                open(std::slice::from_ref(&id), label, &blob),
                Err(Error::Decrypt)
            ));
        }
        assert!(matches!(
            open(&[identity()], b"prod/db", &blob),
            Err(Error::Decrypt)
        ));
        assert!(matches!(open(&[], b"prod/db", &blob), Err(Error::Decrypt)));
    }

    #[test]
    fn payloads_without_the_envelope_fail_with_decrypt() {
        let id = identity();
        let to = [id.recipient().as_age() as &dyn ::age::Recipient];
        let mut label_past_end = MAGIC.to_vec();
        label_past_end.extend_from_slice(&[0, 9, b'p']);
        for payload in [
            &b""[..],
            b"s3cret",
            &MAGIC[..MAGIC.len() - 1],
            MAGIC,
            &[MAGIC, &[0][..]].concat(),
            &label_past_end,
            &[b"sealant.dev/age/v2\n", &[0, 0][..], b"v"].concat(),
        ] {
            let blob = encrypt(to.iter().copied(), payload).expect("encrypt");
            let result = open(std::slice::from_ref(&id), b"", &blob);
            assert!(matches!(result, Err(Error::Decrypt)), "{payload:?}");
        }
        let ok = encrypt(to.iter().copied(), &[MAGIC, &[0, 0][..]].concat()).expect("encrypt");
        let opened = open(&[id], b"", &ok).expect("minimal envelope");
        assert!(opened.is_empty());
    }

    #[test]
    fn seal_refuses_no_recipients_and_oversized_labels() {
        assert!(matches!(seal(&[], b"", b"v"), Err(Error::NoAgeRecipients)));
        let id = identity();
        let long = vec![b'a'; MAX_LABEL_LEN + 1];
        assert!(matches!(
            seal(&[id.recipient().clone()], &long, b"v"),
            Err(Error::LabelTooLong { len }) if len == MAX_LABEL_LEN + 1
        ));
        let longest = vec![b'a'; MAX_LABEL_LEN];
        let blob = seal(&[id.recipient().clone()], &longest, b"v").expect("seal");
        assert_eq!(
            open(&[id], &longest, &blob).expect("open").expose_secret(),
            b"v"
        );
    }

    /// An age header of one stanza whose body runs for `lines` full lines: what the
    /// `bundle_open` fuzz target found (age parses it in time quadratic in its length).
    fn long_header(lines: usize) -> Vec<u8> {
        let mut blob = b"age-encryption.org/v1\n-> X25519 AAAA\n".to_vec();
        for _ in 0..lines {
            blob.extend_from_slice(&[b'A'; 64]);
            blob.push(b'\n');
        }
        blob.extend_from_slice(b"AA\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        blob.extend_from_slice(&[0; 64]);
        blob
    }

    #[test]
    fn a_header_longer_than_max_header_is_refused_before_age_parses_it() {
        let long = long_header(MAX_HEADER / 65 + 1);
        assert!(!header_fits(&long));
        let id = AgeIdentity::generate();
        assert!(matches!(open(&[id], b"x", &long), Err(Error::Decrypt)));
        // A header that fits is handed to age (which refuses this one on its own).
        assert!(header_fits(&long_header(8)));
        // No MAC line within the bound, or a MAC line cut off by it, does not fit.
        assert!(!header_fits(b"age-encryption.org/v1\n-> X25519 AAAA\nAA\n"));
        let mut cut = vec![b'A'; MAX_HEADER - 10];
        cut.extend_from_slice(b"\n--- AAAAAAAAAAAAAAAA\n");
        assert!(!header_fits(&cut));
    }

    #[test]
    fn the_most_recipients_allowed_fit_the_header_bound_and_one_more_is_refused() {
        let ids: Vec<AgeIdentity> = (0..MAX_RECIPIENTS)
            .map(|_| AgeIdentity::generate())
            .collect();
        let mut recipients: Vec<AgeRecipient> = ids.iter().map(|i| i.recipient().clone()).collect();
        let blob = seal(&recipients, b"ns/name", b"v").expect("seals to the most allowed");
        assert!(header_fits(&blob));
        let last = &ids[MAX_RECIPIENTS - 1];
        assert_eq!(
            open(std::slice::from_ref(last), b"ns/name", &blob)
                .expect("the last recipient opens it")
                .expose_secret(),
            b"v"
        );
        recipients.push(AgeIdentity::generate().recipient().clone());
        assert!(matches!(
            seal(&recipients, b"ns/name", b"v"),
            Err(Error::TooManyAgeRecipients { given, max }) if given == MAX_RECIPIENTS + 1 && max == MAX_RECIPIENTS
        ));
    }

    #[test]
    fn bitnami_blobs_are_never_taken_for_age() {
        assert!(!is_age(b""));
        assert!(!is_age(b"age-encryption.org/v1"));
        assert!(!is_age(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
        for rsa_bytes in [256u16, 384, 512, 1024, 2048] {
            let mut blob = rsa_bytes.to_be_bytes().to_vec();
            blob.extend_from_slice(&[0x61; 64]);
            assert!(!is_age(&blob), "{rsa_bytes}");
        }
        assert_eq!(u16::from_be_bytes([AGE_HEADER[0], AGE_HEADER[1]]), 24_935);
    }

    #[test]
    fn passphrase_files_round_trip_and_refuse_other_passphrases() {
        let blob = seal_with_passphrase_work_factor("correct horse", b"backup", 10).expect("seal");
        assert!(is_age(&blob));
        assert!(blob.starts_with(b"age-encryption.org/v1\n-> scrypt "));
        let opened = open_with_passphrase("correct horse", &blob).expect("open");
        assert_eq!(opened.expose_secret(), b"backup");
        assert!(matches!(
            open_with_passphrase("wrong horse", &blob),
            Err(Error::Decrypt)
        ));
        // An X25519 identity is no passphrase, and a passphrase file is no envelope.
        assert!(matches!(
            open(&[identity()], b"", &blob),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn passphrase_sealing_refuses_empty_passphrases_and_absurd_work_factors() {
        assert!(matches!(
            seal_with_passphrase("", b"x"),
            Err(Error::EmptyPassphrase)
        ));
        for log_n in [0, MAX_PASSPHRASE_WORK_FACTOR + 1, 63, 64, 255] {
            assert!(matches!(
                seal_with_passphrase_work_factor("p", b"x", log_n),
                Err(Error::InvalidWorkFactor { .. })
            ));
        }
    }

    #[test]
    fn an_x25519_value_does_not_open_with_a_passphrase() {
        let id = identity();
        let blob = seal(&[id.recipient().clone()], b"", b"v").expect("seal");
        assert!(matches!(
            open_with_passphrase("p", &blob),
            Err(Error::Decrypt)
        ));
    }
}
