//! A headless Chromium for tests of web pages (issue 16, the dashboard):
//! [`Browser`] starts `chromedriver` on a free port and one Chromium session
//! in a fresh temporary folder (its profile and its `HOME`), drives it over
//! WebDriver (the `fantoccini` crate), and kills both, with every process
//! Chromium started, on drop.
//!
//! Every method fails the test with the reason (the page's text for a
//! wait that timed out, chromedriver's log for a browser that did not
//! start); nothing is skipped. Waits poll against a generous deadline
//! ([`WAIT`]) rather than assert on time. Selectors are CSS; scripts are
//! the body of a JavaScript function, as WebDriver runs them (`return ...`).
//!
//! Needs `chromium` and `chromedriver` on `PATH`: `scripts/setup` installs
//! Debian's `chromium` and `chromium-driver`.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a wait polls before it fails the test: a safety net that turns
/// a page that never gets there into a failure with its text, not a timing
/// assertion.
pub const WAIT: Duration = Duration::from_secs(30);

/// How long chromedriver may take to listen and Chromium to open a session.
const START: Duration = Duration::from_secs(60);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// How much of the page's text a failure shows.
const TEXT_SHOWN: usize = 4000;

/// Chromium's flags. The `--disable-*-networking`, `-component-update` and
/// `-sync` flags keep it from calling Google's services, which the closed
/// network of a test machine refuses (and which made its connections fail);
/// `--disable-dev-shm-usage` keeps it working where /dev/shm is small (a
/// container's 64 MB), which Debian's launcher means to detect but cannot
/// always.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// A headless Chromium driven through chromedriver, both killed on drop.
pub struct Browser {
    /// The WebDriver session.
    client: Client,
    /// chromedriver, leader of a process group that holds Chromium too.
    driver: Child,
    /// Chromium's profile folder (`--user-data-dir`), its `HOME`, and
    /// chromedriver's log.
    dir: tempfile::TempDir,
    /// How long waits poll.
    wait: Duration,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, failing the
    /// test with the reason if either is missing or does not start.
    pub async fn start() -> Self {
        let chromium = require("chromium", "chromium");
        let chromedriver = require("chromedriver", "chromium-driver");
        let dir = tempfile::Builder::new()
            .prefix("wasp-browser-")
            .tempdir()
            .expect("temp dir");
        let profile = dir.path().join("profile");
        let home = dir.path().join("home");
        std::fs::create_dir(&profile).expect("profile folder");
        std::fs::create_dir(&home).expect("home folder");
        let log_path = dir.path().join("chromedriver.log");
        let log = File::create(&log_path).expect("chromedriver log");

        // Its own process group, so that one signal on drop reaches
        // Chromium and its helpers as well, which chromedriver would leave
        // running if it were killed alone. A HOME of its own: Chromium's
        // crash handlers (which leave the group) keep their database under
        // it, rather than in the user's ~/.config, and so name the folder.
        // `--enable-chrome-logs`: Chromium's own output in the log too, for
        // a Chromium that exits at once.
        let mut driver = Command::new(&chromedriver)
            .args(["--port=0", "--enable-chrome-logs"])
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("chromedriver log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", chromedriver.display()));

        let port = match driver_port(&mut driver, &log_path).await {
            Ok(port) => port,
            Err(reason) => {
                stop(&mut driver, dir.path());
                panic!("{reason}\nchromedriver's log:\n{}", read_log(&log_path));
            }
        };

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let connected = tokio::time::timeout(
            START,
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await;
        let client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                stop(&mut driver, dir.path());
                panic!(
                    "chromium did not start a session: {err}\nchromedriver's log:\n{}",
                    read_log(&log_path)
                );
            }
            Err(_) => {
                stop(&mut driver, dir.path());
                panic!(
                    "chromium did not start a session within {START:?}\nchromedriver's log:\n{}",
                    read_log(&log_path)
                );
            }
        };
        Self {
            client,
            driver,
            dir,
            wait: WAIT,
        }
    }

    /// Sets how long the `wait_*` methods poll before they fail (default
    /// [`WAIT`]).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// The underlying WebDriver client, for what this driver does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The live processes of this browser: chromedriver, Chromium and its
    /// helpers. Drop kills them all.
    pub fn processes(&self) -> Vec<u32> {
        processes_of(self.driver.id(), self.dir.path())
    }

    /// The temporary folder of this browser (profile, `HOME`, log), which
    /// drop removes.
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// Loads `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("cannot load {url}: {err}"));
    }

    /// Types `text` into the input that `selector` finds, after clearing it.
    pub async fn fill(&self, selector: &str, text: &str) {
        let input = self.find(selector).await;
        input
            .clear()
            .await
            .unwrap_or_else(|err| panic!("cannot clear `{selector}`: {err}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("cannot type into `{selector}`: {err}"));
    }

    /// Clicks the element that `selector` finds.
    pub async fn click(&self, selector: &str) {
        self.find(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("cannot click `{selector}`: {err}"));
    }

    /// The rendered text of the element that `selector` finds.
    pub async fn text(&self, selector: &str) -> String {
        self.find(selector)
            .await
            .text()
            .await
            .unwrap_or_else(|err| panic!("cannot read the text of `{selector}`: {err}"))
    }

    /// The rendered texts of every element that `selector` finds, in
    /// document order.
    pub async fn texts(&self, selector: &str) -> Vec<String> {
        let value = self
            .eval_with(
                "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)",
                vec![json!(selector)],
            )
            .await;
        serde_json::from_value(value.clone())
            .unwrap_or_else(|err| panic!("texts of `{selector}` are not strings ({err}): {value}"))
    }

    /// The attribute `name` of the element that `selector` finds, `None`
    /// if it has none.
    pub async fn attr(&self, selector: &str, name: &str) -> Option<String> {
        self.find(selector)
            .await
            .attr(name)
            .await
            .unwrap_or_else(|err| panic!("cannot read `{name}` of `{selector}`: {err}"))
    }

    /// How many elements `selector` finds.
    pub async fn count(&self, selector: &str) -> usize {
        let value = self
            .eval_with(
                "return document.querySelectorAll(arguments[0]).length",
                vec![json!(selector)],
            )
            .await;
        value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| panic!("the count of `{selector}` is not a number: {value}"))
    }

    /// Runs `script` (a function body: `return ...` gives the result) and
    /// returns its result as JSON.
    pub async fn eval(&self, script: &str) -> Value {
        self.eval_with(script, Vec::new()).await
    }

    /// Runs `script` with `args` as its `arguments` and returns its result.
    pub async fn eval_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\nscript: {script}"))
    }

    /// Waits until `selector` finds an element.
    pub async fn wait_for(&self, selector: &str) {
        self.wait_until_with(
            &format!("`{selector}` to exist"),
            "return document.querySelector(arguments[0]) !== null",
            vec![json!(selector)],
        )
        .await;
    }

    /// Waits until the element that `selector` finds shows text containing
    /// `needle`.
    pub async fn wait_for_text(&self, selector: &str, needle: &str) {
        self.wait_until_with(
            &format!("`{selector}` to show {needle:?}"),
            "const e = document.querySelector(arguments[0]); \
             return e !== null && e.innerText.includes(arguments[1])",
            vec![json!(selector), json!(needle)],
        )
        .await;
    }

    /// Waits until `selector` finds exactly `n` elements.
    pub async fn wait_for_count(&self, selector: &str, n: usize) {
        self.wait_until_with(
            &format!("`{selector}` to find {n} elements"),
            "return document.querySelectorAll(arguments[0]).length === arguments[1]",
            vec![json!(selector), json!(n)],
        )
        .await;
    }

    /// Waits until `script` returns a truthy value, and returns that value;
    /// `what` says what is awaited, for the failure's message.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        self.wait_until_with(what, script, Vec::new()).await
    }

    /// [`Browser::wait_until`] with `args` as the script's `arguments`.
    /// A script that throws (say, while the page loads) counts as not yet.
    pub async fn wait_until_with(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + self.wait;
        let mut last_error: Option<String>;
        loop {
            match self.client.execute(script, args.clone()).await {
                Ok(value) if truthy(&value) => return value,
                Ok(_) => last_error = None,
                Err(err) => last_error = Some(err.to_string()),
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let error = last_error.map_or(String::new(), |err| format!("\nthe script's error: {err}"));
        panic!(
            "waited {:?} for {what}, in vain{error}\npage {}:\n{}",
            self.wait,
            self.url().await,
            self.page_text().await
        );
    }

    /// The page's rendered text (truncated), for failure messages.
    pub async fn page_text(&self) -> String {
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText \
                 : document.documentElement.outerHTML",
                Vec::new(),
            )
            .await;
        match text {
            Ok(Value::String(text)) if text.len() > TEXT_SHOWN => {
                let end = text.floor_char_boundary(TEXT_SHOWN);
                format!("{}\n[... {} more bytes]", &text[..end], text.len() - end)
            }
            Ok(Value::String(text)) => text,
            Ok(other) => other.to_string(),
            Err(err) => format!("(cannot read the page's text: {err})"),
        }
    }

    /// Saves a PNG screenshot of the window as `target/screenshots/NAME.png`
    /// and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|err| panic!("cannot take a screenshot: {err}"));
        let folder = target_dir().join("screenshots");
        std::fs::create_dir_all(&folder)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", folder.display()));
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        path
    }

    /// Ends the session (chromedriver then closes Chromium) and kills what
    /// is left, as drop does.
    pub async fn close(self) {
        // A failure here changes nothing: drop kills the processes anyway.
        let _ = self.client.clone().close().await;
    }

    async fn find(&self, selector: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(selector)).await {
            Ok(element) => element,
            Err(err) => panic!(
                "cannot find `{selector}`: {err}\npage {}:\n{}",
                self.url().await,
                self.page_text().await
            ),
        }
    }

    async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map_or_else(|err| format!("(unknown: {err})"), |url| url.to_string())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop(&mut self.driver, self.dir.path());
    }
}

/// The path of `program` on `PATH`, or a failure that names the Debian
/// `package` to install.
fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: run scripts/setup, which installs Debian's \
                 {package} package"
            )
        })
}

/// Waits for chromedriver to say which port it listens on (asked for port
/// 0, it picks a free one and prints "... started successfully on port N").
async fn driver_port(driver: &mut Child, log: &Path) -> Result<u16, String> {
    const MARK: &str = "started successfully on port ";
    let deadline = Instant::now() + START;
    loop {
        let text = read_log(log);
        if let Some(at) = text.find(MARK) {
            let digits: String = text[at + MARK.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            // The line may be half written: read it again.
            if let Ok(port) = digits.parse()
                && text[at + MARK.len() + digits.len()..].starts_with(['.', '\n'])
            {
                return Ok(port);
            }
        }
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited before listening: {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("chromedriver did not listen within {START:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read(path).map_or_else(
        |err| format!("(cannot read {}: {err})", path.display()),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Kills chromedriver's process group (chromedriver, Chromium and its
/// helpers) and every process that names `dir` (Chromium's crash handlers,
/// which start groups of their own), reaps chromedriver, and waits a little
/// for the rest to go (the rest are not this process's children), so that
/// `dir` is not removed under a running Chromium.
fn stop(driver: &mut Child, dir: &Path) {
    let pgid = driver.id();
    if let Some(group) = pid(pgid) {
        // ESRCH (the group is gone already) is the only expected error.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = driver.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_of(pgid, dir);
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        for p in left.into_iter().filter_map(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        std::thread::sleep(POLL);
    }
}

fn pid(pid: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)
}

/// The live (not zombie) processes in process group `pgid` or whose
/// command line names `dir`.
fn processes_of(pgid: u32, dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mark = dir.as_os_str().as_encoded_bytes();
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command's closing parenthesis: state, ppid, pgrp.
            let Some(end) = stat.rfind(')') else {
                return false;
            };
            let mut fields = stat[end + 1..].split_whitespace();
            let state = fields.next();
            let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            if matches!(state, Some("Z" | "X") | None) {
                return false;
            }
            group == Some(pgid)
                || std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline.windows(mark.len()).any(|w| w == mark))
        })
        .collect()
}

/// Whether a script's result counts as true, as JavaScript's `!!` would.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The cargo target folder: the test binary runs from `target/debug/deps`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("no target folder above {}", exe.display()))
}
