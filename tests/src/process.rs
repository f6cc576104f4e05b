//! Child processes that never outlive the test run, and their logs.
//!
//! The control plane is shared by every test in a binary and lives in a `static`, whose
//! destructor Rust never runs; a test may panic; the user may press Ctrl-C or kill the
//! run. None of these may leave etcd, a network namespace or a mount behind. So cleanup
//! does not depend on the test process doing anything at all:
//!
//! ```text
//!  test process ──(pipe, write end held until the process exits)──> reaper (bash)
//!      │ spawns components, appends "pid starttime" to DIR/pids        │ read hits EOF
//!      ▼                                                               ▼
//!  etcd, kube-apiserver, ...                       SIGKILL each listed pid (if the start
//!                                                  time still matches), delete the netns
//!                                                  and veth, remove DIR
//! ```
//!
//! The kernel closes the write end when the test process exits for any reason, so the
//! reaper always runs. It ignores SIGINT and SIGHUP, which a Ctrl-C or a closed terminal
//! sends to the whole process group, and only then does its work.
//!
//! Each control plane has its own reaper, directory, network namespace and veth, so a
//! binary may run several at once. A test node ([`crate::node`]) changes host-global
//! state, so its reaper first takes a machine-wide lock, holds it until its teardown
//! script has run, and only then lets the test go on ([`Reaper::start_locked`]). [`Reaper::finish`] closes the write end early: the
//! reaper then does the same work while the test runs on, which is how a test destroys
//! a control plane of its own (see [`crate::ControlPlane::destroy`]).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

const REAPER: &str = r#"
trap '' INT HUP
dir=$1 netns=$2 veth=$3 keep=$4 lock=$5 teardown=$6
# The lock (fd 8) is held until this process exits, after the teardown.
if [ -n "$lock" ]; then exec 8>>"$lock" && flock 8 || exit 1; fi
echo ready
# Returns at EOF: the test process has exited, however it exited.
while read -r _; do :; done
same() { # same PID START: is PID still the process that started at START (not a zombie)?
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    set -- "$2" $rest
    [ "$2" != Z ] && [ "${21}" = "$1" ]
}
if [ -f "$dir/pids" ]; then
    tac "$dir/pids" | while read -r pid start; do
        same "$pid" "$start" && kill -KILL "$pid" 2>/dev/null
    done
    for _ in $(seq 100); do
        alive=0
        while read -r pid start; do same "$pid" "$start" && alive=1; done < "$dir/pids"
        [ $alive = 0 ] && break
        sleep 0.1
    done
fi
[ -z "$teardown" ] || [ ! -f "$teardown" ] || bash "$teardown" >"$dir/teardown.log" 2>&1
[ -z "$netns" ] || ip netns del "$netns" 2>/dev/null
[ -z "$veth" ] || ip link del "$veth" 2>/dev/null
[ "$keep" = 1 ] || rm -rf "$dir"
"#;

/// How long [`Reaper::finish`] waits for the reaper to kill everything and clean up.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Cleans up after the test process, whenever and however it exits, or earlier when
/// [`Reaper::finish`] asks.
pub struct Reaper {
    pids: PathBuf,
    // Never written to: its only job is to be closed, by the kernel at process exit or
    // by `finish`. `None` once finished.
    pipe: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

impl Reaper {
    /// Starts the reaper for `dir` (removed at exit unless `keep`), the network
    /// namespace `netns` and the veth `veth` (either may not exist yet, or ever).
    pub fn start(dir: &Path, netns: &str, veth: &str, keep: bool) -> Result<Self> {
        Self::launch(dir, netns, veth, keep, None, None)
    }

    /// A reaper that first takes the machine-wide `lock` (flock), waiting for any
    /// other holder, and holds it until it has cleaned up after the test process: killed
    /// what it spawned, then run the bash script `teardown` (if it exists by then; its
    /// output goes to `dir/teardown.log`), then removed `dir` unless `keep`. Returns
    /// once the lock is held.
    pub fn start_locked(dir: &Path, keep: bool, lock: &Path, teardown: &Path) -> Result<Self> {
        Self::launch(dir, "", "", keep, Some(lock), Some(teardown))
    }

    fn launch(
        dir: &Path,
        netns: &str,
        veth: &str,
        keep: bool,
        lock: Option<&Path>,
        teardown: Option<&Path>,
    ) -> Result<Self> {
        let mut child = Command::new("bash")
            .args(["-c", REAPER, "sealant-e2e-reaper"])
            .arg(dir)
            .args([netns, veth, if keep { "1" } else { "0" }])
            .arg(lock.unwrap_or(Path::new("")))
            .arg(teardown.unwrap_or(Path::new("")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the cleanup process (bash)")?;
        let pipe = child
            .stdin
            .take()
            .context("the reaper's stdin was not piped")?;
        // "ready" once it holds the lock (if any) and reads the pipe.
        let mut ready = String::new();
        let stdout = child
            .stdout
            .take()
            .context("the reaper's stdout was not piped")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready)
            .context("the reaper's first line")?;
        if ready.trim() != "ready" {
            bail!("the cleanup process did not start (lock {lock:?})");
        }
        Ok(Self {
            pids: dir.join("pids"),
            pipe: Mutex::new(Some(pipe)),
            child: Mutex::new(child),
        })
    }

    /// Does now what the reaper does at exit: kills every process spawned through it,
    /// deletes the network namespace and the veth, and removes the directory (unless
    /// kept); returns once the reaper has finished. Later calls do nothing, and
    /// [`Self::spawn`] fails from then on.
    pub fn finish(&self) -> Result<()> {
        // Holding the pipe's lock across the wait keeps a concurrent `spawn` from
        // starting a process the reaper no longer watches.
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if pipe.take().is_none() {
            return Ok(());
        }
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("the reaper exited with {status} while cleaning up");
                }
                return Ok(());
            }
            if start.elapsed() > FINISH_TIMEOUT {
                bail!("the reaper did not finish cleaning up within {FINISH_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Spawns `cmd` with its output in `log`, and makes the reaper kill it at exit.
    /// Fails once [`Self::finish`] has run.
    pub fn spawn(&self, name: &str, mut cmd: Command, log: &Path) -> Result<Component> {
        let pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if pipe.is_none() {
            bail!("cannot start {name}: its control plane was destroyed");
        }
        let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        let pid = child.id();
        // The start time tells the reaper whether the pid still names this process.
        let start = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat.rsplit_once(") ")?.1.to_string();
                rest.split_whitespace().nth(19).map(str::to_string)
            })
            .unwrap_or_default();
        let mut pids = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.pids)?;
        writeln!(pids, "{pid} {start}")?;
        Ok(Component {
            name: name.to_string(),
            log: log.to_path_buf(),
            child: Mutex::new(child),
        })
    }
}

/// A running component of the control plane.
pub struct Component {
    /// A short name, used in messages.
    pub name: String,
    /// Its combined stdout and stderr.
    pub log: PathBuf,
    child: Mutex<Child>,
}

impl Component {
    /// Fails, with the end of its log, if the component has exited.
    pub fn check_running(&self) -> Result<()> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
        Ok(())
    }

    /// The process id of the program spawned (for `ip netns exec`, `unshare` and
    /// `exec` chains, the same process ends up running the component).
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id()
    }

    /// Sends the component the signal `name` (e.g. `USR1`) with kill(1).
    pub fn signal(&self, name: &str) -> Result<()> {
        let pid = self.child.lock().unwrap_or_else(|e| e.into_inner()).id();
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -{name} {pid} failed ({status})");
        }
        Ok(())
    }

    /// Kills the component now (the reaper would do it at exit anyway).
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return format!("({} cannot be read)", path.display());
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
