//! TLS for both sides, on rustls with the `ring` crypto provider (it builds with only a C
//! compiler; aws-lc-rs would also need cmake). [`ServerTls`]: the server's certificate
//! (from PEM files or memory, replaceable while serving: new connections get the new one),
//! ALPN `h2` required, and optional or required client certificates checked against a
//! CA (mutual TLS). [`ClientTls`]: the roots a channel trusts (the system's, Mozilla's
//! compiled in, or a given CA bundle), the name to verify, and a client certificate.
//! [`Peer`] (who is on the other end of a server's connection) lives in its own module,
//! re-exported here. The whole module is the default feature `tls`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::Error;

/// The ALPN protocol gRPC runs on.
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol of HTTP/1.1, offered beside `h2` when the server serves the web
/// protocols (gRPC-Web and Connect), which browsers may speak over HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The rustls crypto provider: the process default if the program installed one
/// (`CryptoProvider::install_default`), else the one rustls picks from its crate features,
/// `ring` (the only one h2grpc turns on), installed as the process default.
fn provider() -> Arc<CryptoProvider> {
    if let Some(provider) = CryptoProvider::get_default() {
        return provider.clone();
    }
    // rustls installs its crate features' provider here (and asks for `install_default`
    // when a program compiles in several).
    let _ = ClientConfig::builder();
    CryptoProvider::get_default()
        .expect("rustls installed a default crypto provider")
        .clone()
}

fn tls_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| tls_error(&path.display().to_string(), e))
}

/// Every certificate in a PEM bundle; an error when it holds none.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(what, e))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{what}: no certificate in the PEM data"
        )));
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| tls_error("private key", e))
}

fn roots(pem: &[u8]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, "CA bundle")? {
        roots
            .add(cert)
            .map_err(|e| tls_error("CA certificate", e))?;
    }
    Ok(roots)
}

fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, Error> {
    let chain = certificates(cert_pem, "certificate chain")?;
    let key = provider()
        .key_provider
        .load_private_key(private_key(key_pem)?)
        .map_err(|e| tls_error("private key", e))?;
    let certified = CertifiedKey::new(chain, key);
    certified
        .keys_match()
        .map_err(|e| tls_error("certificate and key", e))?;
    Ok(Arc::new(certified))
}

/// The server's certificate, swapped in place by [`ServerTls::reload`].
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// Which client certificates the server asks for.
#[derive(Clone)]
enum ClientAuth {
    None,
    /// Verified against these roots when sent; a client may send none.
    Optional(Arc<RootCertStore>),
    /// Required and verified against these roots: a client without one is refused.
    Required(Arc<RootCertStore>),
}

/// The server's TLS: its certificate and what it asks of clients. Cheap to clone; clones
/// share the certificate, so [`ServerTls::reload`] on any of them reaches the server.
///
/// ```no_run
/// # fn main() -> Result<(), h2grpc::Error> {
/// let tls = h2grpc::ServerTls::from_pem_files("server.pem", "server.key")?;
/// let server = h2grpc::Server::new().tls(tls.clone());
/// // Months later, from a task that watches the files:
/// tls.reload_files("server.pem", "server.key")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<Current>,
    client_auth: ClientAuth,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A certificate chain (leaf first) and its private key, in PEM.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls, Error> {
        Ok(ServerTls {
            current: Arc::new(Current(RwLock::new(certified_key(
                cert_chain_pem,
                key_pem,
            )?))),
            client_auth: ClientAuth::None,
        })
    }

    /// [`ServerTls::from_pem`] from files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTls, Error> {
        ServerTls::from_pem(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// Require a client certificate signed by a CA of `ca_pem` (mutual TLS): a client
    /// without one, or with another, is refused in the handshake.
    pub fn require_client_cert(mut self, ca_pem: &[u8]) -> Result<ServerTls, Error> {
        self.client_auth = ClientAuth::Required(Arc::new(roots(ca_pem)?));
        Ok(self)
    }

    /// Ask for a client certificate signed by a CA of `ca_pem`, and accept clients that
    /// send none (a certificate that is sent must verify).
    pub fn request_client_cert(mut self, ca_pem: &[u8]) -> Result<ServerTls, Error> {
        self.client_auth = ClientAuth::Optional(Arc::new(roots(ca_pem)?));
        Ok(self)
    }

    /// Serve new connections with this certificate chain and key; connections already
    /// open keep theirs. A certificate that does not parse, or does not match its key,
    /// is an error and the old one stays.
    pub fn reload(&self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<(), Error> {
        let next = certified_key(cert_chain_pem, key_pem)?;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// [`ServerTls::reload`] from files.
    pub fn reload_files(
        &self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), Error> {
        self.reload(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// The rustls configuration: ALPN `h2`, and `http/1.1` after it when `http1`.
    pub(crate) fn config(&self, http1: bool) -> Result<Arc<ServerConfig>, Error> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| tls_error("client verifier", e))?,
            ),
            ClientAuth::Required(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                    .build()
                    .map_err(|e| tls_error("client verifier", e))?,
            ),
        };
        let mut config = builder.with_cert_resolver(self.current.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        if http1 {
            config.alpn_protocols.push(ALPN_HTTP1.to_vec());
        }
        Ok(Arc::new(config))
    }
}

/// A channel's TLS: the roots it trusts, the name it verifies, and an optional client
/// certificate (for servers that require one).
#[derive(Clone)]
pub struct ClientTls {
    roots: Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    server_name: Option<String>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trust the operating system's roots (`rustls-native-certs`). Fails when none load.
    pub fn with_native_roots() -> Result<ClientTls, Error> {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            return Err(Error::Tls(format!(
                "no system root certificate could be loaded ({} errors)",
                loaded.errors.len()
            )));
        }
        Ok(ClientTls::with_roots(roots))
    }

    /// Trust Mozilla's roots, compiled in (`webpki-roots`): no system store needed.
    pub fn with_webpki_roots() -> ClientTls {
        ClientTls::with_roots(RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ))
    }

    /// Trust only the CA certificates of `ca_pem`.
    pub fn with_ca_pem(ca_pem: &[u8]) -> Result<ClientTls, Error> {
        Ok(ClientTls::with_roots(roots(ca_pem)?))
    }

    /// [`ClientTls::with_ca_pem`] from a file.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<ClientTls, Error> {
        ClientTls::with_ca_pem(&read(path.as_ref())?)
    }

    fn with_roots(roots: RootCertStore) -> ClientTls {
        ClientTls {
            roots: Arc::new(roots),
            identity: None,
            server_name: None,
        }
    }

    /// Present this certificate chain and key when the server asks (mutual TLS).
    pub fn identity(mut self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ClientTls, Error> {
        let chain = certificates(cert_chain_pem, "client certificate chain")?;
        self.identity = Some((chain, Arc::new(private_key(key_pem)?)));
        Ok(self)
    }

    /// [`ClientTls::identity`] from files.
    pub fn identity_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ClientTls, Error> {
        let (cert, key) = (read(cert_chain.as_ref())?, read(key.as_ref())?);
        self.identity(&cert, &key)
    }

    /// Verify the server as `name` and send it as SNI, instead of the host the channel
    /// connects to (connecting by address to a server whose certificate names a host).
    pub fn server_name(mut self, name: impl Into<String>) -> ClientTls {
        self.server_name = Some(name.into());
        self
    }

    /// The name to verify: the override, else `host`.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>, Error> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_owned()).map_err(|e| tls_error("server name", e))
    }

    /// The rustls configuration: ALPN `h2` only.
    pub(crate) fn config(&self) -> Result<Arc<ClientConfig>, Error> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_root_certificates(self.roots.clone());
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| tls_error("client certificate", e))?,
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }
}

pub use crate::peer::{Peer, PeerIdentity};
