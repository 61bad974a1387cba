//! Test certificates made at test time with rcgen (ring; no key is ever committed): a test
//! CA, a server and a client certificate it signs, and an unrelated CA's client
//! certificate, as PEM files in a fresh temp directory ([`TestCerts::generate`]).
//!
//! The server certificate names `localhost`, `127.0.0.1` (an IP SAN) and
//! `*.test.google.fr`: grpc's interop clients are run with
//! `--server_host_override=foo.test.google.fr`, the name grpc's own test certificates carry.
//! The client certificate (CN `h2grpc-test-client`, SAN `client.test`) is for mutual TLS;
//! the *other* client certificate, from a CA no server trusts, is the client a server that
//! requires client certificates must refuse.
//!
//! Keys are ECDSA P-256 (what rcgen generates by default), written as PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`), which rustls, grpcio (BoringSSL) and Node (OpenSSL) all
//! read. Certificates are valid from the start of last year to ten years on.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};

use crate::process::TempDir;

/// The name the interop clients put in `--server_host_override` (as grpc's interop tests
/// do); the server certificate covers it with its `*.test.google.fr` SAN.
pub const SERVER_HOST_OVERRIDE: &str = "foo.test.google.fr";

/// The client certificate's subject common name.
pub const CLIENT_COMMON_NAME: &str = "h2grpc-test-client";

/// The PEM files of one set of test certificates, in `dir` (removed on drop).
pub struct TestCerts {
    /// Holds every file below; dropping it removes them.
    pub dir: TempDir,
    /// The test CA's certificate: the roots a client trusts, and the client CA of a server
    /// that requires client certificates.
    pub ca_cert: PathBuf,
    /// The server's certificate (signed by the test CA) and its key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate signed by the test CA, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The certificate of a second, unrelated CA (trusted by nobody).
    pub other_ca_cert: PathBuf,
    /// A client certificate signed by that other CA, and its key: an unknown client.
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

impl TestCerts {
    /// Generates a fresh set into a new temp directory. Panics if generating or writing
    /// fails.
    pub fn generate() -> TestCerts {
        let dir = TempDir::new("tls");
        let (ca, ca_pem) = new_ca("h2grpc test CA");
        let (other_ca, other_ca_pem) = new_ca("h2grpc unrelated test CA");

        let mut server = leaf_params(
            "h2grpc test server",
            &["localhost", "127.0.0.1", "*.test.google.fr"],
        );
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (server_cert, server_key) = sign(server, &ca);

        let mut client = leaf_params(CLIENT_COMMON_NAME, &["client.test"]);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (client_cert, client_key) = sign(client.clone(), &ca);
        let (other_client_cert, other_client_key) = sign(client, &other_ca);

        let write = |name: &str, pem: &str| -> PathBuf {
            let path = dir.path().join(name);
            fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            path
        };
        TestCerts {
            ca_cert: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            other_ca_cert: write("other-ca.pem", &other_ca_pem),
            other_client_cert: write("other-client.pem", &other_client_cert),
            other_client_key: write("other-client.key", &other_client_key),
            dir,
        }
    }

    /// The interop servers' TLS flags (grpc-go's names, tests/peers/CONVENTIONS.md), with
    /// `--tls_client_ca_file` (the test CA) when `require_client_cert`.
    pub fn interop_server_args(&self, require_client_cert: bool) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--use_tls".into(),
            "true".into(),
            "--tls_cert_file".into(),
            self.server_cert.clone().into(),
            "--tls_key_file".into(),
            self.server_key.clone().into(),
        ];
        if require_client_cert {
            args.extend(["--tls_client_ca_file".into(), self.ca_cert.clone().into()]);
        }
        args
    }

    /// The interop clients' TLS flags, as grpc's interop tests pass them (the test CA and
    /// the name its server certificate carries), presenting `identity` (certificate, key)
    /// if given.
    pub fn interop_client_args(&self, identity: Option<(&Path, &Path)>) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--use_tls".into(),
            "true".into(),
            "--use_test_ca".into(),
            "true".into(),
            "--ca_file".into(),
            self.ca_cert.clone().into(),
            "--server_host_override".into(),
            SERVER_HOST_OVERRIDE.into(),
        ];
        if let Some((cert, key)) = identity {
            args.extend([
                "--tls_client_cert_file".into(),
                cert.into(),
                "--tls_client_key_file".into(),
                key.into(),
            ]);
        }
        args
    }

    /// The directory holding the files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The current calendar year (UTC), near enough for validity periods.
fn this_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // 365.2425 days a year.
    1970 + (secs / 31_556_952) as i32
}

fn params(common_name: &str, sans: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                (*s).try_into()
                    .unwrap_or_else(|e| panic!("bad DNS SAN {s:?}: {e}")),
            ),
        })
        .collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "h2grpc tests");
    params.distinguished_name = name;
    let year = this_year();
    params.not_before = date_time_ymd(year - 1, 1, 1);
    params.not_after = date_time_ymd(year + 10, 1, 1);
    params
}

fn leaf_params(common_name: &str, sans: &[&str]) -> CertificateParams {
    let mut params = params(common_name, sans);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params
}

/// A self-signed CA and its certificate's PEM.
fn new_ca(common_name: &str) -> (CertifiedIssuer<'static, KeyPair>, String) {
    let mut params = params(common_name, &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("generate a CA key");
    let ca = CertifiedIssuer::self_signed(params, key).expect("self-sign the test CA");
    let pem = ca.pem();
    (ca, pem)
}

/// A fresh key and a certificate for it signed by `issuer`: (certificate PEM, key PEM).
fn sign(params: CertificateParams, issuer: &CertifiedIssuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().expect("generate a key");
    let cert = params
        .signed_by(&key, issuer)
        .expect("sign a test certificate");
    (cert.pem(), key.serialize_pem())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_files() {
        let certs = TestCerts::generate();
        for (path, tag) in [
            (&certs.ca_cert, "CERTIFICATE"),
            (&certs.server_cert, "CERTIFICATE"),
            (&certs.server_key, "PRIVATE KEY"),
            (&certs.client_cert, "CERTIFICATE"),
            (&certs.client_key, "PRIVATE KEY"),
            (&certs.other_ca_cert, "CERTIFICATE"),
            (&certs.other_client_cert, "CERTIFICATE"),
            (&certs.other_client_key, "PRIVATE KEY"),
        ] {
            let text = fs::read_to_string(path).expect("read a PEM file");
            assert!(
                text.starts_with(&format!("-----BEGIN {tag}-----")),
                "{}: {text}",
                path.display()
            );
        }
        let dir = certs.path().to_path_buf();
        drop(certs);
        assert!(!dir.exists(), "the temp dir outlived its TestCerts");
    }
}
