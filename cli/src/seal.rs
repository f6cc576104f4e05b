//! Sealing: Secrets in, SealedSecrets out, with kubeseal's rules for names,
//! namespaces and scopes.
//!
//! For each input Secret, in this order (kubeseal's, so the first error a script sees
//! is the same):
//!
//! 1. no `data` and no `stringData` is an error unless `--allow-empty-data`;
//! 2. `--name` replaces `metadata.name`; a Secret without a name is an error;
//! 3. the namespace is the input's; `-n` must agree with it, or fills it in; else the
//!    kubeconfig context's namespace, else `default`. A cluster-wide Secret without a
//!    namespace stays without one, as kubeseal leaves it;
//! 4. `--scope` (or the input's scope annotations) picks the label; `sealant-crds`
//!    strips server-set metadata and seals every value.
//!
//! Each value is sealed to the certificate or to age recipients ([`Sealing::to`]);
//! the rules above are the same for both.
//!
//! The kubeconfig is read only when a Secret has no namespace and `-n` is not given,
//! so sealing with `--cert` or `--recipient` needs no kubeconfig at all.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use sealant_crds::{SealOptions, SealedSecret, annotations};
use sealant_keys::Scope;
use zeroize::Zeroizing;

use crate::args::{ClusterArgs, Format};
use crate::cluster::kubeconfig_namespace;
use crate::documents::{self, Document};
use crate::{files, output};

/// The text kubeseal prints for an input Secret without values.
const EMPTY_DATA: &str = "secret.data is empty in input Secret, assuming this is an error and \
                          aborting. To work with empty data, --allow-empty-data can be used";

/// What every Secret of one run is sealed with.
pub struct Sealing<'a> {
    /// The certificate's public key, or the age recipients.
    pub to: sealant_crds::Sealer<'a>,
    /// `--scope`, or `None` to take the scope from each input's annotations.
    pub scope: Option<Scope>,
    /// `--allow-empty-data`.
    pub allow_empty_data: bool,
    /// `--name`: replaces each input's `metadata.name`.
    pub name: Option<&'a str>,
    /// Where `-n` and the kubeconfig namespace come from.
    pub namespaces: Namespaces<'a>,
}

impl Sealing<'_> {
    /// Seals one Secret, wiping its values afterwards.
    pub fn seal(&mut self, mut secret: Secret) -> Result<SealedSecret> {
        let result = self.seal_inner(&mut secret);
        documents::scrub_secret(&mut secret);
        result
    }

    fn seal_inner(&mut self, secret: &mut Secret) -> Result<SealedSecret> {
        let has_data = secret.data.as_ref().is_some_and(|d| !d.is_empty())
            || secret.string_data.as_ref().is_some_and(|d| !d.is_empty());
        if !has_data && !self.allow_empty_data {
            bail!(EMPTY_DATA);
        }
        if let Some(name) = self.name {
            secret.metadata.name = Some(name.to_owned());
        }
        if secret
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            bail!("missing metadata.name in input Secret");
        }
        let scope = self
            .scope
            .unwrap_or_else(|| annotations::scope_of(&secret.metadata));
        let input_ns = secret
            .metadata
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty());
        let namespace = self.namespaces.resolve(input_ns.as_deref(), scope)?;
        let options = SealOptions {
            scope: self.scope,
            allow_empty_data: self.allow_empty_data,
        };
        // `None` only for a cluster-wide Secret with no namespace anywhere: it stays
        // namespace-less, as kubeseal leaves it, and can be applied to any namespace.
        secret.metadata.namespace = namespace;
        Ok(sealant_crds::seal_secret(secret, self.to, &options)?)
    }
}

/// Namespace resolution: `-n`, the kubeconfig context (read at most once), `default`.
pub struct Namespaces<'a> {
    cluster: &'a ClusterArgs,
    from_kubeconfig: Option<String>,
}

impl<'a> Namespaces<'a> {
    /// Resolution from these flags.
    pub fn new(cluster: &'a ClusterArgs) -> Self {
        Self {
            cluster,
            from_kubeconfig: None,
        }
    }

    /// `-n` if given (an input namespace must then agree with it), else the input's,
    /// else (unless cluster-wide) the kubeconfig context's namespace or `default`.
    pub fn resolve(&mut self, input: Option<&str>, scope: Scope) -> Result<Option<String>> {
        let flag = self
            .cluster
            .namespace
            .as_deref()
            .filter(|ns| !ns.is_empty());
        match (input, flag) {
            (Some(input), Some(flag)) if input != flag => bail!(
                "namespace mismatch: input secret is in namespace {input:?} but {flag:?} was \
                 specified"
            ),
            (_, Some(flag)) => Ok(Some(flag.to_owned())),
            (Some(input), None) => Ok(Some(input.to_owned())),
            (None, None) if scope == Scope::ClusterWide => Ok(None),
            (None, None) => self.default_namespace().map(Some),
        }
    }

    /// The kubeconfig context's namespace, or `default`.
    pub fn default_namespace(&mut self) -> Result<String> {
        if let Some(ns) = &self.from_kubeconfig {
            return Ok(ns.clone());
        }
        let ns = kubeconfig_namespace(self.cluster)?.unwrap_or_else(|| "default".to_owned());
        self.from_kubeconfig = Some(ns.clone());
        Ok(ns)
    }
}

/// Seals every document and renders the results, one after the other.
pub fn seal_documents(
    docs: &[Document],
    sealer: &mut Sealing<'_>,
    format: Format,
) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::new());
    for doc in docs {
        let label = doc.label();
        let sealed = doc
            .to_secret()
            .and_then(|secret| sealer.seal(secret))
            .with_context(|| label.to_string())?;
        out.push_str(&render_sealed(&sealed, format));
    }
    Ok(out)
}

/// Seals Secrets built in memory (`sealant create`).
pub fn seal_secrets(
    secrets: Vec<Secret>,
    sealer: &mut Sealing<'_>,
    format: Format,
) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::new());
    for secret in secrets {
        let object = object_name(&secret);
        let sealed = sealer
            .seal(secret)
            .with_context(|| format!("secret {object}"))?;
        out.push_str(&render_sealed(&sealed, format));
    }
    Ok(out)
}

/// A SealedSecret in kubeseal's output shape.
pub fn render_sealed(sealed: &SealedSecret, format: Format) -> Zeroizing<String> {
    let text = match format {
        Format::Json => sealant_crds::to_json(sealed),
        Format::Yaml => sealant_crds::to_yaml(sealed),
    };
    output::normalize(Zeroizing::new(text), format)
}

fn object_name(secret: &Secret) -> String {
    let meta = &secret.metadata;
    match (meta.namespace.as_deref(), meta.name.as_deref()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_owned(),
        _ => "<no name>".to_owned(),
    }
}

/// `--merge-into FILE`: seals the inputs under the file's name, namespace and scope,
/// and merges their values into it. Values not in the input are kept byte for byte;
/// the file keeps its format (JSON or YAML) unless `-o` says otherwise.
pub fn merge_into_file(
    path: &Path,
    inputs: Vec<(String, Result<Secret>)>,
    sealer: &mut Sealing<'_>,
    explicit_format: Option<Format>,
) -> Result<()> {
    let what = || format!("--merge-into {}", path.display());
    let bytes = files::read_regular(path, files::Limit::MANIFESTS)
        .with_context(|| format!("cannot read {}", path.display()))
        .with_context(what)?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is not UTF-8", path.display()))
        .with_context(what)?;
    let docs = documents::parse(text, "SealedSecret").with_context(what)?;
    let [doc] = docs.as_slice() else {
        bail!(
            "{}: expected one SealedSecret, found {} documents",
            what(),
            docs.len()
        );
    };
    let mut existing = doc
        .to_sealed_secret()
        .with_context(|| doc.label().to_string())
        .with_context(what)?;
    let file_scope = annotations::scope_of(&existing.metadata);
    if let Some(scope) = sealer.scope.filter(|s| *s != file_scope) {
        bail!(
            "--scope {scope} conflicts with the scope {file_scope} of the sealed secret in {}",
            path.display()
        );
    }
    let name = existing.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        bail!("{}: the sealed secret has no metadata.name", what());
    }
    let namespace = existing
        .metadata
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty());

    // The merged values must open under the file's own label, so the file decides the
    // name, the namespace and the scope.
    let mut merging = Sealing {
        to: sealer.to,
        scope: Some(file_scope),
        allow_empty_data: sealer.allow_empty_data,
        name: Some(&name),
        namespaces: Namespaces::new(sealer.namespaces.cluster),
    };
    for (label, secret) in inputs {
        let mut secret = secret.with_context(|| label.clone())?;
        secret.metadata.namespace = namespace.clone();
        let update = merging.seal(secret).with_context(|| label.clone())?;
        sealant_crds::merge_into(&mut existing, &update);
    }

    let format = explicit_format.unwrap_or_else(|| detect_format(text));
    files::write_public(path, render_sealed(&existing, format).as_bytes())
}

/// JSON if the text starts with `{` (after blanks), else YAML.
pub fn detect_format(text: &str) -> Format {
    if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_namespace_must_agree_with_the_input() {
        let args = ClusterArgs {
            namespace: Some("b".into()),
            ..ClusterArgs::default()
        };
        let mut ns = Namespaces::new(&args);
        let err = ns
            .resolve(Some("a"), Scope::Strict)
            .expect_err("mismatch")
            .to_string();
        assert_eq!(
            err,
            r#"namespace mismatch: input secret is in namespace "a" but "b" was specified"#
        );
        assert_eq!(
            ns.resolve(None, Scope::Strict)
                .expect("fills in")
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            ns.resolve(Some("b"), Scope::Strict)
                .expect("agrees")
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn cluster_wide_secret_without_namespace_keeps_none() {
        let args = ClusterArgs::default();
        let mut ns = Namespaces::new(&args);
        assert_eq!(ns.resolve(None, Scope::ClusterWide).expect("ok"), None);
    }

    #[test]
    fn format_of_an_existing_file_is_detected() {
        assert_eq!(detect_format("  {\"a\": 1}"), Format::Json);
        assert_eq!(detect_format("---\na: 1\n"), Format::Yaml);
        assert_eq!(detect_format("apiVersion: v1\n"), Format::Yaml);
    }
}
