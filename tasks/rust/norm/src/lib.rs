//! The `norm` task: `numpy.linalg.norm` of a vector.
//!
//! Follows numpy's definitions for a 1-D array: `p = inf` is `max |x|`,
//! `p = -inf` is `min |x|`, `p = 0` counts the non-zero entries, `p = 1`
//! and `p = 2` take numpy's dedicated sums, and any other `p` is
//! `(sum |x|^p)^(1/p)`. An empty vector has norm 0 for every `p` except
//! `-inf`, where it is `+inf` (numpy raises there).

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:norm/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::norm::norm::Guest;

struct Norm;

impl Guest for Norm {
    fn norm(v: Vec<f64>, p: f64) -> f64 {
        norm(&v, p)
    }
}

export!(Norm);

fn norm(v: &[f64], p: f64) -> f64 {
    let abs = v.iter().map(|x| x.abs());
    if p == f64::INFINITY {
        abs.fold(0.0, f64::max)
    } else if p == f64::NEG_INFINITY {
        abs.fold(f64::INFINITY, f64::min)
    } else if p == 0.0 {
        v.iter().filter(|&&x| x != 0.0).count() as f64
    } else if p == 1.0 {
        abs.sum()
    } else if p == 2.0 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    } else {
        abs.map(|x| x.powf(p)).sum::<f64>().powf(p.recip())
    }
}
