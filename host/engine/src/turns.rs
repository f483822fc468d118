//! Turns at the engine: how an engine runs two tenants' tasks at once on
//! one worker's worth of time (the controller's `--time-slice`, issue 12).
//!
//! An engine is one worker, as an ipyparallel engine is: one task computes
//! at a time. When the controller slices a task in beside a running one
//! (another tenant's), the engine runs both, but they take *turns*: a
//! task's future computes only while it holds the turn, and the guest
//! gives it up at an epoch tick, which every guest reaches within one tick
//! (the runtime's epoch callback yields to the executor at each). No
//! process can do that to another without the OS scheduler's help; a wasm
//! guest is suspended at a safe point by its own compiled code.
//!
//! Who goes next is decided by virtual time, as in the controller's fair
//! share: each lane (the engine's own queue and the sliced-in task) counts
//! the ticks its tasks held the turn, divided by its tenant's weight; at a
//! tick, the lane holding the turn hands it over when the other waits with
//! less virtual time. A lane that starts a task after being idle is placed
//! [`ARRIVAL_CREDIT`] ticks behind the other, so that a short task arriving
//! beside a long one runs to its end at once (its tenant is the one behind:
//! the controller sliced it in because its turn had come), and a long one
//! soon alternates tick by tick, by weight.
//!
//! Time blocked in the host (a guest sleeping) holds no turn: a future that
//! is pending without having yielded at a tick gives the turn up.
//!
//! The epoch callback runs inside the poll of the task's future, on the
//! polling thread, with no access to the future's state; the lane being
//! polled is found in a thread-local set around each poll ([`Turn::poll`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// How many ticks a lane that was idle starts behind the other: the
/// ticks a newly arrived task may run before it alternates.
pub const ARRIVAL_CREDIT: u64 = 4;

/// Virtual-time units per tick at weight 1: ticks are divided by weights.
const SCALE: u64 = 1 << 20;

/// An engine's lanes: `0` its own queue, `1` the task sliced in beside.
pub(crate) const LANES: usize = 2;

/// The turn between an engine's lanes. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Turns {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The lane that may compute, if any.
    holder: Option<usize>,
    lanes: [Lane; LANES],
}

#[derive(Default)]
struct Lane {
    /// Ticks held, in units of `SCALE / weight`.
    vt: u64,
    weight: u64,
    /// It is running a task.
    active: bool,
    /// It yielded at a tick since its last poll (it wants to compute on).
    ticked: bool,
    /// Its waiting task's waker, when another lane holds the turn.
    waiting: Option<Waker>,
}

thread_local! {
    /// The lane whose future this thread is polling, for [`tick`].
    static POLLING: RefCell<Option<(Turns, usize)>> = const { RefCell::new(None) };
}

/// Charges the lane being polled on this thread one tick: called from the
/// runtime's epoch callback. Outside a [`Turn`] (a runtime used on its
/// own), nothing happens.
pub(crate) fn tick() {
    POLLING.with(|polling| {
        if let Some((turns, lane)) = &*polling.borrow() {
            let mut state = turns.state();
            let lane = &mut state.lanes[*lane];
            lane.vt = lane.vt.saturating_add(SCALE / lane.weight.max(1));
            lane.ticked = true;
        }
    });
}

impl Turns {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `task` in `lane` for a tenant of `weight`, computing only while
    /// it holds the turn.
    pub(crate) fn run<F: Future>(&self, lane: usize, weight: u32, task: F) -> Turn<F> {
        {
            let mut state = self.state();
            let other = state
                .lanes
                .iter()
                .enumerate()
                .find(|&(i, l)| i != lane && l.active)
                .map(|(_, l)| l.vt);
            let this = &mut state.lanes[lane];
            this.weight = u64::from(weight.max(1));
            this.active = true;
            this.ticked = false;
            // Idle time earns no more than the arrival credit.
            if let Some(other) = other {
                let floor = other.saturating_sub(ARRIVAL_CREDIT * SCALE / this.weight);
                this.vt = this.vt.max(floor);
            }
        }
        Turn {
            turns: self.clone(),
            lane,
            holding: false,
            waited: false,
            defer: None,
            task: Box::pin(task),
        }
    }
}

impl State {
    /// Gives the turn to the waiting lane with the least virtual time, or
    /// to nobody.
    fn hand_over(&mut self) {
        self.holder = None;
        let next = self
            .lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.waiting.is_some())
            .min_by_key(|(_, l)| l.vt)
            .map(|(i, _)| i);
        if let Some(next) = next {
            self.holder = Some(next);
            if let Some(waker) = self.lanes[next].waiting.take() {
                waker.wake();
            }
        }
    }

    /// Whether `lane`, which yielded at a tick, should let another lane
    /// compute: one waits with less virtual time.
    fn should_yield(&self, lane: usize) -> bool {
        let vt = self.lanes[lane].vt;
        self.lanes
            .iter()
            .enumerate()
            .any(|(i, l)| i != lane && l.waiting.is_some() && l.vt < vt)
    }
}

/// A task's future that computes only while its lane holds the turn
/// ([`Turns::run`]).
pub(crate) struct Turn<F> {
    turns: Turns,
    lane: usize,
    holding: bool,
    /// It waited for another lane's turn since it last computed.
    waited: bool,
    /// Set after every poll that computed, and when the turn is handed to
    /// it: the next poll waits for it first, so that everything else on
    /// this thread settles before the next slice of computing (see
    /// [`Turn::poll`]).
    defer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    task: Pin<Box<F>>,
}

impl<F: Future> Future for Turn<F> {
    type Output = F::Output;

    /// One slice: up to the next epoch tick of computing, or until the
    /// task blocks in the host or ends.
    ///
    /// Between two slices, and before the first slice after the turn was
    /// handed to it, the task first lets everything else on this thread
    /// settle ([`settle`]). A guest that yields at a tick is at once ready
    /// again; without this, each other step (reading a task from the
    /// connection, starting it, sending a result) would wait for a whole
    /// tick of computing: on a one-thread engine, a task sliced in would
    /// wait several ticks to start, and its result a tick to leave.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        loop {
            if let Some(defer) = this.defer.as_mut() {
                if defer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.defer = None;
            }
            let mut state = this.turns.state();
            if this.holding && state.should_yield(this.lane) {
                this.holding = false;
                state.hand_over();
            }
            if this.holding {
                break;
            }
            match state.holder {
                Some(holder) if holder != this.lane => {
                    state.lanes[this.lane].waiting = Some(cx.waker().clone());
                    this.waited = true;
                    return Poll::Pending;
                }
                _ => {
                    state.holder = Some(this.lane);
                    state.lanes[this.lane].waiting = None;
                }
            }
            this.holding = true;
            if !std::mem::take(&mut this.waited) {
                break;
            }
            // Handed the turn by a lane that just ended or yielded: what
            // that lane set going (a result to send) goes first.
            this.defer = Some(settle());
        }
        POLLING.with(|polling| *polling.borrow_mut() = Some((this.turns.clone(), this.lane)));
        let polled = this.task.as_mut().poll(cx);
        POLLING.with(|polling| *polling.borrow_mut() = None);
        let mut state = this.turns.state();
        let lane = &mut state.lanes[this.lane];
        let ticked = std::mem::take(&mut lane.ticked);
        match polled {
            Poll::Ready(output) => {
                lane.active = false;
                this.holding = false;
                state.hand_over();
                Poll::Ready(output)
            }
            Poll::Pending => {
                // Pending at a tick: it has woken itself to compute on,
                // and keeps the turn unless the other lane is behind.
                // Blocked in the host, or its turn over: it gives it up.
                if !ticked || state.should_yield(this.lane) {
                    this.holding = false;
                    state.hand_over();
                }
                this.defer = Some(settle());
                Poll::Pending
            }
        }
    }
}

/// How many rounds of the executor a computing task lets pass between two
/// slices: see [`settle`].
const SETTLE_ROUNDS: usize = 4;

/// Lets everything else on this thread run, and the wakeups it causes.
///
/// `tokio::task::yield_now` defers the task until the executor has run
/// every task that is ready and polled the network, once: one round. But a
/// message arriving takes a chain of tasks, each woken by the one before
/// (the endpoint's socket, the connection, the stream's reader, the lane's
/// queue), and a task woken in a round runs after the deferred one: one
/// round per link. A few rounds let the whole chain run before the next
/// tick of computing; each costs one poll of the network (microseconds,
/// against a tick of a millisecond).
fn settle() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async {
        for _ in 0..SETTLE_ROUNDS {
            tokio::task::yield_now().await;
        }
    })
}

impl<F> Drop for Turn<F> {
    fn drop(&mut self) {
        // An abandoned task (its connection lost) must not keep the turn,
        // nor leave a waker behind.
        let mut state = self.turns.state();
        let lane = &mut state.lanes[self.lane];
        lane.active = false;
        lane.waiting = None;
        lane.ticked = false;
        if state.holder == Some(self.lane) {
            state.hand_over();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A guest stand-in: computes `ticks` ticks, yielding at each (as the
    /// epoch callback makes a guest do), and logs each tick it ran.
    async fn compute(name: &'static str, ticks: usize, log: Arc<Mutex<Vec<&'static str>>>) {
        for _ in 0..ticks {
            tick();
            log.lock().expect("log").push(name);
            // Yield as wasmtime's `UpdateDeadline::Yield` does.
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_task_arriving_beside_a_long_one_runs_to_its_end_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns = Turns::default();
        let started = Arc::new(tokio::sync::Notify::new());
        runtime().block_on(async {
            // b arrives once a has run ten ticks.
            let short = {
                let (turns, log, started) = (turns.clone(), log.clone(), started.clone());
                tokio::spawn(async move {
                    started.notified().await;
                    turns.run(1, 1, compute("b", 3, log)).await;
                })
            };
            let long = {
                let log = log.clone();
                turns.run(0, 1, async move {
                    compute("a", 10, log.clone()).await;
                    started.notify_one();
                    compute("a", 10, log).await;
                })
            };
            long.await;
            short.await.expect("short");
        });
        let log = log.lock().expect("log").join("");
        // b's three ticks run back to back, soon after it arrived (when
        // the executor next polled it), long before a's end.
        let first_b = log.find('b').expect("b ran");
        assert_eq!(&log[first_b..first_b + 3], "bbb", "{log}");
        assert!((10..=13).contains(&first_b), "{log}");
        assert_eq!(log.matches('a').count(), 20, "{log}");
    }

    /// Spins for a tenth of a millisecond, so that a timer can fire
    /// between two ticks of [`compute`].
    fn busy() {
        let until = std::time::Instant::now() + std::time::Duration::from_micros(100);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// A chain of `links` tasks, each woken by the one before (as the
    /// network wakes the endpoint, which wakes the connection, ...), the
    /// first after `delay` (by a timer, as the network's poll does): logs
    /// `first` when the chain starts, then runs `last` at its end.
    async fn chain<F: Future<Output = ()> + Send + 'static>(
        links: usize,
        delay: Option<std::time::Duration>,
        first: &'static str,
        log: Arc<Mutex<Vec<&'static str>>>,
        last: F,
    ) {
        let notes: Vec<_> = (0..links)
            .map(|_| Arc::new(tokio::sync::Notify::new()))
            .collect();
        let mut hops = Vec::new();
        for i in 1..links {
            let (wait, next) = (notes[i].clone(), notes.get(i + 1).cloned());
            hops.push(tokio::spawn(async move {
                wait.notified().await;
                if let Some(next) = next {
                    next.notify_one();
                }
            }));
        }
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        log.lock().expect("log").push(first);
        if let Some(next) = notes.get(1) {
            next.notify_one();
        }
        for hop in hops {
            hop.await.expect("hop");
        }
        last.await;
    }

    /// Task "a" in lane 0, computing a tenth of a millisecond per tick
    /// until `other` ends. Spawned, as the engine's lanes are (not the
    /// runtime's main future, which it polls apart from its queue of
    /// tasks).
    async fn compute_until(
        turns: &Turns,
        other: tokio::task::JoinHandle<()>,
        log: Arc<Mutex<Vec<&'static str>>>,
    ) {
        tokio::spawn(turns.run(0, 1, async move {
            while !other.is_finished() {
                busy();
                compute("a", 1, log.clone()).await;
            }
        }))
        .await
        .expect("long");
    }

    #[test]
    fn a_task_arriving_through_a_chain_of_wakeups_starts_within_a_tick() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns = Turns::default();
        runtime().block_on(async {
            let short = turns.run(1, 1, compute("b", 1, log.clone()));
            let arrival = tokio::spawn(chain(
                4,
                Some(std::time::Duration::from_millis(3)),
                "arrived",
                log.clone(),
                short,
            ));
            compute_until(&turns, arrival, log.clone()).await;
        });
        let log = log.lock().expect("log");
        let arrived = log.iter().position(|&n| n == "arrived").expect("arrived");
        let started = log.iter().position(|&n| n == "b").expect("b ran");
        // It starts at the tick after it arrived: the chain ran before
        // another tick of computing.
        assert_eq!(started, arrived + 1, "{log:?}");
    }

    #[test]
    fn what_an_ending_task_sets_going_runs_before_the_next_tick() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns = Turns::default();
        runtime().block_on(async {
            let short = {
                let (turns, log) = (turns.clone(), log.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    turns.run(1, 1, compute("b", 1, log.clone())).await;
                    // Its result leaves through a chain of tasks.
                    let sent = log.clone();
                    chain(4, None, "sending", log, async move {
                        sent.lock().expect("log").push("sent");
                    })
                    .await;
                })
            };
            compute_until(&turns, short, log.clone()).await;
        });
        let log = log.lock().expect("log");
        let ended = log.iter().position(|&n| n == "b").expect("b ran");
        let sent = log.iter().position(|&n| n == "sent").expect("sent");
        let between = log[ended..sent].iter().filter(|&&n| n == "a").count();
        assert_eq!(between, 0, "{log:?}");
    }

    #[test]
    fn two_long_tasks_share_the_turn_by_weight() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns = Turns::default();
        runtime().block_on(async {
            let a = tokio::spawn(turns.run(0, 1, compute("a", 300, log.clone())));
            let b = tokio::spawn(turns.run(1, 2, compute("b", 300, log.clone())));
            a.await.expect("a");
            b.await.expect("b");
        });
        let log = log.lock().expect("log");
        // While both compute (the first 300 ticks), b gets two for a's one.
        let window = &log[..300];
        let b = window.iter().filter(|&&n| n == "b").count();
        assert!((190..=210).contains(&b), "b had {b} of 300 ticks");
    }

    #[test]
    fn a_task_blocked_in_the_host_holds_no_turn() {
        let turns = Turns::default();
        let ran = Arc::new(AtomicUsize::new(0));
        runtime().block_on(async {
            // Sleeps (pending without a tick) and never computes.
            let sleeper = tokio::spawn(turns.run(
                0,
                1,
                tokio::time::sleep(std::time::Duration::from_millis(50)),
            ));
            tokio::task::yield_now().await;
            let ran2 = ran.clone();
            let worker = turns.run(1, 1, async move {
                ran2.fetch_add(1, Ordering::SeqCst);
            });
            worker.await;
            // The worker finished while the sleeper still slept.
            assert!(!sleeper.is_finished());
            sleeper.await.expect("sleeper");
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_dropped_task_gives_the_turn_up() {
        let turns = Turns::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        runtime().block_on(async {
            let long = tokio::spawn(turns.run(0, 1, compute("a", 1_000_000, log.clone())));
            tokio::task::yield_now().await;
            long.abort();
            let _ = long.await;
            turns.run(1, 1, compute("b", 2, log.clone())).await;
        });
        assert!(log.lock().expect("log").ends_with(&["b", "b"]));
    }
}

#[cfg(test)]
mod guest_tests {
    use super::*;
    use crate::runtime::{Runtime, RuntimeConfig};
    use crate::sandbox::CallContext;
    use wasp_proto::Value;

    /// Real guests: a long `cpu` call yields its turn at the epoch ticks
    /// to a short one that arrives beside it, which ends first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guest_gives_up_its_turn_at_an_epoch_tick() {
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let bytes = std::fs::read(wasp_task_artifacts::CPU).expect("cpu.wasm");
        let module = runtime.load(bytes).await.expect("loads");
        let turns = Turns::default();
        let call = |n: u64| {
            let (runtime, module) = (runtime.clone(), module.clone());
            async move {
                let report = runtime
                    .call(&module, "cpu", &[Value::U64(n)], CallContext::default())
                    .await;
                report.result.is_ok()
            }
        };
        // Seconds of computing, stopped by the abort below.
        let long = tokio::spawn(turns.run(0, 1, call(2_000_000_000)));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            turns.run(1, 1, call(1_000)).await,
            "the short call succeeds"
        );
        assert!(!long.is_finished(), "the long call still runs");
        long.abort();
    }
}
