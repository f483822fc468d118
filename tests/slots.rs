//! Issue 15, item 3: many engines per process. `wasp engine --slots N`
//! serves N engines from one process and one connection: N engine ids, N
//! namespaces, one task at a time per slot, and the process's compiled
//! modules shared (a module is sent once per process, not once per slot).
//!
//! Nothing here measures time: the tests assert what the controller
//! reports, what tasks return and the order of their start and end times.

use std::time::{Duration, Instant};

use wasp_client::{Client, Module, reference};
use wasp_proto::msg::EngineStatus;
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::{Process, wasp_command};

/// How long processes may take to start and join on a loaded machine.
const JOIN: Duration = Duration::from_secs(60);

/// A controller and engine processes of a test, killed when it ends.
struct Processes {
    dir: tempfile::TempDir,
    _controller: Process,
    engines: Vec<Process>,
}

impl Processes {
    /// `wasp controller`, then one `wasp engine --slots S` per entry of
    /// `slots`.
    fn start(slots: &[u32]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = wasp_command(&dir);
        command.arg("controller");
        let controller = Process::spawn(command, dir.path().join("controller.log"));
        // Engines started before the controller is up wait for it (their
        // start timeout), so there is nothing to wait for here.
        let engines = slots
            .iter()
            .enumerate()
            .map(|(i, slots)| {
                let mut command = wasp_command(&dir);
                command.args(["engine", "--slots", &slots.to_string()]);
                Process::spawn(command, dir.path().join(format!("engine-{i}.log")))
            })
            .collect();
        Self {
            dir,
            _controller: controller,
            engines,
        }
    }

    async fn client(&self) -> Client {
        let file = self
            .dir
            .path()
            .join("profile_default/security/wasp-client.json");
        let deadline = Instant::now() + JOIN;
        loop {
            if let Ok(client) = Client::connect_file(&file).await {
                return client;
            }
            assert!(Instant::now() < deadline, "the controller did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `n` engines have joined; their status, by id.
    async fn joined(&self, rc: &Client, n: usize) -> Vec<EngineStatus> {
        let deadline = Instant::now() + JOIN;
        loop {
            let status = rc.status().await.expect("status");
            if status.engines.len() >= n {
                return status.engines;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} engines joined: {:?}\n{}",
                status.engines.len(),
                status.engines,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        self.engines
            .iter()
            .map(|e| std::fs::read_to_string(&e.log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The pid in an engine's name, `host:pid` or `host:pid#slot`.
fn pid_of(name: &str) -> Option<u32> {
    let process = name.split('#').next()?;
    process.rsplit(':').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_process_serves_several_engines_with_their_own_ids_and_namespaces() {
    let cluster = Processes::start(&[4, 1]);
    let rc = cluster.client().await;
    let engines = cluster.joined(&rc, 5).await;
    assert_eq!(engines.len(), 5, "{engines:?}");
    let slotted = cluster.engines[0].pid();
    let single = cluster.engines[1].pid();
    let of_process = |pid| -> Vec<&EngineStatus> {
        engines
            .iter()
            .filter(|e| pid_of(&e.name) == Some(pid))
            .collect()
    };
    let slots = of_process(slotted);
    assert_eq!(slots.len(), 4, "four engines of one process: {engines:?}");
    let mut names: Vec<&str> = slots.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    for (slot, name) in names.iter().enumerate() {
        assert!(name.ends_with(&format!(":{slotted}#{slot}")), "{names:?}");
    }
    // Contiguous ids, in slot order.
    let first = slots.iter().map(|e| e.id.0).min().expect("four");
    let mut ids: Vec<u32> = slots.iter().map(|e| e.id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (first..first + 4).collect::<Vec<_>>());
    assert_eq!(of_process(single).len(), 1, "{engines:?}");
    assert!(
        !of_process(single)[0].name.contains('#'),
        "a process of one slot keeps its plain name"
    );

    // A namespace per engine: each holds its own id, and a task resolves
    // a Reference in its own.
    let all: Vec<EngineId> = engines.iter().map(|e| e.id).collect();
    let dv = rc.view(all.clone());
    let own: Vec<Value> = all.iter().map(|id| Value::F64(f64::from(id.0))).collect();
    dv.scatter("me", own.clone(), true).await.expect("scatter");
    assert_eq!(dv.pull("me").await.expect("pull"), own);
    let sleep = Module::from_file(tasks::SLEEP).expect("sleep task");
    dv.push(vec![("zero".into(), Value::F64(0.0))])
        .await
        .expect("push");
    let here = dv
        .apply_args(&sleep, "sleep-here", vec![reference("zero")])
        .await
        .expect("apply")
        .get(None)
        .await
        .expect("every engine runs it");
    let expected: Vec<Option<Value>> = all.iter().map(|id| Some(Value::U32(id.0))).collect();
    assert_eq!(here, expected, "each engine says its own id");

    // The module went to each process once: to one engine of the slotted
    // process, and to the single one.
    let status = rc.status().await.expect("status").engines;
    let size = std::fs::metadata(tasks::SLEEP).expect("module").len();
    let sent_to = |pid| -> Vec<u64> {
        status
            .iter()
            .filter(|e| pid_of(&e.name) == Some(pid))
            .map(|e| e.module_bytes_sent)
            .filter(|&bytes| bytes > 0)
            .collect()
    };
    assert_eq!(sent_to(slotted), vec![size], "once per process: {status:?}");
    assert_eq!(sent_to(single), vec![size], "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_slot_runs_one_task_at_a_time_and_the_slots_run_together() {
    let mut cluster = Processes::start(&[3]);
    let rc = cluster.client().await;
    cluster.joined(&rc, 3).await;
    let sleep = Module::from_file(tasks::SLEEP).expect("sleep task");
    // Twelve sleeps of 0.2 s, one per task, balanced over three engines.
    let xs = vec![Value::F64(0.2); 12];
    let view = rc.load_balanced_view();
    let mut ar = view
        .map_async(&sleep, "sleep-here", vec![xs])
        .await
        .expect("map");
    let ran_on = ar.get(None).await.expect("every task succeeds");
    let meta: Vec<_> = ar
        .metadata()
        .into_iter()
        .map(|m| m.expect("finished").clone())
        .collect();
    // Each task says where it ran, as the controller recorded it.
    for (value, meta) in ran_on.iter().zip(&meta) {
        let engine = meta.engine.expect("ran on an engine");
        assert_eq!(value, &Some(Value::U32(engine.0)));
    }
    // One at a time on each engine: its tasks' runs do not overlap.
    let mut by_engine: std::collections::BTreeMap<u32, Vec<(u64, u64)>> = Default::default();
    for meta in &meta {
        let engine = meta.engine.expect("ran on an engine").0;
        by_engine
            .entry(engine)
            .or_default()
            .push((meta.started_us, meta.completed_us));
    }
    for (engine, runs) in &mut by_engine {
        runs.sort_unstable();
        for pair in runs.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "engine {engine} ran two tasks at once: {runs:?}"
            );
        }
    }
    // The slots are engines of their own: the work spread over all three,
    // and two slots of the one process were running at the same moment.
    assert_eq!(by_engine.len(), 3, "{by_engine:?}");
    let runs: Vec<(u32, u64, u64)> = by_engine
        .iter()
        .flat_map(|(engine, runs)| runs.iter().map(|(s, e)| (*engine, *s, *e)))
        .collect();
    let together = runs
        .iter()
        .any(|a| runs.iter().any(|b| a.0 != b.0 && a.1 < b.2 && b.1 < a.2));
    assert!(together, "no two slots ever ran at once: {runs:?}");

    // A shutdown stops every slot, and with them the process, cleanly.
    rc.shutdown().await.expect("shutdown");
    let engine = &mut cluster.engines[0];
    let deadline = Instant::now() + JOIN;
    let status = loop {
        if let Some(status) = engine.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the engine process did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}\n{}", cluster.logs());
}

/// A thousand engines as ten processes of a hundred: all register, and a
/// 100,000-item map over them completes, each result right and every
/// engine given work.
#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_engines_in_ten_processes_share_a_map() {
    let cluster = Processes::start(&[100; 10]);
    let rc = cluster.client().await;
    let engines = cluster.joined(&rc, 1000).await;
    assert_eq!(engines.len(), 1000);
    let pow10 = Module::from_file(tasks::POW10).expect("pow10 task");
    let xs: Vec<Value> = (0..100_000i64).map(|x| Value::S64(x % 32)).collect();
    let results = rc
        .load_balanced_view()
        .map(&pow10, "pow10", vec![xs])
        .await
        .expect("the map completes");
    assert_eq!(results.len(), 100_000);
    for (x, result) in (0..100_000i64).zip(&results) {
        assert_eq!(result, &Some(Value::S64((x % 32).pow(10))), "pow10({x})");
    }
    let status = rc.status().await.expect("status").engines;
    let idle: Vec<_> = status.iter().filter(|e| e.done == 0).collect();
    assert!(idle.is_empty(), "engines given no work: {idle:?}");
    assert_eq!(status.iter().map(|e| e.done).sum::<u64>(), 100_000);
}

#[test]
fn slots_out_of_range_are_refused_with_the_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    for slots in ["0", "1025"] {
        let out = wasp_command(&dir)
            .args(["engine", "--slots", slots])
            .output()
            .expect("spawn wasp");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("1..=1024"), "{slots}: {stderr}");
    }
}

#[test]
fn an_engine_waits_for_a_controller_started_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = wasp_command(&dir);
    command.args(["engine", "--slots", "2", "--start-timeout", "120s"]);
    let engine = Process::spawn(command, dir.path().join("engine.log"));
    // It is waiting: no connection file yet, and it has not exited.
    let log = || std::fs::read_to_string(&engine.log).unwrap_or_default();
    let deadline = Instant::now() + JOIN;
    while !log().contains("waiting for the controller") {
        assert!(Instant::now() < deadline, "{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut command = wasp_command(&dir);
    command.arg("controller");
    let _controller = Process::spawn(command, dir.path().join("controller.log"));
    while !log().contains("engine joined the controller") {
        assert!(Instant::now() < deadline, "{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = log();
    assert!(
        log.find("waiting for the controller") < log.find("engine joined the controller"),
        "{log}"
    );
}

#[test]
fn an_engine_without_a_controller_gives_up_at_its_start_timeout_saying_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = wasp_command(&dir)
        .args(["engine", "--start-timeout", "1s"])
        .output()
        .expect("spawn wasp");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not reach a controller within the start timeout of 1s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wasp-engine.json"),
        "names the file: {stderr}"
    );
}
