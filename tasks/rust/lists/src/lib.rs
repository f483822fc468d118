//! The `lists` task: every list of numbers (and bytes) given back reversed,
//! and one scaled beside its sum, for the round trips of the typed data
//! plane (issue 13): the host must hand the guest each item in place and
//! read each back, whatever the element type.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:lists/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::lists::lists::Guest;

struct Lists;

fn reversed<T>(mut v: Vec<T>) -> Vec<T> {
    v.reverse();
    v
}

/// The `reverse-*` exports, one per element type.
macro_rules! reverse {
    ($($name:ident: $t:ty),*) => {$(
        fn $name(v: Vec<$t>) -> Vec<$t> {
            reversed(v)
        }
    )*};
}

impl Guest for Lists {
    reverse!(reverse_s8: i8, reverse_u8: u8, reverse_s16: i16, reverse_u16: u16,
        reverse_s32: i32, reverse_u32: u32, reverse_s64: i64, reverse_u64: u64,
        reverse_f32: f32, reverse_f64: f64);

    fn scale(v: Vec<f64>, k: f64) -> (Vec<f64>, f64) {
        let scaled: Vec<f64> = v.iter().map(|x| x * k).collect();
        let sum = scaled.iter().sum();
        (scaled, sum)
    }
}

export!(Lists);
