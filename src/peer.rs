//! [`Peer`]: who is at the other end of a server's connection (its address, and over TLS
//! the certificate chain it presented), for handlers and interceptors; and
//! [`PeerIdentity`], the names in a certificate (parsed with the feature `tls`).

use std::net::SocketAddr;

use rustls_pki_types::CertificateDer;

/// Who is at the other end of a server's connection: its address, and over TLS the
/// certificate chain it presented. Read it in a handler with `Request::peer`.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    addr: Option<SocketAddr>,
    certificates: Vec<CertificateDer<'static>>,
}

impl Peer {
    pub(crate) fn new(
        addr: Option<SocketAddr>,
        certificates: Vec<CertificateDer<'static>>,
    ) -> Peer {
        Peer { addr, certificates }
    }

    /// The peer's socket address (none for an in-memory or Unix connection).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The certificate chain the client presented (leaf first), DER; empty without
    /// TLS or without a client certificate.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    /// The identity in the client's leaf certificate, if it sent one. (Without the
    /// feature `tls` there is no certificate, and no identity.)
    pub fn identity(&self) -> Option<PeerIdentity> {
        #[cfg(feature = "tls")]
        return PeerIdentity::parse(self.certificates.first()?);
        #[cfg(not(feature = "tls"))]
        None
    }
}

/// The names a certificate gives its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject, as `CN=...,O=...`.
    pub subject: String,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// DNS names of the subject alternative names.
    pub dns_names: Vec<String>,
    /// URIs of the subject alternative names (SPIFFE IDs, say).
    pub uris: Vec<String>,
    /// IP addresses of the subject alternative names.
    pub ip_addrs: Vec<std::net::IpAddr>,
}

#[cfg(feature = "tls")]
impl PeerIdentity {
    /// Parse the names out of a DER certificate; `None` when it does not parse.
    pub fn parse(der: &CertificateDer<'_>) -> Option<PeerIdentity> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let subject = cert.subject();
        let mut identity = PeerIdentity {
            subject: subject.to_string(),
            common_name: subject
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned),
            ..PeerIdentity::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => identity.dns_names.push((*dns).to_owned()),
                    GeneralName::URI(uri) => identity.uris.push((*uri).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            identity.ip_addrs.push(v4.into());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            identity.ip_addrs.push(v6.into());
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(identity)
    }
}
