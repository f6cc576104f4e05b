//! A real, local Kubernetes control plane for sealant's end-to-end and compatibility
//! tests, with no Docker and no internet.
//!
//! A controller is only proven against a real API server: one that validates the CRD
//! schema, enforces RBAC, runs watches, answers conflicts and garbage-collects owned
//! objects. This crate starts one per test binary, as controller-runtime's envtest does,
//! from the pinned peers that `tests/peers/build.sh` builds:
//!
//! ```text
//!            loopback                         | veth pair (private /30) | netns "test host"
//!  etcd <── kube-apiserver (host veth addr) <─┼─────────────────────────┼── Bitnami controller
//!            ^        │ service proxy ────────┼────────────────────────>┼── :8080 /v1/cert.pem
//!  kcm ──────┘        ^                       |                         |
//!  tests, sealant, kubeseal, kubectl ─────────┘
//! ```
//!
//! Guarantees:
//! - One shared control plane per test binary ([`cluster`]), each test in its own
//!   namespace ([`TestNamespace`]), removed afterwards unless `SEALANT_TEST_KEEP=1`.
//!   A test that needs more clusters, or one it may destroy, starts independent ones
//!   ([`ControlPlane::start_another`], [`ControlPlane::destroy`]).
//! - Nothing outlives the test process: a reaper process (see [`process`]) holds the read
//!   end of a pipe that only the test process writes to. When the test process ends for
//!   any reason (success, panic, Ctrl-C, SIGKILL), the reaper kills every component and
//!   removes the network namespace, the veth pair and the temporary directory.
//! - Nothing on the machine changes outside the temporary directory and the namespaces
//!   the harness creates; the Bitnami controller's in-cluster files live in a private
//!   mount namespace.
//! - A missing peer is a test failure with a message that says how to get it, never a
//!   skip.
//! - A test that needs Pods starts a real node beside a control plane of its own
//!   ([`node`]): containerd, a kubelet, kube-proxy and kube-scheduler. It is the one
//!   part that changes host-global state, so one runs at a time on the machine and its
//!   own reaper restores that state.

pub mod bench;
pub mod bitnami;
pub mod control_plane;
pub mod fixtures;
pub mod namespace;
pub mod netns;
pub mod node;
pub mod peers;
pub mod pki;
pub mod process;
pub mod sealant_controller;
pub mod tools;

pub use control_plane::{ControlPlane, cluster};
pub use namespace::TestNamespace;

/// A random lowercase hex string of `bytes` bytes, for names that must not collide with
/// those of a concurrent run.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read as _;
    let mut buf = vec![0u8; bytes];
    // /dev/urandom cannot run dry; if it cannot be read at all, fall back on the clock
    // and pid, which only need to differ between concurrent runs.
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id()) << 64;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<target dir>/sealant-e2e-timings.txt`: where the suites append what they measure
/// (the target dir is found from the test binary's path, so `CARGO_TARGET_DIR` counts).
pub fn timings_file() -> Option<std::path::PathBuf> {
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().ok()?;
    Some(
        exe.parent()?
            .parent()?
            .parent()?
            .join("sealant-e2e-timings.txt"),
    )
}

/// Writes a measured (never asserted) line to stderr, past libtest's capture, and
/// appends it to [`timings_file`], where `scripts/test.sh` shows it.
pub fn record_timing(line: &str) {
    use std::io::Write as _;
    let line = format!("sealant-e2e: {line}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(file) = timings_file() {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}
