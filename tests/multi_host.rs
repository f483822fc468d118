//! wasp across hosts over a bad network (issue 15): a controller, two
//! engines and a client, each in a network namespace of its own (a
//! simulated host), reaching the controller only through a lossy UDP relay
//! in the root namespace, which the controller's `--location` names.
//!
//! Over it a 10,000-item map completes with every result correct, once on
//! a clean link and once with 5% loss, 50 ms delay and reordering each
//! way; then a third map completes although the relay drops everything
//! for 5 s in its middle, longer than the controller's heartbeat timeout,
//! so that the engines are declared dead and must reconnect. Nothing is
//! lost or duplicated.
//!
//! Needs root and iproute2 (as in CI); without them it fails saying why.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wasp_task_artifacts as tasks;

#[path = "common/netns.rs"]
mod netns;
#[path = "common/relay.rs"]
mod relay;

use netns::{Host, Hosts};
use relay::{Link, Relay};

/// Items in each map.
const ITEMS: usize = 10_000;
/// The port the controller listens on, in its own namespace (nothing else
/// is there to take it).
const CONTROLLER_PORT: u16 = 5000;
/// How long a map may go before the test calls it stalled: a safety net
/// that turns a hang into a failure with the logs, not a timing assertion.
const STALLED: Duration = Duration::from_secs(600);

const LOSSY: Link = Link {
    loss: 0.05,
    delay: Duration::from_millis(50),
    jitter: Duration::from_millis(20),
};

fn wasp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_wasp")
}

/// A process started in a namespace, killed on drop.
struct Process {
    name: &'static str,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        // `ip netns exec` execs the program: this pid is wasp's own.
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("stopped {}", self.name);
    }
}

/// The processes' log files, printed (their last lines) if the test fails.
struct Logs {
    dir: PathBuf,
}

impl Logs {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- {} (last {} lines)\n{}",
                entry.path().display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// Starts `wasp args` inside `host`, its stderr (and stdout) in a log.
fn start(name: &'static str, host: &Host, dir: &Path, logs: &Logs, args: &[String]) -> Process {
    let log = std::fs::File::create(logs.file(name)).expect("creates a log file");
    let mut command = Hosts::command(host, wasp_bin());
    command
        .args(args)
        .env("WASP_DIR", dir)
        .env("WASP_CACHE_DIR", dir.join(format!("cache-{name}")))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clones a file handle"))
        .stderr(log);
    eprintln!("$ ip netns exec {} wasp {}", host.ns, args.join(" "));
    let child = command
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {name}: {err}"));
    Process { name, child }
}

/// Runs `wasp args` in `host` to its end, with its output.
fn wasp_in(host: &Host, dir: &Path, args: &[&str]) -> std::process::Output {
    Hosts::command(host, wasp_bin())
        .args(args)
        .env("WASP_DIR", dir)
        .output()
        .expect("runs wasp")
}

/// The ids of the engines the controller has now, as `wasp cluster
/// status` lists them (`  engine N: ...`), asked from `client`'s host.
fn engine_ids(client: &Host, dir: &Path, file: &Path) -> Result<Vec<u32>, String> {
    let out = wasp_in(
        client,
        dir,
        &["cluster", "status", "--file", &file.to_string_lossy()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "cluster status failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("engine "))
        .filter_map(|rest| rest.split(':').next()?.parse().ok())
        .collect())
}

/// Waits until the controller lists `n` engines, and returns their ids.
fn wait_for_engines(client: &Host, dir: &Path, file: &Path, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = engine_ids(client, dir, file);
        if let Ok(ids) = &ids
            && ids.len() == n
        {
            return ids.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{n} engines did not join within 60 s: {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One map's outcome.
struct Mapped {
    results: Vec<String>,
    wall: Duration,
    summary: String,
}

/// Runs `wasp map` of `area` over `input` in `client`'s host, results in
/// completion order, calling `tick` with the number of results so far
/// every 100 ms and at each result (the partition's trigger).
fn map(
    client: &Host,
    dir: &Path,
    file: &Path,
    input: &Path,
    mut tick: impl FnMut(usize),
) -> Mapped {
    let args = [
        "map",
        "--file",
        &file.to_string_lossy(),
        tasks::AREA,
        "area",
        &input.to_string_lossy(),
        "--unordered",
    ]
    .map(str::to_owned);
    eprintln!("$ ip netns exec {} wasp {}", client.ns, args.join(" "));
    let started = Instant::now();
    let mut child = Hosts::command(client, wasp_bin())
        .args(&args)
        .env("WASP_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts wasp map");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut results = Vec::with_capacity(ITEMS);
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => results.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        tick(results.len());
        if started.elapsed() > STALLED {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the map stalled: {} of {ITEMS} results after {STALLED:?}; stderr: {}",
                results.len(),
                errors.join().unwrap_or_default()
            );
        }
    }
    let status = child.wait().expect("waits for wasp map");
    let wall = started.elapsed();
    let stderr = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "wasp map failed ({status}) after {} results: {stderr}",
        results.len()
    );
    Mapped {
        results,
        wall,
        summary: stderr.lines().last().unwrap_or_default().to_owned(),
    }
}

/// Checks a map's results: exactly one per item, each `area(i, i + 1)`,
/// whose values are all distinct, so a duplicate or a loss shows.
fn check(label: &str, mapped: &Mapped) {
    let expected: HashSet<i64> = (0..ITEMS as i64).map(|i| i * (i + 1)).collect();
    let mut seen = HashSet::with_capacity(ITEMS);
    for line in &mapped.results {
        let value: i64 = line
            .parse()
            .unwrap_or_else(|_| panic!("{label}: result {line:?} is not an s64"));
        assert!(
            expected.contains(&value),
            "{label}: {value} is no item's area"
        );
        assert!(seen.insert(value), "{label}: {value} arrived twice");
    }
    assert_eq!(
        mapped.results.len(),
        ITEMS,
        "{label}: {} results for {ITEMS} items",
        mapped.results.len()
    );
    eprintln!(
        "{label}: {ITEMS} results, all correct, in {:.2} s ({})",
        mapped.wall.as_secs_f64(),
        mapped.summary
    );
}

#[test]
fn a_map_across_hosts_over_lossy_links_survives_a_partition() {
    // Dropped last: the processes in the namespaces go first.
    let hosts = Hosts::create(&["ctl", "eng0", "eng1", "cli"]).unwrap_or_else(|err| {
        panic!("cannot build the test's network namespaces (run as root, with iproute2): {err}")
    });
    let [controller_host, engine0_host, engine1_host, client_host] = hosts.hosts() else {
        unreachable!("four roles, four hosts")
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the relay");
    // The relay listens on the root namespace's end of the controller's
    // link; the other hosts get one route, to it.
    let relay = runtime
        .block_on(Relay::start(
            SocketAddr::new(IpAddr::V4(controller_host.gateway), 0),
            IpAddr::V4(controller_host.gateway),
            SocketAddr::new(IpAddr::V4(controller_host.ip), CONTROLLER_PORT),
            Link::CLEAN,
            u64::from(std::process::id()),
        ))
        .expect("the relay binds");
    for host in [engine0_host, engine1_host, client_host] {
        hosts
            .route(host, controller_host.gateway)
            .unwrap_or_else(|err| panic!("cannot route to the relay: {err}"));
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let logs = Logs {
        dir: dir.path().join("logs"),
    };
    std::fs::create_dir_all(&logs.dir).expect("creates the log folder");
    let profile = dir.path().join("profile_default");
    let engine_file = profile.join("security/wasp-engine.json");
    let client_file = profile.join("security/wasp-client.json");

    let _controller = start(
        "controller",
        controller_host,
        dir.path(),
        &logs,
        &[
            "controller".to_owned(),
            "--ip".to_owned(),
            controller_host.ip.to_string(),
            "--port".to_owned(),
            CONTROLLER_PORT.to_string(),
            "--location".to_owned(),
            relay.addr().to_string(),
            // Shorter than the partition, so that it declares the engines
            // dead and they must reconnect.
            "--heartbeat-timeout".to_owned(),
            "3s".to_owned(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let written = loop {
        if let Ok(file) = wasp_net::ConnectionFile::read(&engine_file) {
            break file;
        }
        assert!(
            Instant::now() < deadline,
            "the controller wrote no engine file within 30 s: {}",
            logs.read("controller")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        written.address,
        relay.addr(),
        "the engine file names the location, not where the controller listens"
    );
    let client_conn = wasp_net::ConnectionFile::read(&client_file).expect("the client file");
    assert_eq!(client_conn.address, relay.addr(), "so does the client file");

    let _engines = [("engine-0", engine0_host), ("engine-1", engine1_host)].map(|(name, host)| {
        start(
            name,
            host,
            dir.path(),
            &logs,
            &[
                "engine".to_owned(),
                "--file".to_owned(),
                engine_file.to_string_lossy().into_owned(),
                "--reconnect-timeout".to_owned(),
                "120s".to_owned(),
            ],
        )
    });
    let before = wait_for_engines(client_host, dir.path(), &client_file, 2);
    eprintln!("engines joined through the relay: ids {before:?}");

    let input = dir.path().join("items.jsonl");
    let items: String = (0..ITEMS).map(|i| format!("[{i}, {}]\n", i + 1)).collect();
    std::fs::write(&input, items).expect("writes the items");
    let few = dir.path().join("few.jsonl");
    std::fs::write(&few, "[2, 3]\n[4, 5]\n").expect("writes the warm-up items");

    // Upload and compile the module first, so that the clean run's time
    // is the map's alone.
    let mut warm = map(client_host, dir.path(), &client_file, &few, |_| {}).results;
    warm.sort();
    assert_eq!(warm, ["20", "6"], "the warm-up map");

    let clean = map(client_host, dir.path(), &client_file, &input, |_| {});
    check("clean link", &clean);

    relay.set_link(LOSSY);
    let lossy = map(client_host, dir.path(), &client_file, &input, |_| {});
    check("lossy link", &lossy);
    eprintln!(
        "lossy over clean wall time: {:.2}x ({:.2} s over {:.2} s; 5% loss, 50 ms + up to 20 ms delay each way)",
        lossy.wall.as_secs_f64() / clean.wall.as_secs_f64(),
        lossy.wall.as_secs_f64(),
        clean.wall.as_secs_f64()
    );
    eprintln!("relay so far: {:?}", relay.stats());

    // The partition starts once a tenth of the results are in, and lasts
    // 5 s, more than the controller's 3 s heartbeat timeout.
    let mut partitioned_at: Option<Instant> = None;
    let mut healed = false;
    let partitioned = map(
        client_host,
        dir.path(),
        &client_file,
        &input,
        |done| match partitioned_at {
            None if done >= ITEMS / 10 => {
                relay.partition();
                partitioned_at = Some(Instant::now());
                eprintln!("partition at {done} results");
            }
            Some(at) if !healed && at.elapsed() >= Duration::from_secs(5) => {
                relay.heal();
                healed = true;
                eprintln!("healed at {done} results");
            }
            _ => {}
        },
    );
    assert!(healed, "the map ended before the partition healed");
    check("through a 5 s partition", &partitioned);
    let stats = relay.stats();
    eprintln!("relay: {stats:?}");
    assert!(stats.partitioned > 0, "the partition dropped nothing");

    // The controller declared both engines dead during the partition; each
    // reconnected, and was given a new id.
    let after = wait_for_engines(client_host, dir.path(), &client_file, 2);
    eprintln!("engines after the partition: ids {after:?}");
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "both engines reconnected with new ids after the partition: before {before:?}, after {after:?}"
    );
}
