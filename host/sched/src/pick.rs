//! Picking an engine for a task, one way per [`Scheme`].
//!
//! Two paths, because tasks come in two kinds:
//!
//! - An untargeted task may run on any engine, so the choice is among every
//!   engine below the high-water mark. [`Available`] keeps those engines in
//!   the one structure the scheme needs, so that a decision costs
//!   `O(log engines)` or less, never a scan: an ordered set by load for
//!   `leastload`, by last use for `lru`, an indexable set for the uniform
//!   draws of `plainrandom` and `twobin`, and load buckets for `weighted`.
//! - A targeted task names its engines (usually one, as `rc[3].apply` does),
//!   so [`pick_among`] applies the same rule to that short list directly.
//!
//! Both paths make the same choice the scheme describes; ties break towards
//! the least recently used engine, then the lowest id, as in ipyparallel,
//! whose load list is kept in LRU order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use wasp_proto::EngineId;

use crate::config::Scheme;
use crate::rng::Rng;

/// What the schemes look at in an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    /// Tasks dispatched to the engine and not yet finished.
    pub(crate) outstanding: u32,
    /// The sequence number of the engine's latest dispatch; 0 if it never
    /// had one, so that fresh engines count as the least recently used.
    pub(crate) last_used: u64,
}

impl Load {
    /// `lru` order: oldest dispatch first, never-used engines in id (that is,
    /// join) order.
    fn lru_key(self, engine: EngineId) -> (u64, EngineId) {
        (self.last_used, engine)
    }

    /// `leastload` order: fewest outstanding first, then `lru` order.
    fn least_load_key(self, engine: EngineId) -> (u32, u64, EngineId) {
        (self.outstanding, self.last_used, engine)
    }

    /// `weighted`'s weight: an idle engine weighs 10^6, one with a task 1,
    /// one with two tasks 0.5 (ipyparallel's `1.0 / (1e-6 + loads)`).
    fn weight(self) -> f64 {
        1.0 / (1e-6 + f64::from(self.outstanding))
    }
}

/// A set of engines that can be drawn from by position: `O(1)` insert,
/// remove and uniform draw. Removal moves the last element into the hole,
/// which reorders the set; uniform draws do not care.
#[derive(Debug, Default)]
struct IndexSet {
    items: Vec<EngineId>,
    positions: HashMap<EngineId, usize>,
}

impl IndexSet {
    fn insert(&mut self, engine: EngineId) {
        if self.positions.contains_key(&engine) {
            return;
        }
        self.positions.insert(engine, self.items.len());
        self.items.push(engine);
    }

    fn remove(&mut self, engine: EngineId) {
        let Some(position) = self.positions.remove(&engine) else {
            return;
        };
        self.items.swap_remove(position);
        if let Some(&moved) = self.items.get(position) {
            self.positions.insert(moved, position);
        }
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn draw(&self, rng: &mut Rng) -> Option<EngineId> {
        if self.items.is_empty() {
            return None;
        }
        Some(self.items[rng.below(self.items.len())])
    }
}

/// The scheme's index over the engines that can take one more task now.
#[derive(Debug)]
enum Index {
    LeastLoad(BTreeSet<(u32, u64, EngineId)>),
    Lru(BTreeSet<(u64, EngineId)>),
    /// `plainrandom` and `twobin`: both draw uniformly.
    Uniform(IndexSet),
    /// `weighted`: engines bucketed by outstanding count. Loads are small
    /// integers, so there are few buckets, and every engine in a bucket has
    /// the same weight: a draw picks a bucket by `len × weight`, then a
    /// position within it. Empty buckets are removed so the walk stays short.
    Weighted(BTreeMap<u32, IndexSet>),
}

/// The engines below the high-water mark, indexed for the scheme.
///
/// The caller removes an engine with its old [`Load`] before changing it and
/// inserts it again with the new one, as long as it stays below the mark.
#[derive(Debug)]
pub(crate) struct Available {
    scheme: Scheme,
    index: Index,
    len: usize,
}

impl Available {
    pub(crate) fn new(scheme: Scheme) -> Self {
        let index = match scheme {
            Scheme::LeastLoad => Index::LeastLoad(BTreeSet::new()),
            Scheme::Lru => Index::Lru(BTreeSet::new()),
            Scheme::PlainRandom | Scheme::TwoBin => Index::Uniform(IndexSet::default()),
            Scheme::Weighted => Index::Weighted(BTreeMap::new()),
        };
        Self {
            scheme,
            index,
            len: 0,
        }
    }

    /// How many engines can take a task now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `engine`, which must not be in the set.
    pub(crate) fn insert(&mut self, engine: EngineId, load: Load) {
        match &mut self.index {
            Index::LeastLoad(set) => {
                set.insert(load.least_load_key(engine));
            }
            Index::Lru(set) => {
                set.insert(load.lru_key(engine));
            }
            Index::Uniform(set) => set.insert(engine),
            Index::Weighted(buckets) => buckets.entry(load.outstanding).or_default().insert(engine),
        }
        self.len += 1;
    }

    /// Removes `engine`, which must be in the set with this `load`.
    pub(crate) fn remove(&mut self, engine: EngineId, load: Load) {
        let removed = match &mut self.index {
            Index::LeastLoad(set) => set.remove(&load.least_load_key(engine)),
            Index::Lru(set) => set.remove(&load.lru_key(engine)),
            Index::Uniform(set) => {
                let before = set.len();
                set.remove(engine);
                set.len() < before
            }
            Index::Weighted(buckets) => match buckets.get_mut(&load.outstanding) {
                Some(bucket) => {
                    let before = bucket.len();
                    bucket.remove(engine);
                    let removed = bucket.len() < before;
                    if bucket.len() == 0 {
                        buckets.remove(&load.outstanding);
                    }
                    removed
                }
                None => false,
            },
        };
        debug_assert!(removed, "engine {engine} was not available with {load:?}");
        if removed {
            self.len -= 1;
        }
    }

    /// The scheme's choice among all available engines; `load_of` reports
    /// the load of an engine in the set (`twobin` compares two draws by it).
    pub(crate) fn pick(
        &self,
        rng: &mut Rng,
        load_of: impl Fn(EngineId) -> Load,
    ) -> Option<EngineId> {
        match &self.index {
            Index::LeastLoad(set) => set.first().map(|&(_, _, engine)| engine),
            Index::Lru(set) => set.first().map(|&(_, engine)| engine),
            Index::Uniform(set) => {
                let first = set.draw(rng)?;
                if self.scheme != Scheme::TwoBin {
                    return Some(first);
                }
                let second = set.draw(rng)?;
                Some(less_recently_used(
                    (first, load_of(first)),
                    (second, load_of(second)),
                ))
            }
            Index::Weighted(buckets) => {
                let first = draw_weighted(buckets, rng)?;
                let second = draw_weighted(buckets, rng)?;
                Some(less_loaded(first, second))
            }
        }
    }
}

/// One `weighted` draw over the buckets: returns the engine and its load.
fn draw_weighted(buckets: &BTreeMap<u32, IndexSet>, rng: &mut Rng) -> Option<(EngineId, u32)> {
    let total: f64 = buckets
        .iter()
        .map(|(&outstanding, bucket)| bucket_weight(outstanding) * bucket.len() as f64)
        .sum();
    let mut x = rng.unit() * total;
    let mut last = None;
    for (&outstanding, bucket) in buckets {
        let weight = bucket_weight(outstanding);
        let span = weight * bucket.len() as f64;
        if x < span {
            // x is uniform within the bucket's span, so its position in the
            // span picks the engine without a second draw; `min` guards the
            // rounding at the span's end.
            let position = ((x / weight) as usize).min(bucket.len() - 1);
            return Some((bucket.items[position], outstanding));
        }
        x -= span;
        last = bucket.items.last().map(|&engine| (engine, outstanding));
    }
    // Rounding left x just past the last span.
    last
}

fn bucket_weight(outstanding: u32) -> f64 {
    Load {
        outstanding,
        last_used: 0,
    }
    .weight()
}

/// `weighted`'s final step: the less loaded draw, the first on a tie
/// (ipyparallel returns `idy` only if its weight is strictly greater).
fn less_loaded(first: (EngineId, u32), second: (EngineId, u32)) -> EngineId {
    if second.1 < first.1 {
        second.0
    } else {
        first.0
    }
}

/// `twobin`'s final step: the less recently used of two draws.
fn less_recently_used(first: (EngineId, Load), second: (EngineId, Load)) -> EngineId {
    if second.1.lru_key(second.0) < first.1.lru_key(first.0) {
        second.0
    } else {
        first.0
    }
}

/// The scheme's choice among `candidates`, a targeted task's eligible
/// engines. A linear pass: target lists are short, and the rule must be the
/// same one [`Available::pick`] applies to all engines.
pub(crate) fn pick_among(
    scheme: Scheme,
    rng: &mut Rng,
    candidates: &[(EngineId, Load)],
) -> Option<EngineId> {
    if candidates.is_empty() {
        return None;
    }
    match scheme {
        Scheme::LeastLoad => candidates
            .iter()
            .min_by_key(|(engine, load)| load.least_load_key(*engine))
            .map(|&(engine, _)| engine),
        Scheme::Lru => candidates
            .iter()
            .min_by_key(|(engine, load)| load.lru_key(*engine))
            .map(|&(engine, _)| engine),
        Scheme::PlainRandom => Some(candidates[rng.below(candidates.len())].0),
        Scheme::TwoBin => {
            let first = candidates[rng.below(candidates.len())];
            let second = candidates[rng.below(candidates.len())];
            Some(less_recently_used(first, second))
        }
        Scheme::Weighted => {
            let total: f64 = candidates.iter().map(|(_, load)| load.weight()).sum();
            let mut draw = || {
                let mut x = rng.unit() * total;
                for &(engine, load) in candidates {
                    x -= load.weight();
                    if x < 0.0 {
                        return (engine, load.outstanding);
                    }
                }
                let (engine, load) = candidates[candidates.len() - 1];
                (engine, load.outstanding)
            };
            let first = draw();
            let second = draw();
            Some(less_loaded(first, second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(outstanding: u32, last_used: u64) -> Load {
        Load {
            outstanding,
            last_used,
        }
    }

    fn filled(scheme: Scheme, engines: &[(u32, Load)]) -> Available {
        let mut available = Available::new(scheme);
        for &(id, load) in engines {
            available.insert(EngineId(id), load);
        }
        available
    }

    #[test]
    fn leastload_prefers_load_then_lru_then_id() {
        let engines = [
            (0, load(1, 5)),
            (1, load(0, 9)),
            (2, load(0, 3)),
            (3, load(0, 3)),
        ];
        let available = filled(Scheme::LeastLoad, &engines);
        let mut rng = Rng::new(0);
        // 2 and 3 tie on load and last use; the lower id wins.
        assert_eq!(
            available.pick(&mut rng, |_| unreachable!()),
            Some(EngineId(2))
        );
        let candidates: Vec<_> = engines.iter().map(|&(id, l)| (EngineId(id), l)).collect();
        assert_eq!(
            pick_among(Scheme::LeastLoad, &mut rng, &candidates),
            Some(EngineId(2))
        );
    }

    #[test]
    fn removal_keeps_the_index_consistent() {
        for scheme in Scheme::ALL {
            let mut available =
                filled(scheme, &[(0, load(0, 0)), (1, load(1, 2)), (2, load(0, 1))]);
            available.remove(EngineId(0), load(0, 0));
            available.remove(EngineId(2), load(0, 1));
            assert_eq!(available.len(), 1, "{scheme}");
            let mut rng = Rng::new(3);
            for _ in 0..20 {
                let picked = available.pick(&mut rng, |_| load(1, 2));
                assert_eq!(picked, Some(EngineId(1)), "{scheme}");
            }
            available.remove(EngineId(1), load(1, 2));
            assert!(available.is_empty());
            assert_eq!(available.pick(&mut rng, |_| load(0, 0)), None, "{scheme}");
        }
    }

    #[test]
    fn weighted_all_but_ignores_busy_engines_next_to_idle_ones() {
        // Idle engines weigh 10^6 times one with a task: in 10,000 picks the
        // busy engine should essentially never win.
        let engines = [(0, load(1, 0)), (1, load(0, 0)), (2, load(0, 0))];
        let available = filled(Scheme::Weighted, &engines);
        let candidates: Vec<_> = engines.iter().map(|&(id, l)| (EngineId(id), l)).collect();
        let mut rng = Rng::new(11);
        let mut counts = [0; 3];
        for _ in 0..10_000 {
            let bucketed = available
                .pick(&mut rng, |_| unreachable!())
                .expect("engines");
            counts[bucketed.0 as usize] += 1;
            let listed = pick_among(Scheme::Weighted, &mut rng, &candidates).expect("engines");
            counts[listed.0 as usize] += 1;
        }
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1] > 9_000 && counts[2] > 9_000, "{counts:?}");
    }

    #[test]
    fn twobin_takes_the_less_recently_used_draw() {
        // With two engines, a pair of draws contains the older one 3/4 of
        // the time; plainrandom picks it 1/2 of the time.
        let engines = [(0, load(0, 10)), (1, load(0, 20))];
        let loads: HashMap<_, _> = engines.iter().map(|&(id, l)| (EngineId(id), l)).collect();
        let candidates: Vec<_> = engines.iter().map(|&(id, l)| (EngineId(id), l)).collect();
        let mut rng = Rng::new(5);
        for scheme in [Scheme::TwoBin, Scheme::PlainRandom] {
            let available = filled(scheme, &engines);
            let mut older: i32 = 0;
            for _ in 0..10_000 {
                if available.pick(&mut rng, |e| loads[&e]) == Some(EngineId(0)) {
                    older += 1;
                }
                if pick_among(scheme, &mut rng, &candidates) == Some(EngineId(0)) {
                    older += 1;
                }
            }
            let expected = if scheme == Scheme::TwoBin {
                15_000
            } else {
                10_000
            };
            assert!((older - expected).abs() < 500, "{scheme}: {older}");
        }
    }
}
