//! Typed lists (issue 13) into a real guest and back: every list of
//! numbers round trips as an [`Array`], gives the same result as the same
//! list sent item by item, is refused with its path when its element type
//! is wrong, and counts against the argument limit as what it costs.

mod common;

use common::{call_err, call_ok, load};
use proptest::prelude::*;
use wasp_proto::testing::{arb_array, same_value};
use wasp_proto::{Array, Value};
use wasp_task_artifacts as tasks;

/// Runs an async block on a fresh current-thread runtime (proptest bodies
/// are synchronous).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// The array with its items in reverse order.
fn reversed(array: &Array) -> Array {
    macro_rules! rev {
        ($($case:ident),*) => {
            match array {
                $(Array::$case(v) => Array::$case(v.iter().rev().copied().collect()),)*
                Array::Shared(_) => reversed(&array.owned()),
            }
        };
    }
    rev!(S8, U8, S16, U16, S32, U32, S64, U64, F32, F64)
}

/// The `lists` export that reverses lists of `array`'s element type.
fn reverse_func(array: &Array) -> String {
    format!("reverse-{}", array.element_type())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every element type, through the guest: the result is a typed list,
    /// reversed item for item (NaNs included), and the same list sent
    /// item by item gives the identical result.
    #[test]
    fn every_typed_list_round_trips_through_a_guest(array in arb_array(300)) {
        let lists = load(tasks::LISTS);
        let func = reverse_func(&array);
        let (typed, per_item) = block_on(async {
            let typed = call_ok(&lists, &func, &[Value::from(array.clone())]).await;
            let per_item = call_ok(&lists, &func, &[Value::List(array.to_values())]).await;
            (typed, per_item)
        });
        let typed = typed.expect("a result");
        let expected = Value::from(reversed(&array));
        prop_assert!(same_value(&typed, &expected), "{typed:?} != {expected:?}");
        if !array.is_empty() {
            prop_assert!(matches!(typed, Value::Array(_)), "lifted as a typed list: {typed:?}");
        }
        let per_item = per_item.expect("a result");
        prop_assert!(same_value(&per_item, &typed));
    }
}

#[tokio::test]
async fn a_typed_list_among_other_arguments_and_results() {
    let lists = load(tasks::LISTS);
    let v: Vec<f64> = (0..1000).map(f64::from).collect();
    let result = call_ok(&lists, "scale", &[Value::from(v.clone()), Value::F64(0.5)]).await;
    let scaled: Vec<f64> = v.iter().map(|x| x * 0.5).collect();
    let sum: f64 = scaled.iter().sum();
    assert_eq!(
        result,
        Some(Value::Tuple(vec![Value::from(scaled), Value::F64(sum)]))
    );
}

#[tokio::test]
async fn a_typed_list_of_the_wrong_element_type_is_refused_with_its_path() {
    let lists = load(tasks::LISTS);
    let err = call_err(&lists, "reverse-f64", &[Value::from(vec![1i64, 2, 3])]).await;
    assert!(
        err.contains("v: expected list<f64>, found a list of 3 s64"),
        "{err}"
    );
    // Item by item, the first item of the wrong type is named.
    let items = vec![Value::F64(1.0), Value::F64(2.0), Value::S64(3)];
    let err = call_err(&lists, "reverse-f64", &[Value::List(items)]).await;
    assert!(err.contains("v[2]: expected f64, found s64"), "{err}");
}

#[tokio::test]
async fn typed_lists_count_against_the_argument_limit_as_their_bytes() {
    let norm = load(tasks::NORM);
    // 200,000 f64 are 1.6 MB: over the tests' 1 MiB argument limit, as
    // their bytes (not as 200,000 nodes of 32 bytes).
    let big = Value::from(vec![1.0f64; 200_000]);
    let expected_bytes = big.cost_bytes() + Value::F64(2.0).cost_bytes();
    assert!(expected_bytes < 1_700_000, "{expected_bytes}");
    let err = call_err(&norm, "norm", &[big, Value::F64(2.0)]).await;
    assert_eq!(
        err,
        format!(
            "task exceeded the argument size limit (arg_bytes = 1 MiB): the arguments are {expected_bytes} bytes"
        )
    );
    // Under it, the same call succeeds.
    let fits: Vec<f64> = (0..100_000).map(|i| f64::from(i % 7)).collect();
    let typed = call_ok(&norm, "norm", &[Value::from(fits.clone()), Value::F64(2.0)]).await;
    let expected: f64 = fits.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert_eq!(typed, Some(Value::F64(expected)));
    // Item by item (20,000 nodes, 640 KB: under the limit too), the same
    // list gives the identical result.
    let prefix = &fits[..20_000];
    let per_item = Value::List(prefix.iter().map(|&x| Value::F64(x)).collect());
    let per_item = call_ok(&norm, "norm", &[per_item, Value::F64(2.0)]).await;
    let typed = call_ok(&norm, "norm", &[Value::from(prefix), Value::F64(2.0)]).await;
    assert_eq!(typed, per_item);
}

/// A call on the bulk path and on the `Val` path, item by item: the
/// results (or errors) of both.
async fn both_paths(path: &str, func: &str, args: &[Value]) -> (String, String) {
    let bulk = common::call(&load(path), func, args).await.result;
    let vals = common::call_val_path(&common::load_val_path(path), func, args)
        .await
        .result;
    let show = |result: Result<Option<Value>, wasp_engine::CallError>| match result {
        // An empty list lifted item by item has no element type to be a
        // typed list of (the bulk path knows it): the same WIT value,
        // shown in one form.
        Ok(Some(Value::Array(array))) if array.is_empty() => {
            format!("{:?}", Some(Value::List(vec![])))
        }
        Ok(value) => format!("{value:?}"),
        Err(err) => format!("error: {err}"),
    };
    (show(bulk), show(vals))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The bulk path (one copy per list) and the `Val` path (a `Val` per
    /// item) give identical results, bit for bit (NaNs included, as the
    /// debug form prints them), for every element type, whether the list
    /// is sent typed or item by item.
    #[test]
    fn the_bulk_path_and_the_val_path_agree_for_every_element_type(array in arb_array(300)) {
        let func = reverse_func(&array);
        for arg in [Value::from(array.clone()), Value::List(array.to_values())] {
            let (bulk, vals) = block_on(both_paths(tasks::LISTS, &func, &[arg]));
            prop_assert_eq!(&bulk, &vals);
            prop_assert!(!bulk.starts_with("error"), "{}", bulk);
        }
    }
}

#[tokio::test]
async fn the_bulk_path_and_the_val_path_agree_on_norm_and_the_monte_carlo_example() {
    // An empty list: a typed one from the bulk path, an untyped one from
    // the `Val` path, the same value.
    let empty = Value::from(Vec::<u64>::new());
    let (bulk, vals) = both_paths(tasks::LISTS, "reverse-u64", &[empty]).await;
    assert_eq!(bulk, vals);
    let bulk = common::call(&load(tasks::LISTS), "reverse-u64", &[Value::List(vec![])]).await;
    assert!(
        matches!(bulk.result, Ok(Some(Value::Array(a))) if a.is_empty() && a.element_type() == wasp_proto::Type::U64)
    );
    // `norm(list<f64>, f64) -> f64` takes the bulk path.
    let v: Vec<f64> = (0..10_000).map(|i| f64::from(i).sin() * 1e3).collect();
    for p in [1.0, 2.0, 3.5] {
        let (bulk, vals) = both_paths(
            tasks::NORM,
            "norm",
            &[Value::from(v.clone()), Value::F64(p)],
        )
        .await;
        assert_eq!(bulk, vals);
        assert!(bulk.starts_with("Some(F64("), "{bulk}");
    }
    // Its result is a list of records: the `Val` path on both, with the
    // strikes sent typed or item by item.
    let strikes = vec![90.0, 100.0, 110.0];
    let args = |strikes: Value| {
        vec![
            Value::F64(100.0),
            strikes,
            Value::F64(0.2),
            Value::F64(0.05),
            Value::U32(30),
            Value::U32(2000),
            Value::U64(7),
        ]
    };
    let typed = args(Value::from(strikes.clone()));
    let per_item = args(Value::List(
        strikes.iter().map(|&k| Value::F64(k)).collect(),
    ));
    let (bulk, vals) = both_paths(tasks::MC_OPTIONS, "price-options", &typed).await;
    assert_eq!(bulk, vals);
    let (per_item, _) = both_paths(tasks::MC_OPTIONS, "price-options", &per_item).await;
    assert_eq!(per_item, bulk);
    assert!(bulk.contains("european-call"), "{bulk}");
}

#[tokio::test]
async fn a_list_of_numbers_lifted_in_one_copy_stops_at_the_result_limit() {
    // 200,000 zeros are 1.6 MB: over the tests' 1 MiB result limit, as
    // their bytes, on both paths (the `Val` path counts a `Val` an item).
    let (bulk, vals) = both_paths(tasks::EVIL, "zeros", &[Value::U32(200_000)]).await;
    for err in [&bulk, &vals] {
        assert!(
            err.starts_with("error: task exceeded the result size limit (result_bytes = 1 MiB)"),
            "{err}"
        );
    }
    // 100,000 zeros (800 KB) fit on the bulk path, which holds them as
    // their bytes; the `Val` path, at 32 bytes a `Val`, does not.
    let (bulk, vals) = both_paths(tasks::EVIL, "zeros", &[Value::U32(100_000)]).await;
    assert_eq!(
        bulk,
        format!("{:?}", Some(Value::from(vec![0.0f64; 100_000])))
    );
    assert!(
        vals.starts_with("error: task exceeded the result size limit"),
        "{vals}"
    );
    common::still_serving().await;
}

#[tokio::test]
async fn a_list_result_past_memory_or_misaligned_fails_the_call_on_both_paths() {
    for (func, args, expected) in [
        (
            "list-past-memory",
            vec![Value::U32(1000)],
            "list pointer/length out of bounds of memory",
        ),
        // Past the end of the address space, not just of memory: the
        // length times the item size overflows 32 bits.
        (
            "list-past-memory",
            vec![Value::U32(u32::MAX)],
            "list pointer/length out of bounds of memory",
        ),
        ("misaligned-list", vec![], "list pointer is not aligned"),
    ] {
        let (bulk, vals) = both_paths(tasks::EVIL, func, &args).await;
        assert!(
            bulk.starts_with("error: ") && bulk.contains(expected),
            "{func}: {bulk}"
        );
        assert!(
            vals.starts_with("error: ") && vals.contains(expected),
            "{func}: {vals}"
        );
        common::still_serving().await;
    }
}
