//! A real local cluster for the benchmarks: `wasp cluster start -n N
//! --daemon` (a controller and N engine processes, QUIC on loopback) in a
//! temporary profile folder, stopped when dropped.
//!
//! The `wasp` binary is the one built beside the running benchmark
//! (`target/release/wasp`), so a benchmark never measures a stale or
//! debug build by accident.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context, bail};
use wasp_client::Client;

/// The `wasp` binary beside the running executable.
pub fn wasp_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let wasp = exe.with_file_name("wasp");
    if !wasp.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -j2 -p wasp-cli -p wasp-bench`",
            wasp.display()
        );
    }
    Ok(wasp)
}

/// One large frame read by a process of the cluster, from its log.
#[derive(Clone, Debug)]
pub struct HopRead {
    /// `controller` or `engine-N`.
    pub role: String,
    /// When it ended, as the log's RFC 3339 timestamp (sorts as time).
    pub at: String,
    /// The frame's bytes.
    pub bytes: usize,
    /// From its first byte to its last, ms.
    pub ms: f64,
}

impl HopRead {
    /// A `read a large frame bytes=N ms=X` line of `role`'s log, if it is
    /// one.
    fn parse(role: &str, line: &str) -> Option<Self> {
        if !line.contains("read a large frame") {
            return None;
        }
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
        };
        Some(Self {
            role: role.to_owned(),
            at: line.split_whitespace().next()?.to_owned(),
            bytes: field("bytes")?.parse().ok()?,
            ms: field("ms")?.parse().ok()?,
        })
    }
}

/// A running local cluster in a profile folder of its own.
pub struct Cluster {
    wasp: PathBuf,
    dir: tempfile::TempDir,
    cache: PathBuf,
    stopped: bool,
}

impl Cluster {
    /// Starts a controller and `engines` engines whose compile cache is a
    /// fresh, empty folder inside the profile: every module compiles once.
    pub fn start(engines: u32) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cache = dir.path().join("cache");
        Self::start_with_cache(engines, dir, cache)
    }

    /// Starts a controller and `engines` engines in the profile folder
    /// `dir`, with `cache` as the engines' compile cache (`WASP_CACHE_DIR`),
    /// so that a caller can hand over a cache primed by an earlier cluster.
    /// Returns once every engine has joined (that is what `--daemon` waits
    /// for).
    pub fn start_with_cache(
        engines: u32,
        dir: tempfile::TempDir,
        cache: PathBuf,
    ) -> anyhow::Result<Self> {
        Self::start_in(engines, dir, cache, &[], &[])
    }

    /// Starts a controller and `engines` engines with these further `wasp
    /// cluster start` flags (e.g. `--heartbeat-timeout 3s`).
    pub fn start_with(engines: u32, flags: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cache = dir.path().join("cache");
        Self::start_in(engines, dir, cache, flags, &[])
    }

    /// Starts a controller and `engines` engines, with these further `wasp
    /// cluster start` flags, whose logs also hold the time each large frame
    /// took to arrive ([`Cluster::hop_reads`]).
    pub fn start_logging_hops(engines: u32, flags: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cache = dir.path().join("cache");
        let filter = format!("warn,wasp_engine=info,{}=debug", wasp_net::framed::HOP_LOG);
        Self::start_in(engines, dir, cache, flags, &[("RUST_LOG", &filter)])
    }

    fn start_in(
        engines: u32,
        dir: tempfile::TempDir,
        cache: PathBuf,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut cluster = Self {
            wasp: wasp_binary()?,
            dir,
            cache,
            // Nothing to stop until the start succeeded.
            stopped: true,
        };
        let n = engines.to_string();
        let mut args = vec!["cluster", "start", "-n", &n, "--daemon"];
        args.extend_from_slice(flags);
        // The daemon's controller and engines inherit `env`.
        let out = cluster
            .command(&args)
            .envs(env.iter().copied())
            .output()
            .with_context(|| format!("running wasp {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "wasp cluster start -n {engines} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cluster.stopped = false;
        Ok(cluster)
    }

    /// Runs `wasp ARGS` against this cluster's profile and cache.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("running wasp {}", args.join(" ")))
    }

    /// `wasp ARGS` against this cluster's profile and cache, to run.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.wasp);
        command
            .args(args)
            .env("WASP_DIR", self.dir.path())
            .env("WASP_CACHE_DIR", &self.cache);
        command
    }

    /// Every large frame a process of a cluster started with
    /// [`Cluster::start_logging_hops`] has read so far, in the order they
    /// ended: the controller's are hops from a client, an engine's hops
    /// from the controller.
    pub fn hop_reads(&self) -> anyhow::Result<Vec<HopRead>> {
        let dir = self.dir.path().join("profile_default/log");
        let mut reads = Vec::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let path = entry?.path();
            let Some(role) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if role == "supervisor" {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            reads.extend(text.lines().filter_map(|line| HopRead::parse(role, line)));
        }
        reads.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(reads)
    }

    /// The client connection file.
    pub fn client_file(&self) -> PathBuf {
        self.dir
            .path()
            .join("profile_default/security/wasp-client.json")
    }

    /// Connects a client.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::connect_file(&self.client_file())
            .await
            .context("connecting to the benchmark cluster")
    }

    /// Adds a tenant of fair-share `weight` with `wasp tenant add` (as the
    /// profile's admin) and connects a client with the connection file it
    /// prints (`security/client-NAME.json`).
    pub async fn add_tenant(&self, name: &str, weight: u32) -> anyhow::Result<Client> {
        let weight = weight.to_string();
        let out = self.run(&["tenant", "add", name, "--weight", &weight])?;
        if !out.status.success() {
            bail!(
                "wasp tenant add {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let printed = String::from_utf8(out.stdout)
            .with_context(|| format!("wasp tenant add {name} printed something not UTF-8"))?;
        let file = PathBuf::from(printed.trim());
        if file.as_os_str().is_empty() {
            bail!("wasp tenant add {name} printed no connection file");
        }
        Client::connect_file(&file)
            .await
            .with_context(|| format!("connecting as tenant {name} ({})", file.display()))
    }

    /// The process ids of the cluster's processes in this role
    /// (`controller`, `supervisor`; `engine` for every `engine-N`), from
    /// `cluster.pids` (`ROLE PID START` lines, rewritten by the supervisor
    /// at every restart).
    pub fn pids(&self, role: &str) -> anyhow::Result<Vec<u32>> {
        let path = self.dir.path().join("profile_default/cluster.pids");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let name = fields.next()?;
                let numbered = name
                    .strip_prefix(role)
                    .is_some_and(|rest| rest.starts_with('-'));
                (name == role || numbered).then(|| fields.next())
            })
            .map(|pid| {
                pid.and_then(|p| p.parse().ok())
                    .with_context(|| format!("a {role} line without a pid in {}", path.display()))
            })
            .collect()
    }

    /// The controller's process id.
    pub fn controller_pid(&self) -> anyhow::Result<u32> {
        self.pids("controller")?
            .first()
            .copied()
            .context("no controller in cluster.pids")
    }

    /// Stops the cluster (`wasp cluster stop`), reporting a failure that
    /// dropping it would swallow.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stopped = true;
        let out = self.run(&["cluster", "stop"])?;
        if !out.status.success() {
            bail!(
                "wasp cluster stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.run(&["cluster", "stop"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HopRead;

    #[test]
    fn a_hop_is_read_from_its_log_line() {
        let line = "2026-12-06T21:30:00.123456Z DEBUG wasp_net::hop: read a large frame \
                    bytes=8000090 ms=12.345";
        let read = HopRead::parse("engine-1", line).expect("a hop");
        assert_eq!(
            (read.role.as_str(), read.at.as_str(), read.bytes, read.ms),
            ("engine-1", "2026-12-06T21:30:00.123456Z", 8_000_090, 12.345)
        );
        assert!(HopRead::parse("controller", "2026-12-06T21:30:00Z INFO joined").is_none());
    }
}
