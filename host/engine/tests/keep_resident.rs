//! `RuntimeConfig::keep_resident`: a big task's memory kept resident in its
//! pool slot between runs spares the next run the page faults of its
//! memory. Counted as the calling thread's minor page faults, which are
//! events, not time.

mod common;

use wasp_engine::{Limits, Runtime, RuntimeConfig};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

/// The calling thread's minor page faults so far (`/proc/thread-self/stat`,
/// field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
    // The command name, in parentheses, may hold spaces: count fields
    // after its closing parenthesis (field 3 is the first).
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    after_name
        .split_whitespace()
        .nth(10 - 3)
        .and_then(|n| n.parse().ok())
        .expect("minflt")
}

/// The page faults of the second of two `norm` calls over 8 MB, in a
/// runtime keeping `keep_resident` bytes of each memory resident.
async fn faults_of_a_second_run(keep_resident: usize) -> u64 {
    let runtime = Runtime::new(RuntimeConfig {
        limits: Limits {
            arg_bytes: 16 << 20,
            memory_bytes: 64 << 20,
            ..Limits::default()
        },
        max_instances: 2,
        keep_resident,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let bytes = std::fs::read(tasks::NORM).expect("norm");
    let norm = runtime.load_blocking(&bytes).expect("loads");
    let a = vec![Value::from(vec![0.5f64; 1_000_000]), Value::F64(2.0)];
    let expected = (0.25f64 * 1e6).sqrt();
    let mut faults = 0;
    for _ in 0..2 {
        let before = minor_faults();
        let report = runtime.call(&norm, "norm", &a, common::context()).await;
        faults = minor_faults() - before;
        match report.result {
            Ok(Some(Value::F64(got))) => assert!((got - expected).abs() < 1e-6, "{got}"),
            other => panic!("norm: {other:?}"),
        }
    }
    faults
}

/// The default keeps an 8 MB task's memory (the seed's `norm` of a
/// million numbers); 1 MiB does not.
#[tokio::test]
async fn memory_kept_resident_spares_a_big_tasks_page_faults() {
    let small = faults_of_a_second_run(1 << 20).await;
    let default = faults_of_a_second_run(wasp_engine::runtime::KEEP_RESIDENT).await;
    // 8 MB is 2,000 pages of 4 KiB past 1 MiB.
    assert!(
        small > 1_000 && default * 4 < small,
        "page faults of a second run: {small} keeping 1 MiB, {default} by default"
    );
}
