//! The fuzz harnesses as ordinary tests (issue 10, item 10): each runs over
//! its seed corpus (real messages, real components) and a few thousand
//! deterministic mutations, so CI checks their properties on stable without
//! libFuzzer. `scripts/fuzz` runs the same harnesses for a million inputs.

use wasp_fuzz_harness::component::{self, Loader, MODULE_LIMIT};
use wasp_fuzz_harness::corpus::{self, Rng};
use wasp_fuzz_harness::wire::{self, Message};
use wasp_fuzz_harness::{convert, json};

/// Mutations per wire harness: they are cheap (microseconds each).
const WIRE_CASES: usize = 4000;

#[test]
fn every_message_kind_survives_mutations_of_real_messages() {
    for (i, kind) in Message::ALL.into_iter().enumerate() {
        let seeds = kind.seeds();
        assert!(seeds.len() >= 2, "{kind:?} has seeds");
        // Every real message decodes: the seeds exercise the success path.
        for seed in &seeds {
            assert!(kind.check(seed), "a real {kind:?} does not decode");
        }
        let mut decoded = 0;
        for input in corpus::inputs(&seeds, WIRE_CASES, 100 + i as u64) {
            decoded += usize::from(kind.check(&input));
        }
        // Some mutants still decode (their re-encoding was checked), most
        // do not (their errors were checked).
        assert!(
            decoded > seeds.len(),
            "{kind:?}: only {decoded} inputs decoded"
        );
        assert!(decoded < WIRE_CASES, "{kind:?}: every mutant decoded");
    }
}

#[test]
fn frame_streams_survive_mutations() {
    let seeds = wire::frame_seeds();
    for input in corpus::inputs(&seeds, WIRE_CASES, 1) {
        wire::frames(&input);
    }
    // The edges: prefixes at, just over and far over each cap, and a half
    // frame.
    for cap_bits in 0..4u8 {
        for len in [
            0u32,
            99,
            100,
            101,
            65_536,
            65_537,
            1 << 20,
            (1 << 20) + 1,
            u32::MAX,
        ] {
            let mut input = vec![cap_bits];
            input.extend_from_slice(&len.to_le_bytes());
            input.extend_from_slice(&[0; 8]);
            wire::frames(&input);
        }
    }
}

#[test]
fn packed_items_and_values_survive_mutations() {
    let items = wire::packed_seeds(false);
    for input in corpus::inputs(&items, WIRE_CASES, 2) {
        wire::items(&input);
    }
    let values = wire::packed_seeds(true);
    for input in corpus::inputs(&values, WIRE_CASES, 3) {
        wire::values(&input);
    }
    // A count that lies, over real bytes.
    let mut lying = values[2].clone();
    lying[..4].copy_from_slice(&1000u32.to_le_bytes());
    wire::values(&lying);
}

#[test]
fn json_against_arbitrary_types() {
    let mut rng = Rng::new(4);
    for _ in 0..6000 {
        json::json_value(&rng.bytes(300));
    }
}

#[test]
fn values_to_vals_with_arbitrary_signatures() {
    let mut rng = Rng::new(5);
    for _ in 0..6000 {
        convert::value_to_val(&rng.bytes(400));
    }
}

/// Compiles are the slow part (tens of milliseconds each in a test build):
/// every real component once, then a few mutants of each, most of which
/// the parser or validator refuses before compiling.
#[test]
fn component_loading_of_mutated_real_components() {
    let seeds = component::seeds();
    assert!(seeds.len() >= 8, "the task components are built");
    let mut loader = Loader::default();
    for (i, seed) in seeds.iter().enumerate() {
        assert!(loader.load(seed), "real component {i} does not load");
    }
    let mut rng = Rng::new(6);
    let mut loaded = 0;
    for _ in 0..120 {
        let base = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        loaded += usize::from(loader.load(&corpus::mutate(&mut rng, base, other)));
    }
    eprintln!("{loaded} of 120 mutants loaded");
    // The cheap refusals: not wasm, a core module, another version, and
    // one byte over the size limit.
    for bytes in [
        b"#!/bin/sh".to_vec(),
        b"\0asm\x01\0\0\0".to_vec(),
        b"\0asm\x0e\0\x01\0".to_vec(),
        vec![0; MODULE_LIMIT + 1],
    ] {
        assert!(!loader.load(&bytes));
    }
}

/// Inputs the libFuzzer campaign of 2026-12-02 found (scripts/fuzz): values
/// nested past `MAX_DEPTH` inside each message kind, which the decoders
/// refuse with `TooDeep` and the harness's oracle took for an encode-side
/// error. Each must be refused, as a decode-side error, without a panic.
#[test]
fn campaign_findings_stay_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    type Harness = fn(&[u8]);
    let harnesses: [(&str, Harness); 5] = [
        ("client_msgs", wire::client_msgs),
        ("from_engine", wire::from_engine),
        ("items", wire::items),
        ("to_client", wire::to_client),
        ("to_engine", wire::to_engine),
    ];
    for (name, harness) in harnesses {
        let path = dir.join(format!("{name}-too-deep.bin"));
        let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        harness(&input);
    }
}

/// Blob frames (the same-host channel) as their receivers decode them:
/// real ones, their byte strings in small blobs, and mutants, whose places
/// may point past their blobs or name blobs that are not there.
#[test]
fn blob_frames_survive_mutations() {
    let seeds = wire::blob_frame_seeds();
    assert!(seeds.len() >= 8, "every kind has seeds");
    for seed in &seeds {
        assert!(
            wire::check_blob_frame(seed),
            "a real blob frame does not decode"
        );
    }
    // Some seeds name blobs: the places were exercised, not only inline
    // bytes.
    assert!(seeds.iter().any(|seed| seed[1] > 0), "no seed names a blob");
    let mut decoded = 0;
    for input in corpus::inputs(&seeds, WIRE_CASES, 7) {
        decoded += usize::from(wire::check_blob_frame(&input));
    }
    assert!(decoded > seeds.len(), "only {decoded} inputs decoded");
    assert!(decoded < WIRE_CASES, "every mutant decoded");
}
