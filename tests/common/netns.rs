//! Separate hosts on one machine, for end-to-end tests across hosts: each
//! "host" is a Linux network namespace joined to the root namespace by a
//! veth pair, so that its processes have their own addresses and ports
//! and reach no other host except through what the test puts in the root
//! namespace (a relay).
//!
//! Addresses come from 198.18.0.0/15, reserved for benchmarks (RFC 2544),
//! and nothing is routed beyond the machine: a namespace has its own link
//! and one host route through it, no default route. Names carry the test's
//! pid so that concurrent runs do not meet, and everything is removed on
//! drop, panics included. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)
//! and `ip` from iproute2.

use std::net::Ipv4Addr;
use std::process::Command;

/// One simulated host: a namespace and its end of a veth pair.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name, for `ip netns exec`.
    pub ns: String,
    /// Its address, on its end of the link.
    pub ip: Ipv4Addr,
    /// The root namespace's address on the same link.
    pub gateway: Ipv4Addr,
}

/// The namespaces and links of one test, removed on drop.
pub struct Hosts {
    hosts: Vec<Host>,
    /// The root namespace's ends of the veth pairs.
    links: Vec<String>,
}

impl Hosts {
    /// Creates one namespace per role, each on a /24 of its own: the root
    /// namespace is `.1` on it, the namespace `.2`. An error says which
    /// command failed and what it printed.
    pub fn create(roles: &[&str]) -> Result<Self, String> {
        let pid = std::process::id();
        let mut hosts = Hosts {
            hosts: Vec::new(),
            links: Vec::new(),
        };
        for (i, role) in roles.iter().enumerate() {
            // 512 /24s in 198.18.0.0/15; a run takes consecutive ones from
            // a start its pid picks.
            let k = (pid as usize % (512 / roles.len())) * roles.len() + i;
            let net = [198, 18 + (k / 256) as u8, (k % 256) as u8];
            let gateway = Ipv4Addr::new(net[0], net[1], net[2], 1);
            let ip = Ipv4Addr::new(net[0], net[1], net[2], 2);
            let ns = format!("wasp-{pid}-{role}");
            // Interface names are at most 15 bytes.
            let outer = format!("wo{pid}.{i}");
            let inner = format!("wi{pid}.{i}");
            // Leftovers of a killed run that had this pid.
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = Command::new("ip").args(["link", "del", &outer]).output();

            run(&["ip", "netns", "add", &ns])?;
            hosts.hosts.push(Host {
                ns: ns.clone(),
                ip,
                gateway,
            });
            run(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            hosts.links.push(outer.clone());
            run(&["ip", "link", "set", &inner, "netns", &ns])?;
            run(&["ip", "addr", "add", &format!("{gateway}/24"), "dev", &outer])?;
            run(&["ip", "link", "set", &outer, "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                &inner,
            ])?;
            run(&["ip", "-n", &ns, "link", "set", &inner, "up"])?;
        }
        Ok(hosts)
    }

    /// The hosts, in the order of their roles.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Lets `host` reach `to`, an address of the root namespace on another
    /// link, through its own link: one host route, nothing wider.
    pub fn route(&self, host: &Host, to: Ipv4Addr) -> Result<(), String> {
        run(&[
            "ip",
            "-n",
            &host.ns,
            "route",
            "add",
            &format!("{to}/32"),
            "via",
            &host.gateway.to_string(),
        ])
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn command(host: &Host, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &host.ns, program]);
        command
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace takes the veth end inside it, and with it
        // the pair; the explicit deletes cover a namespace that was made
        // but whose link was not moved into it.
        for host in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &host.ns]).output();
        }
        for link in &self.links {
            let _ = Command::new("ip").args(["link", "del", link]).output();
        }
    }
}

/// Runs one setup command, failing with the command and what it printed.
fn run(argv: &[&str]) -> Result<(), String> {
    let output = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|err| format!("`{}`: could not run it: {err}", argv.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
