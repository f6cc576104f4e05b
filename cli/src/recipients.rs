//! age recipients: what `--recipient`, `--recipients-file` and `--fetch-recipient`
//! read, and the choice between sealing to a certificate and sealing to recipients.
//!
//! ```text
//! --recipient age1... (repeatable) ─┐
//! --recipients-file F (repeatable) ─┴─▶ parse, in order, duplicates dropped ─▶ SealingKey::Recipients
//! otherwise: --cert FILE|URL, or the controller's cert.pem ───────────────────▶ SealingKey::Certificate
//! ```
//!
//! A value is sealed either to the certificate (the Bitnami format) or to age
//! recipients (the sealant age envelope), never both, so a certificate given together
//! with recipients is an error rather than a silent choice. Recipients are parsed
//! here, after clap, and not by clap's value parser: clap quotes a bad value in its
//! error, and a secret key pasted by mistake must never be echoed (the parser in
//! `sealant-keys` redacts it).

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use sealant_keys::{AgeRecipient, Certificate};

use crate::args::{RecipientArgs, SealToArgs};
use crate::cert;
use crate::files::{self, Limit};

/// What one run seals to.
pub enum SealingKey {
    /// The sealing certificate (Bitnami format).
    Certificate(Certificate),
    /// age recipients (sealant age envelope), at least one.
    Recipients(Vec<AgeRecipient>),
}

impl SealingKey {
    /// Recipients when any recipient flag was given, else the certificate from
    /// `--cert` or the controller.
    pub fn load(to: &SealToArgs) -> Result<Self> {
        if !to.recipients.is_given() {
            return cert::load(&to.cert, &to.cluster).map(Self::Certificate);
        }
        if to.cert.cert.is_some() {
            bail!(
                "--cert (or SEALED_SECRETS_CERT) cannot be combined with --recipient or \
                 --recipients-file: a value is sealed either to the certificate or to age \
                 recipients; drop one (unset SEALED_SECRETS_CERT if it comes from the \
                 environment)"
            );
        }
        load(&to.recipients).map(Self::Recipients)
    }

    /// The `sealant-crds` view of it.
    pub fn sealer(&self) -> sealant_crds::Sealer<'_> {
        match self {
            Self::Certificate(cert) => sealant_crds::Sealer::Rsa(cert.public_key()),
            Self::Recipients(recipients) => sealant_crds::Sealer::Age(recipients),
        }
    }
}

/// Every recipient of `--recipient` and then of each `--recipients-file`, in order,
/// each once.
pub fn load(args: &RecipientArgs) -> Result<Vec<AgeRecipient>> {
    let mut all: Vec<AgeRecipient> = Vec::new();
    for text in &args.recipient {
        let recipient = text.parse::<AgeRecipient>().context("--recipient")?;
        all.push(recipient);
    }
    for path in &args.recipients_file {
        let recipients =
            read_file(path).with_context(|| format!("--recipients-file {}", path.display()))?;
        all.extend(recipients);
    }
    let mut unique = Vec::with_capacity(all.len());
    for recipient in all {
        if !unique.contains(&recipient) {
            unique.push(recipient);
        }
    }
    Ok(unique)
}

/// Reads a recipients file. Its text is wiped afterwards, in case it was an identity
/// file given by mistake.
fn read_file(path: &Path) -> Result<Vec<AgeRecipient>> {
    let text = files::read_text(path, Limit::SMALL_FILE).context("cannot read the file")?;
    Ok(AgeRecipient::parse_file(&text)?)
}

/// Checks the controller's answer to `GET /v1/age-recipient`: one recipient, with
/// surrounding whitespace (the trailing newline) ignored.
pub fn parse_controller_answer(text: &str) -> Result<AgeRecipient> {
    text.parse::<AgeRecipient>()
        .context("the controller's answer to /v1/age-recipient is not an age recipient")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{CertArgs, ClusterArgs, ControllerNamespaceArg, ControllerServiceArgs};
    use sealant_keys::AgeIdentity;

    fn args(recipient: &[String], files: &[&Path]) -> RecipientArgs {
        RecipientArgs {
            recipient: recipient.to_vec(),
            recipients_file: files.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    #[test]
    fn flags_and_files_combine_in_order_without_duplicates() {
        let (a, b) = (AgeIdentity::generate(), AgeIdentity::generate());
        let (a, b) = (a.recipient().to_string(), b.recipient().to_string());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r.txt");
        std::fs::write(&file, format!("# team\n{a}\n\n{b}\n")).expect("write");
        let loaded = load(&args(std::slice::from_ref(&b), &[&file])).expect("load");
        let shown: Vec<String> = loaded.iter().map(ToString::to_string).collect();
        assert_eq!(shown, [b, a]);
    }

    #[test]
    fn a_secret_key_given_as_recipient_is_refused_without_echoing_it() {
        let id = AgeIdentity::generate();
        let secret = id.expose_secret().to_string();
        let err = load(&args(std::slice::from_ref(&secret), &[])).expect_err("identity");
        let shown = format!("{err:#}");
        assert!(shown.starts_with("--recipient: "), "{shown}");
        assert!(shown.contains("identity"), "{shown}");
        assert!(!shown.contains(&secret[20..]), "{shown}");
    }

    #[test]
    fn certificate_and_recipients_together_are_refused() {
        let cert = CertArgs {
            cert: Some("cert.pem".into()),
            controller: ControllerServiceArgs {
                namespace: ControllerNamespaceArg {
                    controller_namespace: "kube-system".into(),
                },
                controller_name: "sealed-secrets-controller".into(),
            },
        };
        let recipients = args(&[AgeIdentity::generate().recipient().to_string()], &[]);
        let to = SealToArgs {
            cert,
            recipients,
            cluster: ClusterArgs::default(),
        };
        let err = SealingKey::load(&to).err().expect("conflict");
        assert!(err.to_string().contains("--cert"), "{err}");
    }

    #[test]
    fn controller_answer_must_be_one_recipient() {
        let r = AgeIdentity::generate().recipient().to_string();
        assert_eq!(
            parse_controller_answer(&format!("{r}\n"))
                .expect("recipient")
                .to_string(),
            r
        );
        assert!(parse_controller_answer("<html>404</html>").is_err());
        assert!(parse_controller_answer(&format!("{r}\n{r}\n")).is_err());
    }
}
