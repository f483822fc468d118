//! What the dashboard (issue 16) costs with 1,000 engines: the view's
//! size, the time the controller takes to answer `/api/view` idle and
//! during a 100,000-task map, and what live pages (each sent the view
//! every 500 ms over server-sent events) take from the map: its rate and
//! the controller's CPU per dispatch with no page and with eight.
//!
//! ```text
//! dashboard [--processes P] [--slots S] [--items N] [--pages K] [--out FILE]
//! ```
//!
//! Starts `wasp controller --dashboard` and `wasp engine --slots S`
//! processes itself (the release build beside this binary). The pages are
//! plain HTTP readers of `/api/events` (the browser's share, rendering, is
//! measured in Chromium by `tests/dashboard.rs`). Writes
//! `bench/results/dashboard.json`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use wasp_bench::processes::{Processes, Shape, registered};
use wasp_bench::workloads;
use wasp_client::{Client, Module};
use wasp_task_artifacts as tasks;

/// `GET path` with the token; the status and the body's length.
async fn get(addr: SocketAddr, path: &str, token: &str) -> anyhow::Result<(u16, usize)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the response's head")?;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, response.len() - head_end - 4))
}

/// One live page: reads `/api/events` until `stop`; the view events it
/// got.
async fn live_page(
    addr: SocketAddr,
    token: String,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = vec![0u8; 1 << 16];
    let needle = b"event: view";
    // The tail of the last read, so that a marker split between two reads
    // is still counted once.
    let mut carry: Vec<u8> = Vec::new();
    let mut views = 0;
    loop {
        let n = tokio::select! {
            read = stream.read(&mut buffer) => read?,
            _ = stop.changed() => return Ok(views),
        };
        if n == 0 {
            return Ok(views);
        }
        carry.extend_from_slice(&buffer[..n]);
        views += carry.windows(needle.len()).filter(|w| w == needle).count() as u64;
        let keep = carry.len().min(needle.len() - 1);
        carry.drain(..carry.len() - keep);
    }
}

/// Milliseconds of `samples`: the median and the largest.
fn median_max(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let median = samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN);
    let max = samples.last().copied().unwrap_or(f64::NAN);
    (median, max)
}

/// Times `GET /api/view` `n` times, each made afresh by the hub (the
/// dashboard shares a view between requests less than 250 ms apart); the
/// median and largest milliseconds, and the view's bytes.
async fn view_latency(
    addr: SocketAddr,
    token: &str,
    n: usize,
) -> anyhow::Result<(f64, f64, usize)> {
    let mut samples = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let (status, len) = get(addr, "/api/view", token).await?;
        if status != 200 {
            bail!("/api/view answered {status}");
        }
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        bytes = len;
    }
    let (median, max) = median_max(&mut samples);
    Ok((median, max, bytes))
}

/// A map of `items` with `pages` live pages open, and `/api/view` timed
/// every 100 ms while it runs.
async fn map_with_pages(
    cluster: &Processes,
    rc: &Client,
    pow10: &Module,
    addr: SocketAddr,
    token: &str,
    items: i64,
    pages: usize,
) -> anyhow::Result<serde_json::Value> {
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = (0..pages)
        .map(|_| tokio::spawn(live_page(addr, token.to_owned(), stopped.clone())))
        .collect();
    // The pages have their first view before the map starts.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let controller = cluster.controller_pid().to_string();
    let cpu_before = workloads::process_cpu(&controller)?;
    let started = Instant::now();
    let sampler = {
        let token = token.to_owned();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let at = Instant::now();
                if get(addr, "/api/view", &token).await.is_ok() {
                    samples.push(at.elapsed().as_secs_f64() * 1e3);
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.changed() => return samples,
                }
            }
        })
    };
    let rate = workloads::map_rate(rc, pow10, items, 1).await?;
    let map_s = started.elapsed().as_secs_f64();
    let cpu = workloads::process_cpu(&controller)? - cpu_before;
    let _ = stop.send(true);
    let mut views = Vec::new();
    for reader in readers {
        views.push(reader.await??);
    }
    let mut samples = sampler.await?;
    let (median, max) = median_max(&mut samples);
    Ok(json!({
        "pages": pages,
        "map_items": items,
        "map_s": map_s,
        "map_items_per_s": rate,
        "controller_cpu_us_per_dispatch": cpu * 1e6 / items as f64,
        "views_per_page": views,
        "view_ms_during_map_median": median,
        "view_ms_during_map_max": max,
        "view_samples_during_map": samples.len(),
    }))
}

/// What the live dashboard costs with many engines.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    shape: Shape,
    /// Live pages during the second map.
    #[arg(long, default_value_t = 8)]
    pages: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { shape, pages } = clap::Parser::parse();
    let (processes, slots, items, out) = (
        shape.processes,
        shape.slots,
        shape.items,
        shape.out("dashboard"),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cluster = Processes::start_with(&["--dashboard", &addr.to_string()])?;
    let rc = Client::connect_file(&cluster.client_file()).await?;
    let token: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.client_file())?)?;
    let token = token["token"].as_str().context("no token")?.to_owned();
    let engines = (processes * slots) as usize;
    for _ in 0..processes {
        cluster.engine(slots)?;
    }
    registered(&rc, engines).await?;
    let pow10 = Module::from_file(tasks::POW10)?;
    // The module everywhere, and the task stream full (2,000 runs).
    workloads::map_rate(&rc, &pow10, 2 * engines as i64, 1).await?;

    let (idle_median, idle_max, view_bytes) = view_latency(addr, &token, 30).await?;
    let idle = json!({
        "engines": engines,
        "view_bytes": view_bytes,
        "view_ms_median": idle_median,
        "view_ms_max": idle_max,
    });
    println!("{idle:#}");
    let without = map_with_pages(&cluster, &rc, &pow10, addr, &token, items, 0).await?;
    println!("{without:#}");
    let with = map_with_pages(&cluster, &rc, &pow10, addr, &token, items, pages).await?;
    println!("{with:#}");
    let slowdown = without["map_items_per_s"].as_f64().unwrap_or(f64::NAN)
        / with["map_items_per_s"].as_f64().unwrap_or(f64::NAN);
    let report = json!({
        "meta": { "loadavg_at_start": workloads::loadavg(), "unix_us": workloads::unix_us() },
        "idle": idle,
        "map_without_pages": without,
        "map_with_pages": with,
        "map_rate_without_over_with_pages": slowdown,
    });
    std::fs::write(&out, format!("{report:#}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
