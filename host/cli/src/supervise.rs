//! The cluster supervisor: the process that owns the controller and the
//! engines of `wasp cluster start` (the foreground `cluster start` itself,
//! or with `--daemon` a detached copy of it), restarts one that dies
//! without having been asked to, and gives up on one that keeps dying
//! ([`crate::restart`] decides when).
//!
//! Every process is this one's child, so a death is seen by `wait` (and
//! reaped), never guessed from a pid. The pid file (`cluster.pids`) is
//! rewritten at every restart, so that `wasp cluster stop` ends the
//! processes running now; `stop` stops the supervisor first (SIGTERM, on
//! which it stops restarting and leaves the processes to `stop`, staying
//! only to reap them), so that it does not restart what `stop` ends. Restarts and give-ups are logged, with a
//! timestamp, in `PROFILE/log/supervisor.log`.
//!
//! A restarted controller runs on the same profile; the connection files
//! are left in place (only a fresh `cluster start` removes them), and the
//! engines, which outlive it, reconnect by themselves
//! ([`wasp_engine::node::run_node`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use wasp_client::Client;
use wasp_net::Profile;

use crate::processes::{self, Started};
use crate::restart::{DEFAULT_POLICY, Restarts, Verdict};

/// How often the supervisor looks for dead processes: a restart waits at
/// least half a second anyway ([`DEFAULT_POLICY`]).
const POLL: Duration = Duration::from_millis(100);

/// How long the processes have to exit on request when the supervisor
/// stops the cluster (`cluster stop` has a flag).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How long the supervisor tries to ask the controller to stop.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// The role of the controller's process in the pid file.
pub const CONTROLLER: &str = "controller";

/// The role of the supervisor's own process in the pid file.
pub const SUPERVISOR: &str = "supervisor";

/// The pid file: what `cluster start` started, for `cluster stop`.
pub fn pid_file(profile: &Profile) -> PathBuf {
    profile.dir().join("cluster.pids")
}

/// The folder of the processes' logs.
pub fn log_dir(profile: &Profile) -> PathBuf {
    profile.dir().join("log")
}

/// The supervisor's log in `log_dir`.
pub fn log_file(profile: &Profile) -> PathBuf {
    log_dir(profile).join("supervisor.log")
}

/// How to start one supervised process, again and again.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `controller`, `engine-0`, ...
    pub role: String,
    /// The `wasp` arguments.
    pub args: Vec<String>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// Where a supervised process is in its life.
enum State {
    /// Running (as far as the last look knows).
    Running { child: Child, record: Started },
    /// Dead, to be started again at `at`.
    Waiting { at: Instant },
    /// Exited on request: the cluster is being shut down.
    Exited,
    /// Died too often; not restarted.
    GaveUp,
}

struct Slot {
    spec: Spec,
    state: State,
    restarts: Restarts,
}

/// What ended the supervision.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// `cluster stop` took over (SIGTERM): hand the processes over to it.
    Detach,
    /// Ctrl-C on a foreground cluster: stop the cluster.
    Interrupt,
    /// The controller exited on request (a client stopped the cluster).
    ShutDown,
    /// The controller was given up on: the cluster cannot serve.
    ControllerLost,
}

/// Whether the supervisor runs in the foreground, where Ctrl-C stops the
/// cluster and the log is echoed to the terminal, or detached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `wasp cluster start` without `--daemon`.
    Foreground,
    /// The detached supervisor of `--daemon`.
    Daemon,
}

/// The supervisor log: timestamped lines appended to
/// `PROFILE/log/supervisor.log`, echoed to stderr in the foreground.
pub struct SupervisorLog {
    file: Option<File>,
    path: PathBuf,
    echo: bool,
}

impl SupervisorLog {
    /// Opens the log for appending (the daemon's parent truncates it at a
    /// fresh start; the foreground `start` passes `truncate`).
    pub fn open(profile: &Profile, truncate: bool, echo: bool) -> anyhow::Result<Self> {
        let path = log_file(profile);
        let dir = log_dir(profile);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if truncate {
            file.set_len(0)
                .with_context(|| format!("truncating {}", path.display()))?;
        }
        Ok(Self {
            file: Some(file),
            path,
            echo,
        })
    }

    /// Writes one line. A log that cannot be written does not stop the
    /// supervision it records.
    pub fn say(&mut self, message: &str) {
        if let Some(file) = &mut self.file
            && let Err(err) = writeln!(file, "{} {message}", utc_timestamp(SystemTime::now()))
        {
            eprintln!(
                "wasp: cannot write the supervisor log {}: {err}",
                self.path.display()
            );
            self.file = None;
        }
        if self.echo {
            eprintln!("wasp: {message}");
        }
    }
}

/// The controller and engines of one cluster, and their restarts.
pub struct Supervisor {
    exe: PathBuf,
    me: Started,
    slots: Vec<Slot>,
    pid_file: PathBuf,
    client_file: PathBuf,
    /// What the launchers started elsewhere ([`crate::launcher::records`]),
    /// stopped with the cluster.
    launched: PathBuf,
    /// The supervisor log.
    pub log: SupervisorLog,
}

impl Supervisor {
    /// A supervisor of nothing yet, recording itself in the pid file.
    pub fn new(profile: &Profile, log: SupervisorLog) -> anyhow::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("locating the wasp binary")?,
            me: Started::new(SUPERVISOR, std::process::id()),
            slots: Vec::new(),
            pid_file: pid_file(profile),
            client_file: profile.client_file(),
            launched: crate::launcher::records::path(profile),
            log,
        })
    }

    /// Starts a process for the first time (its log file truncated) and
    /// records it in the pid file.
    pub fn start(&mut self, spec: Spec) -> anyhow::Result<()> {
        let child = spawn(&self.exe, &spec, false)?;
        let record = Started::new(spec.role.clone(), child.id());
        let seed = u64::from(child.id()) ^ u64::from(std::process::id()) << 32;
        self.slots.push(Slot {
            spec,
            state: State::Running { child, record },
            restarts: Restarts::new(DEFAULT_POLICY, seed),
        });
        self.write_pids()
    }

    /// The exit status of the process started `index`-th, if it has exited
    /// (for start-up, before supervision begins).
    pub fn exited(&mut self, index: usize) -> anyhow::Result<Option<ExitStatus>> {
        match self.slots.get_mut(index).map(|slot| &mut slot.state) {
            Some(State::Running { child, .. }) => Ok(child.try_wait()?),
            _ => Ok(None),
        }
    }

    /// Kills (SIGKILL) and reaps every process still running, last
    /// started first, for a start-up that failed.
    pub fn kill_all(&mut self) {
        for slot in self.slots.iter_mut().rev() {
            if let State::Running { child, .. } = &mut slot.state {
                let _ = child.kill();
                let _ = child.wait();
            }
            slot.state = State::Exited;
        }
    }

    /// Removes the pid file, once every process has ended.
    pub fn remove_pid_file(&self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// Records the supervisor and every process running now.
    fn write_pids(&self) -> anyhow::Result<()> {
        self.write_records(true)
    }

    /// Records every process running now, and the supervisor if it still
    /// supervises (`me`).
    fn write_records(&self, me: bool) -> anyhow::Result<()> {
        let mut records: Vec<Started> = me.then(|| self.me.clone()).into_iter().collect();
        records.extend(self.slots.iter().filter_map(|slot| match &slot.state {
            State::Running { record, .. } => Some(record.clone()),
            _ => None,
        }));
        processes::write(&self.pid_file, &records)
    }

    /// Supervises until the cluster stops or `cluster stop` takes over.
    pub async fn run(mut self, mode: Mode) -> anyhow::Result<ExitCode> {
        let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.log.say(&format!(
            "supervising the controller and {} engine processes (pid {})",
            self.slots.len().saturating_sub(1),
            self.me.pid
        ));
        let ending = loop {
            // Signals first: a process that died of the same Ctrl-C must
            // not be restarted.
            tokio::select! {
                biased;
                _ = term.recv() => break Ending::Detach,
                _ = interrupt.recv() => {
                    break if mode == Mode::Foreground { Ending::Interrupt } else { Ending::Detach };
                }
                _ = tick.tick() => {
                    if let Some(ending) = self.step(Instant::now()) {
                        break ending;
                    }
                }
            }
        };
        match ending {
            Ending::Detach => {
                self.hand_over(&mut term, &mut interrupt).await;
                Ok(ExitCode::SUCCESS)
            }
            Ending::Interrupt => {
                self.log.say("interrupted: stopping the cluster");
                self.wind_down(true).await;
                Ok(ExitCode::SUCCESS)
            }
            Ending::ShutDown => {
                self.log
                    .say("the controller exited on request: the cluster was stopped");
                self.wind_down(false).await;
                Ok(ExitCode::SUCCESS)
            }
            Ending::ControllerLost => {
                self.log
                    .say("without a controller the cluster cannot serve: stopping the engines");
                self.wind_down(false).await;
                Ok(ExitCode::FAILURE)
            }
        }
    }

    /// `cluster stop` takes over (it sent SIGTERM): restarts stop, the
    /// pid file is rewritten without this process, which tells `stop` that
    /// nothing will be restarted any more, and the supervisor stays only
    /// to reap its processes as `stop` ends them. Staying their parent
    /// until the last one exits leaves none a zombie, and none orphaned
    /// while stopped (a stopped process whose process group is orphaned is
    /// sent SIGHUP and SIGCONT by the kernel). A second signal makes it
    /// exit at once.
    async fn hand_over(
        &mut self,
        term: &mut tokio::signal::unix::Signal,
        interrupt: &mut tokio::signal::unix::Signal,
    ) {
        self.log.say(
            "handing the cluster over to `wasp cluster stop` (SIGTERM): no more restarts; \
             waiting for its processes to end",
        );
        if let Err(err) = self.write_records(false) {
            self.log.say(&format!("{err:#}"));
        }
        let mut tick = tokio::time::interval(POLL);
        while self.reap() {
            tokio::select! {
                biased;
                _ = term.recv() => {
                    self.log.say("asked again: exiting, leaving the processes running");
                    return;
                }
                _ = interrupt.recv() => {
                    self.log.say("asked again: exiting, leaving the processes running");
                    return;
                }
                _ = tick.tick() => {}
            }
        }
        self.log
            .say("every process has ended; the supervisor exits");
    }

    /// One look at every process: reaps the dead, restarts those due.
    fn step(&mut self, now: Instant) -> Option<Ending> {
        let mut changed = false;
        let mut ending = None;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            match &mut slot.state {
                State::Running { child, record } => {
                    let status = match child.try_wait() {
                        Ok(Some(status)) => status,
                        Ok(None) => continue,
                        Err(err) => {
                            let message = format!("cannot wait for {record}: {err}");
                            self.log.say(&message);
                            continue;
                        }
                    };
                    changed = true;
                    let record = record.clone();
                    if status.success() {
                        // Only a controller's or an engine's stop on
                        // request ends it with success.
                        slot.state = State::Exited;
                        let message = format!("{record} exited on request");
                        self.log.say(&message);
                        if slot.spec.role == CONTROLLER {
                            ending = Some(Ending::ShutDown);
                        }
                        continue;
                    }
                    let log = slot.spec.log.display().to_string();
                    match slot.restarts.died(now) {
                        Verdict::Restart { after, deaths } => {
                            slot.state = State::Waiting { at: now + after };
                            let policy = slot.restarts.policy();
                            let message = format!(
                                "{record} died ({status}); restarting it in {after:.1?} \
                                 ({deaths} deaths within {:?}; giving up at {}; log: {log})",
                                policy.window, policy.max_deaths
                            );
                            self.log.say(&message);
                        }
                        Verdict::GiveUp { deaths } => {
                            slot.state = State::GaveUp;
                            let window = slot.restarts.policy().window;
                            let message = format!(
                                "giving up on {}: it died {deaths} times within {window:?}, \
                                 last as {record} ({status}); see its log {log}",
                                slot.spec.role
                            );
                            self.log.say(&message);
                            if slot.spec.role == CONTROLLER {
                                ending = Some(Ending::ControllerLost);
                            }
                        }
                    }
                }
                State::Waiting { at } if *at <= now => {
                    changed = true;
                    match spawn(&self.exe, &slot.spec, true) {
                        Ok(child) => {
                            let record = Started::new(slot.spec.role.clone(), child.id());
                            let message =
                                format!("restarted {record} (log: {})", slot.spec.log.display());
                            slot.state = State::Running { child, record };
                            self.log.say(&message);
                        }
                        Err(err) => {
                            // As good as a death at start: the same policy.
                            slot.state = match slot.restarts.died(now) {
                                Verdict::Restart { after, .. } => {
                                    State::Waiting { at: now + after }
                                }
                                Verdict::GiveUp { .. } => State::GaveUp,
                            };
                            let message = format!("cannot restart {}: {err:#}", slot.spec.role);
                            self.log.say(&message);
                        }
                    }
                }
                State::Waiting { .. } | State::Exited | State::GaveUp => {}
            }
        }
        if changed && let Err(err) = self.write_pids() {
            self.log.say(&format!("{err:#}"));
        }
        ending
    }

    /// Stops the cluster: asks the controller to stop (`ask`), gives the
    /// processes [`DEFAULT_GRACE`] to exit, kills the rest (the engines
    /// launched elsewhere too), and removes the pid file.
    async fn wind_down(&mut self, ask: bool) {
        let mut answered = true;
        if ask {
            let client_file = self.client_file.clone();
            let asked = tokio::time::timeout(ASK_TIMEOUT, async move {
                let client = Client::connect_file(&client_file).await?;
                client.shutdown().await?;
                anyhow::Ok(())
            })
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {ASK_TIMEOUT:?}")));
            if let Err(err) = asked {
                self.log.say(&format!(
                    "could not ask the cluster to stop ({err:#}); ending its processes"
                ));
                let running: Vec<Started> = self.running().collect();
                processes::terminate(&running);
                answered = false;
            }
        }
        let deadline = Instant::now() + DEFAULT_GRACE;
        while self.reap() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left: Vec<String> = self.running().map(|r| r.to_string()).collect();
        if !left.is_empty() {
            self.log.say(&format!(
                "killing what has not exited after {DEFAULT_GRACE:?}: {}",
                left.join(", ")
            ));
        }
        self.kill_all();
        // The engines launched elsewhere get what is left of the same
        // grace period, then are killed (ssh) or cancelled (Slurm).
        let how = crate::launcher::records::Stop {
            grace: deadline.saturating_duration_since(Instant::now()),
            terminate: !answered,
        };
        match crate::launcher::records::stop_all(&self.launched, how).await {
            Ok(killed) if !killed.is_empty() => {
                self.log.say(&format!("killed {}", killed.join(", ")));
            }
            Ok(_) => {}
            Err(err) => self.log.say(&format!("{err:#}")),
        }
        self.remove_pid_file();
    }

    /// The records of the processes running as far as the last look
    /// knows.
    fn running(&self) -> impl Iterator<Item = Started> + '_ {
        self.slots.iter().filter_map(|slot| match &slot.state {
            State::Running { record, .. } => Some(record.clone()),
            _ => None,
        })
    }

    /// Reaps the processes that have exited; returns whether any still
    /// runs.
    fn reap(&mut self) -> bool {
        let mut any = false;
        for slot in &mut self.slots {
            if let State::Running { child, .. } = &mut slot.state {
                if matches!(child.try_wait(), Ok(None)) {
                    any = true;
                } else {
                    slot.state = State::Exited;
                }
            }
        }
        any
    }
}

/// Starts `spec` with its output in its log file: truncated at the
/// cluster's start, appended to on a restart, so that the log of a
/// process that keeps dying keeps every death's last words.
///
/// Each process gets a process group of its own, so that a Ctrl-C on the
/// terminal of a foreground `cluster start` reaches the supervisor alone,
/// which then stops the cluster in order rather than see its processes
/// die of the same signal.
fn spawn(exe: &Path, spec: &Spec, append: bool) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let log = &spec.log;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0);
    if let Some(tunables) = malloc_tunables(std::env::var_os(GLIBC_TUNABLES).as_deref()) {
        command.env(GLIBC_TUNABLES, tunables);
    }
    command
        .spawn()
        .with_context(|| format!("starting {command:?}"))
}

/// The environment variable glibc reads its tunables from, at a process's
/// start.
const GLIBC_TUNABLES: &str = "GLIBC_TUNABLES";

/// How the controller and engines a cluster starts allocate big buffers
/// (issue 13): every allocation of 4 MiB and more is its own mapping,
/// returned to the system when freed, and backed by transparent huge
/// pages where the system allows them on request (`madvise`).
///
/// Why: with glibc's defaults, the threshold for a mapping of its own
/// rises with the largest buffer freed (up to 32 MiB), so 8 MB arguments
/// and frames come from the threads' heaps, which keep them after they
/// are freed: over 22 calls of an 8 MB argument, the controller's peak
/// grew to 8.4x the argument and the engines' to 3.4x. A fixed threshold
/// alone stops that but costs each fresh 8 MB buffer 2,048 page faults
/// (74 ms a call against 58 ms); with huge pages they are four. Measured
/// with `bigvalues --quick`: 56 ms a call, the controller at 3.5x and the
/// engines at 2.1x-2.4x. Older glibc ignores the tunables it does not
/// know, and other C libraries the variable.
const MALLOC_TUNABLES: &str = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4194304";

/// The tunables to start a cluster's process with: wasp's, unless the
/// operator set `GLIBC_TUNABLES` (`current`), which is then passed on as
/// it is.
fn malloc_tunables(current: Option<&std::ffi::OsStr>) -> Option<&'static str> {
    current.is_none().then_some(MALLOC_TUNABLES)
}

/// `time` as an RFC 3339 UTC timestamp with milliseconds, e.g.
/// `2026-12-01T09:30:05.123Z` (without a date library for one format).
pub fn utc_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clusters_processes_start_with_wasps_malloc_tunables_unless_the_operator_set_some() {
        // A real child started as the supervisor starts one (`env` prints
        // its environment into the process's log).
        let dir = std::env::temp_dir().join(format!("wasp-tunables-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = Spec {
            role: "engine-0".into(),
            args: vec![],
            log: dir.join("engine-0.log"),
        };
        let status = spawn(Path::new("/usr/bin/env"), &spec, false)
            .unwrap()
            .wait()
            .unwrap();
        assert!(status.success());
        let environment = std::fs::read_to_string(&spec.log).unwrap();
        let expected = match std::env::var(GLIBC_TUNABLES) {
            // The test's own environment decides, as the operator's would.
            Ok(set) => format!("{GLIBC_TUNABLES}={set}"),
            Err(_) => format!("{GLIBC_TUNABLES}={MALLOC_TUNABLES}"),
        };
        assert!(
            environment.lines().any(|line| line == expected),
            "{expected} not in the child's environment"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(malloc_tunables(None), Some(MALLOC_TUNABLES));
        assert_eq!(
            malloc_tunables(Some("glibc.malloc.arena_max=2".as_ref())),
            None
        );
    }

    #[test]
    fn timestamps_are_rfc_3339_utc() {
        let at = |secs: u64, millis: u64| {
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29, a leap day, at 13:05:09.042.
        assert_eq!(at(19_782 * 86_400 + 47_109, 42), "2024-02-29T13:05:09.042Z");
        assert_eq!(at(951_868_800, 0), "2000-03-01T00:00:00.000Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }
}
