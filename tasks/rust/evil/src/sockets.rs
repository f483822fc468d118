//! Name lookup and TCP through `wasi:sockets`, called directly.
//!
//! std could do both on wasm32-wasip2 (through wasi-libc), but it turns
//! WASI error codes into errno-style io errors; the tests want the WASI code
//! the host answered with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

/// Resolves `host` with `wasi:sockets/ip-name-lookup`.
pub(crate) fn resolve(host: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    let network = instance_network();
    let stream = resolve_addresses(&network, host)?;
    let ready = stream.subscribe();
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(addr)) => addrs.push(ip_addr(addr)),
            Ok(None) => break,
            Err(ErrorCode::WouldBlock) => ready.block(),
            Err(err) => return Err(err),
        }
    }
    // The pollable is a child of the stream: drop it first.
    drop(ready);
    Ok(addrs)
}

/// Opens a TCP connection to `remote` with `wasi:sockets/tcp` and closes it
/// again, describing the connection on success.
pub(crate) fn connect(remote: SocketAddr) -> Result<String, String> {
    let fail = |step: &str, err: ErrorCode| format!("{step} {remote}: {err}");
    let network = instance_network();
    let family = match remote {
        SocketAddr::V4(_) => IpAddressFamily::Ipv4,
        SocketAddr::V6(_) => IpAddressFamily::Ipv6,
    };
    let socket = create_tcp_socket(family).map_err(|err| fail("create socket for", err))?;
    socket
        .start_connect(&network, ip_socket_addr(remote))
        .map_err(|err| fail("connect to", err))?;
    let ready = socket.subscribe();
    let (input, output) = loop {
        match socket.finish_connect() {
            Ok(streams) => break streams,
            Err(ErrorCode::WouldBlock) => ready.block(),
            Err(err) => return Err(fail("connect to", err)),
        }
    };
    let local = socket
        .local_address()
        .map(|addr| socket_addr(addr).to_string())
        .unwrap_or_else(|err| format!("an unknown address ({err})"));
    // Children before their parent socket, or the host refuses the drop.
    drop(input);
    drop(output);
    drop(ready);
    Ok(format!("connected to {remote} from {local}"))
}

fn ip_addr(addr: IpAddress) -> IpAddr {
    match addr {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

fn socket_addr(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(v4) => SocketAddr::new(ip_addr(IpAddress::Ipv4(v4.address)), v4.port),
        IpSocketAddress::Ipv6(v6) => SocketAddr::new(ip_addr(IpAddress::Ipv6(v6.address)), v6.port),
    }
}

fn ip_socket_addr(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}
