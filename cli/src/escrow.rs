//! `sealant keygen-escrow`: a new offline age identity, the one key that can bring
//! back every value sealed to its recipient after the clusters are gone.
//!
//! ```text
//! AgeIdentity::generate ──▶ identity file (mode 0600 from creation, never overwritten
//!                       │                  unless --force) ──▶ store offline
//!                       └─▶ recipient age1... on stdout ──▶ --recipient / --escrow-recipient
//! ```
//!
//! The identity is a secret key, so it is written only where the user asked for it:
//!
//! - `-o FILE` is required. The file is written by [`crate::files::write_private`]: to
//!   a temporary file in the same directory, created with mode 0600 (never readable by others, not even for a
//!   moment), synced, and moved into place. Without `--force` the move refuses to
//!   replace an existing file (atomically: a file that appears in the meantime is not
//!   overwritten either), because overwriting an escrow identity silently destroys the
//!   only way to open what was sealed to it.
//! - `-o -` writes the identity to stdout for a pipe into a secret store, and is
//!   refused when stdout is a terminal (the key would land in the scrollback). The
//!   recipient then goes to stderr, so that stdout holds exactly the identity file.
//!   Redirecting stdout to a file with `>` would create it with the shell's umask
//!   (usually 0644), which is why plain `keygen-escrow` without `-o` is refused
//!   instead of printing the key.
//!
//! The file has age-keygen's layout (`# created:`, `# public key:`, the key), so the
//! age and rage tools read it too.

use std::io::{self, IsTerminal as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use sealant_keys::{AgeIdentity, OffsetDateTime};
use zeroize::Zeroizing;

use crate::args::KeygenEscrowArgs;
use crate::files::{self, Overwrite};
use crate::output;

/// Runs `keygen-escrow`.
pub fn run(args: &KeygenEscrowArgs) -> Result<()> {
    let Some(path) = args.output.as_deref() else {
        bail!(
            "keygen-escrow needs -o FILE: the identity is a secret key and is only written to \
             a file created with mode 0600 (or, with -o -, to a pipe)"
        );
    };
    let identity = AgeIdentity::generate();
    let file = identity_file(&identity, OffsetDateTime::now_utc());
    let recipient = identity.recipient().to_string();

    if path == Path::new("-") {
        if io::stdout().is_terminal() {
            bail!(
                "refusing to print a secret key to a terminal: pass -o FILE, or pipe stdout into \
                 a secret store"
            );
        }
        output::write_stdout(file.as_bytes())?;
        eprintln!("Public key: {recipient}");
        eprintln!("Store this identity offline: it opens every value sealed to {recipient}.");
        return Ok(());
    }

    files::write_private(path, file.as_bytes(), Overwrite::when_forced(args.force))
        .with_context(|| format!("keygen-escrow -o {}", path.display()))?;
    output::write_stdout(format!("{recipient}\n").as_bytes())?;
    eprintln!(
        "Store {} offline (and delete it from this machine): it opens every value sealed to \
         {recipient}.",
        path.display()
    );
    Ok(())
}

/// The identity file in age-keygen's layout, with a creation time.
fn identity_file(identity: &AgeIdentity, now: OffsetDateTime) -> Zeroizing<String> {
    let body = identity.expose_identity_file();
    let mut file = Zeroizing::new(String::with_capacity(body.len() + 40));
    file.push_str(&format!(
        "# created: {:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z\n",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    ));
    file.push_str(&body);
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_file_has_age_keygens_layout_and_parses_back() {
        let identity = AgeIdentity::generate();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let file = identity_file(&identity, now);
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(lines[0], "# created: 2023-11-14T22:13:20Z");
        assert_eq!(lines[1], format!("# public key: {}", identity.recipient()));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
        let parsed = AgeIdentity::parse_file(&file).expect("parse");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].recipient(), identity.recipient());
    }
}
