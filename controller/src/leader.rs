//! Lease-based leader election (`--leader-elect`), so several replicas can run and
//! only one writes.
//!
//! ```text
//!   every replica: HTTP API + metrics + key loading and key watch   (read-only: serves cert.pem, verify, rotate)
//!   candidate ──acquire──▶ leader: reconcile, write Secrets/status/events, generate and renew keys
//!        ▲                     │ renew every --leader-elect-retry-period
//!        │                     ├─ no successful renewal for --leader-elect-renew-deadline ─▶ stop writing, exit 1
//!        │                     └─ SIGTERM ─▶ release the Lease (holder "") ─▶ exit 0
//!        └── a standby takes over once the Lease has not changed for --leader-elect-lease-duration
//! ```
//!
//! The protocol is client-go's `leaderelection` over a `coordination.k8s.io/v1` Lease
//! named [`LEASE_NAME`] in the controller's namespace:
//! - **Expiry is judged by the observer's own clock**, not by the `renewTime` the
//!   holder wrote: a candidate remembers when it last saw the Lease record change, and
//!   takes over only after the record has stayed the same for a whole lease duration.
//!   Clock skew between replicas therefore cannot cause two leaders. The price: a new
//!   candidate waits one lease duration before it takes over a Lease whose holder died
//!   before it started.
//! - **Writes are optimistic**: acquiring and renewing replace the Lease with the
//!   `resourceVersion` that was read, so of two candidates racing for an expired Lease
//!   exactly one wins; the other gets a conflict and stays a candidate.
//! - **A leader that cannot renew stops**: after `renew-deadline` (shorter than the
//!   lease duration) without a successful renewal it gives up, and the process exits so
//!   that no stale leader keeps writing. A Deployment restarts it as a candidate.
//! - **A leader that is told to stop releases the Lease** (empty holder), so a rolling
//!   update hands over at once instead of after a lease duration.
//!
//! [`observe`] and [`next_step`] are the pure decisions and are unit-tested here; the
//! end-to-end suite (`tests/tests/controller_ha.rs`) runs two replicas on a real API
//! server, kills the leader and measures the takeover.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tracing::{info, warn};

use crate::Error;
use crate::reconcile::FIELD_MANAGER;

/// The Lease's name in the controller's namespace.
pub const LEASE_NAME: &str = "sealant-controller";

/// The timing of the election (`--leader-elect-*`).
#[derive(Debug, Clone)]
pub struct Timing {
    /// A Lease unchanged for this long is free to take.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long steps down.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and leaders renew.
    pub retry_period: Duration,
}

impl Timing {
    /// Checks the relations client-go requires: retry < renew deadline < lease duration.
    pub fn validate(&self) -> Result<(), Error> {
        if self.retry_period.is_zero()
            || self.retry_period >= self.renew_deadline
            || self.renew_deadline >= self.lease_duration
        {
            return Err(Error::Flag {
                flag: "--leader-elect-*",
                reason: format!(
                    "need 0 < retry period ({:?}) < renew deadline ({:?}) < lease duration ({:?})",
                    self.retry_period, self.renew_deadline, self.lease_duration
                ),
            });
        }
        Ok(())
    }
}

/// What a candidate remembers of the Lease: the last record it saw, and when it first
/// saw that record (by its own monotonic clock).
#[derive(Debug, Default, Clone)]
pub struct Observed {
    record: Option<Record>,
    since: Option<Instant>,
}

/// The fields of a Lease that change when its holder renews or changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: String,
    renew_time: Option<String>,
    transitions: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Self {
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0.to_string()),
            transitions: spec.lease_transitions,
        }
    }
}

/// Notes the Lease as read at `now`; returns whether the record changed since the last
/// observation.
pub fn observe(observed: &mut Observed, spec: &LeaseSpec, now: Instant) -> bool {
    let record = Record::of(spec);
    if observed.record.as_ref() == Some(&record) {
        return false;
    }
    observed.record = Some(record);
    observed.since = Some(now);
    true
}

/// What a replica does after reading the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// There is no Lease: create it with us as holder.
    Create,
    /// The Lease is ours: renew it.
    Renew,
    /// The Lease is free (no holder) or expired: take it over.
    TakeOver,
    /// Someone else holds a live Lease: wait and look again.
    Follow {
        /// Its holder.
        holder: String,
    },
}

/// The decision for `me`, given the Lease (if any) and what was observed of it.
pub fn next_step(
    lease: Option<&LeaseSpec>,
    observed: &Observed,
    me: &str,
    now: Instant,
    lease_duration: Duration,
) -> Step {
    let Some(spec) = lease else {
        return Step::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Step::Renew;
    }
    if holder.is_empty() {
        return Step::TakeOver;
    }
    let expired = observed
        .since
        .is_some_and(|since| now.saturating_duration_since(since) >= lease_duration);
    if expired {
        Step::TakeOver
    } else {
        Step::Follow {
            holder: holder.to_owned(),
        }
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    identity: String,
    timing: Timing,
    observed: Observed,
}

impl Elector {
    /// A candidate called `identity` (unique per replica: the Pod name) for the Lease in
    /// the namespace `api` points at.
    pub fn new(api: Api<Lease>, namespace: &str, identity: String, timing: Timing) -> Self {
        Self {
            api,
            namespace: namespace.to_owned(),
            identity,
            timing,
            observed: Observed::default(),
        }
    }

    /// This replica's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&mut self) -> Result<(), Error> {
        let mut following: Option<String> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(None) => {
                    info!(identity = %self.identity, lease = %self.lease_ref(), "became the leader");
                    return Ok(());
                }
                Ok(Some(holder)) => {
                    if following.as_ref() != Some(&holder) {
                        info!(leader = %holder, identity = %self.identity, "standing by: another replica leads");
                        following = Some(holder);
                    }
                }
                Err(e) => {
                    warn!(error = %crate::chain(&e), "cannot acquire the leader Lease; retrying")
                }
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews the Lease every retry period; returns when leadership is lost (another
    /// holder, or no successful renewal within the renew deadline).
    pub async fn hold(&mut self) -> Error {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            let left = self
                .timing
                .renew_deadline
                .saturating_sub(last_renewal.elapsed());
            let attempt = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(None)) => last_renewal = Instant::now(),
                Ok(Ok(Some(holder))) => {
                    return Error::LeadershipLost {
                        lease: self.lease_ref(),
                        reason: format!("the Lease is now held by {holder}"),
                    };
                }
                Ok(Err(e)) => {
                    warn!(error = %crate::chain(&e), "cannot renew the leader Lease")
                }
                Err(_) => {}
            }
            if last_renewal.elapsed() >= self.timing.renew_deadline {
                return Error::LeadershipLost {
                    lease: self.lease_ref(),
                    reason: format!(
                        "no successful renewal for {:?} (--leader-elect-renew-deadline)",
                        self.timing.renew_deadline
                    ),
                };
            }
        }
    }

    /// Gives the Lease up (empty holder), if this replica still holds it.
    pub async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
                return Ok(false);
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now());
            self.api.replace(LEASE_NAME, &post_params(), &lease).await?;
            Ok::<_, kube::Error>(true)
        }
        .await;
        match result {
            Ok(true) => info!(lease = %self.lease_ref(), "released the leader Lease"),
            Ok(false) => {}
            Err(e) => {
                warn!(error = %e, lease = %self.lease_ref(), "cannot release the leader Lease")
            }
        }
    }

    /// One round: read the Lease and create, take over or renew it. `Ok(None)` means
    /// this replica holds it now; `Ok(Some(holder))` that another replica does.
    async fn try_acquire_or_renew(&mut self) -> Result<Option<String>, Error> {
        let current = self
            .api
            .get_opt(LEASE_NAME)
            .await
            .map_err(|source| self.kube_error("read", source))?;
        let now_instant = Instant::now();
        if let Some(spec) = current.as_ref().and_then(|l| l.spec.as_ref()) {
            observe(&mut self.observed, spec, now_instant);
        }
        let step = next_step(
            current
                .as_ref()
                .map(|l| l.spec.clone().unwrap_or_default())
                .as_ref(),
            &self.observed,
            &self.identity,
            now_instant,
            self.timing.lease_duration,
        );
        let duration_seconds =
            i32::try_from(self.timing.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let written = match (step, current) {
            (Step::Follow { holder }, _) => return Ok(Some(holder)),
            (Step::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.to_owned()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(duration_seconds),
                        acquire_time: Some(now()),
                        renew_time: Some(now()),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api
                    .create(&post_params(), &lease)
                    .await
                    .map_err(|source| self.kube_error("create", source))?
            }
            (step, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                if step == Step::TakeOver {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(now());
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(duration_seconds);
                spec.renew_time = Some(now());
                // `lease` still carries the resourceVersion that was read: a concurrent
                // writer makes this a conflict instead of a second leader.
                self.api
                    .replace(LEASE_NAME, &post_params(), &lease)
                    .await
                    .map_err(|source| self.kube_error("update", source))?
            }
            (Step::Renew | Step::TakeOver, None) => {
                return Err(Error::Internal {
                    what: "deciding on a Lease that does not exist",
                });
            }
        };
        if let Some(spec) = &written.spec {
            observe(&mut self.observed, spec, Instant::now());
        }
        Ok(None)
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.namespace, LEASE_NAME)
    }

    fn kube_error(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Kube {
            action,
            object: format!("Lease {}", self.lease_ref()),
            source,
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    }
}

/// This replica's identity: `POD_NAME` when set (the Deployment sets it from the
/// downward API), otherwise the host name; with a random suffix, so two processes on
/// one host, or a restarted Pod reusing its name, never share an identity.
pub fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sealant-controller".to_owned());
    let mut suffix = [0u8; 4];
    let suffix = match aws_lc_rs::rand::fill(&mut suffix) {
        Ok(()) => suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        Err(_) => std::process::id().to_string(),
    };
    format!("{base}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(15);

    fn held_by(holder: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            lease_transitions: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn no_lease_is_created() {
        let step = next_step(None, &Observed::default(), "a", Instant::now(), DURATION);
        assert_eq!(step, Step::Create);
    }

    #[test]
    fn own_lease_is_renewed() {
        let lease = held_by("a", "2026-01-01T00:00:00Z");
        let step = next_step(
            Some(&lease),
            &Observed::default(),
            "a",
            Instant::now(),
            DURATION,
        );
        assert_eq!(step, Step::Renew);
    }

    #[test]
    fn released_lease_is_taken_at_once() {
        let lease = LeaseSpec::default();
        let step = next_step(
            Some(&lease),
            &Observed::default(),
            "b",
            Instant::now(),
            DURATION,
        );
        assert_eq!(step, Step::TakeOver);
    }

    #[test]
    fn live_lease_of_another_replica_is_followed() {
        let t0 = Instant::now();
        let mut observed = Observed::default();
        let lease = held_by("a", "2026-01-01T00:00:00Z");
        assert!(observe(&mut observed, &lease, t0));
        let step = next_step(Some(&lease), &observed, "b", t0 + DURATION / 2, DURATION);
        assert_eq!(
            step,
            Step::Follow {
                holder: "a".to_owned()
            }
        );
    }

    #[test]
    fn lease_unchanged_for_a_whole_duration_is_taken_over() {
        let t0 = Instant::now();
        let mut observed = Observed::default();
        let lease = held_by("a", "2026-01-01T00:00:00Z");
        observe(&mut observed, &lease, t0);
        // The same record read again later does not restart the clock.
        assert!(!observe(&mut observed, &lease, t0 + DURATION / 2));
        let step = next_step(Some(&lease), &observed, "b", t0 + DURATION, DURATION);
        assert_eq!(step, Step::TakeOver);
    }

    #[test]
    fn renewal_seen_restarts_the_expiry_clock() {
        let t0 = Instant::now();
        let mut observed = Observed::default();
        observe(&mut observed, &held_by("a", "2026-01-01T00:00:00Z"), t0);
        let renewed = held_by("a", "2026-01-01T00:00:02Z");
        assert!(observe(
            &mut observed,
            &renewed,
            t0 + DURATION - Duration::from_secs(1)
        ));
        let step = next_step(Some(&renewed), &observed, "b", t0 + DURATION, DURATION);
        assert!(matches!(step, Step::Follow { .. }), "{step:?}");
    }

    #[test]
    fn a_renew_time_in_the_past_of_a_fresh_observer_is_not_trusted() {
        // The holder's clock says it renewed years ago, but this candidate has only
        // just seen the record: it must wait a whole duration by its own clock.
        let t0 = Instant::now();
        let mut observed = Observed::default();
        let lease = held_by("a", "2001-01-01T00:00:00Z");
        observe(&mut observed, &lease, t0);
        let step = next_step(Some(&lease), &observed, "b", t0, DURATION);
        assert!(matches!(step, Step::Follow { .. }), "{step:?}");
    }

    #[test]
    fn timing_must_order_retry_deadline_and_duration() {
        let ok = Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        assert!(ok.validate().is_ok());
        let bad = Timing {
            renew_deadline: Duration::from_secs(20),
            ..ok.clone()
        };
        assert!(bad.validate().is_err());
        let zero = Timing {
            retry_period: Duration::ZERO,
            ..ok
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn identities_of_two_processes_differ() {
        assert_ne!(identity(), identity());
    }
}
