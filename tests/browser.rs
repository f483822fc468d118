//! The headless-browser harness (tests/common/browser.rs) end to end, before
//! the dashboard's tests rely on it (issue 16): a page served here, with a
//! token form, a button and a list fed by server-sent events, driven in a
//! real Chromium. The test fills the form, clicks, waits for each event to
//! show, reads the list back by selector and by script, saves a
//! screenshot, and checks that dropping the browser leaves no process.
//!
//! Needs chromium and chromedriver (scripts/setup); without them it fails
//! saying so.

use std::net::SocketAddr;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

#[path = "common/browser.rs"]
mod browser;
mod common;
use common::running;

use browser::Browser;

/// The token the page must send to subscribe to the events.
const TOKEN: &str = "s3cret-token";

/// How many events the server sends before its last.
const EVENTS: usize = 5;

/// The page: the form opens an `EventSource` with the token; each message
/// becomes a list item; an `end` event closes the source. `#status` and its
/// `data-state` say where the stream is.
const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>wasp browser self-test</title></head>
<body>
<h1>Events</h1>
<form id="login">
  <label>Token <input id="token" name="token" type="password" autocomplete="off"></label>
  <button id="connect" type="submit">Connect</button>
</form>
<p id="status" data-state="idle">idle</p>
<ul id="events"></ul>
<script>
window.received = [];
const status = document.getElementById("status");
function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}
document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value;
  const source = new EventSource("/events?token=" + encodeURIComponent(token));
  source.onopen = () => show("open", "connected");
  source.onerror = () => { source.close(); show("error", "refused"); };
  source.onmessage = (message) => {
    window.received.push(message.data);
    const item = document.createElement("li");
    item.textContent = message.data;
    document.getElementById("events").append(item);
  };
  source.addEventListener("end", () => { source.close(); show("closed", "finished"); });
});
</script>
</body>
</html>
"#;

/// A tiny HTTP/1.1 server: `/` is [`PAGE`], `/events?token=TOKEN` a
/// server-sent event stream of what the test sends; the rest 404, a wrong
/// token 403. One request per connection.
struct Server {
    addr: SocketAddr,
    /// Each string is one whole event (`data: ...\n\n`).
    events: broadcast::Sender<String>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (events, _) = broadcast::channel(64);
        let sender = events.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let events = sender.clone();
                tokio::spawn(async move {
                    // A browser that goes away mid-response is not a failure.
                    let _ = respond(stream, events).await;
                });
            }
        });
        Self { addr, events }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends one event to the subscribed page.
    fn send(&self, event: String) {
        self.events
            .send(event)
            .expect("the page is subscribed to the events");
    }
}

async fn respond(mut stream: TcpStream, events: broadcast::Sender<String>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/" => {
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
            stream.write_all(reply.as_bytes()).await
        }
        "/events" if query == format!("token={TOKEN}") => {
            // Subscribed before the headers go out, so that when the page
            // says it is connected, no event sent after can be missed.
            let mut events = events.subscribe();
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                      cache-control: no-cache\r\nconnection: close\r\n\r\n",
                )
                .await?;
            while let Ok(event) = events.recv().await {
                stream.write_all(event.as_bytes()).await?;
                stream.flush().await?;
            }
            Ok(())
        }
        "/events" => {
            stream
                .write_all(
                    b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
        }
        _ => {
            stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
        }
    }
}

/// The live processes whose command line holds `mark`.
fn processes_marked(mark: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            running(pid)
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(mark))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_and_server_sent_events_are_driven_in_headless_chromium() {
    let server = Server::start().await;
    let browser = Browser::start().await;

    browser.goto(&server.url("/")).await;
    browser.wait_for("#login").await;
    assert_eq!(
        browser.eval("return document.title").await,
        json!("wasp browser self-test")
    );

    // A wrong token is refused; typing the right one replaces it.
    browser.fill("#token", "wrong").await;
    browser.click("#connect").await;
    browser.wait_for_text("#status", "refused").await;
    browser.fill("#token", TOKEN).await;
    browser.click("#connect").await;
    browser.wait_for_text("#status", "connected").await;
    assert_eq!(
        browser.attr("#status", "data-state").await.as_deref(),
        Some("open")
    );

    // One event at a time, each shown before the next is sent: the list is
    // updated live, not when the stream ends.
    for i in 1..=EVENTS {
        server.send(format!("data: event {i}\n\n"));
        browser.wait_for_count("#events li", i).await;
    }
    browser
        .wait_for_text("#events li:last-child", &format!("event {EVENTS}"))
        .await;
    server.send("event: end\ndata: bye\n\n".to_owned());
    browser
        .wait_until(
            "the stream to be closed by its end event",
            "return document.getElementById('status').dataset.state === 'closed'",
        )
        .await;

    let expected: Vec<String> = (1..=EVENTS).map(|i| format!("event {i}")).collect();
    assert_eq!(browser.count("#events li").await, EVENTS);
    assert_eq!(browser.texts("#events li").await, expected);
    assert_eq!(browser.text("#events li:first-child").await, "event 1");
    assert_eq!(
        browser.eval("return window.received").await,
        json!(expected)
    );
    assert_eq!(browser.count("#no-such-thing").await, 0);

    let path = browser.screenshot("browser-self-test").await;
    let png = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );

    // Dropping the browser kills chromedriver, Chromium and its helpers,
    // the crash handlers too (they leave chromedriver's process group but
    // name the browser's folder): nothing is left.
    let processes = browser.processes();
    let folder = browser.folder().to_owned();
    assert!(
        processes.len() > 2,
        "not chromedriver and chromium: {processes:?}"
    );
    drop(browser);
    let left: Vec<u32> = processes.into_iter().filter(|&pid| running(pid)).collect();
    assert_eq!(left, Vec::<u32>::new(), "processes left running");
    let marked = processes_marked(&folder.display().to_string());
    assert_eq!(
        marked,
        Vec::<u32>::new(),
        "processes naming {} left",
        folder.display()
    );
    assert!(!folder.exists(), "{} left", folder.display());
}

/// A wait in vain fails, saying what it awaited and showing the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "for `#events li` to find 1 elements, in vain")]
async fn a_wait_in_vain_fails_saying_what_it_awaited() {
    let server = Server::start().await;
    let mut browser = Browser::start().await;
    browser.goto(&server.url("/")).await;
    // Short, since this wait is meant to fail: nothing is ever sent.
    browser.set_wait(std::time::Duration::from_secs(1));
    browser.wait_for_count("#events li", 1).await;
}
