//! When `wasp cluster start`'s supervisor restarts a process that died,
//! and when it gives up on one that keeps dying (ipyparallel#706: a
//! cluster that restarts a crashing engine forever only fills its logs).
//!
//! Sans-IO, like the engine's reconnect policy ([`wasp_engine::backoff`]):
//! the supervisor reports each death with the time it saw it and is told
//! what to do, so the policy is unit-tested on a fake clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wasp_engine::backoff::Backoff;

/// The restart policy of one supervised process.
#[derive(Clone, Copy, Debug)]
pub struct RestartPolicy {
    /// The delay before the first restart.
    pub first: Duration,
    /// The longest delay between a death and its restart.
    pub cap: Duration,
    /// Give up once the process has died this many times within `window`.
    pub max_deaths: usize,
    /// How far back deaths count. A process that stays up this long is
    /// restarted from the first delay again.
    pub window: Duration,
}

/// Half a second doubling to 30 s; five deaths in a minute is a process
/// that cannot stay up, whose restarts only hide the cause.
pub const DEFAULT_POLICY: RestartPolicy = RestartPolicy {
    first: Duration::from_millis(500),
    cap: Duration::from_secs(30),
    max_deaths: 5,
    window: Duration::from_secs(60),
};

/// What the supervisor does about a death.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Start the process again after this delay.
    Restart {
        /// How long to wait first.
        after: Duration,
        /// Deaths within the window, this one included.
        deaths: usize,
    },
    /// Stop restarting it.
    GiveUp {
        /// Deaths within the window, this one included.
        deaths: usize,
    },
}

/// The deaths of one supervised process, and its restart schedule.
#[derive(Clone, Debug)]
pub struct Restarts {
    policy: RestartPolicy,
    deaths: VecDeque<Instant>,
    backoff: Backoff,
}

impl Restarts {
    /// No deaths yet; jitter drawn from `seed`.
    pub fn new(policy: RestartPolicy, seed: u64) -> Self {
        Self {
            policy,
            deaths: VecDeque::new(),
            backoff: Backoff::new(policy.first, policy.cap, seed),
        }
    }

    /// The process was seen dead at `now`.
    pub fn died(&mut self, now: Instant) -> Verdict {
        while self
            .deaths
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > self.policy.window)
        {
            self.deaths.pop_front();
        }
        if self.deaths.is_empty() {
            // Up for a whole window since its last death: a new trouble,
            // not the same one, so the schedule starts over.
            self.backoff.reset();
        }
        self.deaths.push_back(now);
        let deaths = self.deaths.len();
        if deaths >= self.policy.max_deaths {
            return Verdict::GiveUp { deaths };
        }
        Verdict::Restart {
            after: self.backoff.next_delay(),
            deaths,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A process that dies as soon as it is restarted.
    #[test]
    fn a_process_that_keeps_dying_is_restarted_with_growing_delays_then_given_up() {
        let start = Instant::now();
        let mut restarts = Restarts::new(DEFAULT_POLICY, 9);
        let mut now = start;
        let mut delays = Vec::new();
        let verdict = loop {
            match restarts.died(now) {
                Verdict::Restart { after, deaths } => {
                    assert_eq!(deaths, delays.len() + 1);
                    delays.push(after);
                    now += after;
                }
                give_up => break give_up,
            }
        };
        assert_eq!(verdict, Verdict::GiveUp { deaths: 5 });
        assert_eq!(delays.len(), 4, "restarted four times: {delays:?}");
        for (i, delay) in delays.iter().enumerate() {
            let step = DEFAULT_POLICY.first * 2u32.pow(i as u32);
            assert!(*delay >= step / 2 && *delay <= step, "{i}: {delay:?}");
        }
    }

    #[test]
    fn deaths_spread_wider_than_the_window_are_never_given_up() {
        let mut restarts = Restarts::new(DEFAULT_POLICY, 1);
        let mut now = Instant::now();
        for _ in 0..100 {
            let Verdict::Restart { after, deaths } = restarts.died(now) else {
                panic!("gave up on a process that stays up for minutes")
            };
            assert_eq!(deaths, 1);
            assert!(after <= DEFAULT_POLICY.first, "a fresh schedule: {after:?}");
            now += after + DEFAULT_POLICY.window + S;
        }
    }

    #[test]
    fn deaths_age_out_of_the_window() {
        let policy = RestartPolicy {
            max_deaths: 3,
            window: 10 * S,
            ..DEFAULT_POLICY
        };
        let mut restarts = Restarts::new(policy, 2);
        let t0 = Instant::now();
        assert!(matches!(
            restarts.died(t0),
            Verdict::Restart { deaths: 1, .. }
        ));
        assert!(matches!(
            restarts.died(t0 + 6 * S),
            Verdict::Restart { deaths: 2, .. }
        ));
        // The first death is 11 s old: two count, not three.
        assert!(matches!(
            restarts.died(t0 + 11 * S),
            Verdict::Restart { deaths: 2, .. }
        ));
        assert_eq!(restarts.died(t0 + 12 * S), Verdict::GiveUp { deaths: 3 });
    }
}
