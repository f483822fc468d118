//! Where peers dial the controller, as opposed to where it listens
//! (ipyparallel's `--location`): the address its connection files say.
//!
//! A controller bound to one address writes that address. One bound to a
//! wildcard (`0.0.0.0`, `::`) cannot write the wildcard, which no peer can
//! dial; without a `--location` it writes this host's own address, as
//! ipyparallel does, and falls back to loopback with a warning when it
//! finds none. A relay or NAT in front of the controller is a location
//! with a port of its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// Where peers reach the controller (its `--location`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The address peers dial.
    pub ip: IpAddr,
    /// The port peers dial, when it differs from the one the controller
    /// listens on (a relay, a NAT's forwarded port); `None`: the same.
    pub port: Option<u16>,
}

/// What the connection files say, and how it was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Advertised {
    /// The address written into the connection files.
    pub(crate) addr: SocketAddr,
    /// How it was chosen, for the start-up log.
    pub(crate) source: Source,
}

/// How the advertised address was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The operator's `--location`.
    Given,
    /// The address the controller is bound to.
    Bound,
    /// Bound to a wildcard: this host's own address was found.
    ThisHost,
    /// Bound to a wildcard and no address of this host was found:
    /// loopback, which only peers on this host can dial.
    Loopback,
}

/// The address to write into the connection files of a controller bound
/// to `bound` (its actual port, not 0), given the operator's `location`;
/// `this_host` finds this host's own address in the family asked for
/// (`true`: IPv6) when the controller is bound to a wildcard.
pub(crate) fn advertised(
    bound: SocketAddr,
    location: Option<Location>,
    this_host: impl FnOnce(bool) -> Option<IpAddr>,
) -> Advertised {
    if let Some(location) = location {
        return Advertised {
            addr: SocketAddr::new(location.ip, location.port.unwrap_or(bound.port())),
            source: Source::Given,
        };
    }
    if !bound.ip().is_unspecified() {
        return Advertised {
            addr: bound,
            source: Source::Bound,
        };
    }
    let v6 = bound.is_ipv6();
    match this_host(v6) {
        Some(ip) => Advertised {
            addr: SocketAddr::new(ip, bound.port()),
            source: Source::ThisHost,
        },
        None => {
            let loopback = if v6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            };
            Advertised {
                addr: SocketAddr::new(loopback, bound.port()),
                source: Source::Loopback,
            }
        }
    }
}

/// This host's address in one family (`v6`), as the kernel would pick it
/// to reach other hosts: the source address of its route to a
/// documentation address (a UDP socket that connects sends nothing), else
/// the first address its host name resolves to that is not loopback.
/// `None` when it has neither (a host with no route out and a host name
/// that resolves to loopback, as Debian's `127.0.1.1` does).
pub(crate) fn this_host_ip(v6: bool) -> Option<IpAddr> {
    let usable = |ip: &IpAddr| !ip.is_loopback() && !ip.is_unspecified() && ip.is_ipv6() == v6;
    let (local, probe): (SocketAddr, SocketAddr) = if v6 {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            // 2001:db8::/32, documentation (RFC 3849).
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
        )
    } else {
        (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            // TEST-NET-2 (RFC 5737).
            (Ipv4Addr::new(198, 51, 100, 1), 9).into(),
        )
    };
    let routed = UdpSocket::bind(local)
        .and_then(|socket| {
            socket.connect(probe)?;
            socket.local_addr()
        })
        .ok()
        .map(|addr| addr.ip())
        .filter(usable);
    routed.or_else(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        std::net::ToSocketAddrs::to_socket_addrs(&(name.trim(), 0))
            .ok()?
            .map(|addr| addr.ip())
            .find(usable)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("a socket address")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    fn never(_v6: bool) -> Option<IpAddr> {
        panic!("this host's address is only looked up for a wildcard bind")
    }

    #[test]
    fn a_location_wins_and_keeps_the_bound_port_unless_it_has_its_own() {
        let bound = addr("0.0.0.0:5000");
        let given = Location {
            ip: ip("198.18.0.1"),
            port: None,
        };
        assert_eq!(
            advertised(bound, Some(given), never),
            Advertised {
                addr: addr("198.18.0.1:5000"),
                source: Source::Given
            }
        );
        let relayed = Location {
            port: Some(6000),
            ..given
        };
        assert_eq!(
            advertised(addr("198.18.1.2:5000"), Some(relayed), never).addr,
            addr("198.18.0.1:6000")
        );
    }

    #[test]
    fn a_specific_bind_is_written_as_it_is() {
        for bound in ["127.0.0.1:4433", "198.18.1.2:5000", "[::1]:4433"] {
            assert_eq!(
                advertised(addr(bound), None, never),
                Advertised {
                    addr: addr(bound),
                    source: Source::Bound
                }
            );
        }
    }

    #[test]
    fn a_wildcard_bind_writes_this_hosts_address_in_its_family() {
        let asked = std::cell::Cell::new(None);
        let found = advertised(addr("0.0.0.0:5000"), None, |v6| {
            asked.set(Some(v6));
            Some(ip("192.0.2.2"))
        });
        assert_eq!(asked.get(), Some(false), "asked for an IPv4 address");
        assert_eq!(
            found,
            Advertised {
                addr: addr("192.0.2.2:5000"),
                source: Source::ThisHost
            }
        );
        let found = advertised(addr("[::]:5000"), None, |v6| {
            asked.set(Some(v6));
            Some(ip("fd00::2"))
        });
        assert_eq!(asked.get(), Some(true), "asked for an IPv6 address");
        assert_eq!(found.addr, addr("[fd00::2]:5000"));
    }

    #[test]
    fn a_wildcard_bind_on_a_host_without_an_address_falls_back_to_loopback() {
        assert_eq!(
            advertised(addr("0.0.0.0:5000"), None, |_| None),
            Advertised {
                addr: addr("127.0.0.1:5000"),
                source: Source::Loopback
            }
        );
        assert_eq!(
            advertised(addr("[::]:5000"), None, |_| None).addr,
            addr("[::1]:5000")
        );
    }

    /// The files engines and clients read name the location, not the
    /// address the controller listens on.
    #[tokio::test]
    async fn a_controller_writes_its_location_into_both_connection_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = crate::ControllerConfig::new(dir.path().join("profile_default"));
        config.same_host = false;
        config.location = Some(Location {
            ip: ip("198.18.0.1"),
            port: Some(6000),
        });
        let controller = crate::Controller::start(config).await.expect("starts");
        assert!(controller.addr.ip().is_loopback(), "{}", controller.addr);
        assert_eq!(controller.location, addr("198.18.0.1:6000"));
        for file in [&controller.client_file, &controller.engine_file] {
            let read = wasp_net::ConnectionFile::read(file).expect("reads");
            assert_eq!(read.address, addr("198.18.0.1:6000"), "{}", file.display());
        }
        controller.stop();
    }

    #[test]
    fn this_hosts_address_is_never_loopback_or_of_the_other_family() {
        // What the machine running the test has varies; what is found
        // must be usable whatever it is.
        for v6 in [false, true] {
            if let Some(found) = this_host_ip(v6) {
                assert!(!found.is_loopback() && !found.is_unspecified(), "{found}");
                assert_eq!(found.is_ipv6(), v6, "{found}");
            }
        }
    }
}
