//! libFuzzer target: `wasp_fuzz_harness::wire::blob_frames` (see its docs for the
//! properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasp_fuzz_harness::wire::blob_frames(data));
