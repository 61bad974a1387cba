//! Name resolution: `host:port` to every socket address it names, for binding a server
//! and connecting a channel.

use crate::error::Error;

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
