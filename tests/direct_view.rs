//! DirectView end to end: explicit targets, per-engine namespaces (push,
//! pull, scatter, gather), Reference, and module broadcast, on a real
//! cluster (the seed notebook's multiplexing cells).

use wasp_client::{ClientError, Module, reference};
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn scatter_ids_then_pull_gives_each_engine_its_id() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let ids = rc.ids().await.unwrap();
    let dv = rc.view(ids.clone());
    let id_values: Vec<Value> = ids.iter().map(|id| Value::U32(id.0)).collect();
    dv.scatter("id", id_values.clone(), true).await.unwrap();
    assert_eq!(dv.pull("id").await.unwrap(), id_values, "dv['id']");
    assert_eq!(dv.gather("id").await.unwrap(), id_values);
}

#[tokio::test(flavor = "multi_thread")]
async fn scatter_partitions_as_ipyparallel_and_gather_reassembles() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    let seq: Vec<Value> = (0..5).map(Value::S64).collect();
    dv.scatter("x", seq.clone(), false).await.unwrap();
    // Contiguous and balanced, the larger part first.
    assert_eq!(
        dv.pull("x").await.unwrap(),
        vec![
            Value::List(seq[..3].to_vec()),
            Value::List(seq[3..].to_vec())
        ]
    );
    assert_eq!(dv.gather("x").await.unwrap(), seq);
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_resolves_per_engine_and_results_arrive_as_they_finish() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    dv.scatter("id", vec![Value::F64(0.0), Value::F64(2.0)], true)
        .await
        .unwrap();
    let sleep = Module::from_file(tasks::SLEEP).unwrap();
    let mut ar = dv
        .apply_args(&sleep, "sleep-here", vec![reference("id")])
        .await
        .unwrap();
    // Engine 0 does not sleep, engine 1 sleeps 2 s; each says who it is,
    // in target order. Engine 0's result is yielded before engine 1's
    // task has finished.
    let first = ar.next().await.unwrap().unwrap();
    let second_done_at_first = ar.metadata()[1].is_some();
    let second = ar.next().await.unwrap().unwrap();
    assert_eq!((first, second), (Some(Value::U32(0)), Some(Value::U32(1))));
    assert!(
        !second_done_at_first,
        "engine 0's result waited for engine 1"
    );
    let metas = ar.metadata();
    let completed = |i: usize| metas[i].unwrap().completed_us;
    assert!(completed(0) < completed(1), "engine 0 finished first");

    // A reference to a name an engine lacks fails that task, naming both.
    let err = dv
        .apply_args(&sleep, "sleep-here", vec![reference("nope")])
        .await
        .unwrap()
        .get(None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("engine 0 has no value named \"nope\""),
        "{err}"
    );
    // A referenced value of the wrong type is checked against the signature there.
    dv.push(vec![("name".into(), Value::String("zero".into()))])
        .await
        .unwrap();
    let err = dv
        .apply_args(&sleep, "sleep-here", vec![reference("name")])
        .await
        .unwrap()
        .get(None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("argument t: expected f64, found string"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_to_all_is_in_target_order_and_to_one_is_bare() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let getpid = Module::from_file(tasks::GETPID).unwrap();
    let all = rc.view(vec![EngineId(1), EngineId(0)]);
    assert_eq!(
        all.apply_sync(&getpid, "getpid", vec![]).await.unwrap(),
        Value::List(vec![Value::U32(1), Value::U32(0)])
    );
    let one = rc.view(vec![EngineId(1)]);
    assert_eq!(
        one.apply_sync(&getpid, "getpid", vec![]).await.unwrap(),
        Value::U32(1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn push_and_pull_round_trip_every_wit_value_type() {
    let cluster = Cluster::start(1);
    let rc = cluster.client().await;
    let dv = rc.view(vec![EngineId(0)]);
    let values = vec![
        Value::Bool(true),
        Value::S8(-8),
        Value::U8(8),
        Value::S16(-16),
        Value::U16(16),
        Value::S32(-32),
        Value::U32(32),
        Value::S64(i64::MIN),
        Value::U64(u64::MAX),
        Value::F32(0.5),
        Value::F64(f64::MAX),
        Value::Char('ß'),
        Value::String("wasp".into()),
        Value::List(vec![Value::U8(1), Value::U8(2)]),
        Value::Record(vec![
            ("word".into(), Value::String("a".into())),
            ("count".into(), Value::U32(2)),
        ]),
        Value::Tuple(vec![Value::S64(1), Value::Char('x')]),
        Value::Variant("circle".into(), Some(Box::new(Value::F64(1.5)))),
        Value::Variant("empty".into(), None),
        Value::Enum("put".into()),
        Value::Option(None),
        Value::Option(Some(Box::new(Value::U16(7)))),
        Value::Result(Ok(Some(Box::new(Value::String("ok".into()))))),
        Value::Result(Err(None)),
        Value::Flags(vec!["read".into(), "write".into()]),
    ];
    let entries: Vec<(String, Value)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("v{i}"), v.clone()))
        .collect();
    dv.push(entries).await.unwrap();
    for (i, value) in values.iter().enumerate() {
        assert_eq!(
            dv.pull(&format!("v{i}")).await.unwrap(),
            vec![value.clone()]
        );
    }
    dv.clear().await.unwrap();
    assert!(dv.pull("v0").await.is_err(), "cleared");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_names_and_oversize_scatters_fail_clearly() {
    let cluster = Cluster::start_with(2, &["--max-namespace", "1KiB"]);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    let err = dv.pull("missing").await.unwrap_err();
    assert!(matches!(err, ClientError::Namespace(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "engine 0 has no value named \"missing\" in its namespace"
    );

    let big: Vec<Value> = (0..400).map(Value::U64).collect();
    let err = dv.scatter("big", big, false).await.unwrap_err();
    // Engine 0's half: a list of 200 u64s and its name, as host memory
    // (`Value::cost_bytes`: one node for the list and one per item).
    let held = "big".len() + wasp_proto::value::NODE_BYTES * (1 + 200);
    assert!(
        err.to_string().starts_with(&format!(
            "engine 0: the namespace would hold {held} bytes, over its limit (namespace_bytes = 1 KiB)"
        )),
        "{err}"
    );
    // Nothing half-stored: the namespace still serves small values.
    dv.push(vec![("small".into(), Value::U8(1))]).await.unwrap();
    assert_eq!(
        dv.pull("small").await.unwrap(),
        vec![Value::U8(1), Value::U8(1)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn module_broadcast_sends_bytes_once_per_engine() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    let norm = Module::from_file(tasks::NORM).unwrap();
    let size = norm.bytes().len() as u64;

    let sent = |status: wasp_proto::msg::ClusterStatus| -> Vec<u64> {
        status.engines.iter().map(|e| e.module_bytes_sent).collect()
    };
    assert_eq!(sent(rc.status().await.unwrap()), vec![0, 0]);
    dv.load(&norm).await.unwrap();
    assert_eq!(sent(rc.status().await.unwrap()), vec![size, size]);
    // Pushing it again sends only its hash; so do later tasks.
    dv.load(&norm).await.unwrap();
    let args = vec![
        Value::List(vec![Value::F64(3.0), Value::F64(4.0)]),
        Value::F64(2.0),
    ];
    assert_eq!(
        dv.apply_sync(&norm, "norm", args.clone()).await.unwrap(),
        Value::List(vec![Value::F64(5.0), Value::F64(5.0)])
    );
    let lview = rc.load_balanced_view();
    for _ in 0..4 {
        assert_eq!(
            lview.apply_sync(&norm, "norm", args.clone()).await.unwrap(),
            Some(Value::F64(5.0))
        );
    }
    assert_eq!(sent(rc.status().await.unwrap()), vec![size, size]);
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_map_gives_one_chunk_per_engine_and_pull_takes_names() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    let pow10 = Module::from_file(tasks::POW10).unwrap();
    let xs: Vec<Value> = (0..7).map(Value::S64).collect();
    let mut ar = dv.map_async(&pow10, "pow10", vec![xs]).await.unwrap();
    assert_eq!(ar.msg_ids().len(), 2, "one task per engine");
    let expected: Vec<Option<Value>> = (0..7i64).map(|x| Some(Value::S64(x.pow(10)))).collect();
    assert_eq!(ar.get(None).await.unwrap(), expected);
    // The first engine took the larger, first part.
    let engines: Vec<_> = ar.metadata().iter().map(|m| m.unwrap().engine).collect();
    assert_eq!(engines, vec![Some(EngineId(0)), Some(EngineId(1))]);

    dv.push(vec![("a".into(), Value::U8(1)), ("b".into(), Value::U8(2))])
        .await
        .unwrap();
    assert_eq!(
        dv.pull_names(&["b", "a"]).await.unwrap(),
        vec![
            vec![Value::U8(2), Value::U8(1)],
            vec![Value::U8(2), Value::U8(1)]
        ]
    );
}

/// Typed lists (issue 13) through the namespaces: a million f64 scattered
/// as typed parts, each engine's part used by `Reference` (the norm of its
/// part), the results and the parts gathered back as one typed list.
#[tokio::test(flavor = "multi_thread")]
async fn a_typed_array_scatters_resolves_by_reference_and_gathers_back() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let dv = rc.view(rc.ids().await.unwrap());
    let a: Vec<f64> = (0..1_000_000).map(|i| f64::from(i % 1000) * 1e-3).collect();
    let array = wasp_proto::Array::F64(a.clone());
    dv.scatter_array("a", &array, false).await.unwrap();
    // Each engine holds its half as a typed list.
    let parts = dv.pull("a").await.unwrap();
    assert_eq!(parts.len(), 2);
    assert!(
        parts.iter().all(|p| matches!(p, Value::Array(_))),
        "typed parts"
    );
    assert_eq!(parts[0], Value::from(&a[..500_000]));
    // The seed's `norm` of each engine's own part, by reference.
    let norm = Module::from_file(tasks::NORM).unwrap();
    let mut ar = dv
        .apply_args(&norm, "norm", vec![reference("a"), Value::F64(2.0).into()])
        .await
        .unwrap();
    let norms = ar.get(None).await.unwrap();
    let expected = |part: &[f64]| part.iter().map(|x| x * x).sum::<f64>().sqrt();
    // The task sums as numpy does (in eight running sums), so its last
    // bits may differ from one long sum's.
    let near = |got: &Option<Value>, want: f64| matches!(got, Some(Value::F64(x)) if (x - want).abs() <= 1e-12 * want);
    assert_eq!(norms.len(), 2);
    assert!(near(&norms[0], expected(&a[..500_000])), "{norms:?}");
    assert!(near(&norms[1], expected(&a[500_000..])), "{norms:?}");
    assert_eq!(dv.gather_array("a").await.unwrap(), array);
    // Pushed whole to every engine once, it is passed by reference to
    // load-balanced calls, wherever they run (`lview.apply(f,
    // Reference('a'))`).
    dv.push(vec![("whole".to_owned(), Value::from(a.clone()))])
        .await
        .unwrap();
    let lview = rc.load_balanced_view();
    for _ in 0..4 {
        let mut ar = lview
            .apply_args(
                &norm,
                "norm",
                vec![reference("whole"), Value::F64(2.0).into()],
            )
            .await
            .unwrap();
        let got = ar.get_one(None).await.unwrap();
        assert!(near(&got, expected(&a)), "{got:?}");
    }
    // Item by item, the same list gathers to the same items.
    assert_eq!(dv.gather("a").await.unwrap().len(), 1_000_000);
    // A target holding something else is named, not concatenated.
    dv.push(vec![("s".to_owned(), Value::String("x".into()))])
        .await
        .unwrap();
    let err = dv.gather_array("s").await.unwrap_err().to_string();
    assert!(
        err.contains("a target holds string, not a list of numbers"),
        "{err}"
    );
}
