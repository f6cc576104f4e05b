//! The budget of one SealedSecret's templates: what everything its author controls may
//! cost the controller, all `spec.template.data` keys together.
//!
//! A SealedSecret's author needs no key to write templates (they run even when
//! `encryptedData` is empty), so the controller treats them as hostile input. One
//! [`Budget`] is made per unseal and every template of the object draws on it:
//!
//! | what | default | why this number |
//! |---|---|---|
//! | output bytes | 1 MiB | the apiserver refuses a Secret over 1 MiB, so no real object renders more |
//! | bytes of strings and lists made | 4 MiB | four times the largest Secret: room to build a 1 MiB value in a few steps; a `dockerconfigjson`, a TLS bundle or a connection string makes a few KiB |
//! | steps | 1,000,000 | a node, a command or a loop iteration is one step; a function that reads or writes bytes also pays one step per 64 bytes. Real templates take tens to a few thousand steps |
//! | list nesting | 32 (fixed) | lists of lists are rare in Secret templates; the cap keeps every recursion over a value (printing, dropping) shallow |
//! | wall time | 1 s | a safety net behind the step count: real templates render in microseconds |
//!
//! Guarantees:
//! - sizes are checked before memory is taken: every string is built in a buffer capped
//!   at what the budget has left (see [`super::value::SecretBuf`]), so a template cannot
//!   make the controller allocate more than the budget plus one value's temporaries;
//! - work that grows with input (searching, replacing, splitting, comparing, encoding)
//!   is linear in it and charged by it, so the step count bounds CPU time;
//! - exceeding the budget is a [`super::TemplateError`] that names what ran out and the
//!   position, like any other template error: permanent, and about this object alone.

use std::time::{Duration, Instant};

use super::exec::Res;

/// How deeply lists may nest in lists. Fixed, not a [`Limits`] field: the stack depth
/// of printing and dropping a value depends on it.
pub(super) const MAX_VALUE_DEPTH: usize = 32;

/// How many bytes a function may read or write per step it is charged.
pub(super) const BYTES_PER_STEP: usize = 64;

/// How many steps pass between two looks at the clock.
const STEPS_PER_CLOCK_CHECK: u64 = 1024;

/// What one SealedSecret's templates may spend, all keys together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of rendered output.
    pub output: usize,
    /// Bytes of strings and lists made while rendering (each string at most
    /// [`super::MAX_OUTPUT`]).
    pub allocated: usize,
    /// Weighted steps: one per node, command and loop iteration, plus one per 64 bytes
    /// a function reads or writes.
    pub steps: u64,
    /// Wall time from the start of the first template.
    pub time: Duration,
}

impl Limits {
    /// The limits the controller and `--recovery-unseal` use:
    /// - 1 MiB of output: the API server refuses a larger Secret;
    /// - 4 MiB made: room to build a 1 MiB value in a few steps, where a
    ///   `dockerconfigjson`, a TLS bundle or a connection string makes a few KiB;
    /// - 1,000,000 steps: real templates take tens to a few thousand;
    /// - 1 s: a safety net behind the steps; real templates take microseconds.
    pub const DEFAULT: Limits = Limits {
        output: 1 << 20,
        allocated: 4 << 20,
        steps: 1_000_000,
        time: Duration::from_secs(1),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What is left of one SealedSecret's [`Limits`]. Make one per unseal and hand it to
/// every [`super::render_with_budget`] of that object.
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    output: usize,
    allocated: usize,
    steps: u64,
    started: Instant,
}

impl Budget {
    /// A full budget; the wall-time clock starts now.
    pub fn new(limits: Limits) -> Self {
        Budget {
            limits,
            output: 0,
            allocated: 0,
            steps: 0,
            started: Instant::now(),
        }
    }

    /// The limits this budget started with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Charges `n` steps, and looks at the clock every so often (always on the first
    /// step, so a zero time limit fails at once).
    pub(super) fn step(&mut self, n: u64) -> Res<()> {
        let before = self.steps;
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.limits.steps {
            return Err(format!(
                "budget exceeded: the templates of this SealedSecret take more than {} steps",
                self.limits.steps
            ));
        }
        let ticked =
            before == 0 || before / STEPS_PER_CLOCK_CHECK != self.steps / STEPS_PER_CLOCK_CHECK;
        if ticked && self.started.elapsed() >= self.limits.time {
            return Err(format!(
                "budget exceeded: the templates of this SealedSecret take longer than {} ms",
                self.limits.time.as_millis()
            ));
        }
        Ok(())
    }

    /// Charges the steps for reading or writing `bytes` bytes.
    pub(super) fn step_bytes(&mut self, bytes: usize) -> Res<()> {
        self.step(1 + (bytes / BYTES_PER_STEP) as u64)
    }

    /// How many more bytes of strings and lists may be made.
    pub(super) fn alloc_room(&self) -> usize {
        self.limits.allocated.saturating_sub(self.allocated)
    }

    /// Charges `n` bytes of strings or lists made.
    pub(super) fn alloc(&mut self, n: usize) -> Res<()> {
        if n > self.alloc_room() {
            return Err(self.alloc_error());
        }
        self.allocated += n;
        Ok(())
    }

    pub(super) fn alloc_error(&self) -> String {
        format!(
            "budget exceeded: the templates of this SealedSecret would make more than {} bytes of strings and lists",
            self.limits.allocated
        )
    }

    /// How many more bytes may be rendered.
    pub(super) fn output_room(&self) -> usize {
        self.limits.output.saturating_sub(self.output)
    }

    /// Charges `n` rendered bytes.
    pub(super) fn output(&mut self, n: usize) -> Res<()> {
        if n > self.output_room() {
            return Err(self.output_error());
        }
        self.output += n;
        Ok(())
    }

    pub(super) fn output_error(&self) -> String {
        format!(
            "budget exceeded: the rendered values of this SealedSecret would be larger than {} bytes",
            self.limits.output
        )
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(Limits::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_output_and_allocation_are_refused_past_their_limits() {
        let mut b = Budget::new(Limits {
            output: 10,
            allocated: 20,
            steps: 5,
            time: Duration::from_secs(3600),
        });
        assert!(b.step(5).is_ok());
        assert!(b.step(1).unwrap_err().contains("5 steps"));
        assert!(b.output(10).is_ok());
        assert!(b.output(1).unwrap_err().contains("10 bytes"));
        assert!(b.alloc(15).is_ok());
        assert_eq!(b.alloc_room(), 5);
        assert!(b.alloc(6).unwrap_err().contains("20 bytes"));
    }

    #[test]
    fn a_zero_time_limit_fails_on_the_first_step() {
        let mut b = Budget::new(Limits {
            time: Duration::ZERO,
            ..Limits::DEFAULT
        });
        assert!(b.step(1).unwrap_err().contains("longer than 0 ms"));
    }

    #[test]
    fn byte_work_is_charged_one_step_per_64_bytes() {
        let mut b = Budget::new(Limits {
            steps: 17,
            ..Limits::DEFAULT
        });
        assert!(b.step_bytes(1024).is_ok(), "1 + 16 steps");
        assert!(b.step_bytes(0).is_err());
    }
}
