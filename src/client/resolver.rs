//! Name resolution (gRPC's `naming.md`): a target string names a resolver and what it
//! resolves. `dns:[//authority/]host[:port]` (the default for a bare `host[:port]`),
//! `ipv4:addr[:port][,addr[:port]...]`, `ipv6:addr,[addr]:port,...`, `unix:path`,
//! `unix-abstract:name`; the port defaults to 443. A [`Resolver`] of the user's own
//! feeds addresses from any discovery.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::uri::Authority;
use tokio::sync::Notify;

use crate::error::Error;
use crate::resolve::UnixAddr;

/// The port a target without one gets (`naming.md`).
pub const DEFAULT_PORT: u16 = 443;

/// A future a [`Resolver`] returns.
pub type ResolveFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of addresses for a channel: DNS, a static list, or the user's own discovery.
///
/// The channel calls [`Resolver::resolve`] when it first needs connections, when a
/// connection is lost or fails (at most once per
/// [`min_resolve_interval`](super::ChannelBuilder::min_resolve_interval)), and whenever
/// [`Resolver::changed`] completes. A new list updates the channel's subchannels: calls in
/// flight on connections to addresses that remain keep going, and so do those on removed
/// ones, which close once their calls end.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses now, in order of preference.
    fn resolve(&self) -> ResolveFuture<'_, io::Result<Vec<SocketAddr>>>;

    /// A future that completes once the resolver has a list newer than the one
    /// [`Resolver::resolve`] gives now (push-based discovery). The channel asks for it
    /// just before each resolution, so a change made while it resolves is not missed.
    /// The default never completes.
    fn changed(&self) -> ResolveFuture<'static, ()> {
        Box::pin(std::future::pending())
    }
}

/// A [`Resolver`] whose list is set by hand: [`ManualResolver::update`] replaces it and
/// the channels using it follow.
#[derive(Clone, Default)]
pub struct ManualResolver {
    inner: Arc<ManualInner>,
}

#[derive(Default)]
struct ManualInner {
    addresses: Mutex<Vec<SocketAddr>>,
    /// Counts updates.
    version: std::sync::atomic::AtomicU64,
    changed: Notify,
}

impl ManualResolver {
    /// A resolver that gives `addresses` until updated.
    pub fn new(addresses: Vec<SocketAddr>) -> ManualResolver {
        let resolver = ManualResolver::default();
        *resolver.inner.addresses.lock().unwrap() = addresses;
        resolver
    }

    /// Replace the list; every channel using this resolver picks it up.
    pub fn update(&self, addresses: Vec<SocketAddr>) {
        *self
            .inner
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = addresses;
        self.inner
            .version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }
}

impl Resolver for ManualResolver {
    fn resolve(&self) -> ResolveFuture<'_, io::Result<Vec<SocketAddr>>> {
        let addresses = self
            .inner
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Box::pin(async move { Ok(addresses) })
    }

    fn changed(&self) -> ResolveFuture<'static, ()> {
        use std::sync::atomic::Ordering::SeqCst;
        let inner = self.inner.clone();
        let seen = inner.version.load(SeqCst);
        Box::pin(async move {
            loop {
                let notified = inner.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if inner.version.load(SeqCst) != seen {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// What a subchannel connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    Tcp(SocketAddr),
    Unix(UnixAddr),
    /// A connection the user handed over (`ChannelBuilder::connect_with`); never redialled.
    Given,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(UnixAddr::Path(path)) => write!(f, "unix:{}", path.display()),
            Endpoint::Unix(UnixAddr::Abstract(name)) => {
                write!(f, "unix-abstract:{}", String::from_utf8_lossy(name))
            }
            Endpoint::Given => f.write_str("the connection given to the channel"),
        }
    }
}

/// A parsed target: where addresses come from, and the `:authority` it implies.
pub(crate) struct Target {
    pub(crate) source: Source,
    pub(crate) authority: Authority,
    /// The URI scheme the target was written with (`http://`, `https://`), if any.
    pub(crate) scheme: Option<UriScheme>,
}

/// The scheme of a target written as a URI, as tonic users write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriScheme {
    /// `http://host[:port]`: plaintext, port 80 by default.
    Http,
    /// `https://host[:port]`: TLS, port 443 by default.
    Https,
}

/// The target forms, for errors.
const FORMS: &str = "write host:port, http://host:port, https://host:port, dns:host:port, \
                     ipv4:addr:port, ipv6:[addr]:port, unix:path or unix-abstract:name";

/// Where a channel's addresses come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// `host:port` looked up through the system's resolver.
    Dns { host: String, port: u16 },
    /// A fixed list (`ipv4:`, `ipv6:`, `unix:`).
    Static(Vec<Endpoint>),
    /// The user's resolver.
    Custom(Arc<dyn Resolver>),
}

impl Source {
    /// Resolve once; an empty list is an error.
    pub(crate) async fn resolve(&self) -> Result<Vec<Endpoint>, String> {
        let endpoints: Vec<Endpoint> = match self {
            Source::Dns { host, port } => tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| format!("resolving {host}:{port}: {e}"))?
                .map(Endpoint::Tcp)
                .collect(),
            Source::Static(endpoints) => endpoints.clone(),
            Source::Custom(resolver) => resolver
                .resolve()
                .await
                .map_err(|e| format!("resolver failed: {e}"))?
                .into_iter()
                .map(Endpoint::Tcp)
                .collect(),
        };
        if endpoints.is_empty() {
            return Err("the resolver returned no address".into());
        }
        Ok(endpoints)
    }

    /// Completes when a push-based resolver has a list newer than its current one.
    pub(crate) fn changed(&self) -> ResolveFuture<'static, ()> {
        match self {
            Source::Custom(resolver) => resolver.changed(),
            _ => Box::pin(std::future::pending()),
        }
    }
}

fn bad(target: &str, why: impl std::fmt::Display) -> Error {
    Error::Address(format!("{target}: {why}"))
}

impl Target {
    /// Parse `target` per the naming document.
    pub(crate) fn parse(target: &str) -> Result<Target, Error> {
        if let Some(unix) = UnixAddr::parse(target) {
            return Ok(Target {
                source: Source::Static(vec![Endpoint::Unix(unix)]),
                // What grpc-go sends for Unix targets.
                authority: Authority::from_static("localhost"),
                scheme: None,
            });
        }
        if let Some(list) = target.strip_prefix("ipv4:") {
            return Target::addresses(target, list, false);
        }
        if let Some(list) = target.strip_prefix("ipv6:") {
            return Target::addresses(target, list, true);
        }
        for (prefix, scheme, default_port) in [
            ("http://", UriScheme::Http, 80),
            ("https://", UriScheme::Https, 443),
        ] {
            if let Some(rest) = strip_prefix_ignore_case(target, prefix) {
                let name = match rest.split_once('/') {
                    None => rest,
                    Some((name, "")) => name,
                    Some(_) => {
                        return Err(bad(target, "a path after host:port is not supported"));
                    }
                };
                let (host, port) = split_host_port(name).map_err(|why| bad(target, why))?;
                let authority: Authority = name.parse().map_err(|e| bad(target, e))?;
                return Ok(Target {
                    source: Source::Dns {
                        host,
                        port: port.unwrap_or(default_port),
                    },
                    authority,
                    scheme: Some(scheme),
                });
            }
        }
        if let Some((scheme, _)) = target.split_once("://")
            && !scheme.eq_ignore_ascii_case("dns")
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(bad(target, format!("unknown scheme {scheme:?}: {FORMS}")));
        }
        let name = match target.strip_prefix("dns:") {
            Some(rest) => match rest.strip_prefix("//") {
                Some(rest) => {
                    let (dns_server, name) = rest
                        .split_once('/')
                        .ok_or_else(|| bad(target, "expected dns://[authority]/host[:port]"))?;
                    if !dns_server.is_empty() {
                        return Err(bad(
                            target,
                            "a DNS server in the target is not supported; the system's resolver is used",
                        ));
                    }
                    name
                }
                None => rest,
            },
            None => target,
        };
        let (host, port) = split_host_port(name).map_err(|why| bad(target, why))?;
        let port = port.unwrap_or(DEFAULT_PORT);
        let authority: Authority = name.parse().map_err(|e| bad(target, e))?;
        Ok(Target {
            source: Source::Dns { host, port },
            authority,
            scheme: None,
        })
    }

    /// `ipv4:` / `ipv6:` lists: every entry an address of that family, with an
    /// optional port. The authority is the first entry's `address:port`.
    fn addresses(target: &str, list: &str, v6: bool) -> Result<Target, Error> {
        let mut endpoints = Vec::new();
        for entry in list.split(',') {
            let (host, port) = split_host_port(entry).map_err(|why| bad(target, why))?;
            let ip: IpAddr = host
                .parse()
                .map_err(|_| bad(target, format!("{entry:?} is not an IP address")))?;
            if ip.is_ipv6() != v6 {
                let family = if v6 { "IPv6" } else { "IPv4" };
                return Err(bad(target, format!("{entry:?} is not an {family} address")));
            }
            endpoints.push(Endpoint::Tcp(SocketAddr::new(
                ip,
                port.unwrap_or(DEFAULT_PORT),
            )));
        }
        let Endpoint::Tcp(first) = endpoints[0] else {
            unreachable!("only TCP endpoints are listed")
        };
        let authority: Authority = first.to_string().parse().map_err(|e| bad(target, e))?;
        Ok(Target {
            source: Source::Static(endpoints),
            authority,
            scheme: None,
        })
    }
}

/// `s` without `prefix`, compared without case (`HTTP://` is `http://`).
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (no port).
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if s.is_empty() {
        return Err("empty address".into());
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: unclosed '['"))?;
        return match after {
            "" => Ok((host.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), Some(port(p)?))),
                None => Err(format!("{s:?}: junk after ']'")),
            },
        };
    }
    match s.matches(':').count() {
        0 => Ok((s.to_string(), None)),
        1 => {
            let (host, p) = s.split_once(':').unwrap();
            if host.is_empty() {
                return Err(format!("{s:?}: no host"));
            }
            Ok((host.to_string(), Some(port(p)?)))
        }
        // An unbracketed IPv6 address cannot carry a port.
        _ => Ok((s.to_string(), None)),
    }
}

/// Order for pick_first (gRFC A61): addresses of the two families interleaved, starting
/// with the family of the first address, each family keeping its own order.
pub(crate) fn interleave_families(endpoints: Vec<Endpoint>) -> Vec<Endpoint> {
    let first_v6 = matches!(endpoints.first(), Some(Endpoint::Tcp(a)) if a.is_ipv6());
    let (mut first, mut second): (Vec<_>, Vec<_>) = endpoints
        .into_iter()
        .partition(|e| matches!(e, Endpoint::Tcp(a) if a.is_ipv6()) == first_v6);
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.drain(..), second.drain(..));
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> Endpoint {
        Endpoint::Tcp(s.parse().unwrap())
    }

    fn listed(target: &str) -> Vec<Endpoint> {
        match Target::parse(target).unwrap().source {
            Source::Static(list) => list,
            _ => panic!("{target} is not a static list"),
        }
    }

    #[test]
    fn targets_parse_as_the_naming_document_spells_them() {
        for (target, host, port, authority) in [
            ("localhost:50051", "localhost", 50051, "localhost:50051"),
            ("dns:localhost:50051", "localhost", 50051, "localhost:50051"),
            (
                "dns:///localhost:50051",
                "localhost",
                50051,
                "localhost:50051",
            ),
            ("dns:///example.com", "example.com", 443, "example.com"),
            ("example.com", "example.com", 443, "example.com"),
            ("dns:[::1]:7", "::1", 7, "[::1]:7"),
            (
                "http://127.0.0.1:50051",
                "127.0.0.1",
                50051,
                "127.0.0.1:50051",
            ),
            (
                "http://localhost:50051/",
                "localhost",
                50051,
                "localhost:50051",
            ),
            ("http://[::1]:50051", "::1", 50051, "[::1]:50051"),
            ("http://example.com", "example.com", 80, "example.com"),
            ("https://example.com", "example.com", 443, "example.com"),
            (
                "HTTPS://example.com:8443",
                "example.com",
                8443,
                "example.com:8443",
            ),
        ] {
            let parsed = Target::parse(target).unwrap();
            match parsed.source {
                Source::Dns { host: h, port: p } => assert_eq!((h.as_str(), p), (host, port)),
                _ => panic!("{target} is not DNS"),
            }
            assert_eq!(parsed.authority.as_str(), authority, "{target}");
        }
        assert_eq!(
            listed("ipv4:127.0.0.1:1,127.0.0.2:2,127.0.0.3"),
            vec![tcp("127.0.0.1:1"), tcp("127.0.0.2:2"), tcp("127.0.0.3:443")]
        );
        assert_eq!(
            Target::parse("ipv4:127.0.0.1:1,127.0.0.2:2")
                .unwrap()
                .authority
                .as_str(),
            "127.0.0.1:1"
        );
        assert_eq!(
            listed("ipv6:[::1]:5,::2,[::3]"),
            vec![tcp("[::1]:5"), tcp("[::2]:443"), tcp("[::3]:443")]
        );
        assert_eq!(Target::parse("unix:/tmp/s").unwrap().authority, "localhost");
        assert_eq!(
            Target::parse("http://h:1").unwrap().scheme,
            Some(UriScheme::Http)
        );
        assert_eq!(
            Target::parse("https://h:1").unwrap().scheme,
            Some(UriScheme::Https)
        );
        assert_eq!(Target::parse("h:1").unwrap().scheme, None);
    }

    #[test]
    fn bad_targets_are_errors_that_say_why() {
        for (target, why) in [
            ("ipv4:::1", "not an IPv4"),
            ("ipv6:127.0.0.1", "not an IPv6"),
            ("ipv4:127.0.0.1:99999", "not a port"),
            ("ipv4:", "empty"),
            ("ipv4:1.2.3.4,", "empty"),
            ("ipv4:host:1", "not an IP"),
            ("dns://8.8.8.8/example.com", "DNS server"),
            ("dns://example.com", "expected dns://"),
            ("host:port", "not a port"),
            (":80", "no host"),
            ("[::1", "unclosed"),
            ("grpc://localhost:50051", "unknown scheme \"grpc\""),
            ("xds:///my-service", "unknown scheme \"xds\""),
            ("http://localhost:50051/api", "a path"),
            ("http://", "empty address"),
        ] {
            let err = Target::parse(target).err().unwrap().to_string();
            assert!(err.contains(why), "{target}: {err}");
        }
    }

    #[test]
    fn pick_first_interleaves_address_families_starting_with_the_first() {
        let list = vec![
            tcp("[::1]:1"),
            tcp("[::2]:1"),
            tcp("[::3]:1"),
            tcp("10.0.0.1:1"),
            tcp("10.0.0.2:1"),
        ];
        assert_eq!(
            interleave_families(list),
            vec![
                tcp("[::1]:1"),
                tcp("10.0.0.1:1"),
                tcp("[::2]:1"),
                tcp("10.0.0.2:1"),
                tcp("[::3]:1")
            ]
        );
        let v4_first = vec![tcp("10.0.0.1:1"), tcp("[::1]:1"), tcp("10.0.0.2:1")];
        assert_eq!(
            interleave_families(v4_first),
            vec![tcp("10.0.0.1:1"), tcp("[::1]:1"), tcp("10.0.0.2:1")]
        );
    }
}
