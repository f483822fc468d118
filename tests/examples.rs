//! The two examples the seed links, on a real cluster, each checked against
//! a serial computation of the same thing: Counting Words (scatter a corpus,
//! count per engine, reduce on the client) and Monte Carlo option pricing
//! (map over strikes).

use std::collections::BTreeMap;

use wasp_client::{Module, reference};
use wasp_engine::{CallContext, Runtime, RuntimeConfig};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

mod common;
use common::{Cluster, wasp};

/// A corpus of texts, different enough that each engine's share matters.
fn corpus() -> Vec<String> {
    let words = [
        "wasp", "engine", "the", "sandbox", "Hive", "it's", "QUIC", "the", "map",
    ];
    (0..23)
        .map(|i| {
            (0..(5 + i % 7))
                .map(|j| words[(i * 3 + j * 5) % words.len()])
                .collect::<Vec<_>>()
                .join(if i % 2 == 0 { " " } else { ", " })
        })
        .collect()
}

fn serial_counts(texts: &[String]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for text in texts {
        for word in text
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
        {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

fn counts_of(value: &Value) -> BTreeMap<String, u32> {
    let Value::List(rows) = value else {
        panic!("expected a list, got {value:?}")
    };
    rows.iter()
        .map(|row| match row {
            Value::Record(fields) => match (&fields[0].1, &fields[1].1) {
                (Value::String(w), Value::U32(c)) => (w.clone(), *c),
                other => panic!("unexpected fields {other:?}"),
            },
            other => panic!("expected a record, got {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn counting_words_scatter_count_reduce() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    let texts = corpus();
    let wordcount = Module::from_file(tasks::WORDCOUNT).unwrap();

    dv.scatter(
        "texts",
        texts.iter().cloned().map(Value::String).collect(),
        false,
    )
    .await
    .unwrap();
    let mut per_engine = dv
        .apply_args(&wordcount, "count-texts", vec![reference("texts")])
        .await
        .unwrap();
    let parts: Vec<Value> = per_engine
        .get(None)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(parts.len(), 2, "one count per engine");
    // Each engine counted its own share, not the whole corpus.
    assert_ne!(counts_of(&parts[0]), serial_counts(&texts));

    // Reduce on the client, in its own local sandbox.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let module = runtime
        .load_blocking(&std::fs::read(tasks::WORDCOUNT).unwrap())
        .unwrap();
    let merged = runtime
        .call(
            &module,
            "merge-counts",
            &[Value::List(parts)],
            CallContext::default(),
        )
        .await
        .result
        .unwrap()
        .unwrap();
    assert_eq!(counts_of(&merged), serial_counts(&texts));
}

#[test]
fn counting_words_with_the_cli() {
    let cluster = Cluster::start(2);
    let dir = &cluster.dir;
    let texts = corpus();
    let corpus_file = dir.path().join("corpus.json");
    std::fs::write(&corpus_file, serde_json::to_string(&texts).unwrap()).unwrap();

    let out = wasp(dir, &["scatter", "texts", corpus_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Options go before the call's arguments, which may start with '-'.
    let out = wasp(
        dir,
        &[
            "apply",
            "--targets",
            "all",
            tasks::WORDCOUNT,
            "count-texts",
            "@texts",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let per_engine = String::from_utf8(out.stdout).unwrap();
    let out = wasp(
        dir,
        &["run", tasks::WORDCOUNT, "merge-counts", per_engine.trim()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let merged: BTreeMap<String, u32> = merged
        .iter()
        .map(|row| {
            (
                row["word"].as_str().unwrap().to_owned(),
                row["count"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    assert_eq!(merged, serial_counts(&texts));
}

#[tokio::test(flavor = "multi_thread")]
async fn monte_carlo_options_map_over_strikes_equals_serial() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let mc = Module::from_file(tasks::MC_OPTIONS).unwrap();
    let strikes: Vec<f64> = (0..8).map(|i| 80.0 + 5.0 * f64::from(i)).collect();
    let fixed = |strikes: Vec<f64>| {
        vec![
            Value::F64(100.0),
            Value::List(strikes.into_iter().map(Value::F64).collect()),
            Value::F64(0.25),
            Value::F64(0.05),
            Value::U32(64),
            Value::U32(2000),
            Value::U64(7),
        ]
    };
    // Parallel: one task per strike, each pricing on the same seeded paths.
    let sequences: Vec<Vec<Value>> = {
        let per_item: Vec<Vec<Value>> = strikes.iter().map(|k| fixed(vec![*k])).collect();
        (0..7)
            .map(|p| per_item.iter().map(|item| item[p].clone()).collect())
            .collect()
    };
    let parallel = rc
        .load_balanced_view()
        .map(&mc, "price-options", sequences)
        .await
        .unwrap();
    let parallel: Vec<Value> = parallel
        .into_iter()
        .map(|v| match v {
            Some(Value::List(mut rows)) if rows.len() == 1 => rows.remove(0),
            other => panic!("expected one row, got {other:?}"),
        })
        .collect();

    // Serial: all strikes in one local call.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let module = runtime
        .load_blocking(&std::fs::read(tasks::MC_OPTIONS).unwrap())
        .unwrap();
    let serial = runtime
        .call(
            &module,
            "price-options",
            &fixed(strikes.clone()),
            CallContext::default(),
        )
        .await
        .result
        .unwrap();
    assert_eq!(Some(Value::List(parallel)), serial);
}
