//! Binding the listen setting the way Go's listener reads it.

use super::*;

/// Binds a Go-style listen setting.
///
/// - An empty host (`:8080`, the chart's and the default setting) listens on every interface,
///   IPv4 and IPv6, as Go's listener does: one IPv6 socket on `[::]` with `IPV6_V6ONLY` off,
///   so IPv4 clients arrive as IPv4-mapped addresses whatever the host's `bindv6only` default.
///   A host without IPv6 gets an IPv4 listener on `0.0.0.0` instead, with a log line.
/// - `[::]:P` is dual-stack in the same way (but does not fall back: IPv6 was asked for).
/// - Anything else is used as given: `0.0.0.0:P` is IPv4 only, `[::1]:P` IPv6 only, a host
///   name is resolved and the first address that binds is used.
pub async fn bind(listen: &str) -> Result<TcpListener, ServeError> {
    let failed = |addr: &str, source: io::Error| ServeError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let wildcard = |port: u16| SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    if let Some(port) = listen.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            failed(
                listen,
                io::Error::new(io::ErrorKind::InvalidInput, "invalid port"),
            )
        })?;
        return match dual_stack(wildcard(port)) {
            Ok(listener) => Ok(listener),
            // Another process has the port: IPv4 would fail the same way, and saying
            // "no IPv6" would hide the cause.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(failed(listen, e)),
            Err(e) => {
                tracing::warn!(
                    target: HANDLER,
                    Error = %e,
                    "IPv6 is not available on this host; listening on IPv4 only (0.0.0.0:{port})"
                );
                let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port));
                TcpListener::bind(v4).await.map_err(|e| failed(listen, e))
            }
        };
    }
    if let Ok(addr) = listen.parse::<SocketAddr>()
        && addr.ip() == std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    {
        return dual_stack(addr).map_err(|e| failed(listen, e));
    }
    TcpListener::bind(listen)
        .await
        .map_err(|e| failed(listen, e))
}

/// A listening IPv6 socket on `addr` that also accepts IPv4 (`IPV6_V6ONLY` off), with
/// `SO_REUSEADDR` and the backlog tokio's own `bind` uses.
pub(super) fn dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
