//! Turning command-line settings into the runtime's configuration: sizes
//! (`64MiB`), durations (`30s`), the cache directory.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use wasp_engine::{Limits, Runtime, RuntimeConfig};

use crate::cli::{RuntimeArgs, TaskLimitArgs};

/// A byte count written as `1000`, `64KiB`, `64MiB`, `1GiB` (or KB/MB/GB,
/// also binary, as most tools mean them).
#[derive(Clone, Copy, Debug)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: usize = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a size: expected e.g. 1000, 64KiB, 512MiB, 1GiB"))?;
        let scale = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?}: expected B, KiB, MiB or GiB"
                ));
            }
        };
        n.checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// Written as a plain byte count, which [`ByteSize::from_str`] reads back.
impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A duration written as `30s`, `500ms`, `2m` or a bare number of seconds.
#[derive(Clone, Copy, Debug)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
            (n, 1e-3)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = s.strip_suffix('m') {
            (n, 60.0)
        } else {
            (s, 1.0)
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a duration: expected e.g. 30s, 500ms, 2m"))?;
        Duration::try_from_secs_f64(value * scale)
            .map(Seconds)
            .map_err(|_| format!("{s:?} is not a valid duration"))
    }
}

/// Written in seconds (`0.5s`), which [`Seconds::from_str`] reads back.
impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

impl TaskLimitArgs {
    /// The view's `timeout`: `None` where no flag was given, so that the
    /// engine's own setting applies.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.map(|Seconds(t)| t)
    }

    /// The view's `memory`, in bytes: `None` where no flag was given.
    pub fn memory(&self) -> Option<u64> {
        self.memory.map(|ByteSize(n)| n as u64)
    }

    /// The view's flags: limits, retries and escalation.
    pub fn flags(&self) -> wasp_client::TaskFlags {
        wasp_client::TaskFlags {
            timeout: self.timeout(),
            memory: self.memory(),
            retries: self.retries,
            escalate: self.escalate,
        }
    }
}

/// A `--location`: an IP address or a host name, with an optional port:
/// `198.18.0.1`, `198.18.0.1:6000`, `[fd00::1]:6000`, `fd00::1`,
/// `ctl.example.org`, `ctl.example.org:6000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationArg {
    /// The IP address or host name.
    pub host: String,
    /// The port peers dial, if not the one the controller listens on.
    pub port: Option<u16>,
}

impl FromStr for LocationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let expected = || {
            format!(
                "{s:?} is not a location: expected an IP address or a host name, \
                 optionally with :PORT (e.g. 198.18.0.1, ctl.example.org:6000, [fd00::1]:6000)"
            )
        };
        if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
            return nonzero_port(addr.ip().to_string(), addr.port(), s);
        }
        if let Ok(ip) = s.parse::<std::net::IpAddr>() {
            return Ok(Self {
                host: ip.to_string(),
                port: None,
            });
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| expected())?;
            return Ok(Self {
                host: ip.to_string(),
                port: None,
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| expected())?;
                (host, Some(port))
            }
            None => (s, None),
        };
        // A DNS name's letters, digits, hyphens and dots (RFC 1123); a
        // hyphen first would read as a flag.
        let valid = !host.is_empty()
            && !host.starts_with(['-', '.'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(expected());
        }
        match port {
            Some(port) => nonzero_port(host.to_owned(), port, s),
            None => Ok(Self {
                host: host.to_owned(),
                port: None,
            }),
        }
    }
}

fn nonzero_port(host: String, port: u16, s: &str) -> Result<LocationArg, String> {
    if port == 0 {
        return Err(format!(
            "{s:?}: port 0 cannot be dialled; give the port peers reach the controller on, \
             or none for the one it listens on"
        ));
    }
    Ok(LocationArg {
        host,
        port: Some(port),
    })
}

/// Written as [`LocationArg::from_str`] reads it back (IPv6 addresses in
/// brackets when a port follows).
impl std::fmt::Display for LocationArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) if self.host.contains(':') => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl LocationArg {
    /// The location as an address: an IP address as it is; a host name
    /// resolved here and now, preferring an address of the family the
    /// controller listens on (`v6`) and one that is not loopback (a host
    /// name may map to 127.0.1.1, as on Debian, which no other host can
    /// dial).
    ///
    /// Connection files hold an address, not a name: engines and clients
    /// dial exactly what the file says, with no resolver on the path of a
    /// reconnect during an outage, and the certificate is pinned by its
    /// fingerprint, so no name needs checking. A name that resolves
    /// differently on other hosts (split-horizon DNS) needs their address
    /// given instead.
    pub fn resolve(&self, v6: bool) -> anyhow::Result<wasp_controller::Location> {
        let port = self.port;
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(wasp_controller::Location { ip, port });
        }
        let found: Vec<std::net::IpAddr> =
            std::net::ToSocketAddrs::to_socket_addrs(&(self.host.as_str(), 0))
                .with_context(|| format!("--location: could not resolve {:?}", self.host))?
                .map(|addr| addr.ip())
                .collect();
        let rank = |ip: &std::net::IpAddr| (ip.is_ipv6() != v6, ip.is_loopback());
        let ip = found
            .iter()
            .min_by_key(|ip| rank(ip))
            .copied()
            .with_context(|| format!("--location: {:?} resolves to no address", self.host))?;
        Ok(wasp_controller::Location { ip, port })
    }
}

/// Where `--dashboard` listens when given without an address: loopback,
/// so that only this host reaches it unless the operator says otherwise.
pub const DEFAULT_DASHBOARD: &str = "127.0.0.1:8790";

impl crate::cli::ListenArgs {
    /// Where to listen.
    pub fn bind(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ip, self.port)
    }

    /// These settings as `wasp controller` flags, for `cluster start`.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--ip".to_owned(),
            self.ip.to_string(),
            "--port".to_owned(),
            self.port.to_string(),
        ];
        if let Some(location) = &self.location {
            flags.extend(["--location".to_owned(), location.to_string()]);
        }
        if let Some(dashboard) = &self.dashboard {
            flags.extend(["--dashboard".to_owned(), dashboard.to_string()]);
        }
        flags
    }
}

impl crate::cli::HubArgs {
    /// These settings as `wasp controller` flags, for `cluster start`.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--max-engine-deaths".into(),
            self.max_engine_deaths.to_string(),
            "--max-records".into(),
            self.max_records.to_string(),
            "--heartbeat-timeout".into(),
            format!("{}ms", self.heartbeat_timeout.0.as_millis()),
        ];
        if self.no_same_host {
            flags.push("--no-same-host".into());
        }
        flags
    }
}

impl RuntimeArgs {
    /// These settings as `wasp engine` flags: only the flags given, so that
    /// an engine started by `wasp cluster start` has the same settings.
    pub fn to_flags(&self) -> Vec<String> {
        let sizes = [
            ("--max-module-size", self.max_module_size),
            ("--max-memory", self.max_memory),
            ("--max-stack", self.max_stack),
            ("--max-args", self.max_args),
            ("--max-result", self.max_result),
            ("--max-output", self.max_output),
            ("--max-random", self.max_random),
            ("--keep-resident", self.keep_resident),
        ];
        let mut flags = Vec::new();
        for (flag, size) in sizes {
            if let Some(size) = size {
                flags.extend([flag.to_owned(), size.to_string()]);
            }
        }
        if let Some(timeout) = self.timeout {
            flags.extend(["--timeout".to_owned(), timeout.to_string()]);
        }
        if let Some(timeout) = self.compile_timeout {
            flags.extend(["--compile-timeout".to_owned(), timeout.to_string()]);
        }
        if let Some(handles) = self.max_wasi_handles {
            flags.extend(["--max-wasi-handles".to_owned(), handles.to_string()]);
        }
        if let Some(dir) = &self.cache_dir {
            flags.extend(["--cache-dir".to_owned(), dir.display().to_string()]);
        }
        if self.no_cache {
            flags.push("--no-cache".to_owned());
        }
        flags
    }

    /// The limits: defaults, overridden by the flags given.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        let sizes = [
            (self.max_module_size, &mut limits.module_bytes),
            (self.max_memory, &mut limits.memory_bytes),
            (self.max_stack, &mut limits.stack_bytes),
            (self.max_args, &mut limits.arg_bytes),
            (self.max_result, &mut limits.result_bytes),
            (self.max_output, &mut limits.output_bytes),
            (self.max_random, &mut limits.random_bytes),
        ];
        for (flag, slot) in sizes {
            if let Some(ByteSize(n)) = flag {
                *slot = n;
            }
        }
        if let Some(Seconds(timeout)) = self.timeout {
            limits.wall_time = timeout;
        }
        if let Some(Seconds(timeout)) = self.compile_timeout {
            limits.compile_time = timeout;
        }
        if let Some(handles) = self.max_wasi_handles {
            limits.wasi_handles = handles;
        }
        limits
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(dir) = &self.cache_dir {
            return Some(dir.clone());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("wasp").join("modules"))
    }

    /// The runtime configuration these settings give.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            limits: self.limits(),
            cache_dir: self.cache_dir(),
            // One call at a time locally; keep the instance pool small.
            max_instances: 4,
            keep_resident: self
                .keep_resident
                .map_or(wasp_engine::runtime::KEEP_RESIDENT, |ByteSize(n)| n),
            ..RuntimeConfig::default()
        }
    }

    /// A runtime with these settings.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Runtime::new(self.runtime_config()).context("starting the local runtime")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_and_without_a_port_and_print_back() {
        let cases: [(&str, &str, Option<u16>); 7] = [
            ("198.18.0.1", "198.18.0.1", None),
            ("198.18.0.1:6000", "198.18.0.1", Some(6000)),
            ("fd00::1", "fd00::1", None),
            ("[fd00::1]", "fd00::1", None),
            ("[fd00::1]:6000", "fd00::1", Some(6000)),
            ("ctl.example.org", "ctl.example.org", None),
            ("ctl-1.example.org:6000", "ctl-1.example.org", Some(6000)),
        ];
        for (text, host, port) in cases {
            let parsed: LocationArg = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                parsed,
                LocationArg {
                    host: host.to_owned(),
                    port
                },
                "{text}"
            );
            let again: LocationArg = parsed.to_string().parse().expect("reads back");
            assert_eq!(again, parsed, "{text} printed as {parsed}");
        }
    }

    #[test]
    fn bad_locations_say_what_was_expected() {
        for (text, says) in [
            ("", "expected an IP address or a host name"),
            ("ctl:", "expected an IP address or a host name"),
            ("ctl:99999", "expected an IP address or a host name"),
            ("-ctl", "expected an IP address or a host name"),
            ("ctl/x", "expected an IP address or a host name"),
            ("[fd00::1", "expected an IP address or a host name"),
            ("198.18.0.1:0", "port 0 cannot be dialled"),
            ("ctl:0", "port 0 cannot be dialled"),
        ] {
            let err = text.parse::<LocationArg>().expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn a_location_resolves_to_an_address() {
        let ip: LocationArg = "198.18.0.1:6000".parse().expect("parses");
        assert_eq!(
            ip.resolve(false).expect("an IP needs no resolver"),
            wasp_controller::Location {
                ip: "198.18.0.1".parse().expect("ip"),
                port: Some(6000)
            }
        );
        // `localhost` is in every /etc/hosts; an IPv4 listener gets the
        // IPv4 loopback even where ::1 is listed first.
        let local: LocationArg = "localhost".parse().expect("parses");
        let resolved = local.resolve(false).expect("localhost resolves");
        assert!(resolved.ip.is_loopback(), "{resolved:?}");
        assert!(resolved.ip.is_ipv4(), "{resolved:?}");
        // .invalid never resolves (RFC 2606).
        let nowhere: LocationArg = "nowhere.invalid".parse().expect("parses");
        let err = format!("{:#}", nowhere.resolve(false).expect_err("no such host"));
        assert!(
            err.contains("could not resolve \"nowhere.invalid\""),
            "{err}"
        );
    }

    #[test]
    fn cluster_start_passes_where_to_listen_on_to_its_controller() {
        use clap::Parser;
        let start = crate::cli::Cli::try_parse_from([
            "wasp",
            "cluster",
            "start",
            "--ip",
            "0.0.0.0",
            "--location",
            "[fd00::1]:6000",
            "--dashboard",
        ])
        .unwrap();
        let crate::cli::Command::Cluster(crate::cli::ClusterCommand::Start(start)) = start.command
        else {
            panic!("not cluster start")
        };
        let flags = start.listen.to_flags();
        let controller = crate::cli::Cli::try_parse_from(
            ["wasp".to_owned(), "controller".to_owned()]
                .into_iter()
                .chain(flags),
        )
        .unwrap();
        let crate::cli::Command::Controller(controller) = controller.command else {
            panic!("not controller")
        };
        assert_eq!(controller.listen.bind(), "0.0.0.0:0".parse().expect("addr"));
        assert_eq!(controller.listen.location, start.listen.location);
        assert_eq!(
            controller.listen.dashboard,
            Some(DEFAULT_DASHBOARD.parse().expect("addr")),
            "--dashboard alone: on loopback"
        );
        let plain = crate::cli::Cli::try_parse_from(["wasp", "controller"]).unwrap();
        let crate::cli::Command::Controller(plain) = plain.command else {
            panic!("not controller")
        };
        assert_eq!(plain.listen.bind(), "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(plain.listen.location, None);
        assert_eq!(plain.listen.dashboard, None, "off unless asked for");
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!("64MiB".parse::<ByteSize>().unwrap().0, 64 << 20);
        assert_eq!("1000".parse::<ByteSize>().unwrap().0, 1000);
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert!("64 parsecs".parse::<ByteSize>().is_err());
        assert_eq!(
            "500ms".parse::<Seconds>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("2m".parse::<Seconds>().unwrap().0, Duration::from_secs(120));
        assert_eq!(
            "1.5".parse::<Seconds>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert!("soon".parse::<Seconds>().is_err());
    }

    #[test]
    fn sizes_and_durations_print_as_they_parse() {
        for text in ["64MiB", "1000", "1GiB"] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.to_string().parse::<ByteSize>().unwrap().0, size.0);
        }
        for text in ["500ms", "2m", "1.5", "0.001s", "300s"] {
            let time: Seconds = text.parse().unwrap();
            assert_eq!(time.to_string().parse::<Seconds>().unwrap().0, time.0);
        }
    }

    /// The runtime flags of `wasp cluster start`, given back as `wasp
    /// engine` flags, give the engine the same limits.
    #[test]
    fn runtime_flags_round_trip_through_the_engine_command() {
        use clap::Parser;
        let given = [
            "--max-memory",
            "64MiB",
            "--timeout",
            "1.5s",
            "--max-stack",
            "2MiB",
            "--max-args",
            "1000",
            "--max-result",
            "1KiB",
            "--max-output",
            "4KiB",
            "--max-module-size",
            "32MiB",
            "--max-random",
            "2KiB",
            "--compile-timeout",
            "7s",
            "--max-wasi-handles",
            "99",
            "--keep-resident",
            "16MiB",
            "--no-cache",
        ];
        let start =
            crate::cli::Cli::try_parse_from(["wasp", "cluster", "start"].into_iter().chain(given))
                .unwrap();
        let crate::cli::Command::Cluster(crate::cli::ClusterCommand::Start(start)) = start.command
        else {
            panic!("not cluster start")
        };
        let flags = start.runtime.to_flags();
        let engine = crate::cli::Cli::try_parse_from(
            ["wasp".to_owned(), "engine".to_owned()]
                .into_iter()
                .chain(flags),
        )
        .unwrap();
        let crate::cli::Command::Engine(engine) = engine.command else {
            panic!("not engine")
        };
        let (want, got) = (start.runtime.limits(), engine.runtime.limits());
        assert_eq!(got.memory_bytes, 64 << 20);
        assert_eq!(got.wall_time, Duration::from_millis(1500));
        assert_eq!(
            (
                got.stack_bytes,
                got.arg_bytes,
                got.result_bytes,
                got.output_bytes
            ),
            (2 << 20, 1000, 1 << 10, 4 << 10)
        );
        assert_eq!(got.module_bytes, 32 << 20);
        assert_eq!(
            (got.random_bytes, got.compile_time, got.wasi_handles),
            (2 << 10, Duration::from_secs(7), 99)
        );
        assert_eq!(got, want);
        assert!(engine.runtime.no_cache);
        assert_eq!(engine.runtime.runtime_config().keep_resident, 16 << 20);
        // Not given, the runtime's default.
        let plain = crate::cli::Cli::try_parse_from(["wasp", "engine"]).unwrap();
        let crate::cli::Command::Engine(plain) = plain.command else {
            panic!("not engine")
        };
        assert_eq!(
            plain.runtime.runtime_config().keep_resident,
            wasp_engine::runtime::KEEP_RESIDENT
        );
    }

    #[test]
    fn task_limit_flags_become_view_flags() {
        use clap::Parser;
        let parsed = crate::cli::Cli::try_parse_from([
            "wasp",
            "apply",
            "m.wasm",
            "f",
            "--timeout",
            "2s",
            "--memory",
            "16MiB",
        ])
        .unwrap();
        let crate::cli::Command::Apply(apply) = parsed.command else {
            panic!("not apply")
        };
        assert_eq!(
            (apply.limits.timeout(), apply.limits.memory()),
            (Some(Duration::from_secs(2)), Some(16 << 20))
        );
        let parsed =
            crate::cli::Cli::try_parse_from(["wasp", "map", "m.wasm", "f", "in.jsonl"]).unwrap();
        let crate::cli::Command::Map(map) = parsed.command else {
            panic!("not map")
        };
        assert_eq!((map.limits.timeout(), map.limits.memory()), (None, None));
    }
}
