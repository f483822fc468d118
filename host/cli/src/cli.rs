//! The command-line grammar (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{ByteSize, Seconds};

/// wasp: a WebAssembly sandboxed worker pool with ipyparallel's model.
#[derive(Debug, Parser)]
#[command(name = "wasp", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every function a component exports, with its WIT signature.
    Inspect(InspectArgs),
    /// Run one call of a component locally, in the sandbox.
    ///
    /// Arguments are JSON, typed by the function's WIT signature
    /// (`wasp run area.wasm area 3 7` prints `21`); text that is not JSON is
    /// taken as a string.
    Run(RunArgs),
}

/// `wasp inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `wasp run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// The function: its bare name, or `interface#name` when ambiguous.
    pub func: String,
    /// The arguments, one JSON value each.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Settings of the local runtime: the limits and the compile cache.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Largest module accepted [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_module_size: Option<ByteSize>,
    /// Linear memory per task [default: 512MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,
    /// Wall-clock time per call, e.g. `30s`, `500ms` [default: 300s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Seconds>,
    /// Wasm stack per call [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_stack: Option<ByteSize>,
    /// Arguments of one call [default: 64MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_args: Option<ByteSize>,
    /// Result of one call [default: 64MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_result: Option<ByteSize>,
    /// Captured stdout, stderr and logs per call, each [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<ByteSize>,
    /// Where compiled modules are cached [default: $XDG_CACHE_HOME/wasp/modules
    /// or ~/.cache/wasp/modules].
    #[arg(long, value_name = "DIR", env = "WASP_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile without reading or writing the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}
