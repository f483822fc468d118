//! What a scheduler is configured with: the scheme that picks an engine, the
//! high-water mark, and the seed of the randomized schemes.
//!
//! The names and defaults are ipyparallel's (`TaskScheduler.scheme_name`,
//! `TaskScheduler.hwm`), so that a user's `--scheme twobin --hwm 0` means
//! what it meant there.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How the scheduler picks among the engines eligible for a task.
///
/// "Eligible" means joined, below the high-water mark, and allowed by the
/// task's targets. Every scheme only ever chooses among eligible engines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `leastload`: the engine with the fewest outstanding tasks; among
    /// equally loaded engines the least recently used one, never-used engines
    /// first in join order (ipyparallel keeps its load list in LRU order and
    /// takes the first minimum).
    #[default]
    LeastLoad,
    /// `lru`: the engine whose last dispatch is the oldest; never-used engines
    /// first, in join order.
    Lru,
    /// `plainrandom`: uniformly at random.
    PlainRandom,
    /// `twobin`: draw two engines uniformly (with replacement) and take the
    /// less recently used of the two.
    TwoBin,
    /// `weighted`: draw two engines (with replacement) with probability
    /// proportional to `1 / (1e-6 + outstanding)` and take the less loaded of
    /// the two; an idle engine thus weighs a million times a busy one.
    Weighted,
}

impl Scheme {
    /// Every scheme, in the order ipyparallel's documentation lists them.
    pub const ALL: [Scheme; 5] = [
        Scheme::LeastLoad,
        Scheme::Lru,
        Scheme::PlainRandom,
        Scheme::TwoBin,
        Scheme::Weighted,
    ];

    /// The scheme's ipyparallel name, e.g. `"leastload"`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::LeastLoad => "leastload",
            Scheme::Lru => "lru",
            Scheme::PlainRandom => "plainrandom",
            Scheme::TwoBin => "twobin",
            Scheme::Weighted => "weighted",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = ParseSchemeError;

    /// Parses an ipyparallel scheme name; exact, lowercase, as ipyparallel's
    /// traitlets `Enum` accepts them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.name() == s)
            .ok_or_else(|| ParseSchemeError {
                given: s.to_owned(),
            })
    }
}

/// A string that names no [`Scheme`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSchemeError {
    given: String,
}

impl fmt::Display for ParseSchemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scheduler scheme `{}` (expected one of:",
            self.given
        )?;
        for (i, scheme) in Scheme::ALL.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{scheme}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParseSchemeError {}

/// A [`Scheduler`](crate::Scheduler)'s configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How an engine is picked among the eligible ones.
    pub scheme: Scheme,
    /// The high-water mark: the most tasks outstanding on one engine at once;
    /// 0 means no limit.
    ///
    /// ipyparallel's default, 1, sends work only to idle engines, which keeps
    /// a slow task from trapping others behind it. A higher mark hides the
    /// network round trip behind computation at the price of balance when
    /// task durations vary.
    pub hwm: u32,
    /// The seed of the random draws of `plainrandom`, `twobin` and
    /// `weighted`: the same seed and the same inputs give the same decisions.
    pub seed: u64,
    /// Prefetch: how much queued work, in expected run time, an engine may
    /// hold beyond the high-water mark. Zero turns it off (ipyparallel's
    /// behaviour).
    ///
    /// With `hwm = 1` an engine sits idle for a whole controller round trip
    /// between two tasks, which halves the throughput of tasks as short as
    /// that round trip. So an engine whose recent tasks ran for `d` may hold
    /// `hwm + min(prefetch / d, MAX_PREFETCH)` tasks: work it has in hand
    /// that is worth at most `prefetch`. Tasks longer than `prefetch` get no
    /// extra room and are balanced exactly as with `hwm` alone; the most
    /// balance the short ones can lose is `prefetch` of queued work per
    /// engine. The estimate of `d` rises at once to a longer task and
    /// decays slowly, so a run of long tasks after short ones gets little
    /// extra room.
    ///
    /// An engine far from the controller
    /// ([`Scheduler::handle_engine_rtt`](crate::Scheduler::handle_engine_rtt))
    /// waits a whole round trip for each task it is sent, so its budget is
    /// at least two round trips of work, and its count cap grows with it
    /// (up to [`MAX_PREFETCH_FAR`]): an engine 60 ms away holds 120 ms of
    /// work, and keeps computing while the next arrives.
    pub prefetch: Duration,
    /// Time slicing between tenants: when no engine has room, the tenant
    /// whose turn it is in the fair share may run one task on an engine
    /// whose tasks are another tenant's, beside them
    /// ([`Action::Slice`](crate::Action::Slice)); the engine then shares
    /// its time between the two by weight, suspending each at its epoch
    /// ticks. Off, a tenant waits for another's running task to end, as
    /// in every non-preemptive scheduler.
    ///
    /// Each engine holds at most one such task at a time, beside the tasks
    /// the high-water mark admits. Only untargeted tasks are sliced.
    pub time_slice: bool,
}

/// The default of [`SchedulerConfig::prefetch`]: a few controller round
/// trips on loopback (about 0.15 ms each).
pub const DEFAULT_PREFETCH: Duration = Duration::from_millis(1);

/// The most tasks prefetch adds to an engine's high-water mark, on a
/// round trip no longer than the prefetch budget.
pub const MAX_PREFETCH: u32 = 16;

/// The most tasks prefetch adds to the mark of an engine whose round trip
/// stretches its budget (the cap grows with the budget up to this).
pub const MAX_PREFETCH_FAR: u32 = 4096;

impl Default for SchedulerConfig {
    /// `leastload`, `hwm = 1`, seed 0: ipyparallel's defaults; plus
    /// [`DEFAULT_PREFETCH`].
    fn default() -> Self {
        Self {
            scheme: Scheme::default(),
            hwm: 1,
            seed: 0,
            prefetch: DEFAULT_PREFETCH,
            time_slice: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.to_string().parse::<Scheme>(), Ok(scheme));
        }
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones() {
        let err = "pure".parse::<Scheme>().expect_err("pure is not supported");
        assert_eq!(
            err.to_string(),
            "unknown scheduler scheme `pure` (expected one of: leastload, lru, plainrandom, twobin, weighted)"
        );
    }

    #[test]
    fn defaults_are_ipyparallels() {
        let config = SchedulerConfig::default();
        assert_eq!(config.scheme, Scheme::LeastLoad);
        assert_eq!(config.hwm, 1);
    }
}
