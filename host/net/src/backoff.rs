//! When to try again after a failure, and when to stop trying: a
//! sans-IO exponential backoff with jitter, and the engine's reconnect
//! policy built on it.
//!
//! Nothing here sleeps, reads a clock or draws entropy: callers pass `now`
//! and a seed, and sleep for the delays they are given (as the scheduler
//! does, STYLE.md habit 1), so the schedule is unit-tested without sockets
//! or waiting. Engines (`wasp_engine::node`) and clients (`wasp_client`)
//! reconnect to their controller with [`Reconnect`]; `wasp cluster
//! start`'s supervisor spaces its restarts of dying processes with
//! [`Backoff`]. It lives here, beside the connections, because both ends
//! that dial a controller use it.

use std::time::{Duration, Instant};

/// An exponential backoff schedule with jitter: each delay is the current
/// step less a random part of up to half of it, and the step doubles after
/// each delay up to a cap.
///
/// The jitter spreads out peers that failed at the same moment (every
/// engine of a controller that died), so that they do not all knock at
/// once; keeping at least half the step keeps the schedule's growth.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    step: Duration,
    rng: SplitMix64,
}

impl Backoff {
    /// A schedule whose first step is `first`, doubling to at most `cap`,
    /// with jitter drawn from `seed`.
    pub fn new(first: Duration, cap: Duration, seed: u64) -> Self {
        let first = first.min(cap);
        Self {
            first,
            cap,
            step: first,
            rng: SplitMix64(seed),
        }
    }

    /// The delay before the next attempt, in `[step / 2, step]`; the step
    /// then doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.cap);
        let half = step / 2;
        let span = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = if span == 0 {
            0
        } else {
            self.rng.next() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Starts the schedule over from its first step, after a success.
    pub fn reset(&mut self) {
        self.step = self.first;
    }
}

/// A small, seeded pseudo-random generator (SplitMix64): jitter needs
/// spread, not secrecy, and a seed makes the schedule reproducible in
/// tests.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The first delay of a reconnecting engine or client: short, since a controller
/// restarted by a supervisor is back within a second or so.
pub const RECONNECT_FIRST: Duration = Duration::from_millis(100);

/// The longest delay between two reconnect attempts.
pub const RECONNECT_CAP: Duration = Duration::from_secs(5);

/// The default of how long an engine or a client that lost its controller
/// keeps trying to reach one before it gives up.
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a reconnecting engine or client does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Wait this long, then try to connect.
    After(Duration),
    /// The time allowed to reconnect has passed: stop trying.
    GiveUp,
}

/// The reconnect policy of an engine or client that lost its controller: attempts
/// spaced by a [`Backoff`] from [`RECONNECT_FIRST`] to [`RECONNECT_CAP`],
/// for up to a timeout counted from the loss; a zero timeout never
/// reconnects.
///
/// The timeout bounds when the last attempt starts, not when it ends: an
/// attempt under way at the deadline runs to its own dial timeout.
#[derive(Clone, Debug)]
pub struct Reconnect {
    backoff: Backoff,
    timeout: Duration,
    lost_at: Option<Instant>,
}

impl Reconnect {
    /// A policy that keeps trying for `timeout` after each loss, with
    /// jitter drawn from `seed`.
    pub fn new(timeout: Duration, seed: u64) -> Self {
        Self {
            backoff: Backoff::new(RECONNECT_FIRST, RECONNECT_CAP, seed),
            timeout,
            lost_at: None,
        }
    }

    /// The connection was lost at `now`: the time allowed to reconnect
    /// starts, and the schedule starts over from its first step.
    pub fn lost(&mut self, now: Instant) {
        self.lost_at = Some(now);
        self.backoff.reset();
    }

    /// What to do at `now`, after the loss or after a failed attempt.
    pub fn next(&mut self, now: Instant) -> Attempt {
        let lost_at = *self.lost_at.get_or_insert(now);
        let elapsed = now.saturating_duration_since(lost_at);
        if elapsed >= self.timeout {
            return Attempt::GiveUp;
        }
        // The last attempt is made at the deadline rather than skipped.
        Attempt::After(self.backoff.next_delay().min(self.timeout - elapsed))
    }

    /// Connected again: the next loss gets the whole timeout.
    pub fn joined(&mut self) {
        self.lost_at = None;
        self.backoff.reset();
    }

    /// How long the policy keeps trying after a loss.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steps_double_to_the_cap_with_jitter_of_at_most_half() {
        for seed in 0..200 {
            let mut backoff = Backoff::new(100 * MS, 5000 * MS, seed);
            let steps = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
            for step in steps {
                let step = step * MS;
                let delay = backoff.next_delay();
                assert!(
                    delay >= step / 2 && delay <= step,
                    "seed {seed}: {delay:?} outside [{:?}, {step:?}]",
                    step / 2
                );
            }
            backoff.reset();
            assert!(backoff.next_delay() <= 100 * MS, "reset starts over");
        }
    }

    #[test]
    fn jitter_spreads_peers_and_a_seed_reproduces_it() {
        let delays = |seed| {
            let mut backoff = Backoff::new(100 * MS, 5000 * MS, seed);
            (0..8).map(|_| backoff.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(delays(7), delays(7));
        let firsts: std::collections::HashSet<Duration> =
            (0..50).map(|seed| delays(seed)[0]).collect();
        assert!(
            firsts.len() > 40,
            "50 engines lost together retry at {} distinct times",
            firsts.len()
        );
    }

    #[test]
    fn a_zero_step_never_waits() {
        let mut backoff = Backoff::new(Duration::ZERO, Duration::ZERO, 1);
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        assert_eq!(backoff.next_delay(), Duration::ZERO);
    }

    /// Drives the policy on a fake clock: each attempt fails at once
    /// after its delay. Returns the delays until it gives up.
    fn attempts_until_give_up(policy: &mut Reconnect, start: Instant) -> Vec<Duration> {
        let mut now = start;
        policy.lost(now);
        let mut delays = Vec::new();
        while let Attempt::After(delay) = policy.next(now) {
            delays.push(delay);
            now += delay;
            assert!(delays.len() < 1000, "never gives up");
        }
        delays
    }

    #[test]
    fn reconnect_gives_up_once_the_timeout_has_passed() {
        let start = Instant::now();
        let mut policy = Reconnect::new(Duration::from_secs(60), 3);
        let delays = attempts_until_give_up(&mut policy, start);
        let total: Duration = delays.iter().sum();
        assert_eq!(
            total,
            Duration::from_secs(60),
            "the last attempt is at the deadline"
        );
        assert!(delays.iter().all(|d| *d <= RECONNECT_CAP));
        assert!(delays[0] <= RECONNECT_FIRST);
        // 100 ms doubling to 5 s: about 0.1+0.2+...+3.2 = 6.3 s, then
        // steps of 2.5 to 5 s for the rest of the minute.
        assert!(
            (12..=30).contains(&delays.len()),
            "{} attempts",
            delays.len()
        );
    }

    #[test]
    fn a_zero_timeout_never_reconnects() {
        let mut policy = Reconnect::new(Duration::ZERO, 3);
        let now = Instant::now();
        policy.lost(now);
        assert_eq!(policy.next(now), Attempt::GiveUp);
    }

    #[test]
    fn joining_again_restores_the_whole_timeout_and_the_first_step() {
        let start = Instant::now();
        let mut policy = Reconnect::new(Duration::from_secs(10), 5);
        policy.lost(start);
        let mut now = start;
        for _ in 0..6 {
            let Attempt::After(delay) = policy.next(now) else {
                panic!("gave up early")
            };
            now += delay;
        }
        // Joined after several seconds of trying; lost again much later.
        policy.joined();
        now += Duration::from_secs(3600);
        policy.lost(now);
        let Attempt::After(first) = policy.next(now) else {
            panic!("a new loss gets a new timeout")
        };
        assert!(first <= RECONNECT_FIRST, "{first:?}");
        assert_eq!(
            policy.next(now + Duration::from_secs(10)),
            Attempt::GiveUp,
            "the timeout counts from the new loss"
        );
    }
}
