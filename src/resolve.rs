//! Addresses: what `Server::bind` and a channel's target name, per gRPC's naming
//! document. `host:port` (a name, an IPv4 or a bracketed IPv6 address) resolves to every
//! socket address it names; `unix:path` (relative), `unix:/absolute`, `unix:///absolute`
//! and `unix-abstract:name` (Linux's abstract namespace) name Unix domain sockets.

use std::io;
use std::path::PathBuf;

use crate::error::Error;

/// A Unix domain socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}
