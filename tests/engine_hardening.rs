//! Issue 10, the engine's side, end to end on real processes: result bombs
//! stop at the result limit with the engine's peak memory bounded, a start
//! function that loops is stopped by the wall-time limit, and an oversize
//! chunk fails its own task, never the engine's connection.

use wasp_client::Module;
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

mod common;
use common::{Cluster, cluster_pid, output_shown, peak_rss};

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn result_bombs_fail_with_the_result_limit_and_the_engine_stays_small() {
    // Fails on main: a list of 10 million empty strings was lifted in full
    // and stopped only by wasmtime's default hostcall fuel, with an error
    // naming no wasp limit; a million bools cost the host ~120 MB.
    let cluster = Cluster::start(1);
    let engine_pid = cluster_pid(&cluster, "engine-0");
    let rc = cluster.client().await;
    let evil = Module::from_file(tasks::EVIL).expect("evil");
    let view = rc.load_balanced_view();
    // 1 million bools fit the default 64 MiB (32 bytes each as host memory).
    let Some(Value::List(items)) = view
        .apply_sync(&evil, "bool-bomb", vec![Value::U32(1_000_000)])
        .await
        .expect("a million bools fit")
    else {
        panic!("not a list")
    };
    assert_eq!(items.len(), 1_000_000);
    for (func, n) in [
        ("bool-bomb", 10_000_000),
        ("bool-bomb", 100_000_000),
        ("bool-bomb", 400_000_000),
        ("empty-strings", 10_000_000),
        ("empty-strings", 50_000_000),
    ] {
        let err = view
            .apply_sync(&evil, func, vec![Value::U32(n)])
            .await
            .expect_err("over the result limit")
            .to_string();
        assert!(
            err.contains("task exceeded the result size limit (result_bytes = 64 MiB)"),
            "{func}({n}): {err}"
        );
        // The next task succeeds.
        let fits = view
            .apply_sync(&evil, "huge-result", vec![Value::U64(3)])
            .await
            .expect("the engine still serves");
        assert_eq!(fits, Some(Value::String("xxx".into())));
    }
    let peak = peak_rss(engine_pid);
    eprintln!("engine peak RSS after the result bombs: {} MiB", peak / MIB);
    // The memory limit (512 MiB) plus twice the result limit (64 MiB).
    assert!(peak <= (512 + 2 * 64) * MIB, "peak RSS {} MiB", peak / MIB);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_chunk_fails_its_own_task_not_the_connection() {
    // Fails on main: five 60 MiB results summed to a frame over the cap,
    // and the controller dropped the engine's connection.
    let cluster = Cluster::start(1);
    let rc = cluster.client().await;
    let evil = Module::from_file(tasks::EVIL).expect("evil");
    let view = rc.load_balanced_view().with_chunksize(5);
    let err = view
        .map(&evil, "huge-result", vec![vec![Value::U64(60 * MIB); 5]])
        .await
        .expect_err("over the result limit")
        .to_string();
    assert!(
        err.contains("task exceeded the result size limit (result_bytes = 64 MiB)"),
        "{err}"
    );
    let fits = rc
        .load_balanced_view()
        .apply_sync(&evil, "huge-result", vec![Value::U64(3)])
        .await
        .expect("the engine still serves");
    assert_eq!(fits, Some(Value::String("xxx".into())));
}

#[test]
fn wasp_run_of_a_looping_start_function_stops_at_the_timeout() {
    // Fails on main: never returns (instantiation had no deadline).
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wasp"));
    command.env("WASP_DIR", dir.path()).arg("run");
    let args = ["--no-cache", "--timeout", "2s", tasks::EVIL_START, "ping"];
    let out = output_shown(&mut command, &args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "task exceeded the wall-time limit (wall_time = 2s): while instantiating (the start functions)"
        ),
        "{stderr}"
    );
}
