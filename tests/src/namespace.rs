//! One temporary Kubernetes namespace per test, so tests that share a control plane
//! cannot see each other's objects.
//!
//! The namespace is deleted when the guard drops, unless `SEALANT_TEST_KEEP=1` or its
//! control plane was destroyed (it went with it). If the test is panicking at that
//! moment, the guard prints the end of every component's log first (libtest shows it
//! with the failure).

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

use crate::control_plane::{ControlPlane, block_on_own_thread};

/// A namespace that lives as long as one test.
pub struct TestNamespace {
    /// Its name: `e2e-<prefix>-<random>`.
    pub name: String,
    cluster: &'static ControlPlane,
}

impl TestNamespace {
    /// Creates a namespace named after `prefix` (lowercase letters, digits and `-`).
    pub async fn new(cluster: &'static ControlPlane, prefix: &str) -> Result<Self> {
        let mut base: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        base.truncate(40);
        let name = format!("e2e-{}-{}", base.trim_matches('-'), crate::random_hex(3));
        Self::named(cluster, &name).await
    }

    /// Creates the namespace `name` exactly, e.g. on a second cluster, to hold what a
    /// first cluster held under the same name (strict-scoped SealedSecrets name it).
    pub async fn named(cluster: &'static ControlPlane, name: &str) -> Result<Self> {
        let name = name.to_owned();
        let api: Api<Namespace> = Api::all(cluster.client().await?);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("sealant.dev/e2e".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("create namespace {name}"))?;
        Ok(Self { name, cluster })
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed in namespace {}; control plane files in {} ({})\n{}",
                self.name,
                self.cluster.dir.display(),
                if self.cluster.keep {
                    "kept"
                } else {
                    "removed at exit; SEALANT_TEST_KEEP=1 keeps them"
                },
                self.cluster.log_tails(30)
            );
        }
        if self.cluster.keep {
            eprintln!("SEALANT_TEST_KEEP=1: keeping namespace {}", self.name);
            return;
        }
        if self.cluster.is_destroyed() {
            return;
        }
        let name = self.name.clone();
        let cluster = self.cluster;
        // Best effort: the whole control plane goes away with the test binary anyway.
        let _ = block_on_own_thread(move || async move {
            let api: Api<Namespace> = Api::all(cluster.client().await?);
            api.delete(&name, &DeleteParams::background()).await?;
            Ok(())
        });
    }
}
