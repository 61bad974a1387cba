//! Addresses: what `Server::bind` and a channel's target name, per gRPC's naming
//! document. `host:port` (a name, an IPv4 or a bracketed IPv6 address) resolves to every
//! socket address it names; `unix:path` (relative), `unix:/absolute`, `unix:///absolute`
//! and `unix-abstract:name` (Linux's abstract namespace) name Unix domain sockets.

use std::io;
use std::path::PathBuf;

use crate::error::Error;

/// An address as [`Server::bind`](crate::Server::bind) and
/// [`Channel::connect`](crate::Channel::connect) take it: a string (`&str`, `String`,
/// `&String`, `Cow<str>`, `Box<str>`) or a [`SocketAddr`](std::net::SocketAddr), so the
/// same value serves and connects.
///
/// ```
/// fn both<A: h2grpc::IntoAddress + Clone>(addr: A) -> (String, String) {
///     (addr.clone().into_address(), addr.into_address())
/// }
/// let addr: std::net::SocketAddr = "[::1]:50051".parse().unwrap();
/// assert_eq!(both(addr).0, "[::1]:50051");
/// assert_eq!(both("localhost:50051").1, "localhost:50051");
/// ```
pub trait IntoAddress {
    /// The address as text: `host:port`, `unix:path`, or for a channel any target form.
    fn into_address(self) -> String;
}

impl IntoAddress for &str {
    fn into_address(self) -> String {
        self.to_owned()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> String {
        self
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> String {
        self.clone()
    }
}

impl IntoAddress for Box<str> {
    fn into_address(self) -> String {
        self.into()
    }
}

impl IntoAddress for std::borrow::Cow<'_, str> {
    fn into_address(self) -> String {
        self.into_owned()
    }
}

impl IntoAddress for std::net::SocketAddr {
    fn into_address(self) -> String {
        self.to_string()
    }
}

impl IntoAddress for &std::net::SocketAddr {
    fn into_address(self) -> String {
        self.to_string()
    }
}

/// A Unix domain socket address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum UnixAddr {
    /// A socket file.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (no file).
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// The Unix address `target` names, or `None` when it is not a Unix target.
    pub(crate) fn parse(target: &str) -> Option<UnixAddr> {
        if let Some(name) = target.strip_prefix("unix-abstract:") {
            return Some(UnixAddr::Abstract(name.as_bytes().to_vec()));
        }
        let path = target.strip_prefix("unix:")?;
        // `unix:///abs` has an empty authority; `unix:/abs` and `unix:rel` are paths.
        let path = path.strip_prefix("//").unwrap_or(path);
        Some(UnixAddr::Path(PathBuf::from(path)))
    }

    /// Listen on this address. A socket file left by an earlier process that no longer
    /// listens is replaced; a live one, or a file that is not a socket, is an error.
    pub(crate) fn bind(&self) -> io::Result<tokio::net::UnixListener> {
        match self {
            UnixAddr::Path(path) => {
                remove_stale(path)?;
                tokio::net::UnixListener::bind(path)
            }
            UnixAddr::Abstract(name) => {
                let addr = abstract_addr(name)?;
                let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
                listener.set_nonblocking(true)?;
                tokio::net::UnixListener::from_std(listener)
            }
        }
    }

    /// Connect to this address.
    pub(crate) async fn connect(&self) -> io::Result<tokio::net::UnixStream> {
        match self {
            UnixAddr::Path(path) => tokio::net::UnixStream::connect(path).await,
            UnixAddr::Abstract(name) => {
                // A local connect: it does not block beyond the kernel's queueing.
                let stream = std::os::unix::net::UnixStream::connect_addr(&abstract_addr(name)?)?;
                stream.set_nonblocking(true)?;
                tokio::net::UnixStream::from_std(stream)
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &[u8]) -> io::Result<std::os::unix::net::SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "unix-abstract: sockets exist on Linux only",
    ))
}

/// Remove `path` if it is a socket nobody listens on.
fn remove_stale(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another server listens on {}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// TCP-level options of a connection's socket (gRFC A18's `TCP_USER_TIMEOUT`, and the
/// kernel's own keepalive probes), for the server's accepted sockets and a channel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpOptions {
    /// Idle time before the kernel's first keepalive probe (`SO_KEEPALIVE` with
    /// `TCP_KEEPIDLE`).
    pub keepalive: Option<std::time::Duration>,
    /// How long sent data may stay unacknowledged before the kernel drops the connection
    /// (`TCP_USER_TIMEOUT`, Linux).
    pub user_timeout: Option<std::time::Duration>,
}

impl TcpOptions {
    /// Apply the options to `socket` (`TCP_NODELAY` always).
    pub(crate) fn apply(&self, socket: &tokio::net::TcpStream) -> io::Result<()> {
        socket.set_nodelay(true)?;
        let sock = socket2::SockRef::from(socket);
        if let Some(idle) = self.keepalive {
            sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(timeout) = self.user_timeout {
            sock.set_tcp_user_timeout(Some(timeout))?;
        }
        Ok(())
    }
}

/// Resolve `host:port` (a name, an IPv4 address or a bracketed IPv6 address) to every
/// socket address it names.
pub(crate) async fn resolve(target: &str) -> Result<Vec<std::net::SocketAddr>, Error> {
    let addrs: Vec<_> = tokio::net::lookup_host(target)
        .await
        .map_err(|e| Error::Address(format!("{target}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::Address(format!("{target} resolved to no address")));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_targets_parse_as_the_naming_document_spells_them() {
        let path = |p: &str| Some(UnixAddr::Path(PathBuf::from(p)));
        assert_eq!(UnixAddr::parse("unix:/tmp/a.sock"), path("/tmp/a.sock"));
        assert_eq!(UnixAddr::parse("unix:///tmp/a.sock"), path("/tmp/a.sock"));
        assert_eq!(UnixAddr::parse("unix:rel/a.sock"), path("rel/a.sock"));
        assert_eq!(
            UnixAddr::parse("unix-abstract:my\0name"),
            Some(UnixAddr::Abstract(b"my\0name".to_vec()))
        );
        assert_eq!(UnixAddr::parse("localhost:50051"), None);
        assert_eq!(UnixAddr::parse("dns:///host:1"), None);
    }

    #[tokio::test]
    async fn tcp_options_reach_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let options = TcpOptions {
            keepalive: Some(std::time::Duration::from_secs(45)),
            user_timeout: Some(std::time::Duration::from_millis(7500)),
        };
        options.apply(&socket).unwrap();
        let sock = socket2::SockRef::from(&socket);
        assert!(socket.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(
            sock.tcp_keepalive_time().unwrap(),
            std::time::Duration::from_secs(45)
        );
        #[cfg(target_os = "linux")]
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(std::time::Duration::from_millis(7500))
        );
        // Nothing asked, nothing set (but TCP_NODELAY).
        let plain = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        TcpOptions::default().apply(&plain).unwrap();
        assert!(!socket2::SockRef::from(&plain).keepalive().unwrap());
    }
}
