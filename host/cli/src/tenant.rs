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
    if args.json {
        for t in tenants {
            let line = json!({
                "name": t.name, "weight": t.weight, "admin": t.admin,
                "queued": t.queued, "running": t.running,
                "succeeded": t.succeeded, "failed": t.failed,
                "engine_s": t.engine_us as f64 / 1e6,
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "{:<20} {:>6} {:>5} {:>8} {:>8} {:>10} {:>8} {:>12}",
        "NAME", "WEIGHT", "ADMIN", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "ENGINE-S"
    );
    for t in tenants {
        println!(
            "{:<20} {:>6} {:>5} {:>8} {:>8} {:>10} {:>8} {:>12.3}",
            t.name,
            t.weight,
            if t.admin { "yes" } else { "no" },
            t.queued,
            t.running,
            t.succeeded,
            t.failed,
            t.engine_us as f64 / 1e6
        );
    }
}
