//! The processes `wasp cluster start` starts, recorded in the profile folder
//! (`cluster.pids`) so that `wasp cluster stop` can end every one of them:
//! asked to exit first, killed (SIGKILL) once a grace period has passed.
//! An engine wedged in a guest, or stopped, never answers a shutdown
//! message, and would otherwise outlive its cluster.
//!
//! Each record keeps the process's start time (on Linux, from
//! `/proc/PID/stat`), so that a pid the kernel has since given to another
//! process is never signalled.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long `stop` waits for killed processes to disappear: SIGKILL cannot
/// be caught, but a process in uninterruptible sleep dies only when it
/// leaves it.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How often liveness is checked while waiting.
const POLL: Duration = Duration::from_millis(20);

/// One started process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// What it is: `controller`, `engine-0`, ...
    pub role: String,
    /// Its process id.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field
    /// 22), where the system tells it.
    pub start: Option<u64>,
}

impl std::fmt::Display for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.role, self.pid)
    }
}

impl Started {
    /// Records the running process `pid`.
    pub fn new(role: impl Into<String>, pid: u32) -> Self {
        Self {
            role: role.into(),
            pid,
            start: proc_stat(pid).map(|(_, start)| start),
        }
    }

    /// Whether the process still runs: it exists, is not a zombie, and is
    /// the one recorded (same start time).
    pub fn alive(&self) -> bool {
        if let Some((state, start)) = proc_stat(self.pid) {
            return !matches!(state, 'Z' | 'X') && self.start.is_none_or(|s| s == start);
        }
        // No /proc entry: gone on Linux; elsewhere, ask the kernel.
        !cfg!(target_os = "linux")
            && pid(self.pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }

    /// Sends `signal` if the process is still the recorded one.
    fn signal(&self, signal: rustix::process::Signal) {
        if !self.alive() {
            return;
        }
        if let Some(p) = pid(self.pid)
            && let Err(err) = rustix::process::kill_process(p, signal)
        {
            tracing::warn!(process = %self, cause = %err, "could not signal");
        }
    }
}

fn pid(pid: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)
}

/// The state letter and start time of process `pid`, from
/// `/proc/PID/stat` (`pid (comm) state ppid ... starttime ...`; `comm` may
/// hold spaces and parentheses, so fields are counted after the last `)`).
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was the state; field 22 is the start time.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Writes the records, one `ROLE PID START` line each (`-` for an unknown
/// start time).
pub fn write(path: &Path, processes: &[Started]) -> anyhow::Result<()> {
    let text: String = processes
        .iter()
        .map(|p| {
            let start = p.start.map_or("-".to_owned(), |s| s.to_string());
            format!("{} {} {start}\n", p.role, p.pid)
        })
        .collect();
    wasp_net::connfile::write_private(path, text.as_bytes())
        .with_context(|| format!("writing the cluster's pid file {}", path.display()))
}

/// Reads the records; none if the file is missing.
pub fn read(path: &Path) -> anyhow::Result<Vec<Started>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed = match fields[..] {
                [role, pid, start] => pid.parse().ok().map(|pid| Started {
                    role: role.to_owned(),
                    pid,
                    start: start.parse().ok(),
                }),
                _ => None,
            };
            parsed.with_context(|| {
                format!(
                    "{}: malformed line {line:?}: expected `ROLE PID START`",
                    path.display()
                )
            })
        })
        .collect()
}

/// Asks every process still running to exit with SIGTERM, for when the
/// controller could not be asked.
pub fn terminate(processes: &[Started]) {
    for p in processes {
        p.signal(rustix::process::Signal::TERM);
    }
}

/// Waits up to `grace` for the processes to exit, then kills (SIGKILL)
/// those still running and waits for them to disappear. Returns the ones
/// killed; an error names any still running after that.
pub fn end(processes: &[Started], grace: Duration) -> anyhow::Result<Vec<Started>> {
    let deadline = Instant::now() + grace;
    while processes.iter().any(Started::alive) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    let stuck: Vec<Started> = processes.iter().filter(|p| p.alive()).cloned().collect();
    for p in &stuck {
        p.signal(rustix::process::Signal::KILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let left: Vec<String> = stuck
            .iter()
            .filter(|p| p.alive())
            .map(ToString::to_string)
            .collect();
        if left.is_empty() {
            return Ok(stuck);
        }
        if Instant::now() > deadline {
            bail!(
                "still running {KILL_WAIT:?} after SIGKILL: {}",
                left.join(", ")
            );
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.pids");
        assert_eq!(read(&path).unwrap(), Vec::new(), "no file: no processes");
        let processes = vec![
            Started::new("controller", std::process::id()),
            Started {
                role: "engine-0".into(),
                pid: 7,
                start: None,
            },
        ];
        write(&path, &processes).unwrap();
        assert_eq!(read(&path).unwrap(), processes);
        std::fs::write(&path, "controller 12\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("malformed line \"controller 12\""), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_ours() {
        let me = Started::new("test", std::process::id());
        assert!(me.start.is_some());
        assert!(me.alive());
        let impostor = Started {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert!(!impostor.alive(), "another start time: another process");
    }

    /// A child that ignores everything but SIGKILL (stopped with SIGSTOP)
    /// is killed once the grace period has passed.
    #[cfg(target_os = "linux")]
    #[test]
    fn end_kills_a_stopped_process_after_the_grace_period() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let started = Started::new("sleeper", child.id());
        started.signal(rustix::process::Signal::STOP);
        // Reaps the child once killed, as init does for a daemon's engines;
        // until then `alive` must see through the zombie state.
        let reaper = std::thread::spawn(move || child.wait());
        let killed = end(std::slice::from_ref(&started), Duration::from_millis(100)).unwrap();
        assert_eq!(killed, vec![started.clone()]);
        assert!(!started.alive());
        let status = reaper.join().unwrap().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
}
