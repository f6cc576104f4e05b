//! The Secrets this process is writing or has just written, so that the owned-Secret
//! watch can drop the echo of its own writes.
//!
//! Every Secret the controller writes comes back as an event on the owned-Secret
//! watch. That echo would trigger a pass with nothing to do: it reads the Secret (a
//! GET), finds it in sync, and writes the status again when the cache does not show
//! the first write yet. Dropping it keeps a cold sync at one Secret write, one status
//! write and one event per object. Any other change to the Secret (an edit, a
//! deletion, a later write) has another `resourceVersion` and still triggers a pass.
//!
//! ```text
//!   pass:  begin(ns/name) ─▶ POST/PUT ─▶ finish(answer): Written(resourceVersion)
//!   watch: event ns/name @ rv ─▶ Written(rv)?  same rv: the echo, dropped (once)
//!                              └─ InFlight?    wait for the answer, at most ANSWER_WAIT
//! ```
//!
//! The echo can arrive before the answer (the API server sends both once etcd has
//! the write), so a write is registered before it is sent, and an event for a Secret
//! whose write is in flight waits for the answer, at most [`ANSWER_WAIT`]. The answer
//! is already on its way when the echo comes (the write committed), so the wait is
//! the time the busy process takes to read it: 100 ms was too short with both cores
//! saturated by a cold sync (223 of 1000 echoes went through), 1 s is not. Waits for
//! different Secrets overlap (the answers are all on their way), so the watch is held
//! up by about the slowest answer, not the sum.
//! Past that the event goes through: at worst, one pass too many.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use tokio::sync::watch;

/// How long an event waits for the answer to a write of the same Secret.
pub const ANSWER_WAIT: Duration = Duration::from_secs(1);

enum State {
    /// Sent, not answered yet; the value turns true with the answer.
    InFlight(watch::Receiver<bool>),
    /// Answered: the Secret's `resourceVersion` after the write.
    Written(String),
}

/// The writes, by `namespace/name`; each with the number of the write it belongs to,
/// so that an older write's answer never overwrites a newer one's entry.
#[derive(Default)]
pub struct OwnWrites(Mutex<HashMap<String, (u64, State)>>, Mutex<u64>);

/// A write in flight, from [`OwnWrites::begin`] until [`Pending::finish`] (or drop).
pub struct Pending<'a> {
    own: &'a OwnWrites,
    key: String,
    number: u64,
    answered: watch::Sender<bool>,
}

impl OwnWrites {
    fn map(&self) -> MutexGuard<'_, HashMap<String, (u64, State)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a write of the Secret `namespace/name`, about to be sent.
    pub(crate) fn begin(&self, namespace: &str, name: &str) -> Pending<'_> {
        let number = {
            let mut next = self.1.lock().unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let (answered, rx) = watch::channel(false);
        let key = format!("{namespace}/{name}");
        self.map()
            .insert(key.clone(), (number, State::InFlight(rx)));
        Pending {
            own: self,
            key,
            number,
            answered,
        }
    }

    /// Whether an event showing the Secret `namespace/name` at `version` is the echo of
    /// our last write to it. The first event for a Secret after our write settles it
    /// either way.
    pub(crate) async fn is_echo(&self, namespace: &str, name: &str, version: Option<&str>) -> bool {
        let key = format!("{namespace}/{name}");
        let in_flight = match self.map().get(&key) {
            None => return false,
            Some((_, State::InFlight(rx))) => Some(rx.clone()),
            Some((_, State::Written(_))) => None,
        };
        if let Some(mut rx) = in_flight {
            // Err: the answer took longer (or the write was dropped): decided below.
            let _ = tokio::time::timeout(ANSWER_WAIT, rx.wait_for(|done| *done)).await;
        }
        let mut map = self.map();
        match map.get(&key) {
            Some((_, State::Written(written))) => {
                let echo = version == Some(written.as_str());
                map.remove(&key);
                echo
            }
            _ => false,
        }
    }

    /// How many writes are remembered (in flight, or waiting for their echo).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.map().len()
    }
}

impl Pending<'_> {
    /// The write's answer: the Secret as the API server stored it, or `None` if the
    /// write failed (then nothing is remembered).
    pub(crate) fn finish(self, written: Option<&Secret>) {
        let version = written.and_then(|s| s.metadata.resource_version.clone());
        let mut map = self.own.map();
        if map.get(&self.key).is_some_and(|(n, _)| *n == self.number) {
            match version {
                Some(v) => {
                    map.insert(self.key.clone(), (self.number, State::Written(v)));
                }
                None => {
                    map.remove(&self.key);
                }
            }
        }
        drop(map);
        // `self` drops here: waiters wake up (`Drop`) and find the answer in the map.
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        {
            // A pass cancelled mid-write leaves no entry in flight behind.
            let mut map = self.own.map();
            if map
                .get(&self.key)
                .is_some_and(|(n, s)| *n == self.number && matches!(s, State::InFlight(_)))
            {
                map.remove(&self.key);
            }
        }
        let _ = self.answered.send(true);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn stored(version: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some("app".to_owned()),
                name: Some("db".to_owned()),
                resource_version: Some(version.to_owned()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    #[tokio::test]
    async fn only_the_first_event_showing_our_write_is_its_echo() {
        let own = OwnWrites::default();
        own.begin("app", "db").finish(Some(&stored("7")));
        assert!(
            !own.is_echo("app", "other", Some("7")).await,
            "another Secret"
        );
        assert!(own.is_echo("app", "db", Some("7")).await);
        assert!(
            !own.is_echo("app", "db", Some("7")).await,
            "seen once: a relist showing it again triggers a pass"
        );
        own.begin("app", "db").finish(Some(&stored("8")));
        assert!(
            !own.is_echo("app", "db", Some("9")).await,
            "someone wrote after us: the pass repairs it"
        );
        assert_eq!(own.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_echo_that_arrives_before_the_answer_waits_for_it() {
        let own = std::sync::Arc::new(OwnWrites::default());
        let pending = own.begin("app", "db");
        let watcher = own.clone();
        let event = tokio::spawn(async move { watcher.is_echo("app", "db", Some("7")).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        pending.finish(Some(&stored("7")));
        assert!(event.await.expect("joined"));
        assert_eq!(own.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_not_answered_in_time_lets_the_event_through() {
        let own = OwnWrites::default();
        let pending = own.begin("app", "db");
        let started = tokio::time::Instant::now();
        assert!(!own.is_echo("app", "db", Some("7")).await);
        assert!(started.elapsed() >= ANSWER_WAIT);
        assert!(started.elapsed() < ANSWER_WAIT * 2, "bounded wait");
        drop(pending);
        assert_eq!(own.pending(), 0, "a dropped write leaves nothing behind");
    }

    #[tokio::test]
    async fn a_failed_write_remembers_nothing_and_an_old_answer_does_not_replace_a_newer_write() {
        let own = OwnWrites::default();
        own.begin("app", "db").finish(None);
        assert_eq!(own.pending(), 0);
        assert!(!own.is_echo("app", "db", Some("7")).await);

        let older = own.begin("app", "db");
        let newer = own.begin("app", "db");
        older.finish(Some(&stored("7")));
        newer.finish(Some(&stored("8")));
        assert!(own.is_echo("app", "db", Some("8")).await);
    }
}
