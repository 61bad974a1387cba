//! `Metadata`: custom headers and trailers over an `http::HeaderMap`; the reserved
//! names applications cannot set; `-bin` values in base64; and the `grpc-timeout`
//! header's parse and format.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// The longest `grpc-timeout` value: 8 digits then a unit.
pub const MAX_TIMEOUT_DIGITS: usize = 8;

/// Why a metadata key or value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError(String);

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetadataError {}

/// Custom metadata of a call: request headers, response headers or trailers.
///
/// Keys are lowercase `[0-9a-z_.-]`. Keys ending in `-bin` carry binary values, sent as
/// unpadded base64. Reserved names (`grpc-*`, `te`, `content-type` and the
/// connection-level headers HTTP/2 forbids) cannot be set; when a map is built from
/// received headers they stay readable with [`Metadata::get`] but [`Metadata::iter`]
/// skips them.
#[derive(Clone, Default)]
pub struct Metadata {
    headers: HeaderMap,
}

/// Whether `name` is reserved for the protocol and cannot be custom metadata.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with("grpc-")
        || matches!(
            name,
            "te" | "content-type"
                | "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "host"
        )
}

fn check_key(key: &str, binary: bool) -> Result<HeaderName, MetadataError> {
    if key.is_empty()
        || !key.bytes().all(|b| {
            b.is_ascii_digit() || b.is_ascii_lowercase() || matches!(b, b'_' | b'.' | b'-')
        })
    {
        return Err(MetadataError(format!(
            "metadata key {key:?} must be non-empty lowercase [0-9a-z_.-]"
        )));
    }
    if is_reserved(key) {
        return Err(MetadataError(format!("metadata key {key:?} is reserved")));
    }
    if key.ends_with("-bin") != binary {
        return Err(MetadataError(if binary {
            format!("binary metadata key {key:?} must end in \"-bin\"")
        } else {
            format!("text metadata key {key:?} must not end in \"-bin\"")
        }));
    }
    HeaderName::from_bytes(key.as_bytes()).map_err(|e| MetadataError(e.to_string()))
}

fn check_text_value(value: &str) -> Result<HeaderValue, MetadataError> {
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(MetadataError(format!(
            "metadata value {value:?} must be printable ASCII (0x20-0x7E)"
        )));
    }
    HeaderValue::from_str(value).map_err(|e| MetadataError(e.to_string()))
}

/// The crate's one base64 engine, for `-bin` values: the standard alphabet, written
/// without padding (as the spec says to send it) and read with or without.
const BIN_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encode a binary value as unpadded base64, as the spec says to send it.
pub fn encode_bin(value: &[u8]) -> HeaderValue {
    let text = BIN_BASE64.encode(value);
    // base64 is always a valid header value.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).unwrap_or(HeaderValue::from_static(""))
}

/// Decode one base64 value, padded or not (surrounding spaces ignored).
pub fn decode_bin(value: &[u8]) -> Result<Vec<u8>, MetadataError> {
    BIN_BASE64
        .decode(value.trim_ascii())
        .map_err(|e| MetadataError(format!("invalid base64 in binary metadata: {e}")))
}

/// Whether `name` is a `-bin` header and `value` does not decode (comma-joined values
/// split first).
pub(crate) fn is_invalid_bin(name: &str, value: &HeaderValue) -> bool {
    name.ends_with("-bin")
        && value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|part| decode_bin(part).is_err())
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Wrap received headers (request headers, response headers or trailers).
    pub fn from_headers(headers: HeaderMap) -> Metadata {
        Metadata { headers }
    }

    /// The underlying headers, reserved ones included.
    pub fn into_headers(self) -> HeaderMap {
        self.headers
    }

    /// Write access to the underlying headers, for protocol headers the library sends.
    pub(crate) fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Read access to the underlying headers, reserved ones included.
    pub fn as_headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Number of header values held (reserved ones included).
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Set a text entry, replacing earlier values of `key`.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let name = check_key(key, false)?;
        self.headers.insert(name, check_text_value(value)?);
        Ok(())
    }

    /// Add a text entry, keeping earlier values of `key`.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let name = check_key(key, false)?;
        self.headers.append(name, check_text_value(value)?);
        Ok(())
    }

    /// Set a binary entry (key ends in `-bin`), replacing earlier values of `key`.
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        let name = check_key(key, true)?;
        self.headers.insert(name, encode_bin(value));
        Ok(())
    }

    /// Add a binary entry (key ends in `-bin`), keeping earlier values of `key`.
    pub fn append_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        let name = check_key(key, true)?;
        self.headers.append(name, encode_bin(value));
        Ok(())
    }

    /// Remove every value of `key`.
    pub fn remove(&mut self, key: &str) {
        self.headers.remove(key);
    }

    /// The first text value of `key`, if it is there and printable ASCII.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// Every text value of `key`.
    pub fn get_all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.headers
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
    }

    /// The first binary value of `key` (a `-bin` key), decoded from base64.
    pub fn get_bin(&self, key: &str) -> Option<Result<Vec<u8>, MetadataError>> {
        self.get_all_bin(key)
            .map(|r| r.map(|mut all| all.swap_remove(0)))
    }

    /// Every binary value of `key`, decoded; values that a proxy joined with commas are
    /// split first. `None` when the key is absent.
    pub fn get_all_bin(&self, key: &str) -> Option<Result<Vec<Vec<u8>>, MetadataError>> {
        let mut out = Vec::new();
        for value in self.headers.get_all(key) {
            for part in value.as_bytes().split(|&b| b == b',') {
                match decode_bin(part) {
                    Ok(v) => out.push(v),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        if out.is_empty() { None } else { Some(Ok(out)) }
    }

    /// Custom entries (reserved names skipped) as name and raw value; `-bin` values are
    /// still base64 here.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .filter(|(k, _)| !is_reserved(k))
    }

    /// Copy the custom entries into `headers` (reserved names are never copied).
    pub(crate) fn copy_to(&self, headers: &mut HeaderMap) {
        for (name, value) in self.headers.iter() {
            if !is_reserved(name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
    }

    /// Move the custom entries into `headers` (reserved names are never copied).
    pub(crate) fn append_to(self, headers: &mut HeaderMap) {
        let mut last: Option<HeaderName> = None;
        for (name, value) in self.headers {
            if let Some(n) = name {
                last = Some(n);
            }
            if let Some(n) = &last
                && !is_reserved(n.as_str())
            {
                headers.append(n.clone(), value);
            }
        }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Parse a `grpc-timeout` value: 1 to 8 digits, then one of `H M S m u n`.
pub fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty()
        || digits.len() > MAX_TIMEOUT_DIGITS
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Format a `grpc-timeout` value: the finest unit whose value fits in 8 digits, rounded up.
pub fn format_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let (value, unit) = units
        .iter()
        .map(|&(per, unit)| (nanos.div_ceil(per), unit))
        .find(|&(v, _)| v <= MAX)
        .unwrap_or((MAX, 'H'));
    let text = format!("{value}{unit}");
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("99999999H"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_are_sent_unpadded_and_read_padded_or_not() {
        let mut md = Metadata::new();
        md.insert_bin("trace-bin", b"\x00\x01\x02\xff\xfe").unwrap();
        assert_eq!(md.as_headers().get("trace-bin").unwrap(), "AAEC//4");
        assert_eq!(
            md.get_bin("trace-bin").unwrap().unwrap(),
            b"\x00\x01\x02\xff\xfe"
        );
        assert_eq!(decode_bin(b"AAEC//4=").unwrap(), b"\x00\x01\x02\xff\xfe");
        assert_eq!(decode_bin(b"AAEC//4").unwrap(), b"\x00\x01\x02\xff\xfe");
        assert_eq!(decode_bin(b"").unwrap(), b"");
        assert!(decode_bin(b"not base64!").is_err());
        assert!(decode_bin(b"A").is_err());
        assert!(decode_bin(b"AAEC//4==").is_err());
        assert!(decode_bin(b"AAEC/=/4").is_err());
        assert_eq!(decode_bin(b" AQ== ").unwrap(), b"\x01");
    }

    #[test]
    fn invalid_binary_values_are_found() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ok-bin", HeaderValue::from_static("AQ==,Ag"));
        headers.insert(
            "x-text",
            HeaderValue::from_static("!!not base64 but text!!"),
        );
        let invalid = |headers: &HeaderMap| {
            headers
                .iter()
                .find(|(name, value)| is_invalid_bin(name.as_str(), value))
                .map(|(name, _)| name.clone())
        };
        assert!(invalid(&headers).is_none());
        headers.insert("x-bad-bin", HeaderValue::from_static("AQ,!!"));
        assert_eq!(invalid(&headers).unwrap(), "x-bad-bin");
    }

    #[test]
    fn comma_joined_binary_values_are_split() {
        let mut headers = HeaderMap::new();
        headers.insert("x-bin", HeaderValue::from_static("AQ==,Ag"));
        headers.append("x-bin", HeaderValue::from_static("Aw"));
        let md = Metadata::from_headers(headers);
        assert_eq!(
            md.get_all_bin("x-bin").unwrap().unwrap(),
            vec![vec![1], vec![2], vec![3]]
        );
        assert!(md.get_all_bin("y-bin").is_none());
    }

    #[test]
    fn reserved_and_malformed_keys_are_refused() {
        let mut md = Metadata::new();
        for key in [
            "grpc-status",
            "grpc-anything",
            "te",
            "content-type",
            "connection",
            "Upper",
            "",
            "sp ace",
            "é",
        ] {
            assert!(md.insert(key, "v").is_err(), "{key}");
        }
        assert!(md.insert("data-bin", "v").is_err());
        assert!(md.insert_bin("data", b"v").is_err());
        assert!(md.insert("ok-key_1.x", "value with spaces").is_ok());
        assert!(md.insert("k", "tab\tno").is_err());
        assert!(md.insert("k", "ünicode").is_err());
        assert_eq!(md.iter().count(), 1);
    }

    #[test]
    fn received_reserved_headers_are_readable_but_not_listed_or_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-timeout", HeaderValue::from_static("1S"));
        headers.insert("x-user", HeaderValue::from_static("a"));
        headers.append("x-user", HeaderValue::from_static("b"));
        let md = Metadata::from_headers(headers);
        assert_eq!(md.get("grpc-timeout"), Some("1S"));
        assert_eq!(
            md.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["x-user", "x-user"]
        );
        let mut out = HeaderMap::new();
        md.append_to(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out.get_all("x-user").iter().count(), 2);
    }

    #[test]
    fn timeout_parses_every_unit() {
        assert_eq!(parse_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_timeout(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_timeout(b"4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse_timeout(b"5m"), Some(Duration::from_millis(5)));
        assert_eq!(parse_timeout(b"6u"), Some(Duration::from_micros(6)));
        assert_eq!(parse_timeout(b"7n"), Some(Duration::from_nanos(7)));
        assert_eq!(
            parse_timeout(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(parse_timeout(b"0m"), Some(Duration::ZERO));
    }

    #[test]
    fn malformed_timeouts_are_refused() {
        for bad in [
            &b""[..],
            b"S",
            b"100",
            b"123456789S",
            b"1s",
            b"1x",
            b"-1S",
            b" 1S",
            b"1.5S",
            b"1SS",
        ] {
            assert_eq!(
                parse_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn timeout_formats_in_finest_unit_rounding_up() {
        let f = |d: Duration| format_timeout(d).to_str().unwrap().to_owned();
        assert_eq!(f(Duration::from_nanos(1)), "1n");
        assert_eq!(f(Duration::from_millis(50)), "50000000n");
        assert_eq!(f(Duration::from_millis(100)), "100000u");
        assert_eq!(f(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(f(Duration::from_secs(100)), "100000m");
        assert_eq!(f(Duration::from_secs(100_000)), "100000S");
        assert_eq!(f(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(f(Duration::from_secs(6_000_000_000)), "1666667H");
        assert_eq!(f(Duration::MAX), "99999999H");
        for d in [
            Duration::from_nanos(123_456_789_123),
            Duration::from_millis(1),
            Duration::from_secs(7),
        ] {
            let back = parse_timeout(format_timeout(d).as_bytes()).unwrap();
            assert!(back >= d, "{d:?} -> {back:?}");
        }
    }
}
