//! `wasp tenant add|list|set|remove`: a running controller's tenants, for
//! an admin's connection file (the profile's own, by default).

use std::process::ExitCode;

use serde_json::json;
use wasp_client::TenantInfo;

use crate::cli::{TenantCommand, TenantListArgs};
use crate::remote::connect;
use crate::serve::tokio_runtime;

pub fn tenant(command: &TenantCommand) -> anyhow::Result<ExitCode> {
    tokio_runtime()?.block_on(async {
        match command {
            TenantCommand::Add(args) => {
                let client = connect(&args.profile).await?;
                let file = client.add_tenant(&args.name, args.weight).await?;
                println!("{}", file.display());
            }
            TenantCommand::List(args) => {
                let client = connect(&args.profile).await?;
                print_tenants(&client.tenants().await?, args);
            }
            TenantCommand::Set(args) => {
                let client = connect(&args.profile).await?;
                client.set_tenant_weight(&args.name, args.weight).await?;
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

fn print_tenants(tenants: &[TenantInfo], args: &TenantListArgs) {
    // Task counts and engine time from the records (across restarts);
    // queued and running are now.
    if args.json {
        for t in tenants {
            let r = &t.recorded;
            let line = json!({
                "name": t.name, "weight": t.weight, "admin": t.admin,
                "queued": t.queued, "running": t.running,
                "succeeded": r.succeeded, "failed": r.failed,
                "engine_s": r.engine_us as f64 / 1e6,
                "argument_bytes": r.argument_bytes, "result_bytes": r.result_bytes,
                "module_bytes": r.module_bytes,
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
        "{:<20} {:>6} {:>5} {:>8} {:>8} {:>10} {:>8} {:>10} {:>12} {:>12} {:>12}",
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
        "MODULE-BYTES"
    );
    for t in tenants {
        let r = &t.recorded;
        println!(
            "{:<20} {:>6} {:>5} {:>8} {:>8} {:>10} {:>8} {:>10.3} {:>12} {:>12} {:>12}",
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
            r.module_bytes
        );
    }
}
