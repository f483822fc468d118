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

impl Guest for Lists {
    fn reverse_s8(v: Vec<i8>) -> Vec<i8> {
        reversed(v)
    }
    fn reverse_u8(v: Vec<u8>) -> Vec<u8> {
        reversed(v)
    }
    fn reverse_s16(v: Vec<i16>) -> Vec<i16> {
        reversed(v)
    }
    fn reverse_u16(v: Vec<u16>) -> Vec<u16> {
        reversed(v)
    }
    fn reverse_s32(v: Vec<i32>) -> Vec<i32> {
        reversed(v)
    }
    fn reverse_u32(v: Vec<u32>) -> Vec<u32> {
        reversed(v)
    }
    fn reverse_s64(v: Vec<i64>) -> Vec<i64> {
        reversed(v)
    }
    fn reverse_u64(v: Vec<u64>) -> Vec<u64> {
        reversed(v)
    }
    fn reverse_f32(v: Vec<f32>) -> Vec<f32> {
        reversed(v)
    }
    fn reverse_f64(v: Vec<f64>) -> Vec<f64> {
        reversed(v)
    }
    fn scale(v: Vec<f64>, k: f64) -> (Vec<f64>, f64) {
        let scaled: Vec<f64> = v.iter().map(|x| x * k).collect();
        let sum = scaled.iter().sum();
        (scaled, sum)
    }
}

export!(Lists);
