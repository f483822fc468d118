//! The cluster fixture shared by the end-to-end tests: a real controller
//! and real engine processes in a fresh profile folder.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use wasp_client::Client;

/// A cluster of real processes in a fresh profile folder, stopped on drop.
pub struct Cluster {
    /// Holds the profile folder (`WASP_DIR`).
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a controller and `engines` engines.
    pub fn start(engines: u32) -> Self {
        Self::start_with(engines, &[])
    }

    /// Starts with extra `wasp cluster start` flags.
    pub fn start_with(engines: u32, flags: &[&str]) -> Self {
        Self::start_inner(engines, flags, None)
    }

    /// Starts with the engines' compile cache in `cache` rather than in the
    /// profile folder, so that compiled code outlives the test (large
    /// components take seconds to compile).
    pub fn start_cached(engines: u32, cache: &Path) -> Self {
        Self::start_inner(engines, &[], Some(cache))
    }

    /// Starts in `dir`, whose profile folder the test prepared (e.g. a
    /// tenants file).
    pub fn start_in(dir: tempfile::TempDir, engines: u32) -> Self {
        Self::start_dir(dir, engines, &[], None)
    }

    /// Starts in a prepared `dir` with extra `wasp cluster start` flags.
    pub fn start_in_with(dir: tempfile::TempDir, engines: u32, flags: &[&str]) -> Self {
        Self::start_dir(dir, engines, flags, None)
    }

    fn start_inner(engines: u32, flags: &[&str], cache: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_dir(dir, engines, flags, cache)
    }

    fn start_dir(
        dir: tempfile::TempDir,
        engines: u32,
        flags: &[&str],
        cache: Option<&Path>,
    ) -> Self {
        let n = engines.to_string();
        let mut args = vec!["cluster", "start", "-n", &n, "--daemon"];
        args.extend_from_slice(flags);
        let mut command = wasp_command(&dir);
        command.args(&args);
        if let Some(cache) = cache {
            command.env("WASP_CACHE_DIR", cache);
        }
        let out = command.output().expect("spawn wasp");
        assert!(
            out.status.success(),
            "cluster start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// The profile folder.
    pub fn profile(&self) -> PathBuf {
        self.dir.path().join("profile_default")
    }

    /// The client connection file.
    pub fn client_file(&self) -> PathBuf {
        self.profile().join("security/wasp-client.json")
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        Client::connect_file(&self.client_file())
            .await
            .expect("connect")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // `cluster stop` kills what does not exit on request, and removes
        // the pid file; if it failed, kill what the file lists.
        let _ = wasp(&self.dir, &["cluster", "stop"]);
        if let Ok(pids) = std::fs::read_to_string(self.profile().join("cluster.pids")) {
            for (_role, pid) in parse_pids(&pids) {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(pid.to_string())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// The `ROLE PID START` lines of a profile's `cluster.pids`, as (role,
/// pid).
pub fn parse_pids(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let role = fields.next()?.to_owned();
            Some((role, fields.next()?.parse().ok()?))
        })
        .collect()
}

/// The `cluster.pids` of a profile folder as (role, pid), in file order;
/// empty while there is none.
pub fn profile_pids(profile: &Path) -> Vec<(String, u32)> {
    std::fs::read_to_string(profile.join("cluster.pids"))
        .map(|text| parse_pids(&text))
        .unwrap_or_default()
}

/// The pid recorded for `role` in a profile folder's `cluster.pids`, if
/// one runs (the supervisor lists only what runs now).
pub fn role_pid(profile: &Path, role: &str) -> Option<u32> {
    profile_pids(profile)
        .into_iter()
        .find_map(|(name, pid)| (name == role).then_some(pid))
}

/// Kills process `pid` with SIGKILL, as `kill -9` does: a death nothing
/// can tidy up after.
pub fn kill9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid}");
}

/// The pid of the process `wasp cluster start` recorded for `role`
/// (`controller`, `engine-0`, ...) in the cluster's `cluster.pids`.
pub fn cluster_pid(cluster: &Cluster, role: &str) -> u32 {
    let text = std::fs::read_to_string(cluster.profile().join("cluster.pids")).expect("pids");
    parse_pids(&text)
        .into_iter()
        .find_map(|(name, pid)| (name == role).then_some(pid))
        .unwrap_or_else(|| panic!("no {role} in cluster.pids: {text}"))
}

/// The peak resident memory of process `pid` (`VmHWM` in its
/// /proc/PID/status), in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// Whether process `pid` runs: it has a /proc entry and is not a zombie
/// (the engines of a daemon cluster are reaped by init, maybe later).
pub fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Runs the `wasp` binary in the cluster's profile folder.
pub fn wasp(dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    wasp_command(dir).args(args).output().expect("spawn wasp")
}

/// The `wasp` binary with the profile folder and a compile cache in `dir`,
/// run under umask 022 (a common default, which leaves new files readable
/// by others): what wasp keeps private, it must make private itself.
pub fn wasp_command(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        r#"umask 022 && exec "$0" "$@""#,
        env!("CARGO_BIN_EXE_wasp"),
    ]);
    command
        .env("WASP_DIR", dir.path())
        .env("WASP_CACHE_DIR", dir.path().join("cache"));
    command
}

/// Runs `command` (a `wasp` invocation with `args`) and prints the command
/// and its output, which the test harness shows when the test fails (as
/// ripgrep's tests/util.rs does).
pub fn output_shown(command: &mut Command, args: &[&str]) -> std::process::Output {
    let output = command.args(args).output().expect("spawn wasp");
    eprintln!(
        "$ wasp {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A process started by a test, killed when the test ends, passing or
/// not.
pub struct Process {
    /// The process.
    pub child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Process {
    /// Starts `command` with its output in `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn wasp");
        Self { child, log }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
