//! The controller's command line: every flag of Bitnami's `controller` binary, with the
//! same name, the same default and the same `SEALED_SECRETS_<FLAG_IN_UPPER_SNAKE>`
//! environment variable, so an existing Deployment's `args` and `env` keep working
//! when the image is swapped.
//!
//! Guarantees:
//! - durations are read as Go's `time.ParseDuration` reads them (`720h`, `1h30m`,
//!   `1.5h`, `300ms`, `0`), so `--key-renew-period=0` disables renewal as in Bitnami;
//! - booleans are Go `pflag` booleans: `--flag` means true, `--flag=false` and the
//!   environment values `true`/`false`/`1`/`0`/`t`/`f` work; a separate word after the
//!   flag is not taken as its value (Go does not either);
//! - `--key-cutoff-time` is RFC1123Z (`Mon, 02 Jan 2006 15:04:05 -0700`) and is checked
//!   at start-up, not when the key manager first needs it;
//! - `--privatekey-annotations` / `--privatekey-labels` are comma-separated `k=v`
//!   lists, checked at start-up.
//!
//! Flags Bitnami has that sealant accepts but does not need are documented on the
//! field: `--kubeclient-qps`/`--kubeclient-burst` (sealant has no client-side
//! throttle), `--old-gc-behavior` (sealant never deletes Secrets; Kubernetes garbage
//! collection does), `--log-info-stdout`, and `--max-unseal-retries` (sealant keeps
//! retrying permanent failures on a long backoff instead of dropping them).
//!
//! Our own flags: `--workers` (concurrent reconciles) and `--escrow-recipient` (age
//! recipients that the active keys are escrowed to; see [`crate::escrow`]). A
//! recipient is checked at start-up by [`RecipientParser`], whose error names the flag
//! and never echoes an `AGE-SECRET-KEY-1...` given by mistake.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use sealant_keys::AgeRecipient;
use time::OffsetDateTime;
use time::macros::format_description;

/// What Bitnami's `controller --version` prints, when this binary was started under
/// the name `controller` (as the container image's entry for Bitnami's chart, or a
/// symlink) with `--version` among its arguments: `controller version: vX.Y.Z`.
/// Under any other name clap prints sealant's own version line.
pub fn bitnami_version(program: &std::ffi::OsStr, args: &[std::ffi::OsString]) -> Option<String> {
    let name = std::path::Path::new(program).file_name()?;
    (name == "controller" && args.iter().any(|a| a == "--version"))
        .then(|| format!("controller version: v{}\n", env!("CARGO_PKG_VERSION")))
}

/// All flags of `sealant-controller`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "sealant-controller",
    version,
    // As Bitnami's controller (pflag): a flag given twice takes its last value.
    args_override_self = true,
    about = "Unseals SealedSecrets into Secrets; a drop-in replacement for the Bitnami Sealed Secrets controller."
)]
pub struct Flags {
    /// Prefix used to name keys (the `generateName` of new key Secrets, and the name of
    /// the legacy unlabelled key Secret).
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_PREFIX",
        default_value = "sealed-secrets-key"
    )]
    pub key_prefix: String,

    /// Size of new encryption keys, in bits.
    #[arg(long, env = "SEALED_SECRETS_KEY_SIZE", default_value_t = 4096)]
    pub key_size: usize,

    /// Duration that new certificates are valid for.
    #[arg(long, env = "SEALED_SECRETS_KEY_TTL", default_value = "87600h")]
    pub key_ttl: GoDuration,

    /// Common name used as issuer and subject of new certificates.
    #[arg(long, env = "SEALED_SECRETS_MY_CN", default_value = "")]
    pub my_cn: String,

    /// New key generation period; 0 disables automatic renewal (SIGUSR1 still renews).
    /// `--rotate-period` is Bitnami's deprecated alias.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_RENEW_PERIOD",
        default_value = "720h",
        alias = "rotate-period"
    )]
    pub key_renew_period: GoDuration,

    /// Which time orders the keys: the certificate's NotBefore, or the key Secret's
    /// creation timestamp. The newest key seals.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_ORDER_PRIORITY",
        value_enum,
        default_value = "CertNotBefore"
    )]
    pub key_order_priority: KeyOrderPriority,

    /// Create a new key at start-up if the newest one is older than this time
    /// (RFC1123 with a numeric zone, e.g. `Mon, 02 Jan 2006 15:04:05 -0700`).
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME", default_value = "")]
    pub key_cutoff_time: CutoffTime,

    /// Accept the deprecated `spec.data` field.
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_DEPRECATED_V1_DATA", default_value = "true", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub accept_deprecated_v1_data: bool,

    /// sealant only: run `spec.template.data` (Go templates an author wrote, under a
    /// per-object budget). With `false`, a SealedSecret that has it fails with
    /// `Synced=False`, and no template ever runs: for clusters that do not need them,
    /// this also closes the one-bit oracle a template's success or failure is.
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_TEMPLATE_DATA", default_value = "true", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub accept_template_data: bool,

    /// Watch all namespaces (true) or only the controller's own namespace.
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", default_value = "true", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub all_namespaces: bool,

    /// Comma-separated list of additional namespaces to watch.
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    pub additional_namespaces: String,

    /// Label selector that filters the SealedSecrets the controller acts on.
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR", default_value = "")]
    pub label_selector: String,

    /// Sustained requests per second allowed on `/v1/verify` and `/v1/rotate`.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2)]
    pub rate_limit: u32,

    /// Requests allowed above the sustained rate on `/v1/verify` and `/v1/rotate`.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    pub rate_limit_burst: u32,

    /// Do not label `condition_info` metrics with SealedSecret names and namespaces.
    #[arg(long, env = "SEALED_SECRETS_METRICS_OMIT_SECRET_LABELS", default_value = "false", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_omit_secret_labels: bool,

    /// Comma-separated `k=v` annotations to put on new key Secrets.
    #[arg(
        long,
        env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS",
        default_value = ""
    )]
    pub privatekey_annotations: KeyValues,

    /// Comma-separated `k=v` labels to put on new key Secrets.
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "")]
    pub privatekey_labels: KeyValues,

    /// Accepted for compatibility and ignored: sealant never deletes Secrets itself;
    /// Kubernetes garbage collection follows the ownerReference.
    #[arg(long, env = "SEALED_SECRETS_OLD_GC_BEHAVIOR", default_value = "false", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub old_gc_behavior: bool,

    /// Write the `Synced` condition and `observedGeneration` to SealedSecret status.
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", default_value = "true", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub update_status: bool,

    /// Accepted for compatibility, with no effect: Bitnami's controller watches its key
    /// Secrets (to pick up keys created outside it) only with this flag; sealant always
    /// watches them, labelled and legacy, and loads new, changed and retired keys
    /// without a restart.
    #[arg(long, env = "SEALED_SECRETS_WATCH_FOR_SECRETS", default_value = "false", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub watch_for_secrets: bool,

    /// Do not watch produced Secrets, so a deleted one is not re-created.
    #[arg(long, env = "SEALED_SECRETS_SKIP_RECREATE", default_value = "false", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub skip_recreate: bool,

    /// Accepted for compatibility: logs go to stdout (info) as in Bitnami's default.
    #[arg(long, env = "SEALED_SECRETS_LOG_INFO_STDOUT", default_value = "true", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub log_info_stdout: bool,

    /// Log level: DEBUG, INFO, WARN or ERROR (case-insensitive).
    #[arg(long, env = "SEALED_SECRETS_LOG_LEVEL", default_value = "INFO", value_parser = parse_log_level)]
    pub log_level: String,

    /// Log format.
    #[arg(
        long,
        env = "SEALED_SECRETS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Accepted for compatibility. sealant does not drop an object after N failures:
    /// a permanent failure (bad ciphertext, bad spec, unmanaged Secret) is retried
    /// every 15 minutes and whenever the keys change; a transient one after 5 seconds.
    #[arg(long, env = "SEALED_SECRETS_MAX_UNSEAL_RETRIES", default_value_t = 5)]
    pub max_unseal_retries: u32,

    /// Accepted for compatibility and ignored: sealant has no client-side throttle.
    #[arg(long, env = "SEALED_SECRETS_KUBECLIENT_QPS", default_value_t = 5.0)]
    pub kubeclient_qps: f32,

    /// Accepted for compatibility and ignored: sealant has no client-side throttle.
    #[arg(long, env = "SEALED_SECRETS_KUBECLIENT_BURST", default_value_t = 10)]
    pub kubeclient_burst: i32,

    /// Run with a Lease-based leader election.
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECT", default_value = "false", value_parser = go_bool, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: bool,

    /// How long a leader's Lease is valid.
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECT_LEASE_DURATION",
        default_value = "15s"
    )]
    pub leader_elect_lease_duration: GoDuration,

    /// How long the leader keeps trying to renew before it gives up leading.
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECT_RENEW_DEADLINE",
        default_value = "10s"
    )]
    pub leader_elect_renew_deadline: GoDuration,

    /// How often candidates try to acquire or renew the Lease.
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECT_RETRY_PERIOD",
        default_value = "2s"
    )]
    pub leader_elect_retry_period: GoDuration,

    /// Address of the HTTP API (`/healthz`, `/v1/cert.pem`, `/v1/age-recipient`,
    /// `/v1/escrow-bundle`, `/v1/verify`, `/v1/rotate`).
    #[arg(long, env = "SEALED_SECRETS_LISTEN_ADDR", default_value = ":8080")]
    pub listen_addr: ListenAddr,

    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(
        long,
        env = "SEALED_SECRETS_LISTEN_METRICS_ADDR",
        default_value = ":8081"
    )]
    pub listen_metrics_addr: ListenAddr,

    /// sealant only: how many SealedSecrets are reconciled at the same time. Each pass
    /// mostly waits on the API server, and RSA work runs on the blocking pool, so many
    /// more passes than cores keep both busy (BENCHMARKS.md measures the default
    /// against fewer workers).
    #[arg(long, env = "SEALED_SECRETS_WORKERS", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,

    /// sealant only: an age recipient (`age1...`) to escrow the active keys to.
    /// Repeatable; the environment variable takes a comma-separated list. When given,
    /// the leader keeps the ConfigMap `sealant-escrow-bundle` in the controller's
    /// namespace holding every active key Secret, encrypted to these recipients
    /// (`age -d -i escrow.key` restores it), and every replica serves the same bundle
    /// at `/v1/escrow-bundle`. Give public keys only: an `AGE-SECRET-KEY-1...` is
    /// refused (and not echoed). Empty entries are skipped, so an empty variable means
    /// no escrow.
    #[arg(
        long,
        env = "SEALED_SECRETS_ESCROW_RECIPIENT",
        value_name = "AGE1...",
        action = ArgAction::Append,
        value_delimiter = ',',
        value_parser = RecipientParser
    )]
    pub escrow_recipient: Vec<RecipientEntry>,
}

impl Flags {
    /// The recipients of `--escrow-recipient`, each once, in the order given.
    pub fn escrow_recipients(&self) -> Vec<AgeRecipient> {
        let mut out: Vec<AgeRecipient> = Vec::new();
        for recipient in self.escrow_recipient.iter().filter_map(|e| e.0.as_ref()) {
            if !out.contains(recipient) {
                out.push(recipient.clone());
            }
        }
        out
    }

    /// The namespaces of `--additional-namespaces`, trimmed, empty entries and
    /// duplicates removed, in the order given.
    pub fn additional_namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for ns in self.additional_namespaces.split(',').map(str::trim) {
            if !ns.is_empty() && !out.iter().any(|o| o == ns) {
                out.push(ns.to_owned());
            }
        }
        out
    }
}

/// One value of `--escrow-recipient`: a recipient, or `None` for an empty entry (an
/// empty environment variable, or a stray comma), which is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientEntry(pub Option<AgeRecipient>);

/// Reads one age recipient (`--escrow-recipient`). Unlike clap's own value parsers,
/// its error does not quote the value: a secret key given by mistake must not reach
/// the terminal or the Pod's log. [`AgeRecipient`]'s error quotes a bad recipient
/// shortened, and never anything that looks like a secret key.
#[derive(Clone, Copy, Debug)]
pub struct RecipientParser;

impl clap::builder::TypedValueParser for RecipientParser {
    type Value = RecipientEntry;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let flag = arg
            .and_then(clap::Arg::get_long)
            .unwrap_or("escrow-recipient");
        let env = arg
            .and_then(clap::Arg::get_env)
            .map(|e| format!(" (or {})", e.to_string_lossy()))
            .unwrap_or_default();
        let fail = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --{flag}{env}: {reason}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail("not UTF-8 text: expected age1...".to_owned()))?;
        if text.trim().is_empty() {
            return Ok(RecipientEntry(None));
        }
        text.parse::<AgeRecipient>()
            .map(|r| RecipientEntry(Some(r)))
            .map_err(|e| fail(e.to_string()))
    }
}

/// Which time orders keys (`--key-order-priority`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum KeyOrderPriority {
    /// The certificate's NotBefore.
    #[default]
    #[value(name = "CertNotBefore")]
    CertNotBefore,
    /// The key Secret's `metadata.creationTimestamp`.
    #[value(name = "SecretCreationTimestamp")]
    SecretCreationTimestamp,
}

impl From<KeyOrderPriority> for sealant_crds::key_secret::KeyOrder {
    fn from(priority: KeyOrderPriority) -> Self {
        match priority {
            KeyOrderPriority::CertNotBefore => Self::CertNotBefore,
            KeyOrderPriority::SecretCreationTimestamp => Self::SecretCreationTimestamp,
        }
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A duration written as Go's `time.ParseDuration` reads it. Negative durations are
/// refused: no controller setting means anything with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for GoDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_go_duration(s).map(GoDuration)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

/// `--key-cutoff-time`: empty (no cutoff) or an RFC1123Z time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutoffTime(pub Option<OffsetDateTime>);

impl FromStr for CutoffTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self(None));
        }
        let format = format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
        );
        OffsetDateTime::parse(s, format).map(|t| Self(Some(t))).map_err(|e| {
            format!(
                "invalid time {s:?} ({e}): expected RFC1123 with a numeric zone, e.g. \"Mon, 02 Jan 2006 15:04:05 -0700\""
            )
        })
    }
}

/// A comma-separated `k=v` list (`--privatekey-annotations`, `--privatekey-labels`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValues(pub BTreeMap<String, String>);

impl FromStr for KeyValues {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut map = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((k, v)) = item.split_once('=') else {
                return Err(format!("{item:?} is not of the form key=value"));
            };
            let k = k.trim();
            if k.is_empty() {
                return Err(format!("{item:?} has an empty key"));
            }
            map.insert(k.to_owned(), v.trim().to_owned());
        }
        Ok(Self(map))
    }
}

/// A Go listen address: `:8080` (every interface), `host:port` or `[v6]:port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(port) = s.strip_prefix(':') {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("invalid port in listen address {s:?}"))?;
            return Ok(Self(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                port,
            )));
        }
        s.parse::<SocketAddr>().map(Self).map_err(|_| {
            format!("invalid listen address {s:?}: expected :PORT, IP:PORT or [IPv6]:PORT")
        })
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {s:?}: use true or false")),
    }
}

fn parse_log_level(s: &str) -> Result<String, String> {
    let upper = s.to_ascii_uppercase();
    match upper.as_str() {
        "DEBUG" | "INFO" | "WARN" | "ERROR" => Ok(upper),
        _ => Err(format!(
            "invalid log level {s:?}: use DEBUG, INFO, WARN or ERROR"
        )),
    }
}

/// Parses a duration as Go's `time.ParseDuration` does: an optional sign, then one
/// or more decimal numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`);
/// `0` alone needs no unit. Negative results are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 720h, 1h30m, 90s or 0");
    let mut s = text;
    let negative = if let Some(rest) = s.strip_prefix('-') {
        s = rest;
        true
    } else {
        s = s.strip_prefix('+').unwrap_or(s);
        false
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total_nanos: u128 = 0;
    while !s.is_empty() {
        let digits_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, rest) = s.split_at(digits_end);
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        if frac_part.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(bad)?;
        // The fraction, exactly: digit by digit, as Go does.
        let mut scale = unit_nanos;
        for d in frac_part.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(d - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(bad)?;
        s = rest;
    }
    if negative && total_nanos != 0 {
        return Err(format!("invalid duration {text:?}: must not be negative"));
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| bad())?;
    // The remainder of a division by 10^9 always fits in u32.
    let sub = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    const HOUR: u64 = 3600;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let mut all = vec!["sealant-controller"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all)
    }

    #[test]
    fn bitnami_version_line_only_under_the_controller_name() {
        use std::ffi::{OsStr, OsString};
        let version = [OsString::from("--version")];
        assert_eq!(
            bitnami_version(OsStr::new("/usr/local/bin/controller"), &version).as_deref(),
            Some(format!("controller version: v{}\n", env!("CARGO_PKG_VERSION")).as_str())
        );
        assert_eq!(
            bitnami_version(OsStr::new("sealant-controller"), &version),
            None
        );
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value_as_with_bitnamis_controller() {
        let flags =
            Flags::try_parse_from(["c", "--key-prefix", "a", "--key-prefix", "b"]).expect("parses");
        assert_eq!(flags.key_prefix, "b");
    }

    #[test]
    fn command_definition_is_consistent() {
        Flags::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_env_var_named_after_it() {
        let cmd = Flags::command();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let expected = format!("SEALED_SECRETS_{}", long.to_uppercase().replace('-', "_"));
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(expected.as_str()), "--{long}");
        }
    }

    #[test]
    fn defaults_match_bitnami() {
        let f = parse(&[]).expect("no flags parse");
        assert_eq!(f.key_prefix, "sealed-secrets-key");
        assert_eq!(f.key_size, 4096);
        assert_eq!(f.key_ttl.get(), Duration::from_secs(87600 * HOUR));
        assert_eq!(f.my_cn, "");
        assert_eq!(f.key_renew_period.get(), Duration::from_secs(720 * HOUR));
        assert_eq!(f.key_order_priority, KeyOrderPriority::CertNotBefore);
        assert_eq!(f.key_cutoff_time, CutoffTime(None));
        assert!(f.accept_deprecated_v1_data);
        assert!(f.all_namespaces);
        assert!(f.additional_namespaces().is_empty());
        assert_eq!(f.label_selector, "");
        assert_eq!((f.rate_limit, f.rate_limit_burst), (2, 2));
        assert!(f.privatekey_annotations.0.is_empty());
        assert!(f.privatekey_labels.0.is_empty());
        assert!(f.update_status);
        assert!(!f.watch_for_secrets);
        assert!(!f.skip_recreate);
        assert_eq!(f.log_level, "INFO");
        assert_eq!(f.log_format, LogFormat::Text);
        assert_eq!(f.max_unseal_retries, 5);
        assert_eq!(f.listen_addr.0.port(), 8080);
        assert_eq!(f.listen_metrics_addr.0.port(), 8081);
        assert!(f.listen_addr.0.ip().is_unspecified());
        assert_eq!(f.workers, 32);
    }

    #[test]
    fn go_style_booleans_accept_bare_flag_and_equals_value() {
        let f = parse(&["--skip-recreate", "--update-status=false"]).expect("parses");
        assert!(f.skip_recreate);
        assert!(!f.update_status);
        let f = parse(&["--all-namespaces=0"]).expect("parses");
        assert!(!f.all_namespaces);
        assert!(parse(&["--all-namespaces=maybe"]).is_err());
    }

    #[test]
    fn a_word_after_a_boolean_flag_is_not_its_value() {
        // Go's pflag would treat `false` as a positional argument; so do we, and there
        // are no positionals, so it is an error rather than a silent `true`.
        assert!(parse(&["--update-status", "false"]).is_err());
    }

    #[test]
    fn rotate_period_is_an_alias_of_key_renew_period() {
        let f = parse(&["--rotate-period=24h"]).expect("parses");
        assert_eq!(f.key_renew_period.get(), Duration::from_secs(24 * HOUR));
    }

    #[test]
    fn zero_renew_period_parses_as_zero() {
        let f = parse(&["--key-renew-period=0"]).expect("parses");
        assert_eq!(f.key_renew_period.get(), Duration::ZERO);
    }

    #[test]
    fn env_var_overrides_default_and_flag_overrides_env() {
        // Setting the process environment is `unsafe` in edition 2024 and unsafe code
        // is forbidden, so point the argument at a variable cargo sets for every test
        // run.
        let value = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
        let cmd = Flags::command().mut_arg("key_prefix", |a| a.env("CARGO_PKG_NAME"));
        let m = cmd
            .clone()
            .try_get_matches_from(["sealant-controller"])
            .expect("parses");
        assert_eq!(m.get_one::<String>("key_prefix"), Some(&value));
        let m = cmd
            .try_get_matches_from(["sealant-controller", "--key-prefix=from-flag"])
            .expect("parses");
        assert_eq!(
            m.get_one::<String>("key_prefix").map(String::as_str),
            Some("from-flag")
        );
    }

    #[test]
    fn bad_duration_is_an_error_that_names_the_value() {
        let err = parse(&["--key-ttl=10 years"]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("10 years"), "{text}");
        assert!(
            parse(&["--key-renew-period=720"]).is_err(),
            "a unit is required"
        );
        assert!(parse(&["--key-renew-period=-1h"]).is_err(), "negative");
    }

    #[test]
    fn go_durations_parse_like_go() {
        let d = |s: &str| parse_go_duration(s).expect(s);
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("720h"), Duration::from_secs(720 * HOUR));
        assert_eq!(d("87600h"), Duration::from_secs(87600 * HOUR));
        assert_eq!(d("1h30m"), Duration::from_secs(90 * 60));
        assert_eq!(d("1.5h"), Duration::from_secs(90 * 60));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("2us"), Duration::from_micros(2));
        assert_eq!(d("2µs"), Duration::from_micros(2));
        assert_eq!(d("1ns"), Duration::from_nanos(1));
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(d("+5s"), Duration::from_secs(5));
        assert_eq!(d("-0s"), Duration::ZERO);
        for bad in ["", "h", "1", "1x", "1.2.3s", "s1", "1h 30m", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn cutoff_time_is_rfc1123z() {
        let f = parse(&["--key-cutoff-time=Mon, 02 Jan 2006 15:04:05 -0700"]).expect("parses");
        let t = f.key_cutoff_time.0.expect("set");
        assert_eq!(t.unix_timestamp(), 1_136_239_445);
        assert!(parse(&["--key-cutoff-time=2006-01-02T15:04:05Z"]).is_err());
        assert!(parse(&["--key-cutoff-time=Mon, 02 Jan 2006 15:04:05 MST"]).is_err());
    }

    #[test]
    fn private_key_labels_and_annotations_are_key_value_lists() {
        let f = parse(&[
            "--privatekey-labels=a=1, b=two",
            "--privatekey-annotations=x/y=z",
        ])
        .expect("parses");
        assert_eq!(
            f.privatekey_labels.0.get("a").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            f.privatekey_labels.0.get("b").map(String::as_str),
            Some("two")
        );
        assert_eq!(
            f.privatekey_annotations.0.get("x/y").map(String::as_str),
            Some("z")
        );
        assert!(parse(&["--privatekey-labels=novalue"]).is_err());
        assert!(parse(&["--privatekey-labels==v"]).is_err());
    }

    #[test]
    fn additional_namespaces_are_split_and_deduplicated() {
        let f = parse(&["--additional-namespaces=a, b,,a,c"]).expect("parses");
        assert_eq!(f.additional_namespaces(), ["a", "b", "c"]);
    }

    #[test]
    fn listen_addresses_take_go_forms() {
        let f = parse(&[
            "--listen-addr=127.0.0.1:9000",
            "--listen-metrics-addr=[::1]:9001",
        ])
        .expect("parses");
        assert_eq!(f.listen_addr.0.to_string(), "127.0.0.1:9000");
        assert_eq!(f.listen_metrics_addr.0.to_string(), "[::1]:9001");
        assert!(parse(&["--listen-addr=8080"]).is_err());
    }

    #[test]
    fn workers_must_be_positive_and_key_order_priority_is_checked() {
        assert_eq!(parse(&["--workers=16"]).expect("parses").workers, 16);
        assert!(parse(&["--workers=0"]).is_err());
        let f = parse(&["--key-order-priority=SecretCreationTimestamp"]).expect("parses");
        assert_eq!(
            f.key_order_priority,
            KeyOrderPriority::SecretCreationTimestamp
        );
        assert!(parse(&["--key-order-priority=Newest"]).is_err());
    }

    #[test]
    fn escrow_recipient_is_repeatable_and_deduplicated_and_off_by_default() {
        assert!(parse(&[]).expect("parses").escrow_recipients().is_empty());
        let (a, b) = (
            sealant_keys::AgeIdentity::generate()
                .recipient()
                .to_string(),
            sealant_keys::AgeIdentity::generate()
                .recipient()
                .to_string(),
        );
        let f = parse(&[
            &format!("--escrow-recipient={a}"),
            "--escrow-recipient",
            &format!(" {b}"),
            &format!("--escrow-recipient={a}"),
        ])
        .expect("parses");
        let got: Vec<String> = f
            .escrow_recipients()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, [a.clone(), b.clone()]);
        let f = parse(&[&format!("--escrow-recipient={a},{b},")]).expect("parses");
        assert_eq!(
            f.escrow_recipients().len(),
            2,
            "comma-separated, empty entries skipped"
        );
        let f = parse(&["--escrow-recipient="]).expect("parses");
        assert!(f.escrow_recipients().is_empty(), "empty means off");
    }

    #[test]
    fn escrow_recipient_env_var_is_a_comma_separated_list() {
        // As in env_var_overrides_default_and_flag_overrides_env: point the argument at
        // a variable cargo sets, holding something that is not a recipient, to prove the
        // variable is read and split; then parse a real list through the same path.
        let cmd = Flags::command().mut_arg("escrow_recipient", |a| a.env("CARGO_PKG_NAME"));
        let err = cmd
            .clone()
            .try_get_matches_from(["sealant-controller"])
            .expect_err("CARGO_PKG_NAME is not a recipient");
        let text = err.to_string();
        assert!(
            text.contains("invalid --escrow-recipient (or CARGO_PKG_NAME)"),
            "{text}"
        );
        let (a, b) = (
            sealant_keys::AgeIdentity::generate()
                .recipient()
                .to_string(),
            sealant_keys::AgeIdentity::generate()
                .recipient()
                .to_string(),
        );
        let m = Flags::command()
            .try_get_matches_from([
                "sealant-controller",
                &format!("--escrow-recipient={a}, {b}"),
            ])
            .expect("parses");
        let got: Vec<String> = m
            .get_many::<RecipientEntry>("escrow_recipient")
            .expect("given")
            .filter_map(|e| e.0.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(got, [a, b]);
        let arg = Flags::command()
            .get_arguments()
            .find(|a| a.get_long() == Some("escrow-recipient"))
            .cloned()
            .expect("the flag");
        assert_eq!(
            arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            Some("SEALED_SECRETS_ESCROW_RECIPIENT".to_owned())
        );
        assert_eq!(arg.get_value_delimiter(), Some(','));
    }

    #[test]
    fn bad_escrow_recipient_is_refused_naming_the_flag_and_a_secret_key_is_never_echoed() {
        let identity = sealant_keys::AgeIdentity::generate();
        let secret = identity.expose_secret().as_str().to_owned();
        let err = parse(&[&format!("--escrow-recipient={secret}")]).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("--escrow-recipient"), "{text}");
        assert!(text.contains("identity (secret key)"), "{text}");
        assert!(
            !text.to_ascii_uppercase().contains("AGE-SECRET-KEY"),
            "{text}"
        );
        assert!(!text.contains(&secret[20..]), "{text}");
        for bad in ["age1short", "ssh-ed25519 AAAA", "nonsense"] {
            let err = parse(&[&format!("--escrow-recipient={bad}")]).expect_err(bad);
            assert!(err.to_string().contains("--escrow-recipient"), "{err}");
        }
    }

    #[test]
    fn log_level_is_case_insensitive_and_checked() {
        assert_eq!(
            parse(&["--log-level=debug"]).expect("parses").log_level,
            "DEBUG"
        );
        assert!(parse(&["--log-level=chatty"]).is_err());
        assert_eq!(
            parse(&["--log-format=json"]).expect("parses").log_format,
            LogFormat::Json
        );
    }
}
