//! Does a big upload stall everyone else? (issue 10, item 7.) On a real
//! local cluster (`wasp cluster start -n 2`), one client times `apply_sync`
//! round trips of `area(3, 7)` while another client, on a thread and async
//! runtime of its own, uploads 200 MB modules one after another: the `area`
//! component padded with a custom section, so each is a valid component
//! under the controller's 256 MiB module limit, and each a new hash (the
//! padding differs), so each is really sent.
//!
//! It prints the round trip's median, p99 and maximum with no upload
//! running (the baseline) and during the uploads, and writes them to
//! `results/upload_stall.json`. Run with
//! `cargo build --release -j2 -p wasp-cli -p wasp-bench && cargo run --release -j2 -p wasp-bench --bin upload_stall`.
//!
//! ```text
//! upload_stall [--uploads N] [--out FILE]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use wasp_bench::cluster::Cluster;
use wasp_bench::workloads::{self, Tasks, percentile};
use wasp_client::{Client, Module};
use wasp_proto::Value;

const ENGINES: u32 = 2;
/// Round trips timed with nothing else going on.
const BASELINE_CALLS: usize = 500;
/// How big each uploaded module is.
const MODULE_BYTES: usize = 200_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (uploads, out) = options()?;
    let cluster = Cluster::start(ENGINES)?;
    let client = cluster.client().await?;
    let tasks = Tasks::load()?;
    workloads::warm_up(&client, &tasks).await?;

    // The padded modules are made before anything is timed.
    let modules = (0..uploads)
        .map(|i| padded(&tasks.area, i as u8))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let baseline = round_trips(&client, &tasks.area, || true, BASELINE_CALLS).await?;

    // The uploader: its own OS thread and runtime, so that its encoding
    // of 200 MB frames does not delay the measuring client's runtime;
    // only the controller is shared.
    let uploading = Arc::new(AtomicBool::new(true));
    let started = Arc::new(AtomicBool::new(false));
    let file = cluster.client_file();
    let uploader = {
        let uploading = uploading.clone();
        let started = started.clone();
        std::thread::spawn(move || -> anyhow::Result<Duration> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(async {
                let uploader = Client::connect_file(&file).await?;
                started.store(true, Ordering::SeqCst);
                let tic = Instant::now();
                for module in &modules {
                    uploader.ensure_module(module).await?;
                }
                anyhow::Ok(tic.elapsed())
            });
            uploading.store(false, Ordering::SeqCst);
            result
        })
    };
    while !started.load(Ordering::SeqCst) && !uploader.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let during = round_trips(
        &client,
        &tasks.area,
        || uploading.load(Ordering::SeqCst),
        usize::MAX,
    )
    .await?;
    let upload_time = uploader
        .join()
        .map_err(|_| anyhow::anyhow!("the uploader panicked"))??;
    drop(client);
    cluster.stop()?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let row = |name: &str, samples: &[f64]| {
        println!(
            "| {name} | {} | {:.3} ms | {:.3} ms | {:.3} ms |",
            samples.len(),
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            samples.last().copied().unwrap_or(f64::NAN),
        );
    };
    println!("## apply_sync round trip while another client uploads {uploads} x 200 MB\n");
    println!("| when | calls | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    row("no upload", &baseline);
    row("during the uploads", &during);
    println!(
        "\nuploads took {:.0} ms ({:.0} MB/s)",
        ms(upload_time),
        (uploads * MODULE_BYTES) as f64 / 1e6 / upload_time.as_secs_f64()
    );

    let figures = |samples: &[f64]| {
        json!({
            "calls": samples.len(),
            "p50_ms": percentile(samples, 0.5),
            "p99_ms": percentile(samples, 0.99),
            "max_ms": samples.last().copied().unwrap_or(f64::NAN),
        })
    };
    let results = json!({
        "bench": "upload_stall",
        "engines": ENGINES,
        "uploads": uploads,
        "module_bytes": MODULE_BYTES,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        "baseline": figures(&baseline),
        "during_upload": figures(&during),
        "upload_ms": ms(upload_time),
    });
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// `--uploads N` (default 3) and `--out FILE`.
fn options() -> anyhow::Result<(usize, PathBuf)> {
    let mut uploads = 3;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/upload_stall.json");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--uploads" => {
                uploads = args
                    .next()
                    .context("--uploads needs a count")?
                    .parse()
                    .context("--uploads")?;
            }
            "--out" => out = args.next().context("--out needs a file")?.into(),
            other => bail!("unknown argument {other}: expected --uploads N or --out FILE"),
        }
    }
    Ok((uploads, out))
}

/// Times `apply_sync(area, 3, 7)` while `go()` holds, at most `calls`
/// times: the sorted round trips in milliseconds.
async fn round_trips(
    client: &Client,
    area: &Module,
    go: impl Fn() -> bool,
    calls: usize,
) -> anyhow::Result<Vec<f64>> {
    let lview = client.load_balanced_view();
    let mut rtts = Vec::new();
    while rtts.len() < calls && go() {
        let tic = Instant::now();
        let result = lview
            .apply_sync(area, "area", vec![Value::S64(3), Value::S64(7)])
            .await?;
        rtts.push(tic.elapsed().as_secs_f64() * 1e3);
        if result != Some(Value::S64(21)) {
            bail!("area(3, 7) returned {result:?}");
        }
    }
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

/// `base` with a custom section appended that brings it to
/// [`MODULE_BYTES`]; `seed` fills the padding, so each seed is a new hash.
fn padded(base: &Module, seed: u8) -> anyhow::Result<Module> {
    const NAME: &[u8] = b"wasp-bench-padding";
    let mut bytes = base.bytes().to_vec();
    // A custom section: id 0, its size, then the name (length-prefixed)
    // and the payload. The size is written as a 5-byte LEB128, so it is
    // known before the payload's length is.
    let payload = MODULE_BYTES - bytes.len() - 1 - 5 - 1 - NAME.len();
    let size = u32::try_from(1 + NAME.len() + payload).context("padding too large")?;
    bytes.push(0);
    bytes.extend_from_slice(&leb128_5(size));
    bytes.push(u8::try_from(NAME.len()).context("name too long")?);
    bytes.extend_from_slice(NAME);
    bytes.resize(bytes.len() + payload, seed);
    Module::from_bytes(bytes).context("the padded component")
}

/// `value` as a LEB128 of exactly five bytes (padded with continuation
/// bits, which the format allows).
fn leb128_5(mut value: u32) -> [u8; 5] {
    let mut out = [0u8; 5];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (value & 0x7f) as u8;
        value >>= 7;
        if i < 4 {
            *byte |= 0x80;
        }
    }
    out
}
