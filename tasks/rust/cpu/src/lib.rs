//! The `cpu` task: the peers' pure-CPU loop (`bench/peers/*.py`), so that
//! the benchmark's CPU-bound scenario runs the same arithmetic everywhere.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:cpu/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::cpu::cpu::Guest;

struct Cpu;

impl Guest for Cpu {
    fn cpu(n: u64) -> u64 {
        // `s` stays below 1000003, so `s * 31 + i` cannot overflow for any
        // step count a call could finish; wrapping keeps a huge `n` from
        // trapping all the same. The modulus depends on the previous step,
        // so the compiler cannot fold the loop away.
        let mut s: u64 = 0;
        for i in 0..n {
            s = s.wrapping_mul(31).wrapping_add(i) % 1_000_003;
        }
        s
    }
}

export!(Cpu);
