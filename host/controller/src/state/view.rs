//! What the dashboard shows (issue 16), kept as it happens: each engine's
//! tasks in hand and its totals, the recent task runs for the task stream,
//! the recent failures, and each map's progress. Sans-IO, as the rest of
//! the state: times are the records' wall clock, passed in.
//!
//! Everything here is bounded: the runs and failures are rings, the maps
//! are those unfinished plus the last few finished, and an engine's tasks
//! in hand are at most what the scheduler lets it hold.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Serialize, Serializer};
use wasp_proto::db::Status;
use wasp_proto::{EngineId, TaskId, Tenant};

use crate::records::ShownTask;

/// A task id as the client shows it (`s3-17`).
fn as_text<S: Serializer>(id: &TaskId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// Task runs kept for the task stream.
pub(crate) const MAX_RUNS: usize = 2_000;
/// Failures kept.
pub(crate) const MAX_FAILURES: usize = 50;
/// Finished maps kept beside the unfinished ones.
pub(crate) const MAX_FINISHED_MAPS: usize = 20;
/// Most characters of a failure's message kept.
const MESSAGE_CHARS: usize = 300;

/// One task's run on an engine, for the task stream.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Run {
    #[serde(serialize_with = "as_text")]
    pub(crate) task: TaskId,
    #[serde(skip)]
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) engine: u32,
    pub(crate) func: Arc<str>,
    pub(crate) started_us: u64,
    pub(crate) completed_us: u64,
    /// The most linear memory its instances held at once.
    pub(crate) peak_memory_bytes: u64,
    pub(crate) ok: bool,
}

/// A task that failed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Failure {
    #[serde(serialize_with = "as_text")]
    pub(crate) task: TaskId,
    #[serde(skip)]
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) engine: Option<u32>,
    pub(crate) func: Arc<str>,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) at_us: u64,
}

/// One `map` or `apply` (a submission) and how far it got.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct MapProgress {
    /// Its first task's id.
    #[serde(serialize_with = "as_text")]
    pub(crate) first: TaskId,
    #[serde(skip)]
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) func: Arc<str>,
    pub(crate) total: u64,
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) submitted_us: u64,
    /// When its last task ended, once all have.
    pub(crate) finished_us: Option<u64>,
}

/// A task an engine holds.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) task: TaskId,
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) func: Arc<str>,
    pub(crate) since_us: u64,
}

/// What an engine ran: how many tasks ended well and not, and for how
/// long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) done: u64,
    pub(crate) failed: u64,
    /// Run time of its finished tasks, by its own clock.
    pub(crate) busy_us: u64,
}

impl Totals {
    fn add(&mut self, run: &Run) {
        if run.ok {
            self.done += 1;
        } else {
            self.failed += 1;
        }
        self.busy_us += run.completed_us.saturating_sub(run.started_us);
    }
}

/// An engine's totals and the tasks it holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct EngineWatch {
    /// For every tenant (an admin's view).
    pub(crate) all: Totals,
    /// For each tenant alone (a tenant's view shows its own load only, as
    /// `wasp cluster status` does). Bounded by the tenants.
    pub(crate) by_tenant: HashMap<Arc<Tenant>, Totals>,
    /// In dispatch order: the first is the one it runs.
    pub(crate) held: VecDeque<Held>,
}

impl EngineWatch {
    /// What a viewer of `tenant` (`admin`: of every tenant) may see of
    /// this engine's totals.
    pub(crate) fn totals(&self, tenant: &Tenant, admin: bool) -> Totals {
        if admin {
            self.all
        } else {
            self.by_tenant.get(tenant).copied().unwrap_or_default()
        }
    }
}

/// What the dashboard is fed.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    pub(crate) engines: BTreeMap<EngineId, EngineWatch>,
    pub(crate) runs: VecDeque<Run>,
    pub(crate) failures: VecDeque<Failure>,
    /// By the id of their first task: a task belongs to the one whose
    /// range holds its id (a submission's ids are consecutive).
    pub(crate) maps: BTreeMap<TaskId, MapProgress>,
}

impl Watch {
    /// An engine joined.
    pub(crate) fn engine_joined(&mut self, engine: EngineId) {
        self.engines.entry(engine).or_default();
    }

    /// An engine left: what it held is no longer there.
    pub(crate) fn engine_left(&mut self, engine: EngineId) {
        self.engines.remove(&engine);
    }

    /// A submission of `total` tasks from `first` on was accepted.
    pub(crate) fn submitted(
        &mut self,
        first: TaskId,
        total: u64,
        tenant: Arc<Tenant>,
        func: Arc<str>,
        now_us: u64,
    ) {
        self.maps.entry(first).or_insert(MapProgress {
            first,
            tenant,
            func,
            total,
            done: 0,
            failed: 0,
            submitted_us: now_us,
            finished_us: None,
        });
    }

    /// `task` was sent to `engine`.
    pub(crate) fn dispatched(&mut self, engine: EngineId, held: Held) {
        if let Some(watch) = self.engines.get_mut(&engine) {
            watch.held.push_back(held);
        }
    }

    /// `task` left `engine`'s hands (it ended there, was handed back, or
    /// the engine died).
    pub(crate) fn released(&mut self, engine: EngineId, task: TaskId) -> Option<Held> {
        let watch = self.engines.get_mut(&engine)?;
        let i = watch.held.iter().position(|h| h.task == task)?;
        watch.held.remove(i)
    }

    /// `run` ended on its engine: its totals and the task stream.
    pub(crate) fn ran(&mut self, run: Run) {
        if let Some(watch) = self.engines.get_mut(&EngineId(run.engine)) {
            watch.all.add(&run);
            watch
                .by_tenant
                .entry(Arc::clone(&run.tenant))
                .or_default()
                .add(&run);
        }
        if self.runs.len() == MAX_RUNS {
            self.runs.pop_front();
        }
        self.runs.push_back(run);
    }

    /// A task ended for good: its map's progress, and the failures.
    pub(crate) fn ended(&mut self, task: TaskId, failure: Option<Failure>, now_us: u64) {
        if let Some((_, map)) = self.maps.range_mut(..=task).next_back()
            && task.0 < map.first.0.saturating_add(map.total)
        {
            match failure {
                Some(_) => map.failed += 1,
                None => map.done += 1,
            }
            if map.done + map.failed >= map.total {
                map.finished_us = Some(now_us);
                self.forget_finished_maps();
            }
        }
        if let Some(mut failure) = failure {
            if let Some((cut, _)) = failure.message.char_indices().nth(MESSAGE_CHARS) {
                failure.message.truncate(cut);
                failure.message.push('…');
            }
            if self.failures.len() == MAX_FAILURES {
                self.failures.pop_front();
            }
            self.failures.push_back(failure);
        }
    }

    /// Keeps the last [`MAX_FINISHED_MAPS`] finished maps.
    fn forget_finished_maps(&mut self) {
        let mut finished: Vec<(u64, TaskId)> = self
            .maps
            .iter()
            .filter_map(|(id, m)| m.finished_us.map(|at| (at, *id)))
            .collect();
        if finished.len() <= MAX_FINISHED_MAPS {
            return;
        }
        finished.sort_unstable();
        for (_, id) in &finished[..finished.len() - MAX_FINISHED_MAPS] {
            self.maps.remove(id);
        }
    }
}

/// An engine's row.
#[derive(Debug, Serialize)]
pub(crate) struct EngineRow {
    pub(crate) id: u32,
    pub(crate) name: String,
    /// The host it runs on.
    pub(crate) host: String,
    /// `busy` (holding a task) or `idle`.
    pub(crate) state: &'static str,
    /// The task it runs, if the viewer may see it (its own, or any for an
    /// admin).
    pub(crate) current: Option<Current>,
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) busy_s: f64,
    /// Its process's resident memory (shared by the engines of one
    /// `wasp engine --slots N`).
    pub(crate) memory_bytes: u64,
    pub(crate) last_heartbeat_us: u64,
}

/// The task an engine runs.
#[derive(Debug, Serialize)]
pub(crate) struct Current {
    #[serde(serialize_with = "as_text")]
    pub(crate) task: TaskId,
    pub(crate) func: Arc<str>,
    pub(crate) since_us: u64,
}

/// A tenant's row of the queue.
#[derive(Debug, Serialize)]
pub(crate) struct TenantRow {
    pub(crate) tenant: String,
    pub(crate) queued: u64,
    pub(crate) running: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) weight: u32,
    /// Engine time its finished tasks ran.
    pub(crate) usage_s: f64,
}

/// A map's row: its progress, rate and the time left at that rate.
#[derive(Debug, Serialize)]
pub(crate) struct MapRow<'a> {
    #[serde(flatten)]
    pub(crate) map: &'a MapProgress,
    /// Tasks ended per second since it was submitted.
    pub(crate) rate: f64,
    /// Seconds left at that rate; `None` before the first ends or after
    /// the last.
    pub(crate) eta_s: Option<f64>,
}

impl<'a> MapRow<'a> {
    pub(crate) fn of(map: &'a MapProgress, now_us: u64) -> Self {
        let ended = map.done + map.failed;
        let until = map.finished_us.unwrap_or(now_us);
        let seconds = until.saturating_sub(map.submitted_us) as f64 / 1e6;
        let rate = if seconds > 0.0 {
            ended as f64 / seconds
        } else {
            0.0
        };
        let eta_s = (map.finished_us.is_none() && rate > 0.0)
            .then(|| map.total.saturating_sub(ended) as f64 / rate);
        Self { map, rate, eta_s }
    }
}

/// Everything one viewer may see: an admin sees every tenant's work, a
/// tenant its own tasks, maps, failures and usage (and the engines, not
/// what they run for others).
#[derive(Debug, Serialize)]
pub(crate) struct DashboardView<'a> {
    pub(crate) tenant: String,
    pub(crate) admin: bool,
    pub(crate) now_us: u64,
    pub(crate) engines: Vec<EngineRow>,
    pub(crate) queue: Vec<TenantRow>,
    pub(crate) maps: Vec<MapRow<'a>>,
    pub(crate) runs: Vec<&'a Run>,
    pub(crate) failures: Vec<&'a Failure>,
}

impl Watch {
    /// Whether a viewer of `tenant` (`admin`: of every tenant) may see
    /// work of `owner`.
    fn visible(tenant: &Tenant, admin: bool, owner: &Tenant) -> bool {
        admin || owner == tenant
    }

    /// The runs, failures and maps a viewer may see, newest last.
    pub(crate) fn work_of<'a>(
        &'a self,
        tenant: &Tenant,
        admin: bool,
        now_us: u64,
    ) -> (Vec<&'a Run>, Vec<&'a Failure>, Vec<MapRow<'a>>) {
        let runs = self
            .runs
            .iter()
            .filter(|r| Self::visible(tenant, admin, &r.tenant))
            .collect();
        let failures = self
            .failures
            .iter()
            .filter(|f| Self::visible(tenant, admin, &f.tenant))
            .collect();
        let maps = self
            .maps
            .values()
            .filter(|m| Self::visible(tenant, admin, &m.tenant))
            .map(|m| MapRow::of(m, now_us))
            .collect();
        (runs, failures, maps)
    }

    /// The task `engine` runs, if a viewer of `tenant` may see it.
    pub(crate) fn current(
        &self,
        engine: EngineId,
        tenant: &Tenant,
        admin: bool,
    ) -> Option<Current> {
        let held = self.engines.get(&engine)?.held.front()?;
        Self::visible(tenant, admin, &held.tenant).then(|| Current {
            task: held.task,
            func: held.func.clone(),
            since_us: held.since_us,
        })
    }
}

/// Most characters of a clicked task's text field (arguments, result,
/// output, error) the page is sent.
const SHOWN_CHARS: usize = 64 * 1024;

/// `text` cut to [`SHOWN_CHARS`], saying how much was left out.
fn shown(text: Option<String>) -> Option<String> {
    let mut text = text?;
    if let Some((cut, _)) = text.char_indices().nth(SHOWN_CHARS) {
        let left = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!("\n… ({left} more bytes not shown)"));
    }
    Some(text)
}

/// A clicked task's record as the page shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TaskView {
    #[serde(serialize_with = "as_text")]
    pub(crate) id: TaskId,
    pub(crate) status: Option<&'static str>,
    pub(crate) func: Option<String>,
    pub(crate) module: Option<String>,
    pub(crate) items: Option<u32>,
    pub(crate) engine: Option<u32>,
    pub(crate) submitted_us: Option<u64>,
    pub(crate) started_us: Option<u64>,
    pub(crate) completed_us: Option<u64>,
    /// The most linear memory its instances held at once, once it ended.
    pub(crate) peak_memory_bytes: Option<u64>,
    pub(crate) error: Option<String>,
    /// JSON text, or why it is not shown.
    pub(crate) args: Option<String>,
    /// JSON text: one value per item.
    pub(crate) result: Option<String>,
    pub(crate) stdout: Option<String>,
    pub(crate) stderr: Option<String>,
}

impl TaskView {
    /// The page's view of a task the records hold; `status` is its live
    /// status, which the records do not know for an unfinished task.
    pub(crate) fn of(task: ShownTask, status: Option<Status>) -> Self {
        let ShownTask {
            record,
            args,
            peak_memory_bytes,
        } = task;
        Self {
            id: record.id,
            status: status.or(record.status).map(Status::name),
            func: record.func,
            module: record.module.map(|m| m.to_string()),
            items: record.items,
            engine: record.engine.map(|e| e.0),
            submitted_us: record.submitted_us,
            started_us: record.started_us,
            completed_us: record.completed_us,
            peak_memory_bytes,
            error: shown(record.error),
            args: shown(args),
            result: shown(record.result),
            stdout: shown(record.stdout),
            stderr: shown(record.stderr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> Arc<Tenant> {
        Arc::new(Tenant(name.into()))
    }

    fn run(task: TaskId, owner: &Arc<Tenant>, ok: bool) -> Run {
        Run {
            task,
            tenant: owner.clone(),
            engine: 0,
            func: Arc::from("f"),
            started_us: 10,
            completed_us: 30,
            peak_memory_bytes: 1 << 16,
            ok,
        }
    }

    #[test]
    fn a_map_progresses_to_done_and_a_tenant_sees_only_its_own() {
        let (alice, bob) = (tenant("alice"), tenant("bob"));
        let mut watch = Watch::default();
        watch.engine_joined(EngineId(0));
        let first = TaskId::new(3, 0);
        watch.submitted(first, 3, alice.clone(), Arc::from("f"), 1_000_000);
        watch.submitted(TaskId::new(4, 0), 1, bob.clone(), Arc::from("g"), 1_000_000);
        for seq in 0..3 {
            let task = TaskId::new(3, seq);
            watch.dispatched(
                EngineId(0),
                Held {
                    task,
                    tenant: alice.clone(),
                    func: Arc::from("f"),
                    since_us: 1_000_000,
                },
            );
            let current = watch.current(EngineId(0), &bob, false);
            assert!(current.is_none(), "bob sees nothing of alice's task");
            assert!(watch.current(EngineId(0), &alice, false).is_some());
            watch.released(EngineId(0), task);
            let ok = seq != 1;
            watch.ran(run(task, &alice, ok));
            let failure = (!ok).then(|| Failure {
                task,
                tenant: alice.clone(),
                engine: Some(0),
                func: Arc::from("f"),
                kind: "trap",
                message: "x".repeat(1_000),
                at_us: 2_000_000,
            });
            watch.ended(task, failure, 1_500_000 + u64::from(seq));
            let (_, _, maps) = watch.work_of(&alice, false, 2_000_000);
            assert_eq!(maps.len(), 1);
            assert_eq!(maps[0].map.done + maps[0].map.failed, u64::from(seq) + 1);
        }
        let (runs, failures, maps) = watch.work_of(&alice, false, 2_000_000);
        assert_eq!(runs.len(), 3);
        assert_eq!(failures.len(), 1);
        assert!(failures[0].message.chars().count() <= MESSAGE_CHARS + 1);
        assert_eq!((maps[0].map.done, maps[0].map.failed), (2, 1));
        assert!(maps[0].map.finished_us.is_some() && maps[0].eta_s.is_none());
        // Bob's view: his map only, none of alice's runs or failures.
        let (runs, failures, maps) = watch.work_of(&bob, false, 2_000_000);
        assert!(runs.is_empty() && failures.is_empty());
        assert_eq!(maps.len(), 1);
        assert_eq!(&*maps[0].map.func, "g");
        // An admin sees both.
        let (runs, _, maps) = watch.work_of(&bob, true, 2_000_000);
        assert_eq!((runs.len(), maps.len()), (3, 2));
        // The engine's totals: alice's are all of them; bob ran nothing.
        let engine = &watch.engines[&EngineId(0)];
        let totals = Totals {
            done: 2,
            failed: 1,
            busy_us: 60,
        };
        assert_eq!(engine.totals(&bob, true), totals);
        assert_eq!(engine.totals(&alice, false), totals);
        assert_eq!(engine.totals(&bob, false), Totals::default());
    }

    #[test]
    fn the_rings_and_finished_maps_are_bounded() {
        let alice = tenant("alice");
        let mut watch = Watch::default();
        for seq in 0..(MAX_RUNS as u32 + 10) {
            watch.ran(run(TaskId::new(1, seq), &alice, true));
        }
        assert_eq!(watch.runs.len(), MAX_RUNS);
        for session in 0..(MAX_FINISHED_MAPS as u32 + 5) {
            let first = TaskId::new(session + 10, 0);
            watch.submitted(first, 1, alice.clone(), Arc::from("f"), 0);
            watch.ended(first, None, u64::from(session));
        }
        assert_eq!(watch.maps.len(), MAX_FINISHED_MAPS);
    }
}
