//! `wasp tenant add|list|set|remove`: a running controller's tenants, for
//! an admin's connection file (the profile's own, by default).

use std::process::ExitCode;

use serde_json::json;
use wasp_client::{Quotas, TenantInfo};

use crate::cli::{QuotaArgs, TenantCommand, TenantListArgs};
use crate::remote::connect;
use crate::serve::tokio_runtime;

pub fn tenant(command: &TenantCommand) -> anyhow::Result<ExitCode> {
    tokio_runtime()?.block_on(async {
        match command {
            TenantCommand::Add(args) => {
                let client = connect(&args.profile).await?;
                let quotas = quotas(&args.quotas);
                let file = client
                    .add_tenant_with(&args.name, args.weight, quotas)
                    .await?;
                println!("{}", file.display());
            }
            TenantCommand::List(args) => {
                let client = connect(&args.profile).await?;
                print_tenants(&client.tenants().await?, args);
            }
            TenantCommand::Set(args) => {
                let client = connect(&args.profile).await?;
                let quotas = quotas(&args.quotas);
                if args.weight.is_none() && quotas.is_empty() {
                    anyhow::bail!(
                        "nothing to change: give --weight or a quota (--max-running, \
                         --max-queued, --max-module-bytes, --max-namespace-bytes, \
                         --max-task-time, --max-task-memory)"
                    );
                }
                client.set_tenant(&args.name, args.weight, quotas).await?;
            }
            TenantCommand::Remove(args) => {
                let client = connect(&args.profile).await?;
                client.remove_tenant(&args.name).await?;
                eprintln!(
                    "tenant {} removed: its token is revoked, its clients disconnected, its unfinished tasks aborted",
                    args.name
                );
            }
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn quotas(args: &QuotaArgs) -> Quotas {
    let bytes = |size: &Option<crate::settings::ByteSize>| size.as_ref().map(|s| s.0 as u64);
    Quotas {
        running: args.max_running,
        queued: args.max_queued,
        module_bytes: bytes(&args.max_module_bytes),
        namespace_bytes: bytes(&args.max_namespace_bytes),
        task_time_us: args
            .max_task_time
            .as_ref()
            .map(|s| u64::try_from(s.0.as_micros()).unwrap_or(u64::MAX)),
        task_memory_bytes: bytes(&args.max_task_memory),
    }
}

/// The quotas in force, as `key=value` pairs (those set only).
fn quota_text(quotas: &Quotas) -> String {
    let size = |b: u64| wasp_controller::human_bytes(b);
    let mut parts = Vec::new();
    if let Some(n) = quotas.running {
        parts.push(format!("running={n}"));
    }
    if let Some(n) = quotas.queued {
        parts.push(format!("queued={n}"));
    }
    if let Some(b) = quotas.module_bytes {
        parts.push(format!("modules={}", size(b).replace(' ', "")));
    }
    if let Some(b) = quotas.namespace_bytes {
        parts.push(format!("namespace={}", size(b).replace(' ', "")));
    }
    if let Some(us) = quotas.task_time_us {
        parts.push(format!("task-time={}s", us as f64 / 1e6));
    }
    if let Some(b) = quotas.task_memory_bytes {
        parts.push(format!("task-memory={}", size(b).replace(' ', "")));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}

fn print_tenants(tenants: &[TenantInfo], args: &TenantListArgs) {
    // Task counts and engine time from the records (across restarts);
    // queued and running are now.
    if args.json {
        for t in tenants {
            let r = &t.recorded;
            let line = json!({
                "name": t.name, "weight": t.weight, "admin": t.admin,
                "quotas": {
                    "running": t.quotas.running, "queued": t.quotas.queued,
                    "module_bytes": t.quotas.module_bytes,
                    "namespace_bytes": t.quotas.namespace_bytes,
                    "task_time_s": t.quotas.task_time_us.map(|us| us as f64 / 1e6),
                    "task_memory_bytes": t.quotas.task_memory_bytes,
                },
                "queued": t.queued, "running": t.running,
                "succeeded": r.succeeded, "failed": r.failed,
                "engine_s": r.engine_us as f64 / 1e6,
                "argument_bytes": r.argument_bytes, "result_bytes": r.result_bytes,
                "module_bytes": r.module_bytes, "namespace_bytes": r.namespace_bytes,
                "since_start": {
                    "succeeded": t.succeeded, "failed": t.failed,
                    "engine_s": t.engine_us as f64 / 1e6,
                },
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "{:<20} {:>6} {:>5} {:>8} {:>8} {:>10} {:>8} {:>10} {:>12} {:>12} {:>12} {:>12}  QUOTAS",
        "NAME",
        "WEIGHT",
        "ADMIN",
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "ENGINE-S",
        "ARG-BYTES",
        "RESULT-BYTES",
        "MODULE-BYTES",
        "NS-BYTES",
    );
    for t in tenants {
        let r = &t.recorded;
        println!(
            "{:<20} {:>6} {:>5} {:>8} {:>8} {:>10} {:>8} {:>10.3} {:>12} {:>12} {:>12} {:>12}  {}",
            t.name,
            t.weight,
            if t.admin { "yes" } else { "no" },
            t.queued,
            t.running,
            r.succeeded,
            r.failed,
            r.engine_us as f64 / 1e6,
            r.argument_bytes,
            r.result_bytes,
            r.module_bytes,
            r.namespace_bytes,
            quota_text(&t.quotas)
        );
    }
}
