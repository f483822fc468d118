//! Issue 10, item 5: the controller's memory is bounded whatever a client
//! does. A client that never reads its answers stops being read (it slows
//! only itself, and the controller does not buffer without bound); a
//! tenant's module storage has a limit with a named error; a namespace
//! operation with an unknown target is refused before anything is sent.

use wasp_client::{Client, ClientError, Module};
use wasp_controller::{Controller, ControllerConfig};
use wasp_net::ConnectionFile;
use wasp_proto::msg::{ClientMsg, NamespaceOp, Request, Role};
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::{Cluster, cluster_pid, peak_rss};

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_is_not_buffered_without_bound_and_slows_only_itself() {
    let cluster = Cluster::start(2);
    let controller = cluster_pid(&cluster, "controller");
    let rc = cluster.client().await;
    // A 1 MB value on engine 0: every pull of it is a 1 MB answer.
    let e0 = rc.view(vec![EngineId(0)]);
    e0.push(vec![("big".into(), Value::String("x".repeat(1 << 20)))])
        .await
        .expect("push");
    let area = Module::from_file(tasks::AREA).expect("module");
    e0.apply_sync(&area, "area", vec![Value::S64(1), Value::S64(1)])
        .await
        .expect("warm up");
    let before = peak_rss(controller);

    // The silent client asks for 400 MB of answers and reads none.
    let file = ConnectionFile::read(&cluster.client_file()).expect("connection file");
    let mut silent = wasp_net::dial(&file, Role::Client).await.expect("dial");
    for id in 0..400u64 {
        let pull = ClientMsg::Request {
            id,
            request: Request::Namespace {
                targets: vec![EngineId(0)],
                op: NamespaceOp::Pull(vec!["big".into()]),
            },
        };
        silent.send.send(&vec![pull]).await.expect("send");
    }

    // Meanwhile another client's tasks complete, on the same engine (whose
    // work runs in order: these run after every pull it was sent).
    for i in 0..20 {
        let got = e0
            .apply_sync(&area, "area", vec![Value::S64(2), Value::S64(i)])
            .await
            .expect("apply while a client is silent");
        assert_eq!(got, Value::S64(2 * i));
    }
    let lview = rc.load_balanced_view();
    for i in 0..20 {
        let got = lview
            .apply_sync(&area, "area", vec![Value::S64(3), Value::S64(i)])
            .await
            .expect("apply while a client is silent");
        assert_eq!(got, Some(Value::S64(3 * i)));
    }
    let status = rc.status().await.expect("status");
    assert_eq!(status.engines.len(), 2);

    // Without backpressure the controller held every answer (400 MB and
    // more); with it, at most the client's queue budget (16 MiB), 32 answers in flight and what
    // QUIC's window takes.
    let grown = peak_rss(controller).saturating_sub(before);
    eprintln!("the controller's peak memory grew by {} MiB", grown >> 20);
    assert!(
        grown < 200 << 20,
        "the controller's peak memory grew by {} MiB for a client that reads nothing",
        grown >> 20
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_past_its_module_storage_limit_gets_a_named_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let area = Module::from_file(tasks::AREA).expect("module");
    let pow10 = Module::from_file(tasks::POW10).expect("module");
    let mut config = ControllerConfig::new(dir.path().to_owned());
    // Room for area, not for area and pow10.
    config.max_module_storage = (area.bytes().len() + pow10.bytes().len() / 2) as u64;
    let limit = config.max_module_storage;
    let controller = Controller::start(config).await.expect("controller");
    let rc = Client::connect_file(&controller.client_file)
        .await
        .expect("connect");
    rc.ensure_module(&area).await.expect("area fits");
    let err = rc.ensure_module(&pow10).await.expect_err("over the limit");
    let message = err.to_string();
    assert!(matches!(err, ClientError::Controller(_)), "{err:?}");
    assert!(
        message.contains(&format!("max_module_storage = {limit} bytes"))
            && message.contains("--max-module-storage"),
        "{message}"
    );
    // A module already stored costs nothing more: uploading it again (by
    // a new client, which does not know it) succeeds.
    let again = Client::connect_file(&controller.client_file)
        .await
        .expect("connect");
    again.ensure_module(&area).await.expect("already stored");
    controller.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_targets_are_deduplicated_and_unknown_ones_refused_before_anything_is_sent() {
    let cluster = Cluster::start(2);
    let rc = cluster.client().await;
    // Engine 7 does not exist: nothing is pushed anywhere.
    let err = rc
        .view(vec![EngineId(0), EngineId(7), EngineId(1)])
        .push(vec![("y".into(), Value::S64(1))])
        .await
        .expect_err("unknown target");
    assert!(err.to_string().contains("not connected: engine 7"), "{err}");
    let pulled = rc.view(vec![EngineId(0)]).pull("y").await;
    assert!(pulled.is_err(), "y was pushed to engine 0: {pulled:?}");

    // A target listed twice is one engine: its reply stands for both.
    let dv = rc.view(vec![EngineId(1), EngineId(0), EngineId(1)]);
    dv.push(vec![("z".into(), Value::S64(5))])
        .await
        .expect("push");
    assert_eq!(
        dv.pull("z").await.expect("pull"),
        vec![Value::S64(5), Value::S64(5), Value::S64(5)]
    );
}
