//! A controller and engine processes started one by one (`wasp controller`,
//! `wasp engine --slots N`, the release build beside the benchmark), in a
//! temporary profile folder, so that a benchmark chooses how engines are
//! grouped into processes and which flags the controller gets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasp_client::Client;

use crate::cluster::wasp_binary;

/// The command line of a benchmark of many engines: how they are grouped
/// into processes, the map it times, and where the figures go.
#[derive(Debug, clap::Args)]
pub struct Shape {
    /// Engine processes.
    #[arg(long, default_value_t = 10)]
    pub processes: u32,
    /// Engines (slots) in each.
    #[arg(long, default_value_t = 100)]
    pub slots: u32,
    /// Items of the timed map (chunksize 1).
    #[arg(long, default_value_t = 100_000)]
    pub items: i64,
    /// Where the JSON figures go [default: bench/results/NAME.json].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl Shape {
    /// Where the figures of benchmark `name` go.
    pub fn out(&self, name: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("bench/results/{name}.json")))
    }
}

/// How long processes may take to start or engines to join before the run
/// fails.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A controller in a profile folder of its own, and the engine processes
/// started against it; all killed when dropped.
pub struct Processes {
    wasp: PathBuf,
    dir: tempfile::TempDir,
    controller: Child,
    engines: Vec<Child>,
}

impl Processes {
    /// Starts `wasp controller` and waits for its connection file.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts `wasp controller` with `flags` and waits for its connection
    /// file.
    pub fn start_with(flags: &[&str]) -> anyhow::Result<Self> {
        let wasp = wasp_binary()?;
        let dir = tempfile::tempdir()?;
        let mut args = vec!["controller"];
        args.extend_from_slice(flags);
        let controller = spawn(&wasp, dir.path(), &args, "controller.log")?;
        let this = Self {
            wasp,
            dir,
            controller,
            engines: Vec::new(),
        };
        let file = this.client_file();
        let deadline = Instant::now() + DEADLINE;
        while !file.exists() {
            if Instant::now() > deadline {
                bail!(
                    "the controller did not start: {}",
                    this.log("controller.log")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(this)
    }

    /// The admin's connection file.
    pub fn client_file(&self) -> PathBuf {
        self.dir
            .path()
            .join("profile_default/security/wasp-client.json")
    }

    /// A log of the run's folder (`controller.log`, `engine-N.log`).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Starts an engine process of `slots` engines; its pid.
    pub fn engine(&mut self, slots: u32) -> anyhow::Result<u32> {
        let n = self.engines.len();
        let slots = slots.to_string();
        let child = spawn(
            &self.wasp,
            self.dir.path(),
            &["engine", "--slots", &slots],
            &format!("engine-{n}.log"),
        )?;
        let pid = child.id();
        self.engines.push(child);
        Ok(pid)
    }

    /// The controller's pid.
    pub fn controller_pid(&self) -> u32 {
        self.controller.id()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.engines.iter_mut().chain([&mut self.controller]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `wasp ARGS` in `dir` (its `WASP_DIR`), its output in `log` there.
fn spawn(wasp: &Path, dir: &Path, args: &[&str], log: &str) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join(log))?;
    Command::new(wasp)
        .args(args)
        .env("WASP_DIR", dir)
        .env("WASP_CACHE_DIR", dir.join("cache"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting wasp {}", args.join(" ")))
}

/// Waits until `n` engines are registered.
pub async fn registered(rc: &Client, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ids = rc.ids().await?;
        if ids.len() >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {n} engines registered within {DEADLINE:?}",
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
