//! Starts the harness's local control plane by hand, for a demo or for debugging a
//! controller against it outside the test suite (see [`USAGE`]).
//!
//! With `--sealant`, it runs `sealant-controller` in `kube-system` behind the service
//! proxy as a default install does (every namespace, 4096-bit keys; the `deploy/`
//! RBAC's ServiceAccount token, never admin) and walks a secret through: `sealant`
//! seals it with the cert fetched through the proxy, `kubectl apply` applies it, the
//! controller makes the Secret, and the Secret is shown.
//!
//! It prints an admin kubeconfig path and the addresses, then runs until Enter, end of
//! input or Ctrl-C. Everything is torn down when it exits, exactly as after a test run.

use std::io::BufRead as _;
use std::time::{Instant, SystemTime};

const USAGE: &str = "\
Usage: cargo run -p sealant-e2e --bin local-cluster -- [--sealant | --bitnami]

Starts a local Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager; built once into ~/.cache/sealant/bin) and prints an
admin KUBECONFIG. Runs until Enter or Ctrl-C, then tears everything down.

Options:
  --sealant   also run sealant-controller in kube-system, as a default install
              (every namespace, 4096-bit keys), and walk a secret through it
  --bitnami   also run Bitnami's controller there instead
  -h, --help  print this and exit
";

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    if let Some(unknown) = args.iter().find(|a| *a != "--bitnami" && *a != "--sealant") {
        anyhow::bail!("unknown argument {unknown:?}\n\n{USAGE}");
    }
    let with_bitnami = args.iter().any(|a| a == "--bitnami");
    let with_sealant = args.iter().any(|a| a == "--sealant");
    if with_bitnami && with_sealant {
        anyhow::bail!("--bitnami and --sealant both want kube-system's controller Service");
    }
    println!("==> local control plane: etcd, kube-apiserver, kube-controller-manager");
    println!("# (the first run builds them from the Go module proxy: many minutes)");
    let cp = sealant_e2e::cluster()?;
    println!("export KUBECONFIG={}", cp.admin_kubeconfig.display());
    println!(
        "# kubectl of the same release: {}",
        sealant_e2e::tools::kubectl()?.display()
    );
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _controller = if with_sealant {
        Some(runtime.block_on(walk_through(cp))?)
    } else {
        None
    };
    // scripts/demo.sh passes its own launch time, so the total includes the peers and
    // the build it ran before starting this program.
    let since_launch = launched_at()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_else(|| started.elapsed());
    println!(
        "# ready {:.1} s after launch (this program {:.1} s, of which the control plane \
         {:.1} s); press Enter or Ctrl-C to stop",
        since_launch.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        cp.timings.controller_manager.as_secs_f64()
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(())
}

/// When `scripts/demo.sh` was launched: `SEALANT_DEMO_LAUNCHED_AT`, in seconds since
/// the Unix epoch (`date +%s.%N`).
fn launched_at() -> Option<SystemTime> {
    let secs: f64 = std::env::var("SEALANT_DEMO_LAUNCHED_AT")
        .ok()?
        .parse()
        .ok()?;
    let since_epoch = std::time::Duration::try_from_secs_f64(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(since_epoch)
}

/// Starts `sealant-controller` behind the service proxy and walks a secret through.
async fn walk_through(
    cp: &'static sealant_e2e::ControlPlane,
) -> anyhow::Result<sealant_e2e::sealant_controller::SealantController> {
    use std::process::Command;

    use anyhow::Context as _;
    use sealant_e2e::{bitnami, sealant_controller::SealantController, tools};

    let step = |text: &str| println!("\n==> {text}");
    step("sealant-controller in kube-system, behind the service proxy");
    // Located (and, on a first run, compiled) before the clock of the start-up wait.
    tools::sealant_controller()?;
    tools::sealant()?;
    let controller = SealantController::start_on_port(
        cp,
        bitnami::NAMESPACE,
        8080,
        &["--all-namespaces=true", "--key-size=4096"],
    )
    .await?;
    bitnami::route_service_proxy(&cp.client().await?, cp).await?;
    println!(
        "# http://{} (metrics http://{}), log {}",
        controller.addr,
        controller.metrics_addr,
        controller.log_path().display()
    );

    let sealant = || {
        let mut cmd = Command::new(tools::sealant().expect("sealant binary"));
        cmd.env("KUBECONFIG", &cp.admin_kubeconfig);
        cmd
    };
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: demo\n  namespace: default\n\
                  stringData:\n  password: correct-horse-battery-staple\n";
    step("the Secret to seal");
    print!("{secret}");
    step("sealant -o yaml (the cert is fetched through the service proxy)");
    let sealed = tools::run(sealant().args(["-o", "yaml"]), secret.as_bytes())?.stdout;
    print!("{}", String::from_utf8_lossy(&sealed));
    let kubectl = || {
        let mut cmd = Command::new(tools::kubectl().expect("kubectl"));
        cmd.arg("--kubeconfig").arg(&cp.admin_kubeconfig);
        cmd
    };
    step("kubectl apply -f -");
    let out = tools::run(kubectl().args(["apply", "-f", "-"]), &sealed)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    step("kubectl wait --for=condition=Synced sealedsecret/demo");
    tools::run(
        kubectl().args([
            "-n",
            "default",
            "wait",
            "--for=condition=Synced",
            "--timeout=30s",
            "sealedsecret/demo",
        ]),
        b"",
    )
    .context("the controller did not sync the SealedSecret")?;
    step("kubectl get secret demo -o yaml (made by sealant-controller)");
    let out = tools::run(
        kubectl().args(["-n", "default", "get", "secret", "demo", "-o", "yaml"]),
        b"",
    )?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(controller)
}
