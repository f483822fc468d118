//! CPU time per task, by role: what a map costs the client, the
//! controller and the engines, in CPU microseconds per task, summed from
//! `/proc` (utime + stime of every thread) around each map.
//!
//! Throughput on a shared 2-core VM moves by half from one run to the next
//! (the same binary's map chunksize 1 measured 23k-50k tasks/s on two
//! days); CPU time per task moves far less, so it is the figure to compare
//! two builds by (`scripts/bench-before COMMIT` builds the earlier one;
//! this file uses only what the benchmark crate had before issue 11, so it
//! builds there too).
//!
//! ```text
//! cpu_cost [--rounds R] [--items N]
//! ```
//!
//! Runs R maps of N items at chunksize 1 and R maps of 20 N items at
//! chunksize 100 on a 2-engine cluster and prints, for each, the median
//! throughput and the median CPU microseconds per task of each role.

use anyhow::Context;
use wasp_bench::cluster::Cluster;
use wasp_bench::workloads::{self, Tasks};

/// CPU seconds (user + system, all threads) of the processes of each role.
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    client: f64,
    controller: f64,
    engines: f64,
}

impl Cpu {
    fn now() -> anyhow::Result<Self> {
        let mut cpu = Cpu {
            client: workloads::process_cpu("self")?,
            ..Cpu::default()
        };
        for entry in std::fs::read_dir("/proc")? {
            let name = entry?.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            // A process may end between the listing and the read.
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if !args.first().is_some_and(|a| a.ends_with(b"/wasp")) {
                continue;
            }
            let Ok(seconds) = workloads::process_cpu(pid) else {
                continue;
            };
            match args.get(1).copied() {
                Some(b"controller") => cpu.controller += seconds,
                Some(b"engine") => cpu.engines += seconds,
                _ => {}
            }
        }
        Ok(cpu)
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            client: self.client - before.client,
            controller: self.controller - before.controller,
            engines: self.engines - before.engines,
        }
    }
}

struct Round {
    rate: f64,
    cpu_us_per_task: Cpu,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rounds = 5usize;
    let mut items = 20_000i64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--rounds" => rounds = value.parse()?,
            "--items" => items = value.parse()?,
            other => anyhow::bail!("unknown argument {other:?} (expected --rounds R or --items N)"),
        }
    }
    let cluster = Cluster::start(2)?;
    let client = cluster.client().await?;
    let tasks = Tasks::load()?;
    workloads::warm_up(&client, &tasks).await?;

    println!("| map | tasks/s (items/s) | client us/task | controller us/task | engines us/task |");
    println!("|---|---|---|---|---|");
    for (chunksize, n) in [(1usize, items), (100, items * 20)] {
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let before = Cpu::now()?;
            let rate = workloads::map_rate(&client, &tasks.pow10, n, chunksize).await?;
            let spent = Cpu::now()?.since(before);
            let task_count = n as f64 / chunksize as f64;
            let per = |s: f64| s * 1e6 / task_count;
            samples.push(Round {
                rate,
                cpu_us_per_task: Cpu {
                    client: per(spent.client),
                    controller: per(spent.controller),
                    engines: per(spent.engines),
                },
            });
        }
        let median = |f: &dyn Fn(&Round) -> f64| {
            workloads::median(&samples.iter().map(f).collect::<Vec<_>>())
        };
        println!(
            "| chunksize {chunksize}, {n} items | {:.0} | {:.1} | {:.1} | {:.1} |",
            median(&|r| r.rate),
            median(&|r| r.cpu_us_per_task.client),
            median(&|r| r.cpu_us_per_task.controller),
            median(&|r| r.cpu_us_per_task.engines),
        );
    }
    drop(client);
    cluster.stop()?;
    Ok(())
}
