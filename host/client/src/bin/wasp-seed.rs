//! `wasp-seed`: the seed notebook (load-balancing.ipynb), cell by cell,
//! against a running cluster: `wasp cluster start -n 2 --daemon`, then
//! `wasp-seed TASK_DIR`, where TASK_DIR holds the built task components
//! (norm.wasm, getpid.wasm, ...). `scripts/demo` does all of it.
//!
//! A program rather than an example, so that it builds with the `wasp`
//! binary in one cargo invocation (examples pull in dev-dependencies, which
//! would build the dependency tree a second time with other features).

use std::path::{Path, PathBuf};
use std::time::Instant;

use wasp_client::{Client, ClientError, Module};
use wasp_proto::{EngineId, Value};

fn load(dir: &Path, name: &str) -> Result<Module, ClientError> {
    Ok(Module::from_file(dir.join(name))?)
}

fn cell(title: &str) {
    println!("\n## {title}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/tasks/wasm32-wasip2/release".into()),
    );
    let profile = std::env::var("WASP_PROFILE").unwrap_or_else(|_| "default".into());
    let rc = Client::connect(&profile).await?;
    let ids = rc.ids().await?;
    println!("rc.ids = {:?}", ids.iter().map(|i| i.0).collect::<Vec<_>>());
    let lview = rc.load_balanced_view();
    let e0 = rc.view(vec![EngineId(0)]);

    cell("apply_sync: e0.apply_sync(norm, A, 2) and lview.apply_sync(norm, A, 2)");
    let norm = load(&dir, "norm.wasm")?;
    let a: Vec<Value> = (0..1024u32)
        .map(|i| Value::F64(f64::from((i * 7919) % 1000) / 1000.0))
        .collect();
    let args = vec![Value::List(a), Value::F64(2.0)];
    println!(
        "e0:    {}",
        e0.apply_sync(&norm, "norm", args.clone()).await?
    );
    println!(
        "lview: {}",
        lview
            .apply_sync(&norm, "norm", args)
            .await?
            .unwrap_or(Value::Option(None))
    );

    cell("which engine: e0.apply_sync(getpid), then 2 * len(ids) load-balanced tasks");
    let getpid = load(&dir, "getpid.wasm")?;
    println!(
        "e0.apply_sync(getpid) = {}",
        e0.apply_sync(&getpid, "getpid", vec![]).await?
    );
    for i in 0..2 * ids.len() {
        let pid = lview
            .apply_sync(&getpid, "getpid", vec![])
            .await?
            .unwrap_or(Value::Option(None));
        println!("task {i} ran on: {pid}");
    }

    cell("map: lview.map(pow10, range(32)) == serial");
    let pow10 = load(&dir, "pow10.wasm")?;
    let xs: Vec<Value> = (0..32).map(Value::S64).collect();
    let serial: Vec<Option<Value>> = (0..32i64).map(|x| Some(Value::S64(x.pow(10)))).collect();
    let parallel = lview
        .clone()
        .with_block(true)
        .map(&pow10, "pow10", vec![xs.clone()])
        .await?;
    println!("serial_result == parallel_result: {}", serial == parallel);
    let amr = lview.map_async(&pow10, "pow10", vec![xs.clone()]).await?;
    println!("map_async msg_ids: {} (chunksize 1)", amr.msg_ids().len());
    let amr = lview
        .clone()
        .with_chunksize(4)
        .map_async(&pow10, "pow10", vec![xs])
        .await?;
    println!(
        "map_async msg_ids: {} (chunksize 4): {:?}",
        amr.msg_ids().len(),
        amr.msg_ids()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );

    cell("map_async(sleep, [1] * 12); wait_interactive; wall_time, elapsed, serial_time");
    let sleep = load(&dir, "sleep.wasm")?;
    let mut amr = lview
        .map_async(&sleep, "sleep", vec![vec![Value::F64(1.0); 12]])
        .await?;
    amr.wait_interactive().await;
    println!(
        "wall_time {:.3} s, elapsed {:.3} s, serial_time {:.3} s",
        amr.wall_time(),
        amr.elapsed(),
        amr.serial_time()
    );

    for chunksize in [1, 4] {
        cell(&format!(
            "sleep_here over [.01 * t for t in range(100)], chunksize {chunksize}: where and when"
        ));
        let times: Vec<Value> = (0..100).map(|t| Value::F64(0.01 * f64::from(t))).collect();
        let mut amr = lview
            .clone()
            .with_chunksize(chunksize)
            .map_async(&sleep, "sleep-here", vec![times])
            .await?;
        let tic = Instant::now();
        let mut i = 0;
        while let Some(engine) = amr.next().await {
            let engine = engine?.unwrap_or(Value::Option(None));
            // Every tenth line, to keep the output readable.
            if i % 10 == 0 || i >= 98 {
                println!(
                    "task {i} on engine {engine}: {:.3}",
                    tic.elapsed().as_secs_f64()
                );
            }
            i += 1;
        }
        let (wall, serial) = (amr.wall_time(), amr.serial_time());
        println!(
            "wall_time {wall:.3} s, serial_time {serial:.3} s, serial_time / wall_time = {:.3}",
            serial / wall
        );
    }

    cell("exercise: parallelize nested loops with area");
    let area = load(&dir, "area.wasm")?;
    let (mut widths, mut heights, mut areas) = (Vec::new(), Vec::new(), Vec::new());
    for w in 1..4i64 {
        for h in 6..10i64 {
            widths.push(Value::S64(w));
            heights.push(Value::S64(h));
            areas.push(Some(Value::S64(w * h)));
        }
    }
    let mut ar = lview
        .map_async(&area, "area", vec![widths, heights])
        .await?;
    let p_areas = ar.get(None).await?;
    println!(
        "p_areas = {}",
        Value::List(p_areas.iter().flatten().cloned().collect())
    );
    println!("areas == p_areas: {}", areas == p_areas);
    Ok(())
}
