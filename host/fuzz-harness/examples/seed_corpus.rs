//! Writes each fuzz target's seed corpus into `<dir>/<target>/` (the
//! `scripts/fuzz` campaign starts from these): real messages and frames,
//! real packed items and results, the real task components, and for the
//! structured harnesses (JSON, conversion) deterministic random inputs.

use std::path::Path;

use wasp_fuzz_harness::component;
use wasp_fuzz_harness::corpus::Rng;
use wasp_fuzz_harness::wire::{self, Message};

fn write(dir: &Path, target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed)?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let dir = Path::new(&dir);
    let names = [
        "hello",
        "welcome",
        "client_msgs",
        "to_client",
        "to_engine",
        "from_engine",
    ];
    for (name, kind) in names.into_iter().zip(Message::ALL) {
        write(dir, name, &kind.seeds())?;
    }
    write(dir, "frames", &wire::frame_seeds())?;
    write(dir, "blob_frames", &wire::blob_frame_seeds())?;
    write(dir, "items", &wire::packed_seeds(false))?;
    write(dir, "values", &wire::packed_seeds(true))?;
    write(dir, "component_load", &component::seeds())?;
    let mut rng = Rng::new(9);
    let random: Vec<Vec<u8>> = (0..32).map(|_| rng.bytes(400)).collect();
    write(dir, "json_value", &random)?;
    write(dir, "value_to_val", &random)?;
    Ok(())
}
