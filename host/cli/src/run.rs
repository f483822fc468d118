//! `wasp run`: one call of a component, locally, in the sandbox.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::Value as Json;
use wasp_engine::args::args_from_json;
use wasp_engine::limits::bytes;
use wasp_engine::{CallContext, LogLevel, Module, Runtime};
use wasp_proto::value_to_json;

use crate::cli::RunArgs;

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = args.runtime.runtime()?;
    let (module, _) = load_module(&runtime, &args.module)?;
    let export = module.exports.find(&args.func)?;
    let json_args: Vec<Json> = args.args.iter().map(|arg| parse_arg(arg)).collect();
    let values = args_from_json(&export.sig, &json_args)?;

    let tokio = crate::serve::tokio_runtime()?;
    let context = CallContext {
        engine_id: 0,
        tenant: "local".into(),
        task_id: "run".into(),
    };
    let report = tokio.block_on(runtime.call(&module, &args.func, &values, context));

    // The guest's output goes to stderr, so stdout holds only the result.
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    use std::io::Write;
    err.write_all(&report.stdout).ok();
    err.write_all(&report.stderr).ok();
    for line in report.logs.iter().filter(|l| l.level >= LogLevel::Info) {
        writeln!(err, "[{:?}] {}", line.level, line.message).ok();
    }
    match report.result {
        Ok(Some(value)) => println!("{}", value_to_json(&value)),
        Ok(None) => {}
        Err(call) => bail!("{} failed: {call}", args.func),
    }
    Ok(ExitCode::SUCCESS)
}

/// A command-line argument as JSON; text that is not JSON is a string, so
/// `wasp run wordcount.wasm count-words "to be or not"` needs no quoting.
fn parse_arg(arg: &str) -> Json {
    serde_json::from_str(arg).unwrap_or_else(|_| Json::String(arg.to_owned()))
}

/// Reads and loads a component, refusing an oversize file before reading it.
pub fn load_module(runtime: &Runtime, path: &Path) -> anyhow::Result<(Arc<Module>, u64)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let limit = runtime.limits().module_bytes;
    if size > limit as u64 {
        bail!(
            "{}: {size} bytes is over the module size limit ({}); raise it with --max-module-size",
            path.display(),
            bytes(limit)
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let module = runtime
        .load_blocking(&bytes)
        .with_context(|| format!("loading {}", path.display()))?;
    Ok((module, size))
}
