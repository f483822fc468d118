//! Every seed-notebook task and both linked examples through the runtime,
//! against values computed natively here.

mod common;

use common::{call, call_err, call_ok, load, runtime};
use wasp_engine::{CallContext, LogLevel};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

fn f64s(values: &[f64]) -> Value {
    Value::List(values.iter().copied().map(Value::F64).collect())
}

fn as_f64(value: Option<Value>) -> f64 {
    match value {
        Some(Value::F64(x)) => x,
        other => panic!("expected an f64, got {other:?}"),
    }
}

#[tokio::test]
async fn norm_matches_numpy_definition() {
    let norm = load(tasks::NORM);
    // A deterministic "random" vector of 1024 items, as the seed's A.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let a: Vec<f64> = (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    let l2 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let got = as_f64(call_ok(&norm, "norm", &[f64s(&a), Value::F64(2.0)]).await);
    assert!((got - l2).abs() <= 1e-12 * l2, "{got} vs {l2}");

    let l3 = a
        .iter()
        .map(|x| x.abs().powi(3))
        .sum::<f64>()
        .powf(1.0 / 3.0);
    let got = as_f64(call_ok(&norm, "norm", &[f64s(&a), Value::F64(3.0)]).await);
    assert!((got - l3).abs() <= 1e-12 * l3, "{got} vs {l3}");

    let max = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let got = as_f64(call_ok(&norm, "norm", &[f64s(&a), Value::F64(f64::INFINITY)]).await);
    assert_eq!(got, max);
}

#[tokio::test]
async fn getpid_is_the_engine_id_and_whoami_is_captured() {
    let getpid = load(tasks::GETPID);
    let id = call_ok(&getpid, "getpid", &[]).await;
    assert_eq!(id, Some(Value::U32(common::context().engine_id)));

    let other = CallContext {
        engine_id: 3,
        tenant: "physics".into(),
        task_id: "t-99".into(),
    };
    let report = runtime().call(&getpid, "whoami", &[], other).await;
    let line = "engine 3 tenant physics task t-99";
    assert_eq!(report.result.unwrap(), Some(Value::String(line.into())));
    assert_eq!(String::from_utf8_lossy(&report.stdout), format!("{line}\n"));
    assert_eq!(
        String::from_utf8_lossy(&report.stderr),
        "whoami on stderr\n"
    );
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].level, LogLevel::Info);
    assert_eq!(report.logs[0].message, line);
}

#[tokio::test]
async fn pow10_over_range_32_equals_the_serial_result() {
    let pow10 = load(tasks::POW10);
    for x in 0..32i64 {
        let got = call_ok(&pow10, "pow10", &[Value::S64(x)]).await;
        assert_eq!(got, Some(Value::S64(x.pow(10))), "pow10({x})");
    }
    // 100^10 does not fit: the guest's panic message reaches the error.
    let err = call_err(&pow10, "pow10", &[Value::S64(100)]).await;
    assert!(err.starts_with("task trapped: "), "{err}");
    assert!(err.contains("overflow"), "{err}");
}

#[tokio::test]
async fn sleep_and_sleep_here() {
    let sleep = load(tasks::SLEEP);
    let report = call(&sleep, "sleep", &[Value::F64(0.05)]).await;
    assert_eq!(report.result.unwrap(), None);
    assert!(
        report.duration.as_secs_f64() >= 0.05,
        "{:?}",
        report.duration
    );
    let here = call_ok(&sleep, "sleep-here", &[Value::F64(0.01)]).await;
    assert_eq!(here, Some(Value::U32(common::context().engine_id)));
}

#[tokio::test]
async fn area_over_the_nested_loop() {
    let area = load(tasks::AREA);
    for w in 1..4i64 {
        for h in 6..10i64 {
            let got = call_ok(&area, "area", &[Value::S64(w), Value::S64(h)]).await;
            assert_eq!(got, Some(Value::S64(w * h)));
        }
    }
}

#[tokio::test]
async fn word_counts_match_a_native_count() {
    let wordcount = load(tasks::WORDCOUNT);
    let text = "The quick brown fox. The lazy dog! Isn't the fox quick? Ünïcode ÜNÏCODE 42 42";
    let mut native = std::collections::BTreeMap::<String, u32>::new();
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        *native.entry(word.to_lowercase()).or_default() += 1;
    }
    let expected = Value::List(
        native
            .iter()
            .map(|(word, count)| {
                Value::Record(vec![
                    ("word".into(), Value::String(word.clone())),
                    ("count".into(), Value::U32(*count)),
                ])
            })
            .collect(),
    );
    let got = call_ok(&wordcount, "count-words", &[Value::String(text.into())]).await;
    assert_eq!(got, Some(expected));
}

/// ipyparallel's mcpricer, as the guest documents it, computed natively.
fn native_prices(
    spot: f64,
    strikes: &[f64],
    vol: f64,
    rate: f64,
    days: u32,
    paths: u32,
    seed: u64,
) -> Vec<[f64; 4]> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let h = 1.0 / f64::from(days);
    let c1 = ((rate - 0.5 * vol * vol) * h).exp();
    let c2 = vol * h.sqrt();
    let mut finals = Vec::new();
    for _ in 0..paths {
        let (mut price, mut sum) = (spot, 0.0);
        for _ in 0..days {
            let (u1, u2) = (next(), next());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            price *= c1 * (c2 * z).exp();
            sum += price;
        }
        finals.push((price, sum / f64::from(days)));
    }
    let discount = (-rate * h * f64::from(days)).exp();
    let mean = |f: &dyn Fn(&(f64, f64)) -> f64| {
        discount * finals.iter().map(f).sum::<f64>() / f64::from(paths)
    };
    strikes
        .iter()
        .map(|&k| {
            [
                mean(&|p| (p.0 - k).max(0.0)),
                mean(&|p| (k - p.0).max(0.0)),
                mean(&|p| (p.1 - k).max(0.0)),
                mean(&|p| (k - p.1).max(0.0)),
            ]
        })
        .collect()
}

#[tokio::test]
async fn monte_carlo_prices_match_a_native_simulation() {
    let mc = load(tasks::MC_OPTIONS);
    let strikes = [90.0, 100.0, 110.0];
    let (spot, vol, rate, days, paths, seed) = (100.0, 0.25, 0.05, 64u32, 4000u32, 42u64);
    let args = [
        Value::F64(spot),
        f64s(&strikes),
        Value::F64(vol),
        Value::F64(rate),
        Value::U32(days),
        Value::U32(paths),
        Value::U64(seed),
    ];
    let Some(Value::List(rows)) = call_ok(&mc, "price-options", &args).await else {
        panic!("expected a list")
    };
    let native = native_prices(spot, &strikes, vol, rate, days, paths, seed);
    assert_eq!(rows.len(), strikes.len());
    for (row, (k, want)) in rows.iter().zip(strikes.iter().zip(&native)) {
        let Value::Record(fields) = row else {
            panic!("expected a record")
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "strike",
                "european-call",
                "european-put",
                "asian-call",
                "asian-put"
            ]
        );
        assert_eq!(fields[0].1, Value::F64(*k));
        for (i, want) in want.iter().enumerate() {
            let Value::F64(got) = fields[i + 1].1 else {
                panic!("expected f64")
            };
            // The guest's libm (wasi-libc) and the host's differ in the last bits.
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{}: {got} vs {want}",
                names[i + 1]
            );
        }
    }
    // Sanity of the pricer itself: put-call parity within Monte Carlo error.
    let Value::Record(atm) = &rows[1] else {
        panic!()
    };
    let (Value::F64(call), Value::F64(put)) = (&atm[1].1, &atm[2].1) else {
        panic!()
    };
    let parity = spot - 100.0 * (-rate).exp();
    assert!(
        (call - put - parity).abs() < 1.0,
        "call {call} put {put} parity {parity}"
    );
}
