//! The `evil-start` task: a component whose start function loops forever.
//!
//! wit-component makes a core module's `_initialize` export part of the
//! component's instantiation (the WASI reactor convention), so this loop
//! runs before any export can be called: the host must bound instantiation
//! itself with a deadline, not only calls.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:evil-start/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use std::hint::black_box;

use exports::wasp::evil_start::evil_start::Guest;

struct EvilStart;

impl Guest for EvilStart {
    fn ping() -> u32 {
        1
    }
}

export!(EvilStart);

// SAFETY: `_initialize` is the reactor's start function by convention;
// nothing else in this crate defines it, and it takes and returns nothing.
#[unsafe(export_name = "_initialize")]
extern "C" fn initialize() {
    let mut n: u64 = 0;
    loop {
        // black_box makes each step observable, so the loop stays.
        n = black_box(n).wrapping_add(1);
    }
}
