//! age recipients and identities, and the sealant age envelope.
//!
//! A value sealed with sealant's age support can be opened by any cluster that holds one
//! of the identities it was sealed to, so one SealedSecret can serve several clusters.
//! This module holds the key types ([`AgeIdentity`], [`AgeRecipient`]) and the frozen
//! description of the envelope; [`crate::age_envelope`] seals and opens it.
//!
//! # The envelope (frozen: `sealant.dev/age/v1`)
//!
//! One value (for example `data.password` of a Secret) becomes one blob, and that blob
//! is a complete, standard **age v1 file** ([age-encryption.org/v1](https://c2sp.org/age)):
//! binary, never ASCII-armored, with one `X25519` recipient stanza per recipient, the
//! header MAC, a 16-byte payload nonce and the 64 KiB ChaCha20-Poly1305 STREAM payload.
//! `spec.encryptedData[key]` holds it as standard padded base64, exactly as it holds a
//! Bitnami blob.
//!
//! age has no label, so the scope label is bound inside the authenticated plaintext.
//! The age payload (the plaintext of the age file) is:
//!
//! ```text
//! offset      length  content
//! 0           19      magic  b"sealant.dev/age/v1\n"
//!                     (73 65 61 6c 61 6e 74 2e 64 65 76 2f 61 67 65 2f 76 31 0a)
//! 19          2       N, the scope label's length in bytes, u16 big-endian
//! 21          N       the scope label: "namespace/name" (strict), "namespace"
//!                     (namespace-wide) or empty (cluster-wide), exactly the bytes the
//!                     RSA format uses as its OAEP label (see crate::scope)
//! 21 + N      rest    the value: the raw bytes of the Secret value (may be empty)
//! ```
//!
//! So the smallest payload (cluster-wide, empty value) is the 21 bytes
//! `magic || 00 00`. A label longer than 65,535 bytes cannot be sealed (Kubernetes
//! names keep a real label under 320 bytes).
//!
//! ## Opening, and the scope rules
//!
//! The controller builds the expected label from the SealedSecret's own name, namespace
//! and scope annotations (never from `spec.template`), exactly as for RSA, and
//! [`age_envelope::open`](crate::age_envelope::open) accepts the value only if all of
//! this holds:
//!
//! 1. the blob is an age v1 file, one of the identities unwraps its file key, the header
//!    MAC verifies and every STREAM chunk authenticates, through a final chunk, with no
//!    trailing bytes;
//! 2. the payload starts with the magic and holds at least the 2-byte length and the
//!    `N` label bytes that length announces;
//! 3. the label bytes equal the expected label exactly (a strict value opened as
//!    namespace-wide, or moved to another name or namespace, fails; a namespace-wide
//!    value opens under any name in its namespace; a cluster-wide value opens anywhere).
//!
//! Every failure, whichever step it is, is the one coarse [`Error::Decrypt`], as for RSA.
//! Because the label sits in the age payload, which only a holder of the file key can
//! write and which the STREAM tags authenticate, a value cannot be re-labelled without
//! an identity, just as OAEP prevents it for RSA.
//!
//! ## Telling an age blob from a Bitnami blob
//!
//! An age blob starts with its version line `age-encryption.org/v1\n`
//! ([`age_envelope::AGE_HEADER`](crate::age_envelope::AGE_HEADER)), and
//! [`age_envelope::is_age`](crate::age_envelope::is_age) tests exactly that prefix.
//! A Bitnami blob starts with the u16 big-endian length of its RSA ciphertext, which is
//! the RSA modulus length: 256 to 1,024 bytes for the keys sealant makes (2048 to 8192
//! bits), and at most 2,048 bytes (16,384 bits, AWS-LC's ceiling) for any key it can
//! load. The first two bytes of an age blob, `"ag"` = `0x61 0x67`, would announce a
//! 24,935-byte (199,480-bit) RSA ciphertext, which no loadable key can have produced,
//! so no Bitnami blob is ever taken for age and no age blob for Bitnami. An armored age
//! file (`-----BEGIN AGE ENCRYPTED FILE-----`) is not accepted: it is not an age blob by
//! this test, and it fails as a Bitnami blob.
//!
//! # Keys
//!
//! - [`AgeIdentity`]: an X25519 identity, `AGE-SECRET-KEY-1...`. Parsed from that text
//!   or from an identity file as `age-keygen` writes it (`#` comment lines, blank lines,
//!   one identity per line); rendered only into a zeroizing `String`; its `Debug`
//!   shows the recipient, never the secret.
//! - [`AgeRecipient`]: the X25519 public key, `age1...`. Parse errors name the input and
//!   its line, except input that looks like a secret key, which is never echoed.
//!
//! Plugin, SSH and post-quantum (`age1pq1...`) recipients and identities are refused
//! with a clear error: a controller must be able to open what it was sealed to with no
//! plugin binary.
//!
//! # Choice of implementation
//!
//! age runs on the [`age`](https://docs.rs/age) crate (rage, by str4d: the Rust
//! reference implementation, interoperable with `age` and `age-keygen`), with its
//! default features off (no armor, no SSH, no plugins, no async). Writing the format by
//! hand on AWS-LC would have added no crate, but would also have meant our own header
//! parser, Bech32 codec, STREAM and scrypt, which is exactly the code where the
//! subtle mistakes live (non-canonical base64, header MAC scope, last-chunk and
//! trailing-data rules, scrypt work-factor limits). The crate costs about 75 more
//! crates in `Cargo.lock` (RustCrypto primitives and its localisation machinery,
//! `i18n-embed`/`fluent`), all MIT or Apache-2.0, and about 80 s of CPU once on a cold
//! build; none of it is on the RSA decrypt path. Our own use of it stays
//! independently checked: the known-answer vectors in `tests/testdata/age/` are written
//! by a separate Python implementation of the age spec (`gen_age_vectors.py`), and
//! Python opens what this crate seals (`tests/python_open_age.rs`).
//!
//! The `age` crate calibrates scrypt with a short timing run when a passphrase
//! recipient or identity is made. sealant overrides the outcome with fixed work
//! factors (see [`crate::age_envelope`]), so no output depends on a clock.

use std::fmt;
use std::str::FromStr;

use ::age::secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use crate::Error;

/// The Bech32 prefix of an X25519 identity, as written (upper case).
const IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-1";

/// How much of a bad recipient is quoted back in an error.
const MAX_QUOTED: usize = 100;

/// An age X25519 identity: the secret half, which opens values sealed to its
/// [`recipient`](AgeIdentity::recipient).
#[derive(Clone)]
pub struct AgeIdentity {
    inner: ::age::x25519::Identity,
    recipient: AgeRecipient,
}

impl AgeIdentity {
    /// A fresh identity from the operating system's random number generator.
    pub fn generate() -> Self {
        Self::from_inner(::age::x25519::Identity::generate())
    }

    /// Reads every identity in an age identity file, as `age-keygen` writes it:
    ///
    /// ```text
    /// # created: 2025-01-01T00:00:00Z
    /// # public key: age1...
    /// AGE-SECRET-KEY-1...
    /// ```
    ///
    /// Lines starting with `#` and blank lines are skipped; every other line must hold
    /// one X25519 identity. CRLF line endings are accepted. An error names the 1-based
    /// line and the problem, never the line's text. A file with no identity at all is
    /// an error.
    pub fn parse_file(text: &str) -> Result<Vec<Self>, Error> {
        let mut identities = Vec::new();
        for (number, line) in content_lines(text) {
            let identity = parse_identity(line).map_err(|reason| Error::InvalidAgeIdentity {
                line: Some(number),
                reason,
            })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(Error::InvalidAgeIdentity {
                line: None,
                reason: "no AGE-SECRET-KEY-1... line found (only comments or blank lines)",
            });
        }
        Ok(identities)
    }

    /// The public half: what values are sealed to.
    pub fn recipient(&self) -> &AgeRecipient {
        &self.recipient
    }

    /// The identity as its `AGE-SECRET-KEY-1...` text (upper case, as `age-keygen`
    /// writes it), in a buffer that is wiped on drop. Every call site is a place where
    /// a private key leaves its box.
    pub fn expose_secret(&self) -> Zeroizing<String> {
        let secret = self.inner.to_string();
        Zeroizing::new(secret.expose_secret().to_owned())
    }

    /// The identity as an identity file in `age-keygen`'s layout, without its
    /// `# created:` line (this crate has no clock), in a buffer that is wiped on drop:
    ///
    /// ```text
    /// # public key: age1...
    /// AGE-SECRET-KEY-1...
    /// ```
    pub fn expose_identity_file(&self) -> Zeroizing<String> {
        let secret = self.expose_secret();
        let mut file = Zeroizing::new(String::with_capacity(secret.len() + 80));
        file.push_str("# public key: ");
        file.push_str(&self.recipient.to_string());
        file.push('\n');
        file.push_str(&secret);
        file.push('\n');
        file
    }

    /// The `age` crate's identity, for decryption.
    pub(crate) fn as_age(&self) -> &::age::x25519::Identity {
        &self.inner
    }

    fn from_inner(inner: ::age::x25519::Identity) -> Self {
        let recipient = AgeRecipient(inner.to_public());
        Self { inner, recipient }
    }
}

impl FromStr for AgeIdentity {
    type Err = Error;

    /// Parses one `AGE-SECRET-KEY-1...` identity (surrounding whitespace is ignored).
    /// For a whole identity file use [`AgeIdentity::parse_file`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_identity(s.trim()).map_err(|reason| Error::InvalidAgeIdentity { line: None, reason })
    }
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeIdentity")
            .field("recipient", &self.recipient.to_string())
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Parses one trimmed identity line; the error is a reason that never quotes it.
fn parse_identity(text: &str) -> Result<AgeIdentity, &'static str> {
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("AGE-PLUGIN-") {
        return Err("plugin identities (AGE-PLUGIN-...) are not supported");
    }
    if upper.starts_with("AGE-SECRET-KEY-PQ-") {
        return Err("post-quantum identities (AGE-SECRET-KEY-PQ-...) are not supported");
    }
    if upper.starts_with("AGE1") {
        return Err("this is a recipient (public key, age1...), not an identity");
    }
    if !upper.starts_with(IDENTITY_PREFIX) {
        return Err("not an age identity: expected AGE-SECRET-KEY-1...");
    }
    text.parse::<::age::x25519::Identity>()
        .map(AgeIdentity::from_inner)
        .map_err(|reason| match reason {
            "incorrect identity length" => "wrong key length: an X25519 identity is 32 bytes",
            _ => "bad Bech32 encoding or checksum (was the key cut short or mistyped?)",
        })
}

/// An age X25519 recipient: the public key `age1...` that values are sealed to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgeRecipient(::age::x25519::Recipient);

impl AgeRecipient {
    /// Reads every recipient in a recipients file (`age -R` format): one `age1...` per
    /// line, `#` comment lines and blank lines skipped. An error names the 1-based line.
    /// A file with no recipient at all is an error.
    pub fn parse_file(text: &str) -> Result<Vec<Self>, Error> {
        let mut recipients = Vec::new();
        for (number, line) in content_lines(text) {
            recipients.push(parse_recipient(line, Some(number))?);
        }
        if recipients.is_empty() {
            return Err(Error::InvalidAgeRecipient {
                given: String::new(),
                line: None,
                reason: "no age1... recipient found (only comments or blank lines)",
            });
        }
        Ok(recipients)
    }

    /// The `age` crate's recipient, for encryption.
    pub(crate) fn as_age(&self) -> &::age::x25519::Recipient {
        &self.0
    }
}

impl FromStr for AgeRecipient {
    type Err = Error;

    /// Parses one `age1...` recipient (surrounding whitespace is ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_recipient(s.trim(), None)
    }
}

impl fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeRecipient({})", self.0)
    }
}

/// The lines of an identity or recipients file that hold something, trimmed, with
/// their 1-based numbers: blank lines and `#` comment lines are skipped, as age reads
/// them (CRLF line endings included).
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

fn parse_recipient(text: &str, line: Option<usize>) -> Result<AgeRecipient, Error> {
    let fail = |reason: &'static str| Error::InvalidAgeRecipient {
        given: quote(text),
        line,
        reason,
    };
    let lower = text.to_ascii_lowercase();
    if lower.is_empty() {
        return Err(fail("empty: expected age1..."));
    }
    if lower.contains("secret-key") {
        return Err(fail(
            "this is an identity (secret key), not a recipient: give its age1... public key",
        ));
    }
    if lower.starts_with("ssh-") || lower.starts_with("ecdsa-") {
        return Err(fail("SSH public keys are not supported as age recipients"));
    }
    if !lower.starts_with("age1") {
        return Err(fail("not an age recipient: expected age1..."));
    }
    // The Bech32 human-readable part ends at the last '1'. Only "age" is X25519.
    if lower.rfind('1') != Some(3) {
        return Err(if lower.starts_with("age1pq1") {
            fail("post-quantum recipients (age1pq1...) are not supported")
        } else {
            fail("plugin recipients (age1<plugin>1...) are not supported")
        });
    }
    text.parse::<::age::x25519::Recipient>()
        .map(AgeRecipient)
        .map_err(|reason| match reason {
            "incorrect pubkey length" => fail("wrong key length: an X25519 recipient is 32 bytes"),
            _ => fail("bad Bech32 encoding or checksum (was it cut short or mistyped?)"),
        })
}

/// Quotes a bad recipient back to the user, shortened, and never if it could be a
/// secret key.
fn quote(text: &str) -> String {
    if text.to_ascii_lowercase().contains("secret-key") {
        return "[REDACTED]".to_owned();
    }
    if text.chars().count() <= MAX_QUOTED {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_QUOTED).collect();
    short.push_str("...");
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example identity and recipient of the age specification (c2sp.org/age):
    /// an identity of 32 bytes of 0x42 (independent of the `age` crate).
    const SPEC_IDENTITY: &str =
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    const SPEC_RECIPIENT: &str = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

    #[test]
    fn the_spec_example_identity_has_the_spec_example_recipient() {
        let identity: AgeIdentity = SPEC_IDENTITY.parse().expect("parse");
        assert_eq!(identity.recipient().to_string(), SPEC_RECIPIENT);
        assert_eq!(identity.expose_secret().as_str(), SPEC_IDENTITY);
        let recipient: AgeRecipient = SPEC_RECIPIENT.parse().expect("parse");
        assert_eq!(&recipient, identity.recipient());
    }

    #[test]
    fn identity_files_skip_comments_and_name_the_bad_line() {
        let file = format!(
            "# created: 2025-01-01T00:00:00Z\r\n# public key: {SPEC_RECIPIENT}\r\n\r\n{SPEC_IDENTITY}\r\n"
        );
        let ids = AgeIdentity::parse_file(&file).expect("parse");
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].recipient().to_string(), SPEC_RECIPIENT);

        let broken = format!("# comment\n{}\n", &SPEC_IDENTITY[..60]);
        let err = AgeIdentity::parse_file(&broken).expect_err("broken");
        assert!(
            matches!(err, Error::InvalidAgeIdentity { line: Some(2), .. }),
            "{err:?}"
        );
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("line 2"), "{shown}");
        assert!(!shown.contains(&SPEC_IDENTITY[16..40]), "{shown}");

        assert!(AgeIdentity::parse_file("# nothing\n\n").is_err());
    }

    #[test]
    fn identity_errors_explain_plugins_recipients_and_never_quote_the_key() {
        for (text, needle) in [
            (SPEC_RECIPIENT, "recipient"),
            ("AGE-PLUGIN-YUBIKEY-1QQQQQ", "plugin"),
            ("AGE-SECRET-KEY-PQ-1XX76JRAL", "post-quantum"),
            ("hello", "expected AGE-SECRET-KEY-1"),
        ] {
            let err = text.parse::<AgeIdentity>().expect_err(text);
            let shown = err.to_string();
            assert!(shown.contains(needle), "{text}: {shown}");
            assert!(!shown.contains(text), "{shown}");
        }
        let flipped = SPEC_IDENTITY.replace("GFPQ4", "GFPQ5");
        let err = flipped.parse::<AgeIdentity>().expect_err("checksum");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn debug_shows_the_recipient_but_never_the_secret() {
        let identity: AgeIdentity = SPEC_IDENTITY.parse().expect("parse");
        let shown = format!("{identity:?} {identity:#?}");
        assert!(shown.contains(SPEC_RECIPIENT), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        assert!(!shown.contains("GFPYYSJZ"), "{shown}");
        assert!(
            !shown.to_ascii_uppercase().contains("SECRET-KEY-1"),
            "{shown}"
        );
    }

    #[test]
    fn generated_identities_round_trip_through_their_text_and_file() {
        let identity = AgeIdentity::generate();
        let text = identity.expose_secret();
        assert!(text.starts_with(IDENTITY_PREFIX));
        let back: AgeIdentity = text.parse().expect("parse");
        assert_eq!(back.recipient(), identity.recipient());
        let file = identity.expose_identity_file();
        let from_file = AgeIdentity::parse_file(&file).expect("parse file");
        assert_eq!(from_file[0].recipient(), identity.recipient());
        assert_ne!(AgeIdentity::generate().recipient(), identity.recipient());
    }

    #[test]
    fn recipient_errors_name_the_input_and_line() {
        let cut = &SPEC_RECIPIENT[..40];
        let err = cut.parse::<AgeRecipient>().expect_err("cut");
        let shown = err.to_string();
        assert!(shown.contains(cut) && shown.contains("checksum"), "{shown}");

        let file = format!("# team\n{SPEC_RECIPIENT}\n\nage1yubikey1qwerty\n");
        let err = AgeRecipient::parse_file(&file).expect_err("plugin");
        assert!(
            matches!(err, Error::InvalidAgeRecipient { line: Some(4), .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 4"), "{err}");
        assert!(err.to_string().contains("plugin"), "{err}");

        let err = "age1pq1abc".parse::<AgeRecipient>().expect_err("pq");
        assert!(err.to_string().contains("post-quantum"), "{err}");
        let err = "ssh-ed25519 AAAA".parse::<AgeRecipient>().expect_err("ssh");
        assert!(err.to_string().contains("SSH"), "{err}");
        assert!("".parse::<AgeRecipient>().is_err());
    }

    #[test]
    fn a_secret_key_given_as_recipient_is_refused_and_never_echoed() {
        for text in [SPEC_IDENTITY.to_owned(), SPEC_IDENTITY.to_ascii_lowercase()] {
            let err = text.parse::<AgeRecipient>().expect_err("identity");
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("identity"), "{shown}");
            assert!(!shown.contains("GFPYYSJZ"), "{shown}");
            assert!(!shown.contains("gfpyysjz"), "{shown}");
        }
    }

    #[test]
    fn recipient_files_keep_order_and_display_round_trips() {
        let other = AgeIdentity::generate().recipient().to_string();
        let file = format!("{SPEC_RECIPIENT}\n# comment\n  {other}  \n");
        let list = AgeRecipient::parse_file(&file).expect("parse");
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, [SPEC_RECIPIENT, other.as_str()]);
        assert!(AgeRecipient::parse_file("\n# none\n").is_err());
    }
}
