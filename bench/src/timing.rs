//! A small timing helper, in place of a benchmark framework.
//!
//! An operation is warmed up, then sampled for a time budget (or up to a
//! number of samples). Operations that take at least [`PER_ITERATION_ABOVE`]
//! are timed one call per sample, so the figures are the median and p99 of
//! per-iteration times. Faster ones are timed in batches long enough
//! ([`BATCH_TARGET`]) that reading the clock costs nothing measurable, so the
//! figures are the median and p99 of per-batch means.
//!
//! Two operations compared with each other are sampled in alternating
//! rounds ([`compare`]), so that a slow spell of the machine (two shared
//! cores) falls on both rather than on one.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Operations at least this slow are timed one call per sample.
pub const PER_ITERATION_ABOVE: Duration = Duration::from_micros(1);

/// How long one batch of a fast operation lasts.
pub const BATCH_TARGET: Duration = Duration::from_micros(50);

/// Fewest samples taken in a round, whatever the budget.
const MIN_SAMPLES: usize = 3;

/// How long to warm up and how long to sample.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Time spent running the operation before sampling (at least three
    /// calls).
    pub warmup: Duration,
    /// Time spent sampling, over all rounds.
    pub measure: Duration,
    /// Most samples kept, over all rounds (bounds slow operations with a
    /// costly setup).
    pub max_samples: usize,
    /// How many alternating rounds [`compare`] splits the budget into.
    pub rounds: u32,
}

impl Budget {
    /// The budget of one round.
    fn round(&self) -> (Duration, usize) {
        let rounds = self.rounds.max(1);
        (
            self.measure / rounds,
            self.max_samples.div_ceil(rounds as usize).max(MIN_SAMPLES),
        )
    }
}

/// The budgets of the runtime-level benchmarks (`runtime`, `polyglot`):
/// compiles and loads need a new runtime per sample and are timed in pairs
/// ([`compare_paired`]: three warm-up pairs, no rounds); calls are sampled
/// in rounds.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeBudgets {
    /// Compiling a module (seconds each for Python and JavaScript, hence
    /// the sample cap).
    pub compile: Budget,
    /// Loading a compiled module.
    pub load: Budget,
    /// One call.
    pub call: Budget,
}

impl RuntimeBudgets {
    /// The full budgets, or a tenth of them for a smoke run.
    pub fn new(quick: bool) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            compile: Budget {
                warmup: Duration::ZERO,
                measure: Duration::from_secs(3) / scale,
                max_samples: 20 / scale as usize,
                rounds: 1,
            },
            load: Budget {
                warmup: Duration::ZERO,
                measure: Duration::from_secs(2) / scale,
                max_samples: 200 / scale as usize,
                rounds: 1,
            },
            call: Budget {
                warmup: Duration::from_millis(300) / scale,
                measure: Duration::from_secs(2) / scale,
                max_samples: 1_000_000,
                rounds: 4,
            },
        }
    }
}

/// The figures of one sampled operation, in nanoseconds per call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// The median sample.
    pub median_ns: f64,
    /// The 99th-percentile sample.
    pub p99_ns: f64,
    /// How many samples were taken.
    pub samples: usize,
    /// Calls per sample: 1 when timed per iteration.
    pub batch: u64,
}

/// Accumulates the samples of one operation, possibly over several rounds.
#[derive(Debug)]
pub struct Sampler {
    batch: u64,
    /// Nanoseconds per call, one entry per sample.
    samples: Vec<f64>,
}

impl Sampler {
    /// A sampler that times one call per sample, for slow operations.
    pub fn per_iteration() -> Self {
        Self {
            batch: 1,
            samples: Vec::new(),
        }
    }

    /// Warms `op` up for `warmup` (at least three calls) and picks the batch
    /// size from its speed.
    pub async fn calibrated<O>(op: &mut impl AsyncFnMut() -> O, warmup: Duration) -> Self {
        let start = Instant::now();
        let mut calls: u32 = 0;
        while calls < 3 || start.elapsed() < warmup {
            black_box(op().await);
            calls += 1;
        }
        let per_call = start.elapsed() / calls;
        let batch = if per_call >= PER_ITERATION_ABOVE {
            1
        } else {
            let per_call = per_call.as_nanos().max(1);
            u64::try_from(BATCH_TARGET.as_nanos() / per_call)
                .unwrap_or(u64::MAX)
                .max(1)
        };
        Self {
            batch,
            samples: Vec::new(),
        }
    }

    /// Samples `op` for `budget` or until `max_samples` more samples are
    /// taken, whichever comes first (but at least a few).
    pub async fn run<O>(
        &mut self,
        op: &mut impl AsyncFnMut() -> O,
        budget: Duration,
        max_samples: usize,
    ) {
        let start = Instant::now();
        let mut taken = 0;
        while taken < MIN_SAMPLES || (taken < max_samples && start.elapsed() < budget) {
            let began = Instant::now();
            for _ in 0..self.batch {
                black_box(op().await);
            }
            self.push(began.elapsed());
            taken += 1;
        }
    }

    fn push(&mut self, elapsed: Duration) {
        self.samples
            .push(elapsed.as_nanos() as f64 / self.batch as f64);
    }

    /// The figures so far.
    ///
    /// # Panics
    /// If nothing was sampled.
    pub fn stats(&self) -> Stats {
        assert!(
            !self.samples.is_empty(),
            "stats of an operation never sampled"
        );
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        Stats {
            median_ns: percentile(&sorted, 0.5),
            p99_ns: percentile(&sorted, 0.99),
            samples: sorted.len(),
            batch: self.batch,
        }
    }
}

/// The `q`-quantile of sorted samples (nearest rank; the median of an even
/// count is the mean of the middle two).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if q == 0.5 && n.is_multiple_of(2) {
        return (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Warms up and samples `a` and `b` in alternating rounds; returns their
/// figures in that order.
pub async fn compare<A, B>(
    budget: &Budget,
    a: &mut impl AsyncFnMut() -> A,
    b: &mut impl AsyncFnMut() -> B,
) -> (Stats, Stats) {
    let mut sa = Sampler::calibrated(a, budget.warmup / 2).await;
    let mut sb = Sampler::calibrated(b, budget.warmup / 2).await;
    let (round, max_samples) = budget.round();
    for _ in 0..budget.rounds.max(1) {
        sa.run(a, round / 2, max_samples).await;
        sb.run(b, round / 2, max_samples).await;
    }
    (sa.stats(), sb.stats())
}

/// [`compare`] for slow operations that each need an untimed setup (a new
/// runtime, a new engine): one setup makes the inputs of both, then `a` and
/// `b` are timed back to back, one call each, taking turns at going first.
/// Both thus run in the same state of the machine (cache temperature,
/// background work), which a pause or a costly setup changes a lot; what
/// they return is dropped after both clocks stop. Three warm-up pairs first.
pub async fn compare_paired<IA, IB, A, B>(
    budget: &Budget,
    setup: &mut impl FnMut() -> (IA, IB),
    a: &mut impl AsyncFnMut(IA) -> A,
    b: &mut impl AsyncFnMut(IB) -> B,
) -> (Stats, Stats) {
    let (mut sa, mut sb) = (Sampler::per_iteration(), Sampler::per_iteration());
    let mut pair = async |n: usize, sa: &mut Sampler, sb: &mut Sampler| {
        let (ia, ib) = black_box(setup());
        let (ta, tb, outputs);
        if n.is_multiple_of(2) {
            let began = Instant::now();
            let oa = black_box(a(ia).await);
            ta = began.elapsed();
            let began = Instant::now();
            let ob = black_box(b(ib).await);
            tb = began.elapsed();
            outputs = (oa, ob);
        } else {
            let began = Instant::now();
            let ob = black_box(b(ib).await);
            tb = began.elapsed();
            let began = Instant::now();
            let oa = black_box(a(ia).await);
            ta = began.elapsed();
            outputs = (oa, ob);
        }
        drop(outputs);
        sa.push(ta);
        sb.push(tb);
    };
    let (mut warm_a, mut warm_b) = (Sampler::per_iteration(), Sampler::per_iteration());
    for n in 0..MIN_SAMPLES {
        pair(n, &mut warm_a, &mut warm_b).await;
    }
    let start = Instant::now();
    let mut n = 0;
    while n < MIN_SAMPLES || (n < budget.max_samples && start.elapsed() < budget.measure) {
        pair(n, &mut sa, &mut sb).await;
        n += 1;
    }
    (sa.stats(), sb.stats())
}

/// Samples `op` alone after warming it up.
pub async fn measure<O>(budget: &Budget, op: &mut impl AsyncFnMut() -> O) -> Stats {
    let mut sampler = Sampler::calibrated(op, budget.warmup).await;
    let (round, max_samples) = budget.round();
    for _ in 0..budget.rounds.max(1) {
        sampler.run(op, round, max_samples).await;
    }
    sampler.stats()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 50.5);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[1.0, 2.0, 9.0], 0.5), 2.0);
    }

    #[test]
    fn fast_operations_are_batched() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds");
        let stats = runtime.block_on(async {
            let mut op = async || black_box(1u64) + 1;
            let budget = Budget {
                warmup: Duration::from_millis(5),
                measure: Duration::from_millis(10),
                max_samples: 1000,
                rounds: 2,
            };
            measure(&budget, &mut op).await
        });
        assert!(stats.batch > 1, "{stats:?}");
        assert!(stats.samples >= MIN_SAMPLES);
        assert!(stats.median_ns < PER_ITERATION_ABOVE.as_nanos() as f64);
    }
}
