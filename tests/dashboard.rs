//! Issue 16: the dashboard in a real headless Chromium, against a real
//! cluster with `--dashboard`.
//!
//! A tenant signs in (after a wrong token is refused), watches its map's
//! progress advance to done, finds a bar per task in the task stream and
//! none of another tenant's work, opens a task's record, and is signed
//! out when its tenant is removed; an admin then sees every tenant's work
//! and failures. A second test keeps the page live through a 100,000-task
//! map on 1,000 engines and prints what the page cost; a third holds the
//! dashboard's connections at their bound.
//!
//! Nothing here measures time: the tests assert what the page shows and
//! the order it shows it in. Screenshots go to `target/screenshots/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use wasp_client::{Client, Module};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{Cluster, Process, wasp, wasp_command};

/// How long a map or the processes may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// A port free on loopback now (the dashboard binds it next).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The token of a connection file.
fn token_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("connection file");
    let json: Json = serde_json::from_str(&text).expect("json");
    json["token"].as_str().expect("a token").to_owned()
}

/// `wasp tenant add NAME` on the cluster; its connection file.
fn add_tenant(cluster: &Cluster, name: &str) -> PathBuf {
    let out = wasp(&cluster.dir, &["tenant", "add", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Signs in with `token` and waits for the page to be live.
async fn sign_in(page: &Browser, token: &str) {
    page.wait_for("#login").await;
    page.fill("#token", token).await;
    page.click("#sign-in").await;
    page.wait_until(
        "the page to be live",
        "return document.getElementById('live').dataset.state === 'live' \
         && document.getElementById('dashboard').offsetParent !== null",
    )
    .await;
}

/// The task ids of the bars in the task stream, and their functions.
async fn bars(page: &Browser) -> Vec<(String, String)> {
    let value = page
        .eval(
            "return Array.from(document.querySelectorAll('#stream rect.bar'), \
             b => [b.dataset.task, b.dataset.func])",
        )
        .await;
    serde_json::from_value(value).expect("bars as pairs")
}

/// Clicks the element `selector` finds as a user would (through the
/// page's event handlers; a 1-pixel bar is too thin for WebDriver's own
/// click), then waits for the task record it opens.
async fn open_record(page: &Browser, selector: &str, task: &str) -> String {
    page.eval_with(
        "document.querySelector(arguments[0]).dispatchEvent(\
         new MouseEvent('click', {bubbles: true}))",
        vec![json!(selector)],
    )
    .await;
    page.wait_until_with(
        &format!("the record of {task}"),
        "const r = document.getElementById('record'); \
         return r.dataset.task === arguments[0] && r.offsetParent !== null",
        vec![json!(task)],
    )
    .await;
    page.text("#record").await
}

/// The status a fetch of `path` from the page gets (with its cookie).
async fn status_from_page(page: &Browser, path: &str) -> u64 {
    let status = page
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(arguments[0]).then(r => done(r.status), e => done(String(e)))",
            vec![json!(path)],
        )
        .await
        .expect("the fetch ran");
    status.as_u64().unwrap_or_else(|| panic!("{status}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_watches_its_map_live_and_sees_no_one_elses_work() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/");
    let cluster = Cluster::start_with(2, &["--dashboard", &format!("127.0.0.1:{port}")]);
    let alice_file = add_tenant(&cluster, "alice");
    let alice_token = token_of(&alice_file);
    let admin_token = token_of(&cluster.client_file());

    // The admin's work first: a map whose items from 79 on trap.
    let admin = cluster.client().await;
    let pow10 = Module::from_file(tasks::POW10).expect("pow10 task");
    let xs = (0..100i64).map(Value::S64).collect();
    let mut traps = admin
        .load_balanced_view()
        .map_async(&pow10, "pow10", vec![xs])
        .await
        .expect("submitted");
    traps.wait(None).await;
    let admin_ids: Vec<String> = traps.msg_ids().iter().map(ToString::to_string).collect();

    let page = Browser::start().await;
    page.goto(&base).await;

    // A wrong token is refused, saying why, and shows nothing.
    page.wait_for("#login").await;
    page.fill("#token", "not-the-token").await;
    page.click("#sign-in").await;
    page.wait_for_text("#login-error", "matches no tenant")
        .await;
    let hidden = page
        .eval("return document.getElementById('dashboard').offsetParent === null")
        .await;
    assert_eq!(hidden, json!(true), "the dashboard stays hidden");

    // Alice signs in: the engines appear.
    sign_in(&page, &alice_token).await;
    page.wait_for_count("#engines tr.engine", 2).await;
    let viewer = page.text("#viewer").await;
    assert!(
        viewer.contains("alice") && !viewer.contains("admin"),
        "{viewer}"
    );
    // The token went into an HttpOnly cookie's session: it is in no URL,
    // no storage and no cookie a script can read.
    let leaks = page
        .eval_with(
            "const t = arguments[0]; return [location.href.includes(t), \
             document.cookie.includes(t) || document.cookie.includes('wasp_session'), \
             JSON.stringify(localStorage).includes(t), \
             JSON.stringify(sessionStorage).includes(t), \
             document.getElementById('token').value.length]",
            vec![json!(alice_token)],
        )
        .await;
    assert_eq!(leaks, json!([false, false, false, false, 0]));

    // Alice's map: 60 tasks of 50 ms on 2 engines. The test samples the
    // page until the map is done: its progress only grows, shows a part
    // done before all, and the engines show her tasks while they run.
    let alice = Client::connect_file(&alice_file)
        .await
        .expect("alice connects");
    let sleep = Module::from_file(tasks::SLEEP).expect("sleep task");
    let mut map = alice
        .load_balanced_view()
        .map_async(&sleep, "sleep-here", vec![vec![Value::F64(0.05); 60]])
        .await
        .expect("submitted");
    let ids: Vec<String> = map.msg_ids().iter().map(ToString::to_string).collect();
    let first = ids[0].clone();
    let mut progress: Vec<u64> = Vec::new();
    let mut running_seen = false;
    let mut shot_during_map = false;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let sample = page
            .eval_with(
                "const m = document.querySelector(`#maps .map[data-first=\"${arguments[0]}\"]`); \
                 const current = Array.from(document.querySelectorAll('#engines tr.engine [data-task]'), \
                   e => e.dataset.task); \
                 return m ? [Number(m.dataset.done), Number(m.dataset.total), \
                   m.dataset.finished === 'true', current] : null",
                vec![json!(first)],
            )
            .await;
        if let Some([done, total, finished, current]) = sample.as_array().map(Vec::as_slice) {
            assert_eq!(total, &json!(60), "the map's total");
            let done = done.as_u64().expect("a count");
            progress.push(done);
            let current: Vec<String> = serde_json::from_value(current.clone()).expect("ids");
            if current.iter().any(|t| ids.contains(t)) {
                running_seen = true;
            }
            if 0 < done && done < 60 && !shot_during_map {
                page.screenshot("dashboard-during-map").await;
                shot_during_map = true;
            }
            if finished == &json!(true) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the map never showed as finished: {progress:?}\n{}",
            page.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(map.wait(None).await);
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {progress:?}"
    );
    assert!(
        progress.iter().any(|&d| 0 < d && d < 60),
        "a part done was shown before all: {progress:?}"
    );
    assert_eq!(progress.last(), Some(&60));
    assert!(running_seen, "an engine row showed one of alice's tasks");

    // One bar per task, hers only; her row alone in the queue; none of
    // the admin's failures.
    page.wait_for_count("#stream rect.bar", ids.len()).await;
    let shown = bars(&page).await;
    let tasks_shown: BTreeSet<&str> = shown.iter().map(|(t, _)| t.as_str()).collect();
    let expected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(tasks_shown, expected, "a bar per task of hers");
    assert!(shown.iter().all(|(_, f)| f == "sleep-here"), "{shown:?}");
    let tenants = page
        .eval("return Array.from(document.querySelectorAll('#queue tr.tenant'), r => r.dataset.tenant)")
        .await;
    assert_eq!(tenants, json!(["alice"]));
    assert_eq!(page.count("#failures tr.failure").await, 0);
    // The engines' totals are hers alone: 60 done, none of the admin's 79
    // done and 21 failed.
    let totals = page
        .eval(
            "const e = window.wasp.view.engines; \
             return [e.reduce((n, r) => n + r.done, 0), e.reduce((n, r) => n + r.failed, 0)]",
        )
        .await;
    assert_eq!(totals, json!([60, 0]));
    // Each engine's memory: its process's resident memory, from its
    // heartbeats, in the row's memory column.
    let memory = page
        .wait_until(
            "each engine row to show its process's memory",
            "const rows = Array.from(document.querySelectorAll('#engines tr.engine')); \
             const head = Array.from(document.querySelectorAll('#engines th'), h => h.textContent); \
             const column = head.indexOf('memory'); \
             const shown = rows.map(r => r.cells[column].textContent); \
             const bytes = window.wasp.view.engines.map(e => e.memory_bytes); \
             return column >= 0 && rows.length === 2 && shown.every(t => / MiB$/.test(t)) \
               && bytes.every(b => b > 1048576) ? shown : null",
        )
        .await;
    assert_eq!(memory.as_array().map(Vec::len), Some(2), "{memory}");
    let text = page.page_text().await;
    assert!(
        !text.contains("pow10"),
        "nothing of the admin's pow10: {text}"
    );

    // A bar opens its task's record: arguments and result.
    let record = open_record(
        &page,
        &format!("#stream rect.bar[data-task=\"{}\"]", ids[7]),
        &ids[7],
    )
    .await;
    assert!(record.contains("[0.05]"), "the arguments: {record}");
    assert!(record.contains("succeeded"), "{record}");
    // How much linear memory the task's instance held at its most.
    let peak = record
        .lines()
        .skip_while(|line| !line.starts_with("peak memory"))
        .find(|line| line.ends_with("KiB") || line.ends_with("MiB"));
    assert!(peak.is_some(), "the task's peak memory: {record}");
    // Another tenant's task is not found for her, as one that never was.
    let status = status_from_page(&page, &format!("/api/task/{}", admin_ids[0])).await;
    assert_eq!(status, 404);
    page.screenshot("dashboard-tenant").await;

    // Removing alice revokes her token: her live page is signed out, told
    // why.
    let out = wasp(&cluster.dir, &["tenant", "remove", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    page.wait_for_text("#login-error", "revoked").await;
    assert_eq!(
        page.eval("return document.getElementById('dashboard').offsetParent === null")
            .await,
        json!(true)
    );

    // An admin sees every tenant's work, and the failures.
    sign_in(&page, &admin_token).await;
    page.wait_for_count("#failures tr.failure", 21).await;
    let funcs: BTreeSet<String> = bars(&page).await.into_iter().map(|(_, f)| f).collect();
    assert_eq!(
        funcs,
        BTreeSet::from(["pow10".to_owned(), "sleep-here".to_owned()])
    );
    assert_eq!(page.count("#stream rect.bar").await, 160);
    // Coloured by function: one colour per func, and not the same one.
    let fills = page
        .eval(
            "const by = {}; \
             for (const b of document.querySelectorAll('#stream rect.bar')) \
               (by[b.dataset.func] ??= new Set()).add(b.getAttribute('fill')); \
             return Object.fromEntries(Object.entries(by).map(([f, s]) => [f, [...s]]))",
        )
        .await;
    let fills: BTreeMap<String, Vec<String>> =
        serde_json::from_value(fills).expect("fills by func");
    assert!(fills.values().all(|f| f.len() == 1), "{fills:?}");
    assert_ne!(fills["pow10"], fills["sleep-here"], "{fills:?}");
    let trapped = admin_ids[90].clone();
    let record = open_record(
        &page,
        &format!("#failures tr.failure[data-task=\"{trapped}\"]"),
        &trapped,
    )
    .await;
    assert!(
        record.contains("pow10 overflow: 90^10 does not fit in s64"),
        "its error and stderr: {record}"
    );
    page.screenshot("dashboard-admin").await;

    // Signing out ends the session: its cookie no longer opens anything.
    page.click("#logout").await;
    page.wait_for("#login").await;
    assert_eq!(status_from_page(&page, "/api/view").await, 401);
    page.close().await;
}

/// The dashboard stays live through a 100,000-task map on 1,000 engines
/// (ten processes of a hundred slots): every engine has its row, the
/// page keeps receiving updates while the map runs, a bar still opens its
/// record, and the map shows done. Prints what each update cost the page.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_keeps_up_with_a_thousand_engines_and_a_100k_task_map() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = wasp_command(&dir);
    command.args(["controller", "--dashboard", &format!("127.0.0.1:{port}")]);
    let _controller = Process::spawn(command, dir.path().join("controller.log"));
    let _engines: Vec<Process> = (0..10)
        .map(|i| {
            let mut command = wasp_command(&dir);
            command.args(["engine", "--slots", "100"]);
            Process::spawn(command, dir.path().join(format!("engine-{i}.log")))
        })
        .collect();
    let client_file = dir.path().join("profile_default/security/wasp-client.json");
    let deadline = Instant::now() + PATIENCE;
    let rc = loop {
        if let Ok(rc) = Client::connect_file(&client_file).await {
            break rc;
        }
        assert!(Instant::now() < deadline, "the controller did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut page = Browser::start().await;
    page.set_wait(PATIENCE);
    page.goto(&format!("http://127.0.0.1:{port}/")).await;
    sign_in(&page, &token_of(&client_file)).await;
    page.wait_for_count("#engines tr.engine", 1000).await;

    let pow10 = Module::from_file(tasks::POW10).expect("pow10 task");
    let xs: Vec<Value> = (0..100_000i64).map(|x| Value::S64(x % 32)).collect();
    let mut map = rc
        .load_balanced_view()
        .map_async(&pow10, "pow10", vec![xs])
        .await
        .expect("submitted");
    let first = map.msg_ids()[0].to_string();
    // Sample the page while the map runs: the updates it rendered, and the
    // map's progress.
    let mut samples: Vec<(u64, u64, bool)> = Vec::new();
    let mut opened_during_map = false;
    loop {
        let sample = page
            .eval_with(
                "const m = document.querySelector(`#maps .map[data-first=\"${arguments[0]}\"]`); \
                 return [window.wasp.updates, m ? Number(m.dataset.done) : 0, \
                   m !== null && m.dataset.finished === 'true']",
                vec![json!(first)],
            )
            .await;
        let (updates, done, finished): (u64, u64, bool) =
            serde_json::from_value(sample).expect("a sample");
        samples.push((updates, done, finished));
        if !finished && !opened_during_map && done > 0 {
            // Clicking works under load: the newest bar opens its record.
            let task = page
                .eval("const b = document.querySelectorAll('#stream rect.bar'); return b[b.length - 1].dataset.task")
                .await;
            let task = task.as_str().expect("a task id").to_owned();
            let record = open_record(
                &page,
                &format!("#stream rect.bar[data-task=\"{task}\"]"),
                &task,
            )
            .await;
            assert!(record.contains("pow10"), "{record}");
            opened_during_map = true;
        }
        if finished {
            break;
        }
        assert!(
            Instant::now() < deadline + PATIENCE,
            "the map never showed as finished: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(map.wait(None).await);
    let (last_updates, last_done, _) = *samples.last().expect("samples");
    assert_eq!(last_done, 100_000);
    // Updates kept coming while the map ran: several with it part done.
    let partial: BTreeSet<u64> = samples
        .iter()
        .filter(|(_, done, _)| 0 < *done && *done < 100_000)
        .map(|(updates, _, _)| *updates)
        .collect();
    assert!(
        partial.len() >= 2,
        "updates rendered while the map ran: {samples:?}"
    );
    assert!(opened_during_map, "a record opened during the map");
    // The stream holds the last 2,000 runs, one bar each.
    assert_eq!(page.count("#stream rect.bar").await, 2000);
    assert_eq!(page.count("#engines tr.engine").await, 1000);
    let cost = page
        .eval(
            "return {updates: window.wasp.updates, render_ms_max: window.wasp.renderMsMax, \
             render_ms_last: window.wasp.renderMs, view_bytes: window.wasp.viewBytes}",
        )
        .await;
    println!(
        "dashboard with 1,000 engines and a 100,000-task map: {cost} \
         ({last_updates} updates when the map showed done)"
    );
    page.screenshot("dashboard-1000-engines").await;
    page.close().await;
}

/// `GET path` with a bearer token over a connection of its own; the
/// status line.
async fn http_get(addr: &str, path: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or_default().to_owned()
}

/// Connections that send nothing hold at most the dashboard's bound of
/// 256: the next request waits for one of them to close (and is then
/// answered), while the controller goes on serving clients.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_bounded_and_never_stop_the_controller() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cluster = Cluster::start_with(1, &["--dashboard", &addr]);
    let token = token_of(&cluster.client_file());
    assert_eq!(
        http_get(&addr, "/api/view", &token).await,
        "HTTP/1.1 200 OK"
    );
    let mut idle = Vec::new();
    for _ in 0..256 {
        idle.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let waiting = tokio::spawn({
        let (addr, token) = (addr.clone(), token.clone());
        async move { http_get(&addr, "/api/view", &token).await }
    });
    // The controller serves its clients all the while.
    let rc = cluster.client().await;
    let pow10 = Module::from_file(tasks::POW10).expect("pow10 task");
    let results = rc
        .load_balanced_view()
        .map(&pow10, "pow10", vec![(0..10i64).map(Value::S64).collect()])
        .await
        .expect("a map beside the idle connections");
    assert_eq!(results.len(), 10);
    assert!(
        !waiting.is_finished(),
        "a 257th connection was served beyond the bound"
    );
    // One closes: the waiting request is accepted and answered.
    drop(idle.pop());
    let status = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("answered once a connection closed")
        .expect("the request ran");
    assert_eq!(status, "HTTP/1.1 200 OK");
}
