//! Per-task limits travel from the client to the engine (issue 10, item 3):
//! both views' `timeout` and `memory` flags, and `wasp apply` / `wasp
//! map`'s `--timeout` and `--memory`, reach the engine in each task's
//! `RunTask.limits`, through a real controller process over QUIC.
//!
//! The engine here is a wire-level one that records what it is sent, so
//! that the test sees exactly what an engine receives; tests/cluster.rs has
//! the end-to-end test of the limits' effect on real engines.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use wasp_client::{Client, Module};
use wasp_net::{ConnectionFile, FramedRecv};
use wasp_proto::msg::{EngineHello, FromEngine, Role, RunTask, Slotted, TaskLimits, ToEngine};
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::wasp_command;

/// A process killed when the test ends, passing or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An engine that only records the tasks it is sent (and stays alive).
struct WireEngine {
    recv: FramedRecv,
    runs: VecDeque<RunTask>,
    _session: tokio::task::JoinHandle<()>,
}

impl WireEngine {
    async fn join(file: &Path) -> Self {
        let file = ConnectionFile::read(file).expect("engine connection file");
        let hello = EngineHello {
            name: "wire".into(),
            cached: Vec::new(),
            slots: 1,
        };
        let session = wasp_net::dial(&file, Role::Engine(hello))
            .await
            .expect("joins");
        let mut send = session.send;
        let (endpoint, connection) = (session.endpoint, session.connection);
        // Heartbeats keep it registered however long the test takes.
        let beat = tokio::spawn(async move {
            let _keep = (endpoint, connection);
            loop {
                let beat = Slotted {
                    slot: 0,
                    msg: FromEngine::Heartbeat { resident_bytes: 1 },
                };
                if send.send(&vec![beat]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self {
            recv: session.recv,
            runs: VecDeque::new(),
            _session: beat,
        }
    }

    /// The next task the controller sends.
    async fn next_run(&mut self) -> RunTask {
        loop {
            if let Some(run) = self.runs.pop_front() {
                return run;
            }
            let batch: Vec<Slotted<ToEngine>> =
                tokio::time::timeout(Duration::from_secs(60), self.recv.recv())
                    .await
                    .expect("a task within a minute")
                    .expect("a frame")
                    .expect("the controller keeps the connection");
            self.runs
                .extend(batch.into_iter().filter_map(|slotted| match slotted.msg {
                    ToEngine::Run(run) => Some(run),
                    _ => None,
                }));
        }
    }
}

fn limits(timeout_us: Option<u64>, memory_bytes: Option<u64>) -> TaskLimits {
    TaskLimits {
        timeout_us,
        memory_bytes,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn task_limits_reach_the_engine_from_both_views_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile_default");
    // hwm 0: every task is sent at once, none waits for an answer.
    let controller = wasp_command(&dir)
        .args(["controller", "--hwm", "0"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn wasp controller");
    let _controller = Killed(controller);
    let engine_file = profile.join("security/wasp-engine.json");
    let client_file = profile.join("security/wasp-client.json");
    for _ in 0..600 {
        if engine_file.exists() && client_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut engine = WireEngine::join(&engine_file).await;
    let rc = Client::connect_file(&client_file).await.expect("connect");
    assert_eq!(rc.ids().await.unwrap(), vec![EngineId(0)]);
    let area = Module::from_file(tasks::AREA).unwrap();
    let args = || vec![Value::S64(3), Value::S64(7)];

    // LoadBalancedView: no flags, then both, then map chunks.
    let plain = rc
        .load_balanced_view()
        .apply_async(&area, "area", args())
        .await
        .unwrap();
    let run = engine.next_run().await;
    assert_eq!(run.id, plain.msg_ids()[0]);
    assert_eq!(run.limits, TaskLimits::default());

    let lview = rc
        .load_balanced_view()
        .with_timeout(Duration::from_millis(1500))
        .with_memory(16 << 20);
    let applied = lview.apply_async(&area, "area", args()).await.unwrap();
    let run = engine.next_run().await;
    assert_eq!(run.id, applied.msg_ids()[0]);
    assert_eq!(run.limits, limits(Some(1_500_000), Some(16 << 20)));

    let widths: Vec<Value> = (1..5).map(Value::S64).collect();
    let mapped = lview
        .with_chunksize(2)
        .map_async(&area, "area", vec![widths.clone(), widths.clone()])
        .await
        .unwrap();
    for id in mapped.msg_ids() {
        let run = engine.next_run().await;
        assert_eq!(run.id, *id);
        assert_eq!(run.limits, limits(Some(1_500_000), Some(16 << 20)));
    }

    // DirectView: apply and map.
    let dv = rc
        .view(vec![EngineId(0)])
        .with_timeout(Duration::from_secs(2));
    let applied = dv.apply(&area, "area", args()).await.unwrap();
    let run = engine.next_run().await;
    assert_eq!(run.id, applied.msg_ids()[0]);
    assert_eq!(run.limits, limits(Some(2_000_000), None));
    let dv = dv.with_memory(1 << 20);
    let mapped = dv
        .map_async(&area, "area", vec![widths.clone(), widths])
        .await
        .unwrap();
    let run = engine.next_run().await;
    assert_eq!(run.id, mapped.msg_ids()[0]);
    assert_eq!(run.limits, limits(Some(2_000_000), Some(1 << 20)));

    // The CLI: `wasp apply` (both views) and `wasp map`; flags go before
    // apply's call arguments, which take anything after them. They wait for
    // results that never come; the test ends them.
    let cli = |args: &[&str]| {
        Killed(
            wasp_command(&dir)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn wasp"),
        )
    };
    let _apply = cli(&[
        "apply",
        "--timeout",
        "250ms",
        "--memory",
        "8MiB",
        tasks::AREA,
        "area",
        "3",
        "7",
    ]);
    assert_eq!(
        engine.next_run().await.limits,
        limits(Some(250_000), Some(8 << 20))
    );
    let _direct = cli(&[
        "apply",
        "--targets",
        "0",
        "--memory",
        "2MiB",
        tasks::AREA,
        "area",
        "3",
        "7",
    ]);
    assert_eq!(engine.next_run().await.limits, limits(None, Some(2 << 20)));
    let input = dir.path().join("pairs.jsonl");
    std::fs::write(&input, "[1, 2]\n[3, 4]\n").unwrap();
    let _map = cli(&[
        "map",
        tasks::AREA,
        "area",
        input.to_str().unwrap(),
        "--timeout",
        "1m",
    ]);
    for _ in 0..2 {
        assert_eq!(
            engine.next_run().await.limits,
            limits(Some(60_000_000), None)
        );
    }
}
