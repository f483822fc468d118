//! Fair share between tenants: whose untargeted task goes next.
//!
//! Weighted fair queuing on *virtual time* (start-time fair queuing, as
//! stride scheduling runs it): every tenant has a virtual time, the engine
//! time its tasks used divided by its weight, and the next untargeted task
//! comes from the tenant with work waiting whose virtual time is least.
//! Between tenants with backlogs, engine time is then shared by weight;
//! a tenant with nothing waiting takes no part, so its share goes to the
//! others (work conservation). Within a tenant, tasks keep their order:
//! each tenant has a FIFO of its untargeted tasks.
//!
//! # Charging measured run time
//!
//! A task's cost is known only when it finishes (the engine measures it,
//! [`Scheduler::handle_finished_after`](crate::Scheduler::handle_finished_after)).
//! Charging only then would let every decision of one instant go to the
//! same tenant, since none of them moves its virtual time. So a dispatch
//! charges an *estimate* at once (the tenant's recent mean run time; before
//! it has one, the mean over all tenants; before anything was measured,
//! [`DEFAULT_CHARGE`]), and the finish corrects it to the measured time.
//!
//! A correction that raises the charge moves the virtual time at once. One
//! that lowers it is kept as *credit*, taken off the tenant's next charges
//! instead, so that virtual times never go down. That keeps the ordering
//! of the other tenants stable: a newcomer placed beside a tenant is never
//! overtaken again by a refund that tenant had coming (the guarantee that a
//! big backlog delays another tenant's first task by at most one task per
//! engine rests on it). Over time every task is charged exactly its
//! measured run time.
//!
//! # Arrivals
//!
//! A tenant whose FIFO was empty and gets a task is brought up to the
//! current virtual time: the least virtual time among tenants with work
//! waiting, or, when none has any, that of the latest pick. An idle period
//! earns it no credit: a tenant that was away cannot hoard a share and
//! starve the others when it returns, and a late arrival competes at once
//! on equal terms. Ties go to the tenant picked least recently, so a
//! newcomer goes before the tenant it was placed beside: its first task
//! goes out at the first room an engine has, however long the others'
//! backlogs.
//!
//! A tenant that still has tasks running keeps any lead it has over the
//! current virtual time (their charges). One with nothing queued or
//! running starts exactly at the current virtual time, its lead forgiven:
//! that lead was at most the last tasks it ran, which overlapped the
//! others' use, and with nothing in flight it holds no engine now. This is
//! what makes "first task at the first room" hold for a returning tenant
//! too, not only a new one.
//!
//! # Targeted tasks
//!
//! Tasks that name engines wait in those engines' lanes, oldest first
//! across tenants, as they always did ([`crate::Scheduler`]'s module
//! documentation): the fair share chooses among untargeted tasks only. A
//! targeted task is still charged to its tenant, so a tenant that targets
//! engines gets that much less of the untargeted share.
//!
//! # Cost and bounds
//!
//! Choosing a tenant is the first entry of an ordered set of the tenants
//! with work waiting: `O(log tenants)` per decision, no scan. A tenant's
//! record lives while it has tasks queued or running, or while its weight
//! is set ([`crate::Scheduler::handle_tenant`]); a tenant only ever
//! submitted under the default weight is forgotten when it has nothing
//! left, with whatever small lead it had.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::ops::Bound::{Excluded, Unbounded};
use std::time::Duration;

use crate::hash::IdMap;
use crate::scheduler::Entry;

/// A tenant, as the scheduler knows it: a small number its owner maps
/// tenant names to (the controller interns them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantKey(pub u32);

impl fmt::Display for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The weight of a tenant whose weight was never set.
pub const DEFAULT_WEIGHT: u32 = 1;

/// What a dispatch charges before anything was measured: tasks that never
/// report a run time are thus shared by count.
pub const DEFAULT_CHARGE: Duration = Duration::from_millis(1);

/// The least a task is charged, whatever its measured run time: receiving a
/// task and instantiating its sandbox costs an engine tens of microseconds
/// that the engine's measure leaves out, and a tenant of empty tasks must
/// not get every decision for free.
pub const MIN_CHARGE: Duration = Duration::from_micros(10);

/// Virtual time units per nanosecond at weight 1: keeps nanosecond
/// precision for weights up to 1024.
const SCALE: u128 = 1024;

/// A tenant's figures, for `wasp cluster status`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantStats {
    /// The tenant.
    pub key: TenantKey,
    /// Its weight.
    pub weight: u32,
    /// Its tasks waiting for an engine.
    pub queued: usize,
    /// Its tasks dispatched and not finished.
    pub running: usize,
    /// The engine time its finished tasks ran, as the engines measured it
    /// (the estimate charged, for finishes that carried no time).
    pub usage: Duration,
}

/// What one dispatch charged, kept with the running task so that its finish
/// can correct exactly that.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Charge {
    /// The estimate, in nanoseconds.
    ns: u64,
    /// The estimate in virtual time units, at the weight of the dispatch.
    units: u64,
}

#[derive(Debug, Default)]
struct Tenant {
    key: TenantKey,
    weight: u32,
    /// Whether its weight was set: then it is kept while idle.
    explicit: bool,
    /// Engine time used divided by weight, in units; never decreases.
    vt: u128,
    /// Refunds not yet taken off a charge.
    credit: u128,
    /// Its untargeted tasks in submission order (entries may be stale).
    queue: VecDeque<Entry>,
    /// The live entries of `queue`: it is in `ready` exactly when this is
    /// not zero.
    waiting: usize,
    /// Its queued tasks, targeted ones included.
    queued: usize,
    running: usize,
    /// Most tasks it may have running at once (its quota); at it, the
    /// tenant is out of `ready` and its tasks wait.
    max_running: Option<usize>,
    usage: Duration,
    /// Its recent mean run time.
    estimate: Option<Duration>,
    /// The `(vt, last_pick)` it is in `ready` under.
    ready_key: Option<(u128, u64)>,
    /// The pick number of its latest fair pick; 0 for never.
    last_pick: u64,
}

/// Every tenant's virtual time, and the order of those with work waiting.
#[derive(Debug, Default)]
pub(crate) struct Tenants {
    index: IdMap<TenantKey, u32>,
    slots: Vec<Tenant>,
    free: Vec<u32>,
    /// Tenants with untargeted work waiting, by `(vt, last_pick, slot)`.
    ready: BTreeSet<(u128, u64, u32)>,
    /// The virtual time of the latest pick.
    vnow: u128,
    picks: u64,
    /// The recent mean run time over all tenants: a new tenant's estimate.
    estimate: Option<Duration>,
}

impl Tenants {
    /// The slot of `key`, created with the default weight if it has none.
    pub(crate) fn slot(&mut self, key: TenantKey) -> u32 {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        let tenant = Tenant {
            key,
            weight: DEFAULT_WEIGHT,
            ..Tenant::default()
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = tenant;
                slot
            }
            None => {
                // Tenants are fewer than tasks, and tasks are capped at
                // `u32::MAX` slots too.
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(tenant);
                slot
            }
        };
        self.index.insert(key, slot);
        slot
    }

    /// Sets `key`'s weight (not 0) and keeps its record while idle.
    pub(crate) fn set_weight(&mut self, key: TenantKey, weight: u32) {
        let slot = self.slot(key);
        let tenant = &mut self.slots[slot as usize];
        tenant.weight = weight.max(1);
        tenant.explicit = true;
    }

    /// Puts `key` back to the default weight and no running cap; forgets
    /// it if it is idle.
    pub(crate) fn unset_weight(&mut self, key: TenantKey) {
        let Some(&slot) = self.index.get(&key) else {
            return;
        };
        let tenant = &mut self.slots[slot as usize];
        tenant.weight = DEFAULT_WEIGHT;
        tenant.max_running = None;
        tenant.explicit = false;
        self.recheck_cap(slot);
        self.forget_if_idle(slot);
    }

    /// Caps how many of `key`'s tasks run at once (`None`: no cap), and
    /// keeps its record while idle. Tasks past the cap wait their turn;
    /// targeted tasks are not held (they wait in their engines' lanes,
    /// among other tenants'), but count.
    pub(crate) fn set_max_running(&mut self, key: TenantKey, max_running: Option<usize>) {
        let slot = self.slot(key);
        let tenant = &mut self.slots[slot as usize];
        tenant.max_running = max_running;
        tenant.explicit = true;
        self.recheck_cap(slot);
    }

    /// Whether any tenant has an untargeted task waiting.
    pub(crate) fn any_waiting(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Queues an untargeted task of tenant `slot`: at the back, or at the
    /// front for a task handed back (it is older than any waiting).
    pub(crate) fn push(&mut self, slot: u32, entry: Entry, front: bool) {
        let tenant = &mut self.slots[slot as usize];
        if front {
            tenant.queue.push_front(entry);
        } else {
            tenant.queue.push_back(entry);
        }
        tenant.queued += 1;
        tenant.waiting += 1;
        if tenant.waiting == 1 && !tenant.at_cap() {
            let idle = tenant.queued == 1 && tenant.running == 0;
            self.activate(slot, idle);
        }
    }

    /// Counts a targeted task of tenant `slot` as queued.
    pub(crate) fn push_targeted(&mut self, slot: u32) {
        self.slots[slot as usize].queued += 1;
    }

    /// The fair share's choice: the tenant with work waiting whose virtual
    /// time is least, and the head of its FIFO (stale entries, those `live`
    /// refuses, are dropped on the way).
    pub(crate) fn head(&mut self, live: impl Fn(Entry) -> bool) -> Option<(u32, Entry)> {
        self.head_where(usize::MAX, live, |_| true)
    }

    /// As [`head`](Self::head), but the first tenant in the fair order,
    /// among the first `max`, that `accept` takes: for a room only some
    /// tenants can use (a time slice beside another tenant's task), which
    /// goes to the others rather than to nobody.
    pub(crate) fn head_where(
        &mut self,
        max: usize,
        live: impl Fn(Entry) -> bool,
        mut accept: impl FnMut(u32) -> bool,
    ) -> Option<(u32, Entry)> {
        let mut after = None;
        let mut seen = 0;
        while seen < max {
            let key = match after {
                None => self.ready.first(),
                Some(key) => self.ready.range((Excluded(key), Unbounded)).next(),
            };
            let &key @ (_, _, slot) = key?;
            let tenant = &mut self.slots[slot as usize];
            while let Some(&entry) = tenant.queue.front() {
                if live(entry) {
                    break;
                }
                tenant.queue.pop_front();
            }
            let Some(&entry) = tenant.queue.front() else {
                debug_assert!(false, "tenant {} is ready with no live task", tenant.key);
                tenant.waiting = 0;
                self.deactivate(slot);
                continue;
            };
            if accept(slot) {
                return Some((slot, entry));
            }
            after = Some(key);
            seen += 1;
        }
        None
    }

    /// A task of tenant `slot` was dispatched; an untargeted one is the
    /// head [`head`](Self::head) returned. Charges the tenant's estimate and
    /// returns the charge, for [`finished`](Self::finished).
    pub(crate) fn dispatched(&mut self, slot: u32, targeted: bool) -> Charge {
        let global = self.estimate;
        let tenant = &mut self.slots[slot as usize];
        let ns = tenant
            .estimate
            .or(global)
            .unwrap_or(DEFAULT_CHARGE)
            .max(MIN_CHARGE);
        let ns = u64::try_from(ns.as_nanos()).unwrap_or(u64::MAX);
        let units = units(ns, tenant.weight);
        // Credit pays for part of it, never all: every task moves the
        // virtual time by at least the least charge.
        let floor = units_u128(MIN_CHARGE_NS, tenant.weight);
        let paid = tenant.credit.min(u128::from(units).saturating_sub(floor));
        tenant.credit -= paid;
        if !targeted {
            self.vnow = self.vnow.max(tenant.vt);
            self.picks += 1;
            tenant.last_pick = self.picks;
            tenant.queue.pop_front();
            tenant.waiting = tenant.waiting.saturating_sub(1);
        }
        tenant.vt += u128::from(units) - paid;
        tenant.queued = tenant.queued.saturating_sub(1);
        tenant.running += 1;
        let tenant = &self.slots[slot as usize];
        if tenant.waiting == 0 {
            self.deactivate(slot);
        } else if tenant.at_cap() {
            self.park(slot);
        } else if tenant.ready_key.is_some() {
            self.rekey(slot);
        }
        Charge { ns, units }
    }

    /// A task of tenant `slot` finished after `run_time` (if measured):
    /// the charge is corrected to it, and the estimates learn from it.
    pub(crate) fn finished(&mut self, slot: u32, charge: Charge, run_time: Option<Duration>) {
        if let Some(run_time) = run_time {
            self.estimate = Some(mean(self.estimate, run_time));
        }
        let tenant = &mut self.slots[slot as usize];
        tenant.running = tenant.running.saturating_sub(1);
        let used = match run_time {
            Some(run_time) => {
                tenant.estimate = Some(mean(tenant.estimate, run_time));
                tenant.usage = tenant.usage.saturating_add(run_time);
                let ns = run_time.max(MIN_CHARGE).as_nanos();
                units_u128(u64::try_from(ns).unwrap_or(u64::MAX), tenant.weight)
            }
            None => {
                tenant.usage = tenant.usage.saturating_add(Duration::from_nanos(charge.ns));
                u128::from(charge.units)
            }
        };
        let charged = u128::from(charge.units);
        if used >= charged {
            tenant.vt += used - charged;
            if tenant.ready_key.is_some() {
                self.rekey(slot);
            }
        } else {
            tenant.credit += charged - used;
        }
        self.recheck_cap(slot);
        self.forget_if_idle(slot);
    }

    /// A task of tenant `slot` was handed back unstarted: its whole charge
    /// is credited. The caller queues it again with [`push`](Self::push).
    pub(crate) fn returned(&mut self, slot: u32, charge: Charge) {
        let tenant = &mut self.slots[slot as usize];
        tenant.running = tenant.running.saturating_sub(1);
        tenant.credit += u128::from(charge.units);
        self.recheck_cap(slot);
    }

    /// A running task of tenant `slot` was lost with its engine: it held
    /// the engine until then, for all the scheduler knows, so the estimate
    /// stays charged.
    pub(crate) fn lost(&mut self, slot: u32, charge: Charge) {
        let tenant = &mut self.slots[slot as usize];
        tenant.running = tenant.running.saturating_sub(1);
        tenant.usage = tenant.usage.saturating_add(Duration::from_nanos(charge.ns));
        self.recheck_cap(slot);
        self.forget_if_idle(slot);
    }

    /// A queued task of tenant `slot` left the queue without running
    /// (cancelled, or failed because its targets left).
    pub(crate) fn dequeued(&mut self, slot: u32, targeted: bool) {
        let tenant = &mut self.slots[slot as usize];
        tenant.queued = tenant.queued.saturating_sub(1);
        if !targeted {
            // Its entry goes stale; the last one empties the FIFO.
            tenant.waiting = tenant.waiting.saturating_sub(1);
            if tenant.waiting == 0 {
                self.deactivate(slot);
            }
        }
        self.forget_if_idle(slot);
    }

    /// The figures of `key`, if the scheduler has a record of it.
    pub(crate) fn stats_of(&self, key: TenantKey) -> Option<TenantStats> {
        let &slot = self.index.get(&key)?;
        Some(self.slots[slot as usize].stats())
    }

    /// Every tenant's figures, by key.
    pub(crate) fn stats(&self) -> Vec<TenantStats> {
        let mut all: Vec<TenantStats> = self
            .index
            .values()
            .map(|&slot| self.slots[slot as usize].stats())
            .collect();
        all.sort_unstable_by_key(|stats| stats.key);
        all
    }

    /// Brings tenant `slot`, whose FIFO just got its first live task, up to
    /// the current virtual time (down to it too, if it was `idle`) and puts
    /// it in `ready`.
    fn activate(&mut self, slot: u32, idle: bool) {
        let now = self.ready.first().map_or(self.vnow, |&(vt, _, _)| vt);
        let tenant = &mut self.slots[slot as usize];
        // Its position counts its credit: raise that to `now`, no lower.
        let position = tenant.vt.saturating_sub(tenant.credit);
        if idle {
            tenant.vt = now;
            tenant.credit = 0;
        } else if position < now {
            if tenant.vt < now {
                tenant.vt = now;
                tenant.credit = 0;
            } else {
                tenant.credit = tenant.vt - now;
            }
        }
        self.rekey(slot);
    }

    /// Takes tenant `slot`, which has no live task waiting, out of `ready`
    /// and drops its stale entries.
    fn deactivate(&mut self, slot: u32) {
        let tenant = &mut self.slots[slot as usize];
        if let Some((vt, pick)) = tenant.ready_key.take() {
            self.ready.remove(&(vt, pick, slot));
        }
        tenant.queue.clear();
        // A burst's buffer is returned rather than held for the next one.
        if tenant.queue.capacity() > 1024 {
            tenant.queue.shrink_to_fit();
        }
    }

    /// Takes tenant `slot`, at its running cap, out of `ready`; its tasks
    /// stay queued.
    fn park(&mut self, slot: u32) {
        let tenant = &mut self.slots[slot as usize];
        if let Some((vt, pick)) = tenant.ready_key.take() {
            self.ready.remove(&(vt, pick, slot));
        }
    }

    /// Puts tenant `slot` in or out of `ready` after its running count or
    /// cap changed: in when it has work waiting below its cap (brought up
    /// to the current virtual time, as an arrival: the time it was held
    /// earns it no credit), out at its cap.
    fn recheck_cap(&mut self, slot: u32) {
        let tenant = &self.slots[slot as usize];
        if tenant.waiting == 0 {
            return;
        }
        match (tenant.at_cap(), tenant.ready_key.is_some()) {
            (true, true) => self.park(slot),
            (false, false) => self.activate(slot, false),
            _ => {}
        }
    }

    /// Puts tenant `slot` in `ready` under its current key.
    fn rekey(&mut self, slot: u32) {
        let tenant = &mut self.slots[slot as usize];
        let key = (tenant.vt, tenant.last_pick);
        let old = tenant.ready_key.replace(key);
        if old == Some(key) {
            return;
        }
        // Insert before removing: a set of one tenant keeps its node
        // instead of freeing and allocating it on every decision.
        self.ready.insert((key.0, key.1, slot));
        if let Some((vt, pick)) = old {
            self.ready.remove(&(vt, pick, slot));
        }
    }

    fn forget_if_idle(&mut self, slot: u32) {
        let tenant = &self.slots[slot as usize];
        if tenant.explicit || tenant.queued > 0 || tenant.running > 0 {
            return;
        }
        debug_assert!(tenant.ready_key.is_none(), "an idle tenant is ready");
        self.index.remove(&tenant.key);
        self.slots[slot as usize] = Tenant::default();
        self.free.push(slot);
    }
}

impl Tenant {
    /// Whether it runs as many tasks as its cap allows.
    fn at_cap(&self) -> bool {
        self.max_running.is_some_and(|cap| self.running >= cap)
    }

    fn stats(&self) -> TenantStats {
        TenantStats {
            key: self.key,
            weight: self.weight,
            queued: self.queued,
            running: self.running,
            usage: self.usage,
        }
    }
}

const MIN_CHARGE_NS: u64 = MIN_CHARGE.as_nanos() as u64;

fn units_u128(ns: u64, weight: u32) -> u128 {
    u128::from(ns) * SCALE / u128::from(weight.max(1))
}

/// `ns` at `weight` in virtual time units, saturating (at weight 1 a task
/// would have to run for 208 days).
fn units(ns: u64, weight: u32) -> u64 {
    u64::try_from(units_u128(ns, weight)).unwrap_or(u64::MAX)
}

/// The next mean run time: an exponentially weighted mean over about the
/// last eight tasks, quick enough to follow a tenant that changes the tasks
/// it runs, steady enough that one odd task does not swing its charges
/// (and every charge is corrected at the finish anyway).
fn mean(estimate: Option<Duration>, sample: Duration) -> Duration {
    match estimate {
        Some(estimate) if sample >= estimate => estimate + (sample - estimate) / 8,
        Some(estimate) => estimate - (estimate - sample) / 8,
        None => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            slot: seq as u32,
        }
    }

    /// Picks and dispatches the fair head; returns its tenant key.
    fn pick(tenants: &mut Tenants) -> (TenantKey, Charge) {
        let (slot, _) = tenants.head(|_| true).expect("work waiting");
        let key = tenants.slots[slot as usize].key;
        (key, tenants.dispatched(slot, false))
    }

    #[test]
    fn weights_share_the_picks_of_equal_tasks() {
        let mut tenants = Tenants::default();
        tenants.set_weight(TenantKey(2), 2);
        for key in 0..3 {
            let slot = tenants.slot(TenantKey(key));
            for i in 0..1_000 {
                tenants.push(slot, entry(u64::from(key) * 1_000 + i), false);
            }
        }
        let mut counts = [0u32; 3];
        for _ in 0..400 {
            let (key, charge) = pick(&mut tenants);
            counts[key.0 as usize] += 1;
            let slot = tenants.slot(key);
            tenants.finished(slot, charge, None);
        }
        assert_eq!(counts, [100, 100, 200]);
    }

    #[test]
    fn virtual_time_never_goes_down_and_refunds_come_back_as_credit() {
        let mut tenants = Tenants::default();
        let slot = tenants.slot(TenantKey(0));
        for i in 0..10 {
            tenants.push(slot, entry(i), false);
        }
        let first = tenants.dispatched(slot, false);
        tenants.finished(slot, first, Some(Duration::from_millis(10)));
        let before = tenants.slots[slot as usize].vt;
        // Estimated 10 ms, ran 1 ms: no step back, 9 ms of credit.
        let charge = tenants.dispatched(slot, false);
        let charged = tenants.slots[slot as usize].vt;
        assert!(charged > before);
        tenants.finished(slot, charge, Some(Duration::from_millis(1)));
        assert_eq!(tenants.slots[slot as usize].vt, charged);
        assert!(tenants.slots[slot as usize].credit > 0);
        // The next dispatch is paid partly from it.
        tenants.dispatched(slot, false);
        let after = tenants.slots[slot as usize].vt;
        assert!(after > charged && after - charged < u128::from(charge.units));
    }

    #[test]
    fn an_arrival_is_brought_up_to_the_current_virtual_time_and_wins_the_tie() {
        let mut tenants = Tenants::default();
        let busy = tenants.slot(TenantKey(0));
        for i in 0..100 {
            tenants.push(busy, entry(i), false);
        }
        for _ in 0..50 {
            pick(&mut tenants);
        }
        let late = tenants.slot(TenantKey(1));
        tenants.push(late, entry(1_000), false);
        assert_eq!(
            tenants.slots[late as usize].vt,
            tenants.slots[busy as usize].vt
        );
        assert_eq!(pick(&mut tenants).0, TenantKey(1));
        assert_eq!(pick(&mut tenants).0, TenantKey(0));
    }

    #[test]
    fn idle_tenants_of_the_default_weight_are_forgotten() {
        let mut tenants = Tenants::default();
        tenants.set_weight(TenantKey(7), 3);
        let slot = tenants.slot(TenantKey(1));
        tenants.push(slot, entry(1), false);
        let (_, charge) = pick(&mut tenants);
        assert!(tenants.stats_of(TenantKey(1)).is_some());
        tenants.finished(slot, charge, None);
        assert_eq!(tenants.stats_of(TenantKey(1)), None);
        let kept = tenants.stats_of(TenantKey(7)).expect("weight set");
        assert_eq!(kept.weight, 3);
        tenants.unset_weight(TenantKey(7));
        assert_eq!(tenants.stats(), []);
    }
}
