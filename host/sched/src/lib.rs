//! wasp's load-balancing scheduler: which engine runs which task, and
//! whose task runs next.
//!
//! This is ipyparallel's `TaskScheduler` (its schemes `leastload`, `lru`,
//! `plainrandom`, `twobin` and `weighted`, its high-water mark `hwm`, its
//! targeted tasks), with a weighted fair share of engine time between
//! tenants on top, as a pure state machine, in the manner of quinn-proto: it
//! "contains no networking code and does not get any relevant timestamps from
//! the operating system". Events come in through `handle_*` methods that
//! carry the current time; decisions come out of
//! [`Scheduler::poll_action`]; random schemes draw from a seeded generator.
//! The controller owns one [`Scheduler`] and feeds it from the network;
//! tests feed it from a simulated clock with thousands of engines.
//!
//! ```
//! use std::time::Duration;
//! use wasp_proto::{EngineId, TaskId};
//! use wasp_sched::{Action, Scheduler, SchedulerConfig, TenantKey};
//!
//! // ipyparallel's scheduler exactly: no prefetch (wasp's default sends
//! // one task ahead, see `SchedulerConfig::prefetch`).
//! let config = SchedulerConfig { prefetch: Duration::ZERO, ..SchedulerConfig::default() };
//! let mut sched = Scheduler::new(config);
//! let t = Duration::ZERO;
//! sched.handle_engine_joined(t, EngineId(0))?;
//! let tenant = TenantKey(0);
//! sched.handle_submit(t, TaskId(1), tenant, None)?;
//! sched.handle_submit(t, TaskId(2), tenant, None)?;
//! // hwm = 1: the engine takes one task; the other waits for it.
//! assert_eq!(
//!     sched.poll_action(),
//!     Some(Action::Dispatch { task: TaskId(1), engine: EngineId(0) })
//! );
//! assert_eq!(sched.poll_action(), None);
//! sched.handle_finished(t, TaskId(1))?;
//! assert_eq!(
//!     sched.poll_action(),
//!     Some(Action::Dispatch { task: TaskId(2), engine: EngineId(0) })
//! );
//! # Ok::<(), wasp_sched::SchedError>(())
//! ```
//!
//! # Layout
//!
//! Everything public is re-exported here; the modules are private.
//!
//! - `config`: [`Scheme`], [`SchedulerConfig`] and their ipyparallel names
//!   and defaults.
//! - `scheduler`: the [`Scheduler`] state machine, its [`Action`]s and
//!   [`Stats`]; how queued tasks are kept so that the next runnable one is
//!   found without a scan.
//! - `fair`: the fair share between tenants ([`TenantKey`]): weighted fair
//!   queuing on the engines' measured run times, `O(log tenants)` a pick.
//! - `error`: [`SchedError`], the inputs the scheduler refuses.
//! - `pick`: one engine index per scheme, so that choosing an engine costs
//!   `O(log engines)` at most.
//! - `rng`: SplitMix64, the seeded generator of the random schemes.
//! - `hash`: a fast hash for engine ids and tenant keys.

#![warn(missing_docs)]

mod config;
mod error;
mod fair;
mod hash;
mod pick;
mod rng;
mod scheduler;

pub use config::{
    DEFAULT_PREFETCH, MAX_PREFETCH, MAX_PREFETCH_FAR, ParseSchemeError, SchedulerConfig, Scheme,
};
pub use error::SchedError;
pub use fair::{DEFAULT_CHARGE, DEFAULT_WEIGHT, MIN_CHARGE, TenantKey, TenantStats};
pub use rng::Rng;
pub use scheduler::{Action, Cancelled, Scheduler, Stats};
