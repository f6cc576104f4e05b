//! A real node beside a control plane: containerd and runc, the CNI bridge plugin, a
//! kubelet, kube-proxy and kube-scheduler, so that charts run as Pods.
//!
//! ```text
//!  kube-apiserver (host veth addr) <── kubelet ── containerd ── runc ── Pods
//!        ^   │ logs, exec ──────────────> :port      (CNI bridge sealante2e0, 10.253.0.0/24)
//!        │   └─ Service "kubernetes" (lease endpoint) <── kube-proxy (iptables) <── Pods
//!  kube-scheduler
//! ```
//!
//! The node runs on this machine's own network namespace and changes host-global state
//! that no temporary directory can hold: iptables chains (kube-proxy, the kubelet),
//! sysctls the kubelet and kube-proxy set, a bridge, the Pods' network namespaces in
//! `/var/run/netns`, cgroups, mounts and `/var/log/containers` links. So:
//! - one node at a time on the machine: [`Node::start`] waits for a machine-wide lock,
//!   held by the node's own reaper ([`crate::process::Reaper::start_locked`]) until its
//!   teardown has run, after the test process exits however it exits;
//! - the teardown script, written before anything starts, kills every container
//!   process and shim, unmounts, deletes the Pods' network namespaces, the bridge, the
//!   cgroups and every `KUBE-*` chain, and restores each sysctl to the value it had;
//! - a machine that already has `KUBE-*` chains (another kubelet or kube-proxy) is
//!   refused, because the teardown removes them all;
//! - everything else (containerd's root and state, the kubelet's root directory, Pod
//!   logs, the IPAM store) lives in the node's own temporary directory, and the kubelet
//!   and kube-proxy listen on free ports, not 10248, 10250 and 10256.
//!
//! The kubelet, kube-proxy and the scheduler act as the control plane's admin. The
//! kubelet accepts only clients with a certificate from the control plane's CA (no
//! anonymous requests) and authorizes every one of them: a test node, not a hardened
//! one. The API server reaches it at its InternalIP, the control plane's host address.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::api::Api;

use crate::control_plane::{ControlPlane, free_port, wait_until_async};
use crate::process::{Component, Reaper, tail};

/// The node's name, as the kubelet registers it.
pub const NODE_NAME: &str = "sealant-e2e-node";
/// The Pods' network, on the node's bridge `sealante2e0`.
pub const POD_CIDR: &str = "10.253.0.0/24";
const BRIDGE: &str = "sealante2e0";
/// The pause image's reference (built by `tests/peers/build.sh pause-image`).
pub const PAUSE_IMAGE: &str = "localhost/sealant-e2e/pause:3.10";
/// Held by the node's reaper: one node on the machine at a time.
const LOCK: &str = "/run/sealant-e2e-node.lock";
/// The cgroup parent of every Pod (the kubelet's `cgroupRoot`), in every hierarchy.
const CGROUP_ROOT: &str = "sealant-e2e-node";
/// The sysctls the kubelet, kube-proxy and the bridge plugin may set: restored on
/// teardown.
const SYSCTLS: [&str; 9] = [
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
];
/// How long the node may take to become Ready, with kube-proxy's rules in place.
const NODE_TIMEOUT: Duration = Duration::from_secs(120);

/// The API server flags a node needs: the `kubernetes` Service gets the API server's
/// address as its endpoint, and logs and exec go to the kubelet's InternalIP (the node
/// name resolves nowhere). Pass them to [`ControlPlane::start_another_with`].
pub const APISERVER_ARGS: [&str; 2] = [
    "--endpoint-reconciler-type=lease",
    "--kubelet-preferred-address-types=InternalIP",
];

/// A running node. Stopped and torn down by its reaper when the test process exits,
/// or earlier by [`Node::stop`].
pub struct Node {
    /// The node's temporary directory (configuration, data and logs).
    pub dir: PathBuf,
    /// containerd's socket, for `ctr --address`.
    pub containerd_socket: PathBuf,
    /// How long the node took from [`Node::start`] to Ready.
    pub ready_after: Duration,
    reaper: Reaper,
    components: Vec<Component>,
}

impl Node {
    /// Starts a node for `cp` (started with [`APISERVER_ARGS`]) and waits until it is
    /// Ready, kube-proxy has written the `kubernetes` Service's rules and the pause
    /// image is imported.
    pub async fn start(cp: &ControlPlane) -> Result<Self> {
        let started = Instant::now();
        let peers = crate::peers::peers()?;
        let dir = tempfile::Builder::new()
            .prefix("sealant-e2e-node-")
            .tempdir()
            .context("create the node's temporary directory")?
            .keep();
        let teardown = dir.join("teardown.sh");
        // Waits here while another node on this machine is running or tearing down.
        let reaper = Reaper::start_locked(&dir, cp.keep, Path::new(LOCK), &teardown)?;
        preflight()?;
        for sub in ["logs", "cni", "kubelet", "pod-logs", "ipam", "containerd"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(&teardown, teardown_script(&dir)?)
            .context("write the node's teardown script")?;
        let logs = dir.join("logs");
        let host_ip = cp.host.host_ip;
        let socket = dir.join("containerd/containerd.sock");
        let ca = cp.dir.join("ca.crt");

        for controller in cgroup_controllers()? {
            std::fs::create_dir_all(
                Path::new("/sys/fs/cgroup")
                    .join(&controller)
                    .join(CGROUP_ROOT),
            )
            .with_context(|| format!("create the {controller} cgroup {CGROUP_ROOT}"))?;
        }
        set_sysctl("net/bridge/bridge-nf-call-iptables", "1")?;
        set_sysctl("net/ipv4/ip_forward", "1")?;

        // containerd, with the CRI plugin and CNI.
        std::fs::write(
            dir.join("cni/10-sealant-e2e.conflist"),
            cni_config(&dir.join("ipam")),
        )?;
        let containerd_config = dir.join("containerd.toml");
        std::fs::write(&containerd_config, containerd_config_text(&dir, &socket))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&containerd_config);
        let containerd = reaper.spawn("containerd", cmd, &logs.join("containerd.log"))?;
        wait_until_async(&containerd, "containerd's socket", || async {
            Ok(ctr(&socket)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success()))
        })
        .await?;
        let mut node = Self {
            dir: dir.clone(),
            containerd_socket: socket.clone(),
            ready_after: Duration::ZERO,
            reaper,
            components: vec![containerd],
        };
        node.import_image(&peers.pause_image)?;

        // The kubelet.
        let kubelet_port = free_port(IpAddr::V4(host_ip))?;
        let healthz_port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let kubelet_config = dir.join("kubelet.yaml");
        std::fs::write(
            &kubelet_config,
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\n\
                 kind: KubeletConfiguration\n\
                 address: {host_ip}\n\
                 port: {kubelet_port}\n\
                 readOnlyPort: 0\n\
                 healthzBindAddress: 127.0.0.1\n\
                 healthzPort: {healthz_port}\n\
                 authentication:\n  anonymous: {{enabled: false}}\n  webhook: {{enabled: false}}\n  \
                 x509: {{clientCAFile: {ca}}}\n\
                 authorization: {{mode: AlwaysAllow}}\n\
                 cgroupDriver: cgroupfs\n\
                 cgroupRoot: /{CGROUP_ROOT}\n\
                 failCgroupV1: false\n\
                 failSwapOn: false\n\
                 containerRuntimeEndpoint: unix://{socket}\n\
                 podLogsDir: {pod_logs}\n\
                 resolvConf: /etc/resolv.conf\n\
                 shutdownGracePeriod: 0s\n\
                 evictionHard: {{memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}\n\
                 imageGCHighThresholdPercent: 100\n\
                 imageGCLowThresholdPercent: 99\n",
                ca = ca.display(),
                socket = socket.display(),
                pod_logs = dir.join("pod-logs").display(),
            ),
        )?;
        let mut cmd = Command::new(&peers.kubelet);
        cmd.arg("--config")
            .arg(&kubelet_config)
            .arg("--kubeconfig")
            .arg(&cp.admin_kubeconfig)
            .arg("--root-dir")
            .arg(dir.join("kubelet"))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg(format!("--node-ip={host_ip}"));
        let kubelet = node
            .reaper
            .spawn("kubelet", cmd, &logs.join("kubelet.log"))?;

        // kube-proxy, iptables mode; no conntrack tuning (no sysctls of its own).
        let proxy_config = dir.join("kube-proxy.yaml");
        std::fs::write(
            &proxy_config,
            format!(
                "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
                 kind: KubeProxyConfiguration\n\
                 clientConnection: {{kubeconfig: {kubeconfig}}}\n\
                 mode: iptables\n\
                 clusterCIDR: {POD_CIDR}\n\
                 hostnameOverride: {NODE_NAME}\n\
                 healthzBindAddress: 127.0.0.1:{healthz}\n\
                 metricsBindAddress: 127.0.0.1:{metrics}\n\
                 nodePortAddresses: [{host_ip}/32]\n\
                 conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}\n\
                 iptables: {{minSyncPeriod: 0s, syncPeriod: 30s}}\n",
                kubeconfig = cp.admin_kubeconfig.display(),
                healthz = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?,
                metrics = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?,
            ),
        )?;
        let mut cmd = Command::new(&peers.kube_proxy);
        cmd.arg("--config").arg(&proxy_config);
        let proxy = node
            .reaper
            .spawn("kube-proxy", cmd, &logs.join("kube-proxy.log"))?;

        // kube-scheduler.
        let mut cmd = Command::new(&peers.kube_scheduler);
        cmd.arg("--kubeconfig")
            .arg(&cp.admin_kubeconfig)
            .arg("--authentication-kubeconfig")
            .arg(&cp.admin_kubeconfig)
            .arg("--authorization-kubeconfig")
            .arg(&cp.admin_kubeconfig)
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--secure-port={}",
                free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?
            ));
        let scheduler =
            node.reaper
                .spawn("kube-scheduler", cmd, &logs.join("kube-scheduler.log"))?;
        node.components.extend([kubelet, proxy, scheduler]);

        let client = cp.client().await?;
        let nodes: Api<NodeObject> = Api::all(client);
        node.wait("the node to be Ready", || {
            let nodes = nodes.clone();
            async move {
                let Some(n) = nodes.get_opt(NODE_NAME).await? else {
                    return Ok(false);
                };
                Ok(n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"))
            }
        })
        .await?;
        node.wait("kube-proxy's rules for the kubernetes Service", || async {
            Ok(iptables_save("nat")?.contains("default/kubernetes:https"))
        })
        .await?;
        node.ready_after = started.elapsed();
        Ok(node)
    }

    /// Imports a docker or OCI archive into containerd's `k8s.io` namespace, where the
    /// kubelet finds it (use `imagePullPolicy: IfNotPresent` or `Never`).
    pub fn import_image(&self, archive: &Path) -> Result<()> {
        run(ctr(&self.containerd_socket)
            .args([
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "overlayfs",
            ])
            .arg(archive))
        .with_context(|| format!("import {} into the node's containerd", archive.display()))?;
        Ok(())
    }

    /// Tags the imported image `from` as `to` as well.
    pub fn tag_image(&self, from: &str, to: &str) -> Result<()> {
        run(ctr(&self.containerd_socket)
            .args(["-n", "k8s.io", "images", "tag", "--force", from, to]))
        .with_context(|| format!("tag {from} as {to}"))?;
        Ok(())
    }

    /// How many endpoints kube-proxy's rules send the Service port `service` to
    /// (`namespace/name:port`, as kube-proxy names it): a Pod that was just marked
    /// Ready is reachable through the ClusterIP only once its rule is written.
    pub fn routed_endpoints(&self, service: &str) -> Result<usize> {
        let marker = format!("\"{service} -> ");
        let rules = iptables_save("nat")?;
        let mut endpoints: Vec<&str> = rules
            .lines()
            .filter(|l| l.starts_with("-A KUBE-SVC-"))
            .filter_map(|l| l.split_once(marker.as_str()).map(|(_, rest)| rest))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        Ok(endpoints.len())
    }

    /// Fails, with the end of its log, if a node component has exited.
    pub fn check_running(&self) -> Result<()> {
        self.components
            .iter()
            .try_for_each(Component::check_running)
    }

    /// The last `lines` lines of every node component's log, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        self.components
            .iter()
            .map(|c| {
                format!(
                    "----- last {lines} lines of {} ({}) -----\n{}\n",
                    c.name,
                    c.log.display(),
                    tail(&c.log, lines)
                )
            })
            .collect()
    }

    /// Stops the node now and tears it down, as its reaper would at exit.
    pub fn stop(&self) -> Result<()> {
        self.reaper.finish()
    }

    /// Polls `ready` until it says yes, failing early (with the logs) if a node
    /// component exits, and after [`NODE_TIMEOUT`].
    async fn wait<F, Fut>(&self, what: &str, mut ready: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let start = Instant::now();
        loop {
            self.check_running()?;
            let last = match ready().await {
                Ok(true) => return Ok(()),
                Ok(false) => "not yet".to_owned(),
                Err(e) => format!("{e:#}"),
            };
            if start.elapsed() > NODE_TIMEOUT {
                bail!(
                    "timed out after {NODE_TIMEOUT:?} waiting for {what} (last answer: {last})\n{}",
                    self.log_tails(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Refuses a machine where a node cannot run, or where another one left state behind.
fn preflight() -> Result<()> {
    for tool in ["containerd", "runc", "ctr", "iptables", "conntrack"] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            bail!("{tool} is missing (scripts/system-deps.sh installs it)");
        }
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        bail!("the CNI bridge plugin is missing (containernetworking-plugins)");
    }
    if !Path::new("/proc/sys/net/bridge").exists() {
        bail!("the kernel has no br_netfilter (/proc/sys/net/bridge): Services cannot route");
    }
    for table in ["filter", "nat", "mangle"] {
        let rules = iptables_save(table)?;
        if let Some(chain) = rules.lines().find(|l| l.starts_with(":KUBE-")) {
            bail!(
                "iptables table {table} already has the chain {}: another kubelet or \
                 kube-proxy runs on this machine, and a test node would remove its rules",
                chain.split_whitespace().next().unwrap_or(chain)
            );
        }
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        bail!("the bridge {BRIDGE} exists: a test node was not torn down (ip link del {BRIDGE})");
    }
    let routes = run(Command::new(crate::netns::ip_binary()).args(["-4", "route", "show"]))?;
    if routes.contains(&POD_CIDR[..POD_CIDR.len() - 5]) {
        bail!("a route on this machine already uses {POD_CIDR}, the test node's Pod network");
    }
    Ok(())
}

/// The cgroup v1 hierarchies mounted under /sys/fs/cgroup (cpu, memory, pids, ...).
fn cgroup_controllers() -> Result<Vec<String>> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    Ok(mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, path, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == "cgroup").then(|| path.strip_prefix("/sys/fs/cgroup/").map(str::to_owned))?
        })
        .collect())
}

/// The bash script the node's reaper runs after killing the node's components. Every
/// step is idempotent and tolerates what is already gone.
fn teardown_script(dir: &Path) -> Result<String> {
    let mut restore = String::new();
    for key in SYSCTLS {
        let path = Path::new("/proc/sys").join(key);
        if let Ok(value) = std::fs::read_to_string(&path) {
            restore.push_str(&format!(
                "echo '{}' > {} 2>/dev/null\n",
                value.trim(),
                path.display()
            ));
        }
    }
    let dir = dir.display();
    Ok(format!(
        r#"set -u
dir={dir}
echo "teardown of the test node in $dir"
# 1. Every container process (in the Pods' cgroups) and every shim of our containerd.
for _ in $(seq 50); do
    pids=$(cat /sys/fs/cgroup/*/{CGROUP_ROOT}/cgroup.procs /sys/fs/cgroup/*/{CGROUP_ROOT}/*/cgroup.procs \
        /sys/fs/cgroup/*/{CGROUP_ROOT}/*/*/cgroup.procs /sys/fs/cgroup/*/{CGROUP_ROOT}/*/*/*/cgroup.procs \
        /sys/fs/cgroup/*/{CGROUP_ROOT}/*/*/*/*/cgroup.procs 2>/dev/null | sort -u)
    shims=$(pgrep -f -- "-address $dir/containerd/containerd.sock" || true)
    [ -z "$pids$shims" ] && break
    kill -KILL $pids $shims 2>/dev/null
    sleep 0.1
done
# 2. Mounts under the node's directory (overlays, volumes, /dev/shm), deepest first.
awk -v d="$dir/" 'index($2, d) == 1 {{ print $2 }}' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
done
# 3. The Pods' network namespaces: containerd names them cni-*, and no other kubelet
#    ran while this node did (the preflight refused a machine with one), so those made
#    since the node started are its own.
find /var/run/netns -maxdepth 1 -name 'cni-*' -newer "$dir/teardown.sh" 2>/dev/null |
    while read -r ns; do ip netns del "${{ns##*/}}" 2>/dev/null; done
# The shims' sockets, which containerd 1.6 keeps in /run/containerd/s whatever its
# state directory: sha256 of "<containerd socket>/<namespace>/<task id>".
for task in "$dir"/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
    [ -e "$task" ] || continue
    hash=$(printf '%s' "$dir/containerd/containerd.sock/k8s.io/${{task##*/}}" | sha256sum | cut -c1-64)
    rm -f "/run/containerd/s/$hash"
done
rmdir /run/containerd/s /run/containerd 2>/dev/null
ip link del {BRIDGE} 2>/dev/null
# 4. The Pods' cgroups, deepest first, in every hierarchy.
for c in /sys/fs/cgroup/*/{CGROUP_ROOT}; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {{}} \; 2>/dev/null
done
# 5. Every KUBE-* chain and the rules that jump to one (the preflight refused a machine
#    that had any before the node started).
for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for t in filter nat mangle; do
        $ipt -t $t -S 2>/dev/null | grep -E '^-A [A-Z_]+ .*-j KUBE-' | grep -v '^-A KUBE-' |
            sed 's/^-A /-D /' | while read -r rule; do eval "$ipt -t $t $rule"; done
        chains=$($ipt -t $t -S 2>/dev/null | awk '/^-N KUBE-/ {{ print $2 }}')
        for c in $chains; do $ipt -t $t -F "$c"; done
        for c in $chains; do $ipt -t $t -X "$c"; done
    done
done
# 6. The kubelet's links to the Pods' logs.
find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null
# 7. The sysctls, as they were.
{restore}echo "teardown done"
"#
    ))
}

fn containerd_config_text(dir: &Path, socket: &Path) -> String {
    let d = dir.join("containerd");
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
        root = d.join("root").display(),
        state = d.join("state").display(),
        socket = socket.display(),
        opt = d.join("opt").display(),
        runc = d.join("runc").display(),
        cni = dir.join("cni").display(),
    )
}

fn cni_config(ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "sealant-e2e",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": POD_CIDR }]],
                "routes": [{ "dst": "0.0.0.0/0" }],
                "dataDir": ipam_dir,
            },
        }],
    })
    .to_string()
}

fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    std::fs::write(&path, value).with_context(|| format!("set {}", path.display()))
}

fn iptables_save(table: &str) -> Result<String> {
    run(Command::new("iptables-save").args(["-t", table]))
}

fn ctr(socket: &Path) -> Command {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address").arg(socket);
    cmd
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
