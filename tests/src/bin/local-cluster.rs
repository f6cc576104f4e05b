//! Starts the harness's local control plane by hand, for debugging a controller against
//! it outside the test suite: `cargo run -p sealant-e2e --bin local-cluster [-- --bitnami]`.
//!
//! It prints an admin kubeconfig path and the addresses, then runs until Enter, end of
//! input or Ctrl-C. Everything is torn down when it exits, exactly as after a test run.

use std::io::BufRead as _;

fn main() -> anyhow::Result<()> {
    let with_bitnami = std::env::args().skip(1).any(|a| a == "--bitnami");
    let cp = sealant_e2e::cluster()?;
    println!("export KUBECONFIG={}", cp.admin_kubeconfig.display());
    println!(
        "# API server {} (CA {})",
        cp.server,
        cp.dir.join("ca.crt").display()
    );
    println!(
        "# test host: run a controller with `ip netns exec {} ...`, listening on {}",
        cp.host.netns, cp.host.ns_ip
    );
    println!("# logs in {}", cp.dir.join("logs").display());
    if with_bitnami {
        let bitnami = cp.bitnami()?;
        println!(
            "# Bitnami controller at http://{} and via the service proxy {}",
            bitnami.addr,
            sealant_e2e::bitnami::proxy_path("/v1/cert.pem")
        );
    }
    println!(
        "# ready in {:.1} s; press Enter or Ctrl-C to stop",
        cp.timings.controller_manager.as_secs_f64()
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(())
}
