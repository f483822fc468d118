//! Issue 10, item 6: every request carries an id and every answer names it,
//! so concurrent calls on one `Client` each get their own answer. Before,
//! the client paired answers with requests by arrival order while the hub
//! answered a status at once and a namespace operation only when its
//! engines had replied: a status could receive a pull's answer.

use wasp_client::Module;
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::Cluster;

/// What one call returned, to be checked against what it asked.
#[derive(Debug, PartialEq)]
enum Got {
    Status(usize),
    Pushed,
    Pulled(Vec<Value>),
    Applied(Option<Value>),
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_mixed_calls_on_one_client_each_get_their_own_answer() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    let area = Module::from_file(tasks::AREA).expect("module");
    let both = rc.view(vec![EngineId(0), EngineId(1)]);
    // Every engine holds `k{j}` = j for a few j, so each pull asks for a
    // name of its own and its answer says which request it answers.
    let names: Vec<(String, Value)> = (0..100).map(|j| (format!("k{j}"), Value::S64(j))).collect();
    both.push(names).await.expect("push");
    // The module is uploaded before the race, so every apply is a submit.
    rc.ensure_module(&area).await.expect("upload");

    let calls = (0..100i64).map(|i| {
        let rc = rc.clone();
        let area = area.clone();
        tokio::spawn(async move {
            let engine = EngineId((i % 2) as u32);
            let got = match i % 4 {
                0 => Got::Status(rc.status().await.expect("status").engines.len()),
                1 => {
                    let view = rc.view(vec![engine]);
                    view.push(vec![(format!("p{i}"), Value::S64(i))])
                        .await
                        .expect("push");
                    Got::Pushed
                }
                2 => Got::Pulled(
                    rc.view(vec![engine])
                        .pull(&format!("k{i}"))
                        .await
                        .expect("pull"),
                ),
                _ => Got::Applied(
                    rc.load_balanced_view()
                        .apply_sync(&area, "area", vec![Value::S64(3), Value::S64(i)])
                        .await
                        .expect("apply"),
                ),
            };
            (i, got)
        })
    });
    let calls: Vec<_> = calls.collect();
    for call in calls {
        let (i, got) = call.await.expect("call task");
        let expected = match i % 4 {
            0 => Got::Status(2),
            1 => Got::Pushed,
            2 => Got::Pulled(vec![Value::S64(i)]),
            _ => Got::Applied(Some(Value::S64(3 * i))),
        };
        assert_eq!(got, expected, "call {i}");
    }
    // Every push landed where it was sent.
    for i in (1..100i64).step_by(4) {
        let engine = EngineId((i % 2) as u32);
        assert_eq!(
            rc.view(vec![engine])
                .pull(&format!("p{i}"))
                .await
                .expect("pull"),
            vec![Value::S64(i)],
            "p{i} on {engine}"
        );
    }
}
