//! Cold-sync and memory benchmark of `sealant-controller` against the real Bitnami
//! controller on a local control plane (docs/design.md, "Performance targets"); see
//! `sealant_e2e::bench` and BENCHMARKS.md. `bench/sync.sh` runs it with the standard
//! settings:
//!
//! ```text
//! cargo run --release -p sealant-e2e --bin bench-sync -- --n 1000 \
//!     --runs floor,sealant,bitnami-raised,bitnami-default --out results.md
//! ```
//!
//! Exits non-zero, with the reason, when a run times out, stalls or produces a Secret
//! with the wrong data. Everything it started is killed when it exits.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use sealant_e2e::bench::{self, Options};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-sync: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let opts = Options::parse(std::env::args().skip(1))?;
    let command = std::iter::once("bench-sync".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");

    // Before the control plane starts, so nothing else competes for the cores.
    eprintln!("bench-sync: generating an RSA-4096 key and measuring the RSA work");
    let key = bench::bench_key()?;
    let rsa = bench::measure_rsa(&key.0, &opts)?;
    eprintln!(
        "bench-sync: RSA work {} x hybrid::open = {:.2} CPU s ({:.2} s wall) on one thread, \
         {:.2} s / {} cores",
        rsa.decryptions,
        rsa.single_thread_cpu_seconds,
        rsa.single_thread_seconds,
        rsa.per_cores_seconds,
        rsa.cores
    );

    let cp = sealant_e2e::cluster()?;
    eprintln!(
        "bench-sync: control plane up in {:.1} s ({})",
        cp.timings.controller_manager.as_secs_f64(),
        cp.dir.display()
    );
    // Built (or found) now, so a cargo build never runs inside a timed run.
    let controller = sealant_e2e::tools::sealant_controller()?;
    eprintln!("bench-sync: sealant-controller is {}", controller.display());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("build the tokio runtime")?;
    let report = runtime.block_on(bench::run(cp, &opts, rsa, &key))?;
    let table = report.markdown(&opts);
    println!("{table}");
    if let Some(out) = &opts.out {
        bench::append_results(out, &opts, &report, &command)?;
        eprintln!("bench-sync: appended to {}", out.display());
    }
    Ok(())
}
