//! TLS over real sockets, with certificates generated for the run: a channel that trusts
//! a given CA, mutual TLS (required client certificates: accepted, missing, unknown),
//! the peer's identity in handlers, ALPN `h2` required of clients, certificate rotation
//! without a restart, and the TLS handshake held to the handshake timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use h2grpc::{Channel, ClientTls, Code, Server, ServerTls};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::service::{TestServer, bounded, req};
use h2grpc_test_support::tls::{CLIENT_COMMON_NAME, TestCerts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pem(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn server_tls(certs: &TestCerts) -> ServerTls {
    ServerTls::from_pem_files(&certs.server_cert, &certs.server_key).unwrap()
}

/// A client of `server` over TLS trusting `ca`, verifying the name `localhost`.
async fn tls_client(server: &TestServer, tls: ClientTls) -> Result<GrpcDemoClient, h2grpc::Error> {
    let channel = Channel::builder(server.addr.to_string())
        .tls(tls.server_name("localhost"))
        .connect()
        .await?;
    Ok(GrpcDemoClient::new(channel))
}

#[tokio::test]
async fn a_channel_trusting_the_ca_calls_over_tls() {
    bounded(async {
        let certs = TestCerts::generate();
        let server = TestServer::start_with(Server::new().tls(server_tls(&certs))).await;
        let tls = ClientTls::with_ca_file(&certs.ca_cert).unwrap();
        let client = tls_client(&server, tls).await.unwrap();
        let reply = client.simple_method(req("echo:over tls")).await.unwrap();
        assert_eq!(reply.message().response_data, "over tls");
        let mut stream = client
            .server_streaming_method(req("count:3"))
            .await
            .unwrap()
            .into_message();
        let mut got = Vec::new();
        while let Some(m) = stream.message().await.unwrap() {
            got.push(m.response_data);
        }
        assert_eq!(got, ["0", "1", "2"]);
        // Without a client certificate the handler sees the address and no identity.
        let peer = client.simple_method(req("peer")).await.unwrap();
        assert_eq!(peer.message().response_data, "127.0.0.1||");
        // A plaintext client is not served by a TLS server: the connection never gets
        // to READY (no HTTP/2 SETTINGS come back), so the call is UNAVAILABLE, as in grpc-go.
        let plain = GrpcDemoClient::new(Channel::lazy(server.addr.to_string()).unwrap());
        let err = plain.simple_method(req("echo:x")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    })
    .await
}

#[tokio::test]
async fn http_and_https_targets_choose_plaintext_and_tls_as_tonic_users_write_them() {
    bounded(async {
        let certs = TestCerts::generate();
        let server = TestServer::start_with(Server::new().tls(server_tls(&certs))).await;
        let port = server.addr.port();
        // https:// with a CA of our own: TLS, verifying `localhost`.
        let tls = ClientTls::with_ca_file(&certs.ca_cert).unwrap();
        let channel = Channel::builder(format!("https://localhost:{port}"))
            .tls(tls.clone())
            .connect()
            .await
            .unwrap();
        let reply = GrpcDemoClient::new(channel)
            .simple_method(req("echo:https"))
            .await
            .unwrap();
        assert_eq!(reply.message().response_data, "https");
        // https:// alone trusts the system's roots, which do not know the test CA: the
        // handshake is attempted and refused, so the error is a TLS one.
        let err = GrpcDemoClient::connect(format!("https://localhost:{port}"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        // http:// is plaintext: a TLS config beside it is a mistake, said at once.
        let err = Channel::builder(format!("http://localhost:{port}"))
            .tls(tls)
            .lazy()
            .unwrap_err();
        assert!(err.to_string().contains("write https://"), "{err}");
        // An unknown scheme is named.
        let err = GrpcDemoClient::connect(format!("grpc://localhost:{port}"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown scheme \"grpc\""), "{err}");
    })
    .await
}

#[tokio::test]
async fn a_channel_refuses_a_server_its_roots_do_not_vouch_for() {
    bounded(async {
        let certs = TestCerts::generate();
        let server = TestServer::start_with(Server::new().tls(server_tls(&certs))).await;
        // Trusting another CA only.
        let tls = ClientTls::with_ca_file(&certs.other_ca_cert).unwrap();
        let err = tls_client(&server, tls).await.unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        // Right CA, wrong name.
        let tls = ClientTls::with_ca_file(&certs.ca_cert)
            .unwrap()
            .server_name("not-the-server.example");
        let channel = Channel::builder(server.addr.to_string()).tls(tls);
        let err = channel.connect().await.unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    })
    .await
}

#[tokio::test]
async fn mutual_tls_admits_known_clients_only_and_shows_their_identity() {
    bounded(async {
        let certs = TestCerts::generate();
        let tls = server_tls(&certs)
            .require_client_cert(&pem(&certs.ca_cert))
            .unwrap();
        let server = TestServer::start_with(Server::new().tls(tls)).await;
        let trust = || ClientTls::with_ca_file(&certs.ca_cert).unwrap();

        let known = trust()
            .identity_files(&certs.client_cert, &certs.client_key)
            .unwrap();
        let client = tls_client(&server, known).await.unwrap();
        let peer = client.simple_method(req("peer")).await.unwrap();
        assert_eq!(
            peer.message().response_data,
            format!("127.0.0.1|{CLIENT_COMMON_NAME}|client.test")
        );

        // No certificate: refused in the handshake (the call cannot go out).
        let anonymous = tls_client(&server, trust()).await;
        let failed = match anonymous {
            Err(_) => true,
            Ok(client) => client.simple_method(req("echo:x")).await.is_err(),
        };
        assert!(failed, "a client without a certificate was served");

        // A certificate from an unknown CA: refused too.
        let unknown = trust()
            .identity_files(&certs.other_client_cert, &certs.other_client_key)
            .unwrap();
        let failed = match tls_client(&server, unknown).await {
            Err(_) => true,
            Ok(client) => client.simple_method(req("echo:x")).await.is_err(),
        };
        assert!(
            failed,
            "a client with an unknown CA's certificate was served"
        );
        // And the known client still is.
        client.simple_method(req("echo:still")).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections_while_old_ones_keep_theirs() {
    bounded(async {
        let first = TestCerts::generate();
        let second = TestCerts::generate();
        let tls = server_tls(&first);
        let server = TestServer::start_with(Server::new().tls(tls.clone())).await;
        let trusts_first = || ClientTls::with_ca_file(&first.ca_cert).unwrap();
        let trusts_second = || ClientTls::with_ca_file(&second.ca_cert).unwrap();

        let old = tls_client(&server, trusts_first()).await.unwrap();
        old.simple_method(req("echo:before")).await.unwrap();
        assert!(tls_client(&server, trusts_second()).await.is_err());

        // A bad pair is refused and changes nothing.
        assert!(
            tls.reload(&pem(&second.server_cert), &pem(&first.server_key))
                .is_err()
        );
        tls.reload_files(&second.server_cert, &second.server_key)
            .unwrap();

        let new = tls_client(&server, trusts_second()).await.unwrap();
        new.simple_method(req("echo:after")).await.unwrap();
        assert!(tls_client(&server, trusts_first()).await.is_err());
        // The connection made before the reload goes on.
        let reply = old.simple_method(req("echo:still open")).await.unwrap();
        assert_eq!(reply.message().response_data, "still open");
    })
    .await
}

/// A raw TLS client offering `alpn`; whether the server let it send a request.
async fn handshake_with_alpn(addr: std::net::SocketAddr, ca: &[u8], alpn: &[&[u8]]) -> bool {
    first_answer(addr, ca, alpn).await.is_some()
}

/// A raw TLS client offering `alpn` that sends the HTTP/2 preface and an empty SETTINGS;
/// the first bytes of the answer, `None` when the server refused or closed.
async fn first_answer(addr: std::net::SocketAddr, ca: &[u8], alpn: &[&[u8]]) -> Option<Vec<u8>> {
    use tokio_rustls::rustls::{self, pki_types};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(ca) {
        roots.add(cert).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return None;
    };
    // Handshake done: the HTTP/2 preface must get an answer (SETTINGS), not a close.
    if tls
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .is_err()
    {
        return None;
    }
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(buf[..n].to_vec()),
        _ => None,
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_client_that_does_not_offer_alpn_h2_is_refused() {
    bounded(async {
        let certs = TestCerts::generate();
        let ca = pem(&certs.ca_cert);
        // gRPC only: ALPN h2 or nothing, as grpc-go.
        let grpc_only = Server::new().tls(server_tls(&certs)).web_protocols(false);
        let server = TestServer::start_with(grpc_only).await;
        assert!(
            handshake_with_alpn(server.addr, &ca, &[b"h2"]).await,
            "h2 is served"
        );
        assert!(!handshake_with_alpn(server.addr, &ca, &[b"http/1.1"]).await);
        assert!(!handshake_with_alpn(server.addr, &ca, &[]).await);
        // With the web protocols (the default), ALPN http/1.1 is offered too: what arrives
        // on it is read as HTTP/1.1, so an HTTP/2 preface there gets an HTTP/1.1 error, not
        // HTTP/2's SETTINGS; and an HTTP/2 preface without ALPN is still refused.
        let server = TestServer::start_with(Server::new().tls(server_tls(&certs))).await;
        let h2 = first_answer(server.addr, &ca, &[b"h2"])
            .await
            .expect("h2 is served");
        assert_eq!(h2[3], 0x04, "SETTINGS first: {h2:?}");
        let http1 = first_answer(server.addr, &ca, &[b"http/1.1"]).await;
        let http1 = http1.expect("an HTTP/1.1 answer");
        assert!(
            http1.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(&http1)
        );
        assert!(first_answer(server.addr, &ca, &[]).await.is_none());
    })
    .await
}

#[tokio::test]
async fn the_tls_handshake_counts_against_the_handshake_timeout() {
    bounded(async {
        let certs = TestCerts::generate();
        let server = Server::new()
            .tls(server_tls(&certs))
            .handshake_timeout(Duration::from_millis(300));
        let server = TestServer::start_with(server).await;
        // A client that opens TCP and never starts TLS is closed at the timeout.
        let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    })
    .await
}
