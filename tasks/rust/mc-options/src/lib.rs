//! The `mc-options` task: Monte Carlo prices of European and Asian options,
//! after ipyparallel's `mcpricer` example.
//!
//! The simulation is deterministic, so a test can recompute it natively and
//! compare bit for bit. The algorithm, exactly:
//!
//! 1. `h = 1 / days`, `c1 = exp((rate - vol^2 / 2) * h)`, `c2 = vol * sqrt(h)`.
//! 2. Random numbers come from one splitmix64 generator whose state starts at
//!    `seed`. A uniform is `u = ((next_u64() >> 11) as f64 + 0.5) * 2^-53`,
//!    in (0, 1). A standard normal is `z = sqrt(-2 ln u1) * cos(2 pi u2)`
//!    (Box-Muller, cosine branch only), drawing `u1` then `u2`.
//! 3. For each path `p` in `0..paths` (the outer loop), `price = spot` and
//!    `sum = 0`; for each day in `0..days`, `price *= c1 * exp(c2 * z)`
//!    with a fresh `z`, then `sum += price`. The path keeps its final price
//!    `price_T` and its average `avg = sum / days`.
//! 4. `discount = exp(-rate * h * days)`.
//! 5. For each strike `K`, in the given order, over the same paths:
//!    european call `= discount * mean(max(price_T - K, 0))`,
//!    european put `= discount * mean(max(K - price_T, 0))`,
//!    asian call `= discount * mean(max(avg - K, 0))`,
//!    asian put `= discount * mean(max(K - avg, 0))`, where each mean sums
//!    over the paths in order and divides by `paths`.
//!
//! `paths == 0` or `days == 0` traps ("paths must be positive", "days must
//! be positive").

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:mc-options/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use std::f64::consts::PI;

use exports::wasp::mc_options::mc_options::{Guest, OptionPrices};

struct McOptions;

impl Guest for McOptions {
    fn price_options(
        spot: f64,
        strikes: Vec<f64>,
        volatility: f64,
        rate: f64,
        days: u32,
        paths: u32,
        seed: u64,
    ) -> Vec<OptionPrices> {
        assert!(paths > 0, "paths must be positive");
        assert!(days > 0, "days must be positive");
        let simulated = simulate(spot, volatility, rate, days, paths, seed);
        let discount = (-rate * (1.0 / f64::from(days)) * f64::from(days)).exp();
        let n = f64::from(paths);
        let mean = |payoff: &dyn Fn(&Path) -> f64| -> f64 {
            discount * (simulated.iter().map(payoff).sum::<f64>() / n)
        };
        strikes
            .into_iter()
            .map(|k| OptionPrices {
                strike: k,
                european_call: mean(&|p| (p.last - k).max(0.0)),
                european_put: mean(&|p| (k - p.last).max(0.0)),
                asian_call: mean(&|p| (p.average - k).max(0.0)),
                asian_put: mean(&|p| (k - p.average).max(0.0)),
            })
            .collect()
    }
}

export!(McOptions);

/// What a strike's payoff needs from one simulated path.
struct Path {
    /// The price on the last day.
    last: f64,
    /// The mean of the daily prices.
    average: f64,
}

/// Simulates `paths` geometric Brownian motion paths of `days` steps.
fn simulate(spot: f64, volatility: f64, rate: f64, days: u32, paths: u32, seed: u64) -> Vec<Path> {
    let h = 1.0 / f64::from(days);
    let c1 = ((rate - 0.5 * volatility * volatility) * h).exp();
    let c2 = volatility * h.sqrt();
    let mut rng = SplitMix64 { state: seed };
    (0..paths)
        .map(|_| {
            let mut price = spot;
            let mut sum = 0.0;
            for _ in 0..days {
                price *= c1 * (c2 * rng.next_normal()).exp();
                sum += price;
            }
            Path {
                last: price,
                average: sum / f64::from(days),
            }
        })
        .collect()
}

/// splitmix64 (Steele, Lea and Flood), chosen because it is a few lines
/// that any test can reimplement.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform in (0, 1): 53 random bits, centred in their interval so
    /// that neither 0 (whose log is -inf) nor 1 comes out.
    fn next_uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal by Box-Muller, cosine branch, `u1` drawn first.
    fn next_normal(&mut self) -> f64 {
        let u1 = self.next_uniform();
        let u2 = self.next_uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}
