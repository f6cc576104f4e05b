//! `sealant keys backup`: every key Secret of the controller, in one file that only
//! its owner can open.
//!
//! ```text
//! --recipient / --recipients-file ─┐
//! --passphrase-file / $SEALANT_BACKUP_PASSPHRASE ─┼─ exactly one ─▶ Protection
//! --unencrypted ───────────────────┘
//! key Secrets (active, retired, legacy) ─▶ key_list ─▶ Protection ─▶ -o FILE (0600, atomic, no overwrite)
//!                                                                  └─ -o - (stdout)
//! ```
//!
//! A backup is worthless if it leaks, so the protection must be chosen explicitly:
//! there is no default, and the plain List needs `--unencrypted`. Everything that can
//! be refused without the cluster (flags, an existing file, plaintext to a terminal or
//! a file redirect) is refused before connecting. The summary on stderr names the keys
//! by fingerprint only.
//!
//! The plaintext inside an encrypted backup is the same `List` as the unencrypted one,
//! so `age -d -i escrow.key backup.age | kubectl apply -f -` restores without sealant.

use std::io::{self, IsTerminal as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use sealant_crds::key_secret::key_list;
use sealant_keys::{AgeRecipient, bundle};
use zeroize::Zeroizing;

use super::inventory::key_secrets;
use super::{BackupArgs, PASSPHRASE_ENV, Session, passphrase};
use crate::args::RecipientArgs;
use crate::files::{self, Overwrite};
use crate::{output, recipients};

/// How the backup is protected.
enum Protection {
    /// Encrypted to age recipients.
    Recipients(Vec<AgeRecipient>),
    /// Encrypted to a passphrase (age scrypt).
    Passphrase(Zeroizing<String>),
    /// Not at all: `--unencrypted`.
    None,
}

impl Protection {
    /// The one protection the flags choose; none or several is an error.
    fn choose(args: &BackupArgs) -> Result<Self> {
        let given_recipients = !args.recipient.is_empty() || !args.recipients_file.is_empty();
        let env_passphrase = std::env::var_os(PASSPHRASE_ENV).is_some();
        let given_passphrase = args.passphrase_file.is_some() || env_passphrase;
        let chosen = [given_recipients, given_passphrase, args.unencrypted]
            .iter()
            .filter(|g| **g)
            .count();
        if chosen == 0 {
            bail!(
                "keys backup needs a protection: --recipient age1... / --recipients-file FILE \
                 (age, for example the escrow key from `sealant keygen-escrow`), \
                 --passphrase-file FILE (or ${PASSPHRASE_ENV}), or --unencrypted for the plain \
                 YAML List"
            );
        }
        if chosen > 1 {
            bail!(
                "choose one protection: --recipient/--recipients-file, --passphrase-file (or \
                 ${PASSPHRASE_ENV}{}), or --unencrypted",
                if env_passphrase {
                    ", which is set in the environment"
                } else {
                    ""
                }
            );
        }
        if given_recipients {
            let recipients = recipients::load(&RecipientArgs {
                recipient: args.recipient.clone(),
                recipients_file: args.recipients_file.clone(),
            })?;
            return Ok(Self::Recipients(recipients));
        }
        if let Some(pass) = passphrase(args.passphrase_file.as_deref())? {
            return Ok(Self::Passphrase(pass));
        }
        Ok(Self::None)
    }

    /// The file for `plaintext` (a key List).
    fn apply(&self, plaintext: &str) -> Result<Zeroizing<String>> {
        Ok(match self {
            Self::Recipients(recipients) => {
                Zeroizing::new(bundle::seal(recipients, plaintext.as_bytes())?)
            }
            Self::Passphrase(pass) => {
                Zeroizing::new(bundle::seal_with_passphrase(pass, plaintext.as_bytes())?)
            }
            Self::None => Zeroizing::new(plaintext.to_owned()),
        })
    }

    /// How the summary describes it.
    fn describe(&self) -> String {
        match self {
            Self::Recipients(r) if r.len() == 1 => "encrypted to 1 age recipient".to_owned(),
            Self::Recipients(r) => format!("encrypted to {} age recipients", r.len()),
            Self::Passphrase(_) => "encrypted to a passphrase".to_owned(),
            Self::None => "UNENCRYPTED".to_owned(),
        }
    }
}

/// Runs `keys backup`.
pub fn run(args: &BackupArgs) -> Result<()> {
    let protection = Protection::choose(args)?;
    let to_stdout = args.output == Path::new("-");
    if to_stdout {
        if matches!(protection, Protection::None) && !stdout_is_pipe() {
            bail!(
                "refusing to write unencrypted private keys to stdout unless it is a pipe (a \
                 terminal keeps them in its scrollback, a `>` file gets your umask): pass -o \
                 FILE for a 0600 file, or encrypt the backup"
            );
        }
    } else if !args.force {
        files::refuse_existing(&args.output)?;
    }

    let session = Session::connect(&args.controller)?;
    let keys = key_secrets(&session)?;
    if keys.is_empty() {
        bail!(
            "no key Secrets in namespace {} (label {}, or named {}); is \
             --controller-namespace right?",
            session.namespace,
            sealant_crds::key_secret::KEY_LABEL,
            session.prefix
        );
    }
    for key in &keys {
        if let Err(e) = &key.fingerprint {
            eprintln!(
                "warning: key Secret {}/{} is backed up as it is, but cannot be read: {e}",
                session.namespace,
                key.name()
            );
        }
    }
    let secrets: Vec<_> = keys.iter().map(|k| k.secret.clone()).collect();
    let plaintext = key_list(&secrets);
    drop(secrets);
    let plaintext = plaintext?;
    let file = protection.apply(&plaintext)?;
    drop(plaintext);

    let destination = if to_stdout {
        output::write_stdout(file.as_bytes())?;
        "stdout".to_owned()
    } else {
        files::write_private(
            &args.output,
            file.as_bytes(),
            Overwrite::when_forced(args.force),
        )
        .with_context(|| format!("keys backup -o {}", args.output.display()))?;
        args.output.display().to_string()
    };
    let fingerprints: Vec<&str> = keys.iter().map(|k| k.fingerprint_text()).collect();
    eprintln!(
        "Backed up {} key{} from namespace {} to {destination}, {}: {}",
        keys.len(),
        if keys.len() == 1 { "" } else { "s" },
        session.namespace,
        protection.describe(),
        fingerprints.join(", ")
    );
    Ok(())
}

/// True when stdout is a pipe or a socket: a reader takes the bytes, no file or
/// terminal keeps them.
#[cfg(unix)]
fn stdout_is_pipe() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::FileTypeExt as _;
    if io::stdout().is_terminal() {
        return false;
    }
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

#[cfg(not(unix))]
fn stdout_is_pipe() -> bool {
    !io::stdout().is_terminal()
}
