//! The cold-sync and memory benchmark behind `bench-sync` (docs/design.md, "Performance
//! targets"): how long a controller takes to turn N SealedSecrets that already exist
//! into N Secrets, and how much memory and CPU it uses doing so, for `sealant-controller`
//! and the real Bitnami controller on one shared local control plane.
//!
//! ```text
//!  RSA-4096 key ──> key Secret in kube-system (both controllers load it)
//!  per run: fresh namespace ─> N SealedSecrets created (high-QPS admin client)
//!           ─> controller process starts (t = 0 at its exec, from /proc)
//!           ─> poll the Secret count (list, limit=1: one cheap request)
//!           ─> all N exist: t, CPU, RSS; then every Secret's data is checked
//!           ─> settle (CPU idle), steady RSS, stop; namespace deleted and gone
//!  floor:   a plain client creates the same N Secrets, no crypto
//!  ideal:   a plain client does only the mandatory work per SealedSecret: opens,
//!           Secret create, status write, event (no watch, no cache, no read)
//!  RSA work: N x values `hybrid::open` on one thread, divided by the cores
//! ```
//!
//! Guarantees:
//! - every controller run starts cold: its SealedSecrets are fresh, their Secrets do
//!   not exist, and the previous run's namespace is gone before the controller starts;
//! - both controllers watch all namespaces (Bitnami's default) and load the same key;
//! - a run that times out, stalls, or produces a Secret with the wrong data is an
//!   error (the binary exits non-zero), never a row in the table;
//! - no process outlives the driver: the harness's reaper kills everything it spawned.
//!
//! Timing is measured here, never asserted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use sealant_crds::{SealOptions, SealedSecret, seal_secret};
use sealant_keys::{Certificate, OffsetDateTime, PrivateKey, Scope, hybrid};
use serde::Serialize;

use crate::ControlPlane;
use crate::control_plane::{request_counts, request_delta};
use crate::fixtures::key_secret;
use crate::sealant_controller::SealantController;

/// The flags the Bitnami controller gets in the `bitnami-raised` run, unless
/// `--bitnami-raised-flags` says otherwise.
pub const BITNAMI_RAISED_FLAGS: &str = "--kubeclient-qps=500,--kubeclient-burst=1000";

/// How long the Secret count may stay the same before a run is declared stalled.
const STALL: Duration = Duration::from_secs(300);
/// How often the Secret count is polled.
const POLL: Duration = Duration::from_millis(100);

/// One kind of run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// A plain client creates the N Secrets: no controller, no crypto.
    Floor,
    /// A plain client does the mandatory work of a cold sync and nothing else: for
    /// each SealedSecret, the RSA-OAEP opens, the Secret create, the status write and
    /// the event. No watch, no cache, no read.
    Ideal,
    /// `sealant-controller` at its defaults.
    Sealant,
    /// The Bitnami controller at its defaults (client throttle: 5 QPS, burst 10).
    BitnamiDefault,
    /// The Bitnami controller with its client throttle raised.
    BitnamiRaised,
    /// Restart latency: with the N SealedSecrets in sync (a first sync by the same
    /// controller; Bitnami's with its throttle raised), the controller is restarted and
    /// one new SealedSecret applied 1 s later: the time from the restart to its Secret,
    /// and to the controller's readiness. Names: `sealant-restart`,
    /// `bitnami-default-restart`, `bitnami-raised-restart`.
    Restart(Restarted),
    /// Steady-state latency: with the N SealedSecrets in sync (a first sync by the
    /// same controller, which keeps running), [`STEADY_NEW`] new SealedSecrets are
    /// applied at [`STEADY_RATE`] per second; the time from each one's create to its
    /// Secret, seen on a watch. Names: `sealant-steady`, `bitnami-raised-steady`.
    Steady(Restarted),
}

/// New SealedSecrets a steady-state run applies.
pub const STEADY_NEW: usize = 200;
/// ... per second.
pub const STEADY_RATE: u32 = 20;

/// The controller a restart run restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restarted {
    /// `sealant-controller`.
    Sealant,
    /// Bitnami's, at its defaults.
    BitnamiDefault,
    /// Bitnami's, with its throttle raised.
    BitnamiRaised,
}

impl Restarted {
    fn kind(self) -> RunKind {
        match self {
            Self::Sealant => RunKind::Sealant,
            Self::BitnamiDefault => RunKind::BitnamiDefault,
            Self::BitnamiRaised => RunKind::BitnamiRaised,
        }
    }
}

impl RunKind {
    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "floor" => Self::Floor,
            "ideal" => Self::Ideal,
            "sealant" => Self::Sealant,
            "bitnami-default" => Self::BitnamiDefault,
            "bitnami-raised" => Self::BitnamiRaised,
            "sealant-restart" => Self::Restart(Restarted::Sealant),
            "bitnami-default-restart" => Self::Restart(Restarted::BitnamiDefault),
            "bitnami-raised-restart" => Self::Restart(Restarted::BitnamiRaised),
            "sealant-steady" => Self::Steady(Restarted::Sealant),
            "bitnami-raised-steady" => Self::Steady(Restarted::BitnamiRaised),
            other => bail!(
                "unknown run {other:?}: use floor, ideal, sealant, bitnami-default, \
                 bitnami-raised, one of the last three with -restart, or sealant-steady \
                 or bitnami-raised-steady"
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Ideal => "ideal",
            Self::Sealant => "sealant",
            Self::BitnamiDefault => "bitnami-default",
            Self::BitnamiRaised => "bitnami-raised",
            Self::Restart(Restarted::Sealant) => "sealant-restart",
            Self::Restart(Restarted::BitnamiDefault) => "bitnami-default-restart",
            Self::Restart(Restarted::BitnamiRaised) => "bitnami-raised-restart",
            Self::Steady(Restarted::Sealant) => "sealant-steady",
            Self::Steady(Restarted::BitnamiDefault) => "bitnami-default-steady",
            Self::Steady(Restarted::BitnamiRaised) => "bitnami-raised-steady",
        }
    }
}

/// What to run; see [`Options::USAGE`].
#[derive(Clone, Debug)]
pub struct Options {
    /// SealedSecrets (and Secrets) per run.
    pub n: usize,
    /// Values in each Secret.
    pub values_per_secret: usize,
    /// Bytes in each value.
    pub value_bytes: usize,
    /// The runs, in order.
    pub runs: Vec<RunKind>,
    /// Plain Secrets in other namespaces, created once before the runs.
    pub unrelated_secrets: usize,
    /// Requests in flight when the driver creates objects.
    pub concurrency: usize,
    /// The whole of one run may take at most this long.
    pub timeout: Duration,
    /// Extra flags for the `bitnami-raised` run.
    pub bitnami_raised_flags: Vec<String>,
    /// Where to append the markdown table and the JSON lines.
    pub out: Option<PathBuf>,
    /// Where to copy each controller's log.
    pub logs: Option<PathBuf>,
}

impl Options {
    /// The command-line help.
    pub const USAGE: &'static str = "\
usage: bench-sync [--n N] [--values-per-secret V] [--value-bytes B]
                  [--runs floor,ideal,sealant,bitnami-raised,bitnami-default,
                          sealant-restart,sealant-steady,bitnami-raised-steady,...]
                  [--unrelated-secrets M] [--concurrency C] [--timeout-secs S]
                  [--bitnami-raised-flags=--kubeclient-qps=500,--kubeclient-burst=1000]
                  [--out FILE] [--logs DIR]

Cold sync of N SealedSecrets on a local control plane, per controller: the time from
the controller's start until all N Secrets exist with the right data, its peak and
steady RSS and its CPU seconds; plus the floor (a plain client creating the same N
Secrets), the RSA work (N x V decryptions on one thread, divided by the cores), and
`ideal` (a plain client doing only the mandatory work of a cold sync: the opens, the
Secret create, the status write and the event, 64 SealedSecrets at a time).
Defaults: --n 1000 --values-per-secret 1 --value-bytes 64
--runs floor,sealant,bitnami-raised,bitnami-default --unrelated-secrets 0
--concurrency 64 --timeout-secs 3600.";

    /// Reads the options from `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut opts = Self {
            n: 1000,
            values_per_secret: 1,
            value_bytes: 64,
            runs: vec![
                RunKind::Floor,
                RunKind::Sealant,
                RunKind::BitnamiRaised,
                RunKind::BitnamiDefault,
            ],
            unrelated_secrets: 0,
            concurrency: 64,
            timeout: Duration::from_secs(3600),
            bitnami_raised_flags: split_flags(BITNAMI_RAISED_FLAGS),
            out: None,
            logs: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            if flag == "--help" || flag == "-h" {
                bail!("{}", Self::USAGE);
            }
            let mut value = || -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => args
                        .next()
                        .with_context(|| format!("{flag} needs a value\n{}", Self::USAGE)),
                }
            };
            let number = |v: String| -> Result<usize> {
                v.parse()
                    .with_context(|| format!("{flag} wants a whole number, not {v:?}"))
            };
            match flag.as_str() {
                "--n" => opts.n = number(value()?)?,
                "--values-per-secret" => opts.values_per_secret = number(value()?)?,
                "--value-bytes" => opts.value_bytes = number(value()?)?,
                "--unrelated-secrets" => opts.unrelated_secrets = number(value()?)?,
                "--concurrency" => opts.concurrency = number(value()?)?.max(1),
                "--timeout-secs" => opts.timeout = Duration::from_secs(number(value()?)? as u64),
                "--runs" => {
                    opts.runs = value()?
                        .split(',')
                        .filter(|r| !r.trim().is_empty())
                        .map(|r| RunKind::parse(r.trim()))
                        .collect::<Result<_>>()?;
                }
                "--bitnami-raised-flags" => opts.bitnami_raised_flags = split_flags(&value()?),
                "--out" => opts.out = Some(PathBuf::from(value()?)),
                "--logs" => opts.logs = Some(PathBuf::from(value()?)),
                other => bail!("unknown argument {other:?}\n{}", Self::USAGE),
            }
        }
        if opts.n == 0 || opts.values_per_secret == 0 || opts.runs.is_empty() {
            bail!("--n, --values-per-secret and --runs must not be zero or empty");
        }
        Ok(opts)
    }
}

fn split_flags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What one run measured. Times are seconds; memory is MiB.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunResult {
    /// The run's name (`floor`, `sealant`, ...).
    pub run: String,
    /// The flags the controller got beyond the harness's own.
    pub flags: Vec<String>,
    /// SealedSecrets in the run.
    pub n: usize,
    /// Values per Secret.
    pub values_per_secret: usize,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Unrelated Secrets elsewhere in the cluster.
    pub unrelated_secrets: usize,
    /// From the controller's start (the floor: the first create) until all N Secrets
    /// exist.
    pub seconds: f64,
    /// Until the first Secret exists.
    pub first_secret_seconds: Option<f64>,
    /// The controller's CPU (user + system, all threads) when all N Secrets exist.
    pub cpu_at_sync: Option<f64>,
    /// The controller's CPU when it was stopped, after it settled.
    pub cpu_total: Option<f64>,
    /// The controller's peak RSS (VmHWM) when it was stopped.
    pub peak_rss_mib: Option<f64>,
    /// Its RSS when all N Secrets exist.
    pub rss_at_sync_mib: Option<f64>,
    /// Its RSS after it settled.
    pub steady_rss_mib: Option<f64>,
    /// Whether its CPU went idle before the settle limit.
    pub settled: Option<bool>,
    /// kube-apiserver CPU during the sync (start until all N exist).
    pub apiserver_cpu: f64,
    /// etcd CPU during the sync.
    pub etcd_cpu: f64,
    /// kube-controller-manager CPU during the sync.
    pub kcm_cpu: f64,
    /// This driver's own CPU during the sync (the polling client).
    pub driver_cpu: f64,
    /// Restart runs: seconds from the restart to the controller's readiness (its
    /// certificate served); `seconds` is then the time to the new SealedSecret's
    /// Secret.
    pub ready_seconds: Option<f64>,
    /// The API server's non-watch requests on Secrets, SealedSecrets and events
    /// during the run (`apiserver_request_total`), by "VERB resource": for a
    /// controller, from its start until it settled, the driver's polling LISTs of
    /// Secrets included.
    pub requests: BTreeMap<String, f64>,
    /// Steady-state runs: apply-to-Secret latency of the new SealedSecrets, in ms.
    pub latency_ms: Option<Latency>,
}

/// Percentiles of apply-to-Secret times, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// How many were measured.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Longest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `samples` (milliseconds), nearest rank.
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len().max(1));
            samples.get(i - 1).copied().unwrap_or(0.0)
        };
        Self {
            count: samples.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples.last().copied().unwrap_or(0.0),
        }
    }
}

impl RunResult {
    /// The flags, as a markdown table cell.
    fn flags_cell(&self) -> String {
        if self.flags.is_empty() {
            "-".to_owned()
        } else {
            format!("`{}`", self.flags.join(" "))
        }
    }

    /// A result with the invocation's sizes, everything else empty.
    fn of(opts: &Options) -> Self {
        Self {
            n: opts.n,
            values_per_secret: opts.values_per_secret,
            value_bytes: opts.value_bytes,
            unrelated_secrets: opts.unrelated_secrets,
            ..Self::default()
        }
    }

    /// This result with `used`'s control-plane CPU, driver CPU and requests: what
    /// [`Meter::finish`] set in it.
    fn with_usage(self, used: RunResult) -> Self {
        Self {
            apiserver_cpu: used.apiserver_cpu,
            etcd_cpu: used.etcd_cpu,
            kcm_cpu: used.kcm_cpu,
            driver_cpu: used.driver_cpu,
            requests: used.requests,
            ..self
        }
    }
}

/// The RSA work: N x V `hybrid::open` of RSA-4096 blobs on one thread.
#[derive(Clone, Debug, Serialize)]
pub struct RsaWork {
    /// Decryptions measured.
    pub decryptions: usize,
    /// Their total wall time on one thread.
    pub single_thread_seconds: f64,
    /// Their total CPU time (user + system) on that thread.
    pub single_thread_cpu_seconds: f64,
    /// `available_parallelism`.
    pub cores: usize,
    /// `single_thread_cpu_seconds / cores`.
    pub per_cores_seconds: f64,
}

/// Everything one invocation measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// RSA work.
    pub rsa: RsaWork,
    /// Seconds to create the unrelated Secrets (if any).
    pub unrelated_seconds: Option<f64>,
    /// The runs, in order.
    pub runs: Vec<RunResult>,
}

impl Report {
    /// The floor of docs/design.md: max(RSA work / cores, the plain client's time), if the
    /// floor run was part of this invocation.
    pub fn floor(&self) -> Option<f64> {
        let plain = self.runs.iter().find(|r| r.run == "floor")?.seconds;
        Some(plain.max(self.rsa.per_cores_seconds))
    }

    fn seconds_of(&self, run: &str) -> Option<f64> {
        self.runs.iter().find(|r| r.run == run).map(|r| r.seconds)
    }

    /// The report as a markdown table with the ratios against the targets.
    pub fn markdown(&self, opts: &Options) -> String {
        let mut out = String::new();
        let r = &self.rsa;
        let _ = writeln!(
            out,
            "N = {} SealedSecrets x {} value(s) of {} bytes; {} unrelated Secrets; {} cores.\n",
            opts.n, opts.values_per_secret, opts.value_bytes, opts.unrelated_secrets, r.cores
        );
        let _ = writeln!(
            out,
            "RSA work: {} x `hybrid::open` (RSA-4096) = {:.2} CPU s on one thread ({:.2} s wall), \
             / {} cores = {:.2} s.",
            r.decryptions,
            r.single_thread_cpu_seconds,
            r.single_thread_seconds,
            r.cores,
            r.per_cores_seconds
        );
        if let Some(floor) = self.floor() {
            let _ = writeln!(
                out,
                "Floor = max(RSA work / cores, plain client) = {floor:.2} s.\n"
            );
        } else {
            out.push('\n');
        }
        let sealant = self.seconds_of("sealant");
        out.push_str(
            "| run | flags | all Secrets (s) | first (s) | x floor | sealant faster by | peak RSS (MiB) | steady RSS (MiB) | CPU at sync (s) | CPU total (s) | apiserver CPU (s) | etcd CPU (s) | kcm CPU (s) |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let opt = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |v| format!("{v:.p$}"));
        for run in self
            .runs
            .iter()
            .filter(|r| r.ready_seconds.is_none() && r.latency_ms.is_none())
        {
            let vs_floor = self.floor().map(|f| run.seconds / f);
            let faster = match (run.run.as_str(), sealant) {
                ("sealant" | "floor", _) | (_, None) => None,
                (_, Some(s)) => Some(run.seconds / s),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                run.run,
                run.flags_cell(),
                run.seconds,
                opt(run.first_secret_seconds, 2),
                opt(vs_floor, 2),
                faster.map_or("-".to_owned(), |x| format!("{x:.1}x")),
                opt(run.peak_rss_mib, 1),
                opt(run.steady_rss_mib, 1),
                opt(run.cpu_at_sync, 2),
                opt(run.cpu_total, 2),
                run.apiserver_cpu,
                run.etcd_cpu,
                run.kcm_cpu,
            );
        }
        let rss = |run: &str| {
            self.runs
                .iter()
                .find(|r| r.run == run)
                .and_then(|r| r.peak_rss_mib)
        };
        let restarts: Vec<&RunResult> = self
            .runs
            .iter()
            .filter(|r| r.ready_seconds.is_some())
            .collect();
        if !restarts.is_empty() {
            out.push_str(
                "\nRestart with the N SealedSecrets in sync, one new SealedSecret applied 1 s \
                 after the restart:\n\n| run | flags | new Secret after (s) | ready after (s) | \
                 peak RSS (MiB) | CPU until settled (s) | apiserver CPU (s) |\n|---|---|---|---|---|---|---|\n",
            );
            for run in restarts {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {} | {} | {} | {:.2} |",
                    run.run,
                    run.flags_cell(),
                    run.seconds,
                    opt(run.ready_seconds, 2),
                    opt(run.peak_rss_mib, 1),
                    opt(run.cpu_total, 2),
                    run.apiserver_cpu,
                );
            }
        }
        let steady: Vec<&RunResult> = self
            .runs
            .iter()
            .filter(|r| r.latency_ms.is_some())
            .collect();
        if !steady.is_empty() {
            let _ = write!(
                out,
                "\nSteady state with the N SealedSecrets in sync: {STEADY_NEW} new ones applied \
                 at {STEADY_RATE} per second, the time from each create to its Secret (seen on \
                 a watch):\n\n| run | flags | measured | p50 (ms) | p99 (ms) | max (ms) | peak \
                 RSS (MiB) |\n|---|---|---|---|---|---|---|\n"
            );
            for run in steady {
                let l = run.latency_ms.clone().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {} |",
                    run.run,
                    run.flags_cell(),
                    l.count,
                    l.p50,
                    l.p99,
                    l.max,
                    opt(run.peak_rss_mib, 1),
                );
            }
        }
        out.push_str(
            "\nAPI requests per SealedSecret (kube-apiserver's `apiserver_request_total`, \
             every verb but WATCH, on Secrets, SealedSecrets and events; a controller's \
             from its start until it settled, with the driver's polling LISTs of \
             Secrets):\n\n| run | per object | by verb and resource (in all) |\n|---|---|---|\n",
        );
        for run in &self.runs {
            let total: f64 = run.requests.values().sum();
            // A steady-state run's requests are those of its new SealedSecrets.
            let objects = if run.latency_ms.is_some() {
                STEADY_NEW
            } else {
                opts.n
            };
            let words: Vec<String> = run
                .requests
                .iter()
                .map(|(k, v)| format!("{k} {v:.0}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {:.2} | {} |",
                run.run,
                total / objects.max(1) as f64,
                words.join(", ")
            );
        }
        if let (Some(ours), Some(ideal)) = (sealant, self.seconds_of("ideal")) {
            let _ = writeln!(
                out,
                "\nCold sync sealant / ideal = {ours:.2} / {ideal:.2} = {:.2}x (target: at most 1.2x).",
                ours / ideal
            );
        }
        if let (Some(ours), Some(theirs)) = (rss("sealant"), rss("bitnami-raised")) {
            let _ = writeln!(
                out,
                "\nPeak RSS sealant / Bitnami (raised) = {ours:.1} / {theirs:.1} = {:.2}.",
                ours / theirs
            );
        }
        out
    }
}

/// Runs the benchmark on the shared control plane and returns what it measured.
pub async fn run(
    cp: &'static ControlPlane,
    opts: &Options,
    rsa: RsaWork,
    key: &(PrivateKey, Certificate),
) -> Result<Report> {
    let client = cp.client().await?;
    let key_pair = key;
    let key = install_key(&client, key).await?;
    let mut report = Report {
        rsa,
        unrelated_seconds: None,
        runs: Vec::new(),
    };
    if opts.unrelated_secrets > 0 {
        report.unrelated_seconds = Some(create_unrelated(&client, opts).await?);
    }
    for &kind in &opts.runs {
        eprintln!(
            "bench-sync: {} run, n = {}{}",
            kind.name(),
            opts.n,
            if kind == RunKind::BitnamiDefault {
                " (Bitnami's client is throttled to 5 requests/s: expect minutes, \
                 about 3 requests per SealedSecret)"
            } else {
                ""
            }
        );
        let result = match kind {
            RunKind::Floor => floor_run(cp, &client, opts).await?,
            RunKind::Ideal => ideal_run(cp, &client, &key_pair.0, opts).await?,
            RunKind::Restart(which) => restart_run(cp, &client, &key, which, opts).await?,
            RunKind::Steady(which) => steady_run(cp, &client, &key, which, opts).await?,
            _ => controller_run(cp, &client, &key, kind, opts).await?,
        };
        eprintln!(
            "bench-sync: {} done: {:.2} s, peak RSS {} MiB, CPU {} s",
            result.run,
            result.seconds,
            result
                .peak_rss_mib
                .map_or("-".into(), |v| format!("{v:.1}")),
            result.cpu_at_sync.map_or("-".into(), |v| format!("{v:.2}")),
        );
        report.runs.push(result);
    }
    Ok(report)
}

/// Measures the RSA work of a run: N x V blobs sealed to a fresh RSA-4096 key and
/// opened on one thread.
pub fn measure_rsa(key: &PrivateKey, opts: &Options) -> Result<RsaWork> {
    let count = opts.n * opts.values_per_secret;
    let label = Scope::Strict.label("bench", "rsa");
    let blobs: Vec<Vec<u8>> = (0..count)
        .map(|i| hybrid::seal(key.public_key(), &value(i, 0, opts.value_bytes), &label))
        .collect::<Result<_, _>>()
        .context("seal the RSA-work blobs")?;
    let cpu0 = thread_cpu_seconds()?;
    let start = Instant::now();
    for blob in &blobs {
        hybrid::open(key, blob, &label).context("open an RSA-work blob")?;
    }
    let single = start.elapsed().as_secs_f64();
    // CPU time, not wall time: on a shared machine the wall time also counts the time
    // other processes held the core.
    let cpu = thread_cpu_seconds()? - cpu0;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(RsaWork {
        decryptions: count,
        single_thread_seconds: single,
        single_thread_cpu_seconds: cpu,
        cores,
        per_cores_seconds: cpu / cores as f64,
    })
}

/// The key both controllers load: a fresh RSA-4096 key pair.
pub fn bench_key() -> Result<(PrivateKey, Certificate)> {
    let key = PrivateKey::generate(4096).context("generate an RSA-4096 key")?;
    let cert = Certificate::self_signed(
        &key,
        Duration::from_secs(10 * 365 * 86_400),
        "sealant-bench",
        OffsetDateTime::now_utc(),
    )
    .context("self-sign the benchmark key's certificate")?;
    Ok((key, cert))
}

/// Stores the benchmark key as an active key Secret in `kube-system` (the Bitnami
/// format, which both controllers load) and returns its public half.
async fn install_key(
    client: &kube::Client,
    (key, cert): &(PrivateKey, Certificate),
) -> Result<sealant_keys::PublicKey> {
    let mut secret = key_secret("", &key.expose_pkcs1_pem(), &cert.to_pem());
    secret.metadata.name = None;
    secret.metadata.generate_name = Some("sealed-secrets-key".to_owned());
    Api::<Secret>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &secret)
        .await
        .context("create the benchmark key Secret in kube-system")?;
    Ok(key.public_key().clone())
}

/// The plain client: N Secrets, same names and sizes, no crypto.
async fn floor_run(cp: &ControlPlane, client: &kube::Client, opts: &Options) -> Result<RunResult> {
    let ns = create_namespace(client, "bench-floor").await?;
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secrets: Vec<Secret> = (0..opts.n).map(|i| expected_secret(i, opts)).collect();
    let meter = Meter::start(cp, client).await?;
    let start = Instant::now();
    create_all(api.clone(), secrets, opts.concurrency).await?;
    let mut result = RunResult {
        run: RunKind::Floor.name().to_owned(),
        seconds: start.elapsed().as_secs_f64(),
        ..RunResult::of(opts)
    };
    meter.finish(client, &mut result).await?;
    verify_secrets(&api, &ns, opts).await?;
    delete_namespace(client, &ns).await?;
    Ok(result)
}

/// The `ideal` run: [`RunKind::Ideal`], with `--concurrency` SealedSecrets in work at
/// once, the RSA on the blocking pool (one thread per core). The SealedSecrets are
/// created first, as for the controllers; the clock covers the work only.
async fn ideal_run(
    cp: &ControlPlane,
    client: &kube::Client,
    key: &PrivateKey,
    opts: &Options,
) -> Result<RunResult> {
    let ns = create_namespace(client, "bench-ideal").await?;
    let sealed_api = Api::<SealedSecret>::namespaced(client.clone(), &ns);
    create_all(
        sealed_api.clone(),
        seal_all(key.public_key(), &ns, opts)?,
        opts.concurrency,
    )
    .await
    .context("create the SealedSecrets")?;
    // Listed for their uids (the Secrets' ownerReferences), before the clock starts.
    let objects = sealed_api.list(&ListParams::default()).await?.items;
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let meter = Meter::start(cp, client).await?;
    let start = Instant::now();
    let queue = Arc::new(Mutex::new(objects.into_iter()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..opts.concurrency {
        let queue = queue.clone();
        let client = client.clone();
        let key = key.clone();
        tasks.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some(sealed) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                mandatory_work(&client, &key, sealed).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("an ideal-run task panicked")??;
    }
    let mut result = RunResult {
        run: RunKind::Ideal.name().to_owned(),
        seconds: start.elapsed().as_secs_f64(),
        ..RunResult::of(opts)
    };
    meter.finish(client, &mut result).await?;
    // The driver is the controller here.
    result.cpu_at_sync = Some(result.driver_cpu);
    verify_secrets(&api, &ns, opts).await?;
    delete_namespace(client, &ns).await?;
    Ok(result)
}

/// What any controller must do for one new SealedSecret: open each value, create the
/// Secret (owned by the SealedSecret), write `Synced=True` to the status, and publish
/// the `Unsealed` event. Errors are not retried: on an idle control plane there are
/// none, and one would fail the run.
async fn mandatory_work(
    client: &kube::Client,
    key: &PrivateKey,
    sealed: SealedSecret,
) -> Result<()> {
    use base64::Engine as _;
    use k8s_openapi::api::events::v1::Event;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
    use kube::api::{Patch, PatchParams};

    let ns = sealed.metadata.namespace.clone().unwrap_or_default();
    let name = sealed.metadata.name.clone().unwrap_or_default();
    let label = Scope::Strict.label(&ns, &name);
    let encrypted = sealed.spec.encrypted_data.clone();
    let opener = key.clone();
    let data = tokio::task::spawn_blocking(move || {
        encrypted
            .iter()
            .map(|(k, v)| {
                let blob = base64::engine::general_purpose::STANDARD.decode(v)?;
                let plain = hybrid::open(&opener, &blob, &label)?;
                Ok((k.clone(), ByteString(plain.expose_secret().to_vec())))
            })
            .collect::<Result<BTreeMap<_, _>>>()
    })
    .await??;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "bitnami.com/v1alpha1".to_owned(),
                kind: "SealedSecret".to_owned(),
                name: name.clone(),
                uid: sealed.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .with_context(|| format!("create Secret {ns}/{name}"))?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let status = serde_json::json!({"status": {
        "conditions": [{"type": "Synced", "status": "True",
                        "lastUpdateTime": now.to_string(), "lastTransitionTime": now.to_string()}],
        "observedGeneration": sealed.metadata.generation,
    }});
    Api::<SealedSecret>::namespaced(client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .with_context(|| format!("write the status of {ns}/{name}"))?;
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some("Unseal".to_owned()),
        reason: Some("Unsealed".to_owned()),
        note: Some("SealedSecret unsealed successfully".to_owned()),
        type_: Some("Normal".to_owned()),
        reporting_controller: Some("bench-sync/ideal".to_owned()),
        reporting_instance: Some("bench-sync".to_owned()),
        regarding: Some(k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("bitnami.com/v1alpha1".to_owned()),
            kind: Some("SealedSecret".to_owned()),
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: sealed.metadata.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Event>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &event)
        .await
        .with_context(|| format!("publish the event of {ns}/{name}"))?;
    Ok(())
}

/// A running controller under test.
enum Controller {
    Sealant(SealantController),
    Bitnami(crate::bitnami::BitnamiController),
}

impl Controller {
    fn pid(&self) -> u32 {
        match self {
            Self::Sealant(c) => c.pid(),
            Self::Bitnami(c) => c.pid(),
        }
    }

    fn check_running(&self) -> Result<()> {
        match self {
            Self::Sealant(c) => c.check_running(),
            Self::Bitnami(c) => c.component.check_running(),
        }
    }

    fn log(&self) -> PathBuf {
        match self {
            Self::Sealant(c) => c.log_path(),
            Self::Bitnami(c) => c.component.log.clone(),
        }
    }

    /// What a failed run adds to its error: the end of the controller's log.
    fn failure(&self, kind: RunKind) -> String {
        format!(
            "the {} run failed; last lines of {}:\n{}",
            kind.name(),
            self.log().display(),
            crate::process::tail(&self.log(), 30)
        )
    }

    fn kill(&self) {
        match self {
            Self::Sealant(c) => c.kill(),
            Self::Bitnami(c) => c.kill(),
        }
    }
}

async fn controller_run(
    cp: &'static ControlPlane,
    client: &kube::Client,
    key: &sealant_keys::PublicKey,
    kind: RunKind,
    opts: &Options,
) -> Result<RunResult> {
    let ns = create_namespace(client, &format!("bench-{}", kind.name())).await?;
    let sealed = seal_all(key, &ns, opts)?;
    create_all(
        Api::<SealedSecret>::namespaced(client.clone(), &ns),
        sealed,
        opts.concurrency,
    )
    .await
    .context("create the SealedSecrets")?;
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    if count_secrets(&api).await? != 0 {
        bail!("namespace {ns} has Secrets before the controller starts");
    }

    let peers = control_plane_pids(cp)?;
    let peers0 = peers.cpu()?;
    let requests0 = request_counts(client).await?;
    let driver0 = cpu_seconds(std::process::id())?;
    let flags = controller_flags(kind, opts);
    let spawned = Instant::now();
    let controller = start_controller(cp, kind, &flags).await?;
    let result = measure(
        &api,
        &ns,
        &controller,
        kind,
        &flags,
        opts,
        spawned,
        &peers,
        peers0,
        driver0,
    )
    .await;
    if let Some(dir) = &opts.logs {
        std::fs::create_dir_all(dir)?;
        let to = dir.join(format!("{}-n{}.log", kind.name(), opts.n));
        let _ = std::fs::copy(controller.log(), &to);
    }
    let requests = request_counts(client).await;
    controller.kill();
    let mut result = result.with_context(|| controller.failure(kind))?;
    result.requests = request_delta(&requests0, &requests?);
    delete_namespace(client, &ns).await?;
    Ok(result)
}

/// The flags a controller run gets.
fn controller_flags(kind: RunKind, opts: &Options) -> Vec<String> {
    match kind {
        RunKind::Sealant => vec!["--all-namespaces=true".to_owned()],
        RunKind::BitnamiRaised => opts.bitnami_raised_flags.clone(),
        _ => Vec::new(),
    }
}

/// Starts the controller of `kind` (in `kube-system`, where the key is); returns once
/// it serves its certificate.
async fn start_controller(
    cp: &'static ControlPlane,
    kind: RunKind,
    flags: &[String],
) -> Result<Controller> {
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    Ok(match kind {
        RunKind::Sealant => {
            Controller::Sealant(SealantController::start(cp, "kube-system", &flag_refs).await?)
        }
        _ => Controller::Bitnami(crate::bitnami::start_with_args(cp, &flag_refs).await?),
    })
}

/// A namespace of its own for a run of `kind`, holding the N SealedSecrets (no
/// Secret yet): its name, and the SealedSecret and Secret APIs in it.
async fn sealed_namespace(
    client: &kube::Client,
    key: &sealant_keys::PublicKey,
    kind: RunKind,
    opts: &Options,
) -> Result<(String, Api<SealedSecret>, Api<Secret>)> {
    let ns = create_namespace(client, &format!("bench-{}", kind.name())).await?;
    let sealed_api = Api::<SealedSecret>::namespaced(client.clone(), &ns);
    create_all(
        sealed_api.clone(),
        seal_all(key, &ns, opts)?,
        opts.concurrency,
    )
    .await
    .context("create the SealedSecrets")?;
    let api = Api::namespaced(client.clone(), &ns);
    Ok((ns, sealed_api, api))
}

/// Waits until the N Secrets of a first sync by `controller` exist and its CPU has
/// settled.
async fn first_sync(
    api: &Api<Secret>,
    controller: &Controller,
    kind: RunKind,
    opts: &Options,
) -> Result<()> {
    let started = Instant::now();
    while count_secrets(api).await? < opts.n {
        controller.check_running()?;
        if started.elapsed() > opts.timeout {
            bail!("{}: the first sync timed out", kind.name());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    settle(controller.pid()).await?;
    Ok(())
}

/// A restart run ([`RunKind::Restart`]).
async fn restart_run(
    cp: &'static ControlPlane,
    client: &kube::Client,
    key: &sealant_keys::PublicKey,
    which: Restarted,
    opts: &Options,
) -> Result<RunResult> {
    let kind = RunKind::Restart(which);
    let (ns, sealed_api, api) = sealed_namespace(client, key, kind, opts).await?;

    // The first sync; Bitnami's at its defaults would take hours at N = 10,000.
    let first_kind = match which {
        Restarted::BitnamiDefault => RunKind::BitnamiRaised,
        _ => which.kind(),
    };
    eprintln!(
        "bench-sync: {}: first sync by {}",
        kind.name(),
        first_kind.name()
    );
    let first = start_controller(cp, first_kind, &controller_flags(first_kind, opts)).await?;
    let synced = first_sync(&api, &first, kind, opts).await;
    first.kill();
    synced?;

    // The restart, and one new SealedSecret 1 s later.
    let late_opts = Options {
        n: opts.n + 1,
        ..opts.clone()
    };
    let mut late = expected_secret(opts.n, opts);
    late.metadata.namespace = Some(ns.clone());
    let late = seal_secret(&late, key, &SealOptions::default())?;
    let late_name = secret_name(opts.n);
    let meter = Meter::start(cp, client).await?;
    let flags = controller_flags(which.kind(), opts);
    let spawned = Instant::now();
    let started = async {
        let controller = start_controller(cp, which.kind(), &flags).await;
        (controller, Instant::now())
    };
    let appeared = async {
        tokio::time::sleep_until((spawned + Duration::from_secs(1)).into()).await;
        sealed_api
            .create(&PostParams::default(), &late)
            .await
            .context("create the new SealedSecret")?;
        loop {
            if api.get_opt(&late_name).await?.is_some() {
                return Ok::<Instant, anyhow::Error>(Instant::now());
            }
            if spawned.elapsed() > opts.timeout {
                bail!(
                    "{}: no Secret {late_name} after {:?}",
                    kind.name(),
                    opts.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ((controller, ready_at), appeared) = tokio::join!(started, appeared);
    let controller = controller?;
    let measured = async {
        let appeared_at = appeared?;
        let pid = controller.pid();
        let t0 = Instant::now()
            .checked_sub(process_age(pid)?)
            .filter(|t0| *t0 >= spawned)
            .unwrap_or(spawned);
        let (settled, cpu_total) = settle(pid).await?;
        verify_secrets(&api, &ns, &late_opts).await?;
        Ok::<RunResult, anyhow::Error>(RunResult {
            run: kind.name().to_owned(),
            flags: flags.clone(),
            seconds: appeared_at.duration_since(t0).as_secs_f64(),
            ready_seconds: Some(ready_at.duration_since(t0).as_secs_f64()),
            cpu_total: Some(cpu_total),
            settled: Some(settled),
            peak_rss_mib: Some(status_kib(pid, "VmHWM")? / 1024.0),
            steady_rss_mib: Some(status_kib(pid, "VmRSS")? / 1024.0),
            ..RunResult::of(opts)
        })
    }
    .await;
    let mut used = RunResult::default();
    let metered = meter.finish(client, &mut used).await;
    controller.kill();
    let result = measured.with_context(|| controller.failure(kind))?;
    metered?;
    delete_namespace(client, &ns).await?;
    Ok(result.with_usage(used))
}

/// A steady-state run ([`RunKind::Steady`]).
async fn steady_run(
    cp: &'static ControlPlane,
    client: &kube::Client,
    key: &sealant_keys::PublicKey,
    which: Restarted,
    opts: &Options,
) -> Result<RunResult> {
    use futures::{StreamExt as _, TryStreamExt as _};

    let kind = RunKind::Steady(which);
    let (ns, sealed_api, api) = sealed_namespace(client, key, kind, opts).await?;
    let flags = controller_flags(which.kind(), opts);
    eprintln!("bench-sync: {}: first sync", kind.name());
    let controller = start_controller(cp, which.kind(), &flags).await?;
    let measured = async {
        first_sync(&api, &controller, kind, opts).await?;

        // The new SealedSecrets, sealed beforehand; a watch from now on sees their
        // Secrets arrive.
        let all = Options {
            n: opts.n + STEADY_NEW,
            ..opts.clone()
        };
        let mut news = Vec::with_capacity(STEADY_NEW);
        for i in opts.n..all.n {
            let mut secret = expected_secret(i, opts);
            secret.metadata.namespace = Some(ns.clone());
            news.push((
                secret_name(i),
                seal_secret(&secret, key, &SealOptions::default())?,
            ));
        }
        let version = api
            .list_metadata(&ListParams::default().limit(1))
            .await?
            .metadata
            .resource_version
            .context("a list without a resourceVersion")?;
        let mut events = api
            .watch(&WatchParams::default().timeout(290), &version)
            .await?
            .boxed();
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let watching = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(event) = events.try_next().await? {
                    if let WatchEvent::Added(secret) | WatchEvent::Modified(secret) = event
                        && let Some(name) = secret.metadata.name
                    {
                        seen.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(name)
                            .or_insert_with(Instant::now);
                    }
                }
                Ok::<(), anyhow::Error>(())
            })
        };
        let meter = Meter::start(cp, client).await?;
        let mut created = BTreeMap::new();
        let interval = Duration::from_secs(1) / STEADY_RATE;
        let first = Instant::now();
        for (i, (name, sealed)) in news.into_iter().enumerate() {
            tokio::time::sleep_until((first + interval * i as u32).into()).await;
            sealed_api.create(&PostParams::default(), &sealed).await?;
            created.insert(name, Instant::now());
        }
        let waiting = Instant::now();
        loop {
            controller.check_running()?;
            let done = {
                let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                created.keys().all(|name| seen.contains_key(name))
            };
            if done {
                break;
            }
            if waiting.elapsed() > Duration::from_secs(120) {
                bail!("{}: not every new Secret came within 120 s", kind.name());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watching.abort();
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let samples = created
            .iter()
            .map(|(name, at)| seen[name].saturating_duration_since(*at).as_secs_f64() * 1000.0)
            .collect();
        let mut used = RunResult::default();
        meter.finish(client, &mut used).await?;
        verify_secrets(&api, &ns, &all).await?;
        Ok(RunResult {
            run: kind.name().to_owned(),
            flags: flags.clone(),
            seconds: first.elapsed().as_secs_f64(),
            peak_rss_mib: Some(status_kib(controller.pid(), "VmHWM")? / 1024.0),
            steady_rss_mib: Some(status_kib(controller.pid(), "VmRSS")? / 1024.0),
            latency_ms: Some(Latency::of(samples)),
            ..RunResult::of(opts)
        }
        .with_usage(used))
    }
    .await;
    if let Some(dir) = &opts.logs {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::copy(
            controller.log(),
            dir.join(format!("{}-n{}.log", kind.name(), opts.n)),
        );
    }
    controller.kill();
    let result = measured.with_context(|| controller.failure(kind))?;
    delete_namespace(client, &ns).await?;
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    api: &Api<Secret>,
    ns: &str,
    controller: &Controller,
    kind: RunKind,
    flags: &[String],
    opts: &Options,
    spawned: Instant,
    peers: &PeerPids,
    peers0: [f64; 3],
    driver0: f64,
) -> Result<RunResult> {
    let pid = controller.pid();
    let exe = exe_name(pid);
    if ["ip", "unshare", "sh", "bash", "dash"].contains(&exe.as_str()) {
        bail!("pid {pid} runs {exe}, a wrapper, not the controller");
    }
    // t = 0 is the controller process's start, read from /proc: the harness's start
    // functions also apply RBAC and wait for /v1/cert.pem, which must not count.
    let age = process_age(pid)?;
    let t0 = Instant::now()
        .checked_sub(age)
        .filter(|t0| *t0 >= spawned)
        .unwrap_or(spawned);
    let mut first = None;
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    let mut last_report = Instant::now();
    loop {
        controller.check_running()?;
        let count = count_secrets(api).await?;
        let now = Instant::now();
        if count > 0 && first.is_none() {
            first = Some(now.duration_since(t0).as_secs_f64());
        }
        if count >= opts.n {
            break;
        }
        if count != last_count {
            last_count = count;
            last_progress = now;
        }
        if now.duration_since(last_progress) > STALL {
            bail!(
                "{}: no new Secret for {} s ({last_count} of {} exist)",
                kind.name(),
                STALL.as_secs(),
                opts.n
            );
        }
        if now.duration_since(t0) > opts.timeout {
            bail!(
                "{}: timed out after {} s ({last_count} of {} Secrets exist); raise --timeout-secs",
                kind.name(),
                opts.timeout.as_secs(),
                opts.n
            );
        }
        if now.duration_since(last_report) > Duration::from_secs(30) {
            last_report = now;
            eprintln!(
                "bench-sync: {}: {count} of {} Secrets after {:.0} s",
                kind.name(),
                opts.n,
                now.duration_since(t0).as_secs_f64()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_at_sync = cpu_seconds(pid)?;
    let rss_at_sync = status_kib(pid, "VmRSS")?;
    let peers1 = peers.cpu()?;
    let driver_cpu = cpu_seconds(std::process::id())? - driver0;

    verify_secrets(api, ns, opts).await?;
    let (settled, cpu_total) = settle(pid).await?;
    let steady_rss = status_kib(pid, "VmRSS")?;
    let peak_rss = status_kib(pid, "VmHWM")?;
    Ok(RunResult {
        run: kind.name().to_owned(),
        flags: flags.to_vec(),
        n: opts.n,
        values_per_secret: opts.values_per_secret,
        value_bytes: opts.value_bytes,
        unrelated_secrets: opts.unrelated_secrets,
        seconds,
        first_secret_seconds: first,
        cpu_at_sync: Some(cpu_at_sync),
        cpu_total: Some(cpu_total),
        peak_rss_mib: Some(peak_rss / 1024.0),
        rss_at_sync_mib: Some(rss_at_sync / 1024.0),
        steady_rss_mib: Some(steady_rss / 1024.0),
        settled: Some(settled),
        apiserver_cpu: peers1[0] - peers0[0],
        etcd_cpu: peers1[1] - peers0[1],
        kcm_cpu: peers1[2] - peers0[2],
        driver_cpu,
        ready_seconds: None,
        latency_ms: None,
        // Filled by the caller.
        requests: BTreeMap::new(),
    })
}

/// Waits until the controller's CPU stays idle (under 0.02 s in 2 s), at most 60 s.
/// Returns whether it did, and its CPU seconds then.
async fn settle(pid: u32) -> Result<(bool, f64)> {
    let start = Instant::now();
    let mut samples = vec![cpu_seconds(pid)?];
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_seconds(pid)?;
        samples.push(now);
        if samples.len() >= 3 && now - samples[samples.len() - 3] < 0.02 {
            return Ok((true, now));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Ok((false, now));
        }
    }
}

/// The Secret the controller should make for SealedSecret `i`: name, namespace-less
/// (the API fills it in) and data.
fn expected_secret(i: usize, opts: &Options) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(i)),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(expected_data(i, opts)),
        ..Default::default()
    }
}

fn expected_data(i: usize, opts: &Options) -> BTreeMap<String, ByteString> {
    (0..opts.values_per_secret)
        .map(|k| (format!("v{k}"), ByteString(value(i, k, opts.value_bytes))))
        .collect()
}

fn secret_name(i: usize) -> String {
    format!("s-{i:05}")
}

/// A deterministic printable value for Secret `i`, key `k`.
fn value(i: usize, k: usize, len: usize) -> Vec<u8> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (k as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALNUM[(x % ALNUM.len() as u64) as usize]
        })
        .collect()
}

/// N SealedSecrets for `ns`, strict scope, sealed to `key`.
fn seal_all(key: &sealant_keys::PublicKey, ns: &str, opts: &Options) -> Result<Vec<SealedSecret>> {
    (0..opts.n)
        .map(|i| {
            let mut secret = expected_secret(i, opts);
            secret.metadata.namespace = Some(ns.to_owned());
            seal_secret(&secret, key, &SealOptions::default())
                .with_context(|| format!("seal {ns}/{}", secret_name(i)))
        })
        .collect()
}

/// Creates `objects` with `concurrency` requests in flight, retrying transient errors.
async fn create_all<K>(api: Api<K>, objects: Vec<K>, concurrency: usize) -> Result<()>
where
    K: kube::Resource
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let queue = Arc::new(Mutex::new(objects.into_iter()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let api = api.clone();
        tasks.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some(obj) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => break,
                        // A retried create whose first attempt landed.
                        Err(kube::Error::Api(e)) if e.code == 409 && attempt > 1 => break,
                        Err(e) if attempt < 5 && transient(&e) => {
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => {
                            return Err(anyhow::Error::new(e).context(format!(
                                "create {}",
                                obj.meta().name.as_deref().unwrap_or("?")
                            )));
                        }
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a create task panicked")??;
    }
    Ok(())
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        _ => true,
    }
}

/// The number of Secrets in `api`'s namespace, in one cheap request: a list with
/// `limit=1` carries the count of the rest in `remainingItemCount`.
async fn count_secrets(api: &Api<Secret>) -> Result<usize> {
    let page = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .context("list Secrets (limit 1)")?;
    let more = page
        .metadata
        .continue_
        .as_deref()
        .is_some_and(|c| !c.is_empty());
    match (more, page.metadata.remaining_item_count) {
        (false, _) => Ok(page.items.len()),
        (true, Some(rest)) => Ok(page.items.len() + usize::try_from(rest).unwrap_or(0)),
        (true, None) => {
            // No count from the server: page through the metadata instead.
            let mut count = 0;
            let mut params = ListParams::default().limit(1000);
            loop {
                let page = api.list_metadata(&params).await?;
                count += page.items.len();
                match page.metadata.continue_ {
                    Some(c) if !c.is_empty() => params = params.continue_token(&c),
                    _ => return Ok(count),
                }
            }
        }
    }
}

/// Checks that exactly the N expected Secrets exist, each with exactly its values.
async fn verify_secrets(api: &Api<Secret>, ns: &str, opts: &Options) -> Result<()> {
    let mut found: BTreeMap<String, BTreeMap<String, ByteString>> = BTreeMap::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.context("list Secrets")?;
        for s in page.items {
            found.insert(
                s.metadata.name.unwrap_or_default(),
                s.data.unwrap_or_default(),
            );
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => params = params.continue_token(&c),
            _ => break,
        }
    }
    for i in 0..opts.n {
        let name = secret_name(i);
        let Some(data) = found.remove(&name) else {
            bail!("Secret {ns}/{name} is missing");
        };
        if data != expected_data(i, opts) {
            let keys: Vec<&String> = data.keys().collect();
            bail!("Secret {ns}/{name} has the wrong data (its keys: {keys:?})");
        }
    }
    if let Some(extra) = found.keys().next() {
        bail!("unexpected Secret {ns}/{extra}");
    }
    Ok(())
}

/// `M` plain Secrets, 1000 to a namespace, made by the plain client before the runs.
async fn create_unrelated(client: &kube::Client, opts: &Options) -> Result<f64> {
    let start = Instant::now();
    let per_ns = 1000;
    let mut made = 0;
    while made < opts.unrelated_secrets {
        let ns = create_namespace(client, "bench-unrelated").await?;
        let count = per_ns.min(opts.unrelated_secrets - made);
        let secrets: Vec<Secret> = (made..made + count)
            .map(|i| expected_secret(i, opts))
            .collect();
        create_all(
            Api::namespaced(client.clone(), &ns),
            secrets,
            opts.concurrency,
        )
        .await
        .context("create the unrelated Secrets")?;
        made += count;
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "bench-sync: {} unrelated Secrets created in {seconds:.1} s",
        opts.unrelated_secrets
    );
    Ok(seconds)
}

async fn create_namespace(client: &kube::Client, prefix: &str) -> Result<String> {
    let name = format!("{prefix}-{}", crate::random_hex(3));
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("create namespace {name}"))?;
    Ok(name)
}

/// Deletes `name` and waits until it is gone, so that the next controller's first list
/// does not see its objects.
async fn delete_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.delete(name, &DeleteParams::background())
        .await
        .with_context(|| format!("delete namespace {name}"))?;
    let start = Instant::now();
    while api.get_opt(name).await?.is_some() {
        if start.elapsed() > Duration::from_secs(600) {
            bail!("namespace {name} was not gone 600 s after its deletion");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// The control plane's processes, found by name among those the harness spawned.
/// The counters a run is measured by, read before it: the control plane's CPU, the
/// API server's request counts, this driver's CPU.
struct Meter {
    peers: PeerPids,
    peers0: [f64; 3],
    requests0: BTreeMap<String, f64>,
    driver0: f64,
}

impl Meter {
    async fn start(cp: &ControlPlane, client: &kube::Client) -> Result<Self> {
        let peers = control_plane_pids(cp)?;
        let peers0 = peers.cpu()?;
        Ok(Self {
            peers,
            peers0,
            requests0: request_counts(client).await?,
            driver0: cpu_seconds(std::process::id())?,
        })
    }

    /// Sets `result`'s control-plane CPU, driver CPU and requests to what was used
    /// since [`Meter::start`].
    async fn finish(&self, client: &kube::Client, result: &mut RunResult) -> Result<()> {
        result.driver_cpu = cpu_seconds(std::process::id())? - self.driver0;
        let peers1 = self.peers.cpu()?;
        result.apiserver_cpu = peers1[0] - self.peers0[0];
        result.etcd_cpu = peers1[1] - self.peers0[1];
        result.kcm_cpu = peers1[2] - self.peers0[2];
        result.requests = request_delta(&self.requests0, &request_counts(client).await?);
        Ok(())
    }
}

struct PeerPids {
    apiserver: u32,
    etcd: u32,
    kcm: u32,
}

impl PeerPids {
    /// CPU seconds of kube-apiserver, etcd and kube-controller-manager.
    fn cpu(&self) -> Result<[f64; 3]> {
        Ok([
            cpu_seconds(self.apiserver)?,
            cpu_seconds(self.etcd)?,
            cpu_seconds(self.kcm)?,
        ])
    }
}

fn control_plane_pids(cp: &ControlPlane) -> Result<PeerPids> {
    let list = std::fs::read_to_string(cp.dir.join("pids")).context("read the reaper's pids")?;
    let mut by_comm = BTreeMap::new();
    for pid in list
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u32>().ok())
    {
        if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            by_comm.insert(comm.trim().to_owned(), pid);
        }
    }
    // The peers' file names carry their versions (`etcd-v3.6.16`), and comm is cut
    // at 15 bytes.
    let find = |prefix: &str| {
        by_comm
            .iter()
            .find(|(comm, _)| comm.starts_with(prefix))
            .map(|(_, pid)| *pid)
            .with_context(|| format!("no running {prefix}* among the harness's processes"))
    };
    Ok(PeerPids {
        apiserver: find("kube-apiserver")?,
        etcd: find("etcd")?,
        kcm: find("kube-controller")?,
    })
}

/// Clock ticks per second for /proc's CPU times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/PID/stat after the command name, from field 3 (state) on.
fn stat_fields(pid: u32) -> Result<Vec<String>> {
    stat_fields_of(&format!("/proc/{pid}/stat"))
}

fn stat_fields_of(path: &str) -> Result<Vec<String>> {
    let stat = std::fs::read_to_string(path)
        .with_context(|| format!("read {path} (has the process exited?)"))?;
    let rest = stat
        .rsplit_once(") ")
        .with_context(|| format!("unexpected {path}"))?
        .1;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// User plus system CPU seconds of the calling thread.
fn thread_cpu_seconds() -> Result<f64> {
    cpu_of(
        &stat_fields_of("/proc/thread-self/stat")?,
        "/proc/thread-self/stat",
    )
}

/// User plus system CPU seconds of every thread of `pid`.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    cpu_of(&stat_fields(pid)?, &format!("/proc/{pid}/stat"))
}

fn cpu_of(f: &[String], path: &str) -> Result<f64> {
    // utime and stime are fields 14 and 15; f[0] is field 3.
    let ticks = |i: usize| -> Result<f64> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no field {} in {path}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// How long ago `pid` started (field 22 of /proc/PID/stat against /proc/uptime).
fn process_age(pid: u32) -> Result<Duration> {
    let f = stat_fields(pid)?;
    let start: f64 = f
        .get(19)
        .and_then(|v| v.parse().ok())
        .context("no start time in /proc/PID/stat")?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .context("unexpected /proc/uptime")?;
    Ok(Duration::from_secs_f64(
        (uptime - start / clock_ticks()).max(0.0),
    ))
}

/// A `Vm*` line of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The program `pid` runs, for the report: it must be the controller itself, not a
/// wrapper (`ip netns exec`, `unshare`, `sh` all exec into it).
pub fn exe_name(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// Appends the markdown table and one JSON line per run to `path`.
pub fn append_results(path: &Path, opts: &Options, report: &Report, command: &str) -> Result<()> {
    use std::io::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\n### bench-sync, {}, n = {}\n\n`{command}`\n",
        OffsetDateTime::now_utc(),
        opts.n
    );
    text.push_str(&report.markdown(opts));
    text.push_str("\n```json\n");
    let _ = writeln!(
        text,
        "{}",
        serde_json::json!({"rsa": report.rsa, "unrelated_seconds": report.unrelated_seconds})
    );
    for run in &report.runs {
        let _ = writeln!(text, "{}", serde_json::to_string(run)?);
    }
    text.push_str("```\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?
        .write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Latency;

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let l = Latency::of((1..=200).rev().map(f64::from).collect());
        assert_eq!((l.count, l.p50, l.p99, l.max), (200, 100.0, 198.0, 200.0));
        let one = Latency::of(vec![7.0]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        let none = Latency::of(Vec::new());
        assert_eq!((none.count, none.max), (0, 0.0));
    }
}
