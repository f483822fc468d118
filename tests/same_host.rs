//! Issue 13, item 3: between processes on one host, big values travel as
//! sealed memory files the receiver maps (`wasp_net::same_host`); without
//! the channel (`wasp controller --no-same-host`, or a peer in another
//! network namespace) the same calls go through QUIC and give the same
//! results.

use wasp_client::{Module, reference};
use wasp_net::ConnectionFile;
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::Cluster;

/// `norm` of an 8 MB argument, a push of 8 MB to both engines used by
/// reference and pulled back, and a 1.6 MB result, with and without the channel: the same
/// answers; the big result a memory file the client received only with it.
#[tokio::test(flavor = "multi_thread")]
async fn big_values_cross_one_host_as_memory_files_and_quic_without_the_channel() {
    let a: Vec<f64> = (0..1_000_000).map(|i| (i % 1000) as f64 * 0.5).collect();
    let expected_norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let norm = Module::from_file(tasks::NORM).expect("norm");
    let evil = Module::from_file(tasks::EVIL).expect("evil");
    for same_host in [false, true] {
        let cluster = if same_host {
            Cluster::start(2)
        } else {
            Cluster::start_with(2, &["--no-same-host"])
        };
        let file = ConnectionFile::read(&cluster.client_file()).expect("client file");
        assert_eq!(file.same_host.is_some(), same_host, "{file:?}");
        let rc = cluster.client().await;
        let ids = rc.ids().await.expect("ids");
        assert_eq!(ids, vec![EngineId(0), EngineId(1)]);
        let lview = rc.load_balanced_view();

        let got = lview
            .apply_sync(&norm, "norm", vec![Value::from(a.clone()), Value::F64(2.0)])
            .await
            .expect("norm");
        assert_eq!(
            got,
            Some(Value::F64(expected_norm)),
            "same_host {same_host}"
        );

        let dv = rc.view(ids.clone());
        dv.push(vec![("a".to_owned(), Value::from(a.clone()))])
            .await
            .expect("pushes");
        let mut ar = dv
            .apply_args(&norm, "norm", vec![reference("a"), Value::F64(2.0).into()])
            .await
            .expect("applies");
        assert_eq!(
            ar.get(None).await.expect("norms"),
            vec![Some(Value::F64(expected_norm)); 2],
            "each engine's pushed copy, same_host {same_host}"
        );
        // Kept by each engine as the bytes it received (on one host, the
        // client's memory file) and pulled back as it was pushed.
        let pulled = dv.pull("a").await.expect("pulls");
        assert_eq!(pulled.len(), 2);
        for value in pulled {
            assert!(
                matches!(&value, Value::Array(array) if matches!(&**array, wasp_proto::Array::F64(v) if *v == a)),
                "the pushed list comes back as it went, a typed list, same_host {same_host}"
            );
        }

        let received = wasp_net::same_host::blobs_received();
        let zeros = lview
            .apply_sync(&evil, "zeros", vec![Value::U32(200_000)])
            .await
            .expect("zeros");
        assert_eq!(zeros, Some(Value::from(vec![0.0f64; 200_000])));
        assert_eq!(
            wasp_net::same_host::blobs_received() - received,
            usize::from(same_host),
            "the 1.6 MB result came as a memory file only over the channel"
        );
        drop(zeros);
        drop((ar, dv, lview, rc, cluster));
    }
}
