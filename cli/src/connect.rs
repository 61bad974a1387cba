//! From the shared flags to a connected [`Channel`] and the request [`Metadata`].

use std::time::{Duration, Instant};

use h2grpc::client::ChannelBuilder;
use h2grpc::{Channel, ClientTls, Metadata};

use crate::args::Common;
use crate::failure::Failure;

/// How to reach the target as the flags say: address, authority, TLS (its files read once)
/// and connect timeout, applied to as many channels as needed.
#[derive(Clone)]
pub struct Dial {
    addr: String,
    authority: Option<String>,
    tls: Option<ClientTls>,
    connect_timeout: Duration,
}

impl Dial {
    /// The settings of `addr` from the shared flags; bad or unreadable TLS flags fail here.
    pub fn new(addr: &str, flags: &Common) -> Result<Dial, Failure> {
        Ok(Dial {
            addr: addr.to_string(),
            authority: flags.authority.clone(),
            tls: tls(flags)?,
            connect_timeout: flags.connect_timeout,
        })
    }

    /// A builder of one channel with these settings.
    pub fn builder(&self) -> ChannelBuilder {
        let mut builder = Channel::builder(&self.addr).connect_timeout(self.connect_timeout);
        if let Some(authority) = &self.authority {
            builder = builder.authority(authority.clone());
        }
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        builder
    }

    /// How long a connection may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
}

/// Connects to `addr` as the flags say and waits until the connection is ready.
pub async fn channel(addr: &str, flags: &Common) -> Result<Channel, Failure> {
    let builder = Dial::new(addr, flags)?.builder();
    let started = Instant::now();
    let connected = tokio::time::timeout(flags.connect_timeout, builder.connect()).await;
    let channel = match connected {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => {
            return Err(Failure::Connect(format!(
                "Failed to dial target host \"{addr}\": {e}"
            )));
        }
        Err(_) => {
            return Err(Failure::Connect(format!(
                "Failed to dial target host \"{addr}\": no connection within {}",
                seconds(flags.connect_timeout)
            )));
        }
    };
    if flags.verbose {
        eprintln!("connected to {addr} in {}", seconds(started.elapsed()));
    }
    Ok(channel)
}

/// The TLS settings, or `None` with --plaintext (where the TLS flags are refused).
fn tls(flags: &Common) -> Result<Option<ClientTls>, Failure> {
    if flags.plaintext {
        for (set, name) in [
            (flags.cacert.is_some(), "--cacert"),
            (flags.cert.is_some(), "--cert"),
            (flags.key.is_some(), "--key"),
            (flags.servername.is_some(), "--servername"),
        ] {
            if set {
                return Err(Failure::Usage(format!(
                    "The {name} argument can only be used with TLS (drop --plaintext)."
                )));
            }
        }
        return Ok(None);
    }
    if flags.cert.is_some() != flags.key.is_some() {
        return Err(Failure::Usage(
            "The --cert and --key arguments must be used together and both be present.".to_string(),
        ));
    }
    let bad = |what: &str, e: h2grpc::Error| Failure::Other(format!("{what}: {e}"));
    let mut tls = match &flags.cacert {
        Some(path) => ClientTls::with_ca_file(path)
            .map_err(|e| bad(&format!("Failed to load --cacert {}", path.display()), e))?,
        None => ClientTls::with_native_roots().unwrap_or_else(|_| ClientTls::with_webpki_roots()),
    };
    if let (Some(cert), Some(key)) = (&flags.cert, &flags.key) {
        tls = tls
            .identity_files(cert, key)
            .map_err(|e| bad("Failed to load --cert/--key", e))?;
    }
    if let Some(name) = flags.servername.as_ref().or(flags.authority.as_ref()) {
        // A name given as host:port verifies as its host.
        let host = name.rsplit_once(':').map_or(name.as_str(), |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                name
            }
        });
        tls = tls.server_name(host.trim_start_matches('[').trim_end_matches(']'));
    }
    Ok(Some(tls))
}

/// The `-H 'name: value'` flags as metadata; `-bin` values are base64-decoded.
pub fn metadata(headers: &[String]) -> Result<Metadata, Failure> {
    let mut metadata = Metadata::new();
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Failure::Usage(format!(
                "-H '{header}': a header is 'name: value'"
            )));
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim_start();
        let added = if name.ends_with("-bin") {
            let bytes = decode_base64(value).ok_or_else(|| {
                Failure::Usage(format!(
                    "-H '{header}': the value of a -bin header is base64"
                ))
            })?;
            metadata.append_bin(&name, &bytes)
        } else {
            metadata.append(&name, value)
        };
        added.map_err(|e| Failure::Usage(format!("-H '{header}': {e}")))?;
    }
    Ok(metadata)
}

/// Standard or URL-safe base64, padded or not: the URL-safe letters are read as the
/// standard ones, then h2grpc's one `-bin` decoder reads the value.
fn decode_base64(value: &str) -> Option<Vec<u8>> {
    let standard = value.trim().replace('-', "+").replace('_', "/");
    h2grpc::metadata::decode_bin(standard.as_bytes()).ok()
}

/// `1.234s`, `12.3ms`.
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_metadata_with_bin_values_decoded() {
        let md = metadata(&[
            "X-User: ann".to_string(),
            "token-bin: AAEC".to_string(),
            "url-bin: _-8".to_string(),
        ])
        .unwrap();
        assert_eq!(md.get("x-user"), Some("ann"));
        assert_eq!(md.get_bin("token-bin").unwrap().unwrap(), vec![0, 1, 2]);
        assert_eq!(md.get_bin("url-bin").unwrap().unwrap(), vec![0xff, 0xef]);
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(metadata(&["no colon".to_string()]).is_err());
        assert!(metadata(&["x-bin: not base64!".to_string()]).is_err());
        assert!(metadata(&["grpc-timeout: 1S".to_string()]).is_err());
    }
}
