//! `wasp inspect`: every export of a component with its WIT signature.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use wasp_engine::Module;

use crate::cli::InspectArgs;
use crate::run::load_module;

pub fn inspect(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let runtime = args.runtime.runtime()?;
    let (module, size) = load_module(&runtime, &args.module)?;
    if args.json {
        println!("{:#}", describe_json(&module, size));
    } else {
        print!(
            "{}",
            describe_text(&module, size, &args.module.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form: one line per export, with its WIT signature.
pub fn describe_text(module: &Arc<Module>, size: u64, path: &str) -> String {
    let mut out = format!("{path}: component, {size} bytes, sha256 {}\n", module.hash);
    let exports = &module.exports;
    if exports.funcs.is_empty() {
        out.push_str("  (no callable exports)\n");
    }
    for export in &exports.funcs {
        let name = exports.call_name(export);
        let sig = export.sig.to_string();
        // The signature is printed under the name the user calls it by.
        let sig = sig.replacen(&export.sig.name, &name, 1);
        if name == export.qualified {
            out.push_str(&format!("  {sig}\n"));
        } else {
            out.push_str(&format!("  {sig}    ({})\n", export.qualified));
        }
    }
    for unsupported in &exports.unsupported {
        out.push_str(&format!(
            "  {} cannot be called: {}\n",
            unsupported.qualified, unsupported.reason
        ));
    }
    out
}

fn describe_json(module: &Arc<Module>, size: u64) -> serde_json::Value {
    let exports = &module.exports;
    let funcs: Vec<_> = exports
        .funcs
        .iter()
        .map(|export| {
            json!({
                "name": exports.call_name(export),
                "qualified": export.qualified,
                "signature": export.sig.to_string(),
                "params": export.sig.params.iter().map(|p| json!({
                    "name": p.name,
                    "type": p.ty.to_string(),
                })).collect::<Vec<_>>(),
                "result": export.sig.result.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let unsupported: Vec<_> = exports
        .unsupported
        .iter()
        .map(|u| json!({"qualified": u.qualified, "reason": u.reason}))
        .collect();
    json!({
        "sha256": module.hash.to_string(),
        "size": size,
        "exports": funcs,
        "unsupported": unsupported,
    })
}
