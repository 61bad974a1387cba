//! The client's service config: the JSON of grpc/grpc `doc/service_config.md` and gRFC A6
//! (per-method timeout, wait-for-ready, message limits, retry or hedging policy; retry
//! throttling; the load-balancing policy), parsed and validated in one pass, and the
//! lookup of a method's config by its path.
//!
//! The schema is `grpc.service_config.ServiceConfig` in proto3 JSON form: durations are
//! strings such as `"1.5s"`, a `null` value is the same as an absent one, numbers may also
//! be written as strings, and fields this client does not know are ignored (a config is
//! written for every gRPC implementation, and new fields appear over time). Everything
//! that is known is checked: a bad value is an error naming its JSON path, never ignored.
//!
//! Reading: the JSON is parsed into a `serde_json::Value`, then into private wire structs
//! (serde derive, lowerCamelCase names as in the JSON; every field optional) through
//! `serde_path_to_error`, which names the path of a bad value. Each leaf type checks its
//! value (a boolean, a duration, a status code, a byte limit, ...) and says what is wrong
//! in words; what spans fields (a required field, the two policies, duplicate names, the
//! load-balancing list) is checked after, on the wire structs, with the path written out.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::status::Code;

/// Clients treat any `maxAttempts` above this as this (gRFC A6, "Limits on Retries and
/// Hedges"), so a config published by a service cannot multiply its load without bound.
pub const MAX_ATTEMPTS_LIMIT: u32 = 5;
/// The largest `retryThrottling.maxTokens` accepted (the range grpc-go enforces).
pub const MAX_THROTTLING_TOKENS: u32 = 1000;
/// The largest number of seconds a proto3 `Duration` may hold (10,000 years).
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

/// A parsed, validated service config.
///
/// Built with [`ServiceConfig::from_json`] (or `str::parse`); the default is the empty
/// config, which sets nothing.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    /// Every method config that has at least one name, in document order.
    methods: Vec<MethodConfig>,
    /// `"service/method"` (an exact name) and `"service/"` (a service's default) to an
    /// index into `methods`.
    by_name: HashMap<String, usize>,
    /// The method config whose name has neither service nor method.
    default: Option<usize>,
    load_balancing: Option<LoadBalancing>,
    retry_throttling: Option<RetryThrottling>,
}

/// The settings of one method (or of every method of a service, or of every method).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodConfig {
    /// `waitForReady`: whether a call waits for a connection instead of failing at once
    /// when the channel is in transient failure. A value set on the call overrides it.
    pub wait_for_ready: Option<bool>,
    /// `timeout`: the default deadline of a call; the call's own deadline, if sooner, wins.
    pub timeout: Option<Duration>,
    /// `maxRequestMessageBytes`: the largest request message; the smaller of this and the
    /// channel's limit applies. 0 is valid (only empty messages).
    pub max_request_message_bytes: Option<usize>,
    /// `maxResponseMessageBytes`: the largest response message; the smaller of this and the
    /// channel's limit applies. 0 is valid (only empty messages).
    pub max_response_message_bytes: Option<usize>,
    /// `retryPolicy` or `hedgingPolicy` (a config may have one, not both).
    pub policy: Option<CallPolicy>,
}

/// How a failed call is attempted again (gRFC A6).
#[derive(Clone, Debug, PartialEq)]
pub enum CallPolicy {
    /// `retryPolicy`: one attempt at a time, the next after a backoff.
    Retry(RetryPolicy),
    /// `hedgingPolicy`: further attempts sent without waiting for the first to fail.
    Hedging(HedgingPolicy),
}

/// `retryPolicy` (gRFC A6, "Retry Policy").
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the original included: at least 2, at most [`MAX_ATTEMPTS_LIMIT`]
    /// (a larger value in the JSON is lowered to it).
    pub max_attempts: u32,
    /// The ceiling of the first retry's random delay; greater than zero.
    pub initial_backoff: Duration,
    /// The largest ceiling of a retry's random delay; greater than zero.
    pub max_backoff: Duration,
    /// The factor by which the ceiling grows after each retry; greater than zero.
    pub backoff_multiplier: f64,
    /// The status codes that are retried; never `OK`. Empty only when
    /// `per_attempt_recv_timeout` is set.
    pub retryable_status_codes: CodeSet,
    /// `perAttemptRecvTimeout` (a later addition to A6): how long one attempt may wait for
    /// its response before it is abandoned and retried; greater than zero.
    pub per_attempt_recv_timeout: Option<Duration>,
}

/// `hedgingPolicy` (gRFC A6, "Hedging Policy").
#[derive(Clone, Debug, PartialEq)]
pub struct HedgingPolicy {
    /// Attempts in all, the original included: at least 2, at most [`MAX_ATTEMPTS_LIMIT`]
    /// (a larger value in the JSON is lowered to it).
    pub max_attempts: u32,
    /// The time between sending one attempt and the next; zero (the default) sends them
    /// all at once.
    pub hedging_delay: Duration,
    /// The status codes after which the other attempts go on (and the next one is sent at
    /// once); any other failure ends the call. Never `OK`; may be empty.
    pub non_fatal_status_codes: CodeSet,
}

/// `retryThrottling`: the token bucket kept per server (gRFC A6, "Throttling Retry
/// Attempts and Hedged RPCs").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryThrottling {
    /// The tokens the bucket starts with and holds at most: 1 to [`MAX_THROTTLING_TOKENS`].
    pub max_tokens: u32,
    /// Tokens added by each successful call: greater than zero, in thousandths (further
    /// decimal places in the JSON are dropped, as A6 allows three).
    pub token_ratio: f64,
}

/// The load-balancing policy chosen by `loadBalancingConfig` (the first entry this
/// client supports) or by the deprecated `loadBalancingPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancing {
    /// `pick_first`: one connection, to the first address that works.
    PickFirst {
        /// `shuffleAddressList`: shuffle the resolved addresses before trying them.
        shuffle_address_list: bool,
    },
    /// `round_robin`: a connection to every address, calls spread over them in turn.
    RoundRobin,
}

impl LoadBalancing {
    /// `pick_first` without shuffling: the default of every gRPC.
    pub const PICK_FIRST: LoadBalancing = LoadBalancing::PickFirst {
        shuffle_address_list: false,
    };
}

impl Default for LoadBalancing {
    fn default() -> Self {
        LoadBalancing::PICK_FIRST
    }
}

/// A set of status codes, as `retryableStatusCodes` and `nonFatalStatusCodes` hold them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CodeSet(u32);

impl CodeSet {
    /// The empty set.
    pub const fn new() -> CodeSet {
        CodeSet(0)
    }

    /// The set with `code` added.
    pub const fn with(self, code: Code) -> CodeSet {
        CodeSet(self.0 | 1 << code as u32)
    }

    /// Whether `code` is in the set.
    pub const fn contains(self, code: Code) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many codes the set holds.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The codes in the set, in numeric order.
    pub fn iter(self) -> impl Iterator<Item = Code> {
        (0..=16)
            .map(Code::from_i32)
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Code> for CodeSet {
    fn from_iter<I: IntoIterator<Item = Code>>(codes: I) -> CodeSet {
        codes.into_iter().fold(CodeSet::new(), CodeSet::with)
    }
}

impl fmt::Debug for CodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

pub use crate::error::ServiceConfigError;

type Result<T> = std::result::Result<T, ServiceConfigError>;

impl ServiceConfig {
    /// Parse and validate a service config.
    pub fn from_json(json: &str) -> Result<ServiceConfig> {
        let value: Value = serde_json::from_str(json).map_err(|e| ServiceConfigError {
            path: String::new(),
            message: format!("invalid JSON: {e}"),
        })?;
        let Obj(wire) = read::<Obj<ConfigWire>>(&value, "")?;
        ServiceConfig::from_wire(wire)
    }

    /// The config of the method at `path` (`"/package.Service/Method"`): the config naming
    /// that service and method, else the one naming only the service, else the one naming
    /// neither (the default for every method), else none.
    pub fn method(&self, path: &str) -> Option<&MethodConfig> {
        let found = path
            .strip_prefix('/')
            .and_then(|rest| {
                let slash = rest.find('/')?;
                self.by_name
                    .get(rest)
                    .or_else(|| self.by_name.get(&rest[..=slash]))
            })
            .copied()
            .or(self.default)?;
        self.methods.get(found)
    }

    /// The load-balancing policy, if the config chooses one.
    pub fn load_balancing(&self) -> Option<&LoadBalancing> {
        self.load_balancing.as_ref()
    }

    /// The retry throttling of the channel's server, if the config sets it.
    pub fn retry_throttling(&self) -> Option<&RetryThrottling> {
        self.retry_throttling.as_ref()
    }

    fn from_wire(wire: ConfigWire) -> Result<ServiceConfig> {
        let mut config = ServiceConfig::default();
        if let Some(List(entries)) = &wire.load_balancing_config {
            config.load_balancing = Some(load_balancing_config(entries)?);
        } else if let Some(name) = &wire.load_balancing_policy {
            let at = "loadBalancingPolicy";
            let Text(name) = read::<Text>(name, at)?;
            config.load_balancing = Some(load_balancing_policy(&name, at)?);
        }
        for (i, Obj(entry)) in wire.method_config.into_iter().flat_map(|l| l.0).enumerate() {
            config.add_method_config(entry, &format!("methodConfig[{i}]"))?;
        }
        if let Some(Obj(throttling)) = wire.retry_throttling {
            config.retry_throttling = Some(retry_throttling(throttling)?);
        }
        Ok(config)
    }

    /// Check one entry of `methodConfig` and register its names.
    fn add_method_config(&mut self, mut wire: MethodConfigWire, at: &str) -> Result<()> {
        let names = wire.name.take().map(|l| l.0).unwrap_or_default();
        let parsed = method_config(wire, at)?;
        let index = self.methods.len();
        let mut named = false;
        for (j, Obj(name)) in names.into_iter().enumerate() {
            let name_at = format!("{at}.name[{j}]");
            let slot = match method_name(name, &name_at)? {
                None => self.default.replace(index),
                Some(key) => self.by_name.insert(key, index),
            };
            if let Some(earlier) = slot {
                let message = if earlier == index {
                    "duplicate name within this method config".to_owned()
                } else {
                    format!("duplicate name: methodConfig[{earlier}] has it too")
                };
                return Err(error_at(&name_at, message));
            }
            named = true;
        }
        // A method config without names applies to nothing (service_config.proto); it is
        // still validated above.
        if named {
            self.methods.push(parsed);
        }
        Ok(())
    }
}

impl FromStr for ServiceConfig {
    type Err = ServiceConfigError;

    fn from_str(json: &str) -> Result<ServiceConfig> {
        ServiceConfig::from_json(json)
    }
}

// The wire form: `grpc.service_config.ServiceConfig` as proto3 JSON, the fields this
// client knows. Every field is optional (`null` is absent); unknown ones are skipped.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigWire {
    load_balancing_config: Option<List<Value>>,
    load_balancing_policy: Option<Value>,
    method_config: Option<List<Obj<MethodConfigWire>>>,
    retry_throttling: Option<Obj<RetryThrottlingWire>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MethodConfigWire {
    name: Option<List<Obj<NameWire>>>,
    wait_for_ready: Option<Flag>,
    timeout: Option<Dur>,
    max_request_message_bytes: Option<ByteLimit>,
    max_response_message_bytes: Option<ByteLimit>,
    retry_policy: Option<Obj<RetryPolicyWire>>,
    hedging_policy: Option<Obj<HedgingPolicyWire>>,
}

#[derive(Deserialize)]
struct NameWire {
    service: Option<NamePart>,
    method: Option<NamePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryPolicyWire {
    max_attempts: Option<Attempts>,
    initial_backoff: Option<PositiveDur>,
    max_backoff: Option<PositiveDur>,
    backoff_multiplier: Option<Positive>,
    retryable_status_codes: Option<List<RetryableCode>>,
    per_attempt_recv_timeout: Option<PositiveDur>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HedgingPolicyWire {
    max_attempts: Option<Attempts>,
    hedging_delay: Option<Dur>,
    non_fatal_status_codes: Option<List<RetryableCode>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryThrottlingWire {
    max_tokens: Option<Tokens>,
    token_ratio: Option<Ratio>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PickFirstWire {
    shuffle_address_list: Option<Flag>,
}

/// `round_robin`'s config: an object, none of whose fields this client reads.
#[derive(Deserialize)]
struct RoundRobinWire {}

// Reading.

/// `value` read as `T`, an error naming the path below `at` (`""`: the document).
fn read<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let below = e.path().to_string();
        let path = match below.as_str() {
            "." => at.to_owned(),
            _ if at.is_empty() => below,
            b if b.starts_with('[') => format!("{at}{b}"),
            b => format!("{at}.{b}"),
        };
        error_at(&path, e.into_inner().to_string())
    })
}

fn error_at(path: &str, message: impl Into<String>) -> ServiceConfigError {
    ServiceConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A required field: `field`'s value, or "is required" at `at.name`.
fn required<T>(field: Option<T>, at: &str, name: &str) -> Result<T> {
    field.ok_or_else(|| error_at(&format!("{at}.{name}"), "is required"))
}

/// An object, read as `T` (a wire struct); anything else "must be an object".
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Objects<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Objects<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> std::result::Result<Obj<T>, A::Error> {
                Err(de::Error::custom("must be an object"))
            }
            refuse_scalars!("must be an object");
        }
        deserializer.deserialize_any(Objects(PhantomData))
    }
}

/// An array of `T`s; anything else "must be an array".
struct List<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Lists<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Lists<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<List<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> std::result::Result<List<T>, A::Error> {
                Err(de::Error::custom("must be an array"))
            }
            refuse_scalars!("must be an array");
        }
        deserializer.deserialize_any(Lists(PhantomData))
    }
}

/// A visitor's answer to every scalar JSON value (it takes none): `$message`.
macro_rules! refuse_scalars {
    ($message:literal) => {
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
            Err(E::custom($message))
        }
    };
}
use refuse_scalars;

/// A leaf value: read as a JSON value, then checked by `check`, which says in words what
/// is wrong.
macro_rules! leaf {
    ($(#[$doc:meta])* $name:ident($ty:ty), $check:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        struct $name($ty);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                let check: fn(&Value) -> std::result::Result<$ty, String> = $check;
                check(&value).map($name).map_err(de::Error::custom)
            }
        }
    };
}

leaf!(
    /// `true` or `false`.
    Flag(bool),
    |v| v.as_bool().ok_or_else(|| "must be true or false".to_owned())
);

leaf!(
    /// A string.
    Text(String),
    |v| string(v).map(str::to_owned)
);

leaf!(
    /// One part of a method config's name: a string without `/`.
    NamePart(String),
    |v| {
        let s = string(v)?;
        if s.contains('/') {
            return Err("must not contain '/'".to_owned());
        }
        Ok(s.to_owned())
    }
);

leaf!(
    /// A duration that is not negative.
    Dur(Duration),
    duration
);

leaf!(
    /// A duration greater than zero.
    PositiveDur(Duration),
    |v| {
        let d = duration(v)?;
        if d.is_zero() {
            return Err("must be greater than 0".to_owned());
        }
        Ok(d)
    }
);

leaf!(
    /// A number greater than zero.
    Positive(f64),
    |v| {
        let n = number(v)?;
        if n <= 0.0 {
            return Err("must be greater than 0".to_owned());
        }
        Ok(n)
    }
);

leaf!(
    /// `maxAttempts` of either policy: at least 2, lowered to the client's limit.
    Attempts(u32),
    |v| {
        let n = integer(v)?;
        if n < 2 {
            return Err("must be at least 2".to_owned());
        }
        Ok(n.min(i128::from(MAX_ATTEMPTS_LIMIT)) as u32)
    }
);

leaf!(
    /// A byte limit: a whole number, not negative; one above `usize::MAX` means no limit.
    ByteLimit(usize),
    |v| {
        let n = integer(v)?;
        if n < 0 {
            return Err("must not be negative".to_owned());
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
);

leaf!(
    /// An entry of `retryableStatusCodes` or `nonFatalStatusCodes`: a status code, not `OK`.
    RetryableCode(Code),
    |v| {
        let code = status_code(v)?;
        if code == Code::Ok {
            return Err("must not be OK".to_owned());
        }
        Ok(code)
    }
);

leaf!(
    /// `retryThrottling.maxTokens`: 1 to [`MAX_THROTTLING_TOKENS`].
    Tokens(u32),
    |v| {
        let n = integer(v)?;
        if n <= 0 {
            return Err("must be greater than 0".to_owned());
        }
        if n > i128::from(MAX_THROTTLING_TOKENS) {
            return Err(format!("must be at most {MAX_THROTTLING_TOKENS}"));
        }
        Ok(n as u32)
    }
);

leaf!(
    /// `retryThrottling.tokenRatio`, in thousandths (the further digits dropped).
    Ratio(f64),
    |v| {
        let ratio = number(v)?;
        if ratio <= 0.0 {
            return Err("must be greater than 0".to_owned());
        }
        // The nudge keeps a value written with three decimals (1.005) from landing just
        // under its thousandth in binary floating point.
        let thousandths = (ratio * 1000.0 + 1e-6).floor();
        if thousandths < 1.0 {
            return Err("must be at least 0.001 (three decimal places are used)".to_owned());
        }
        Ok(thousandths / 1000.0)
    }
);

// Values, as proto3 JSON writes them.

fn string(value: &Value) -> std::result::Result<&str, String> {
    value.as_str().ok_or_else(|| "must be a string".to_owned())
}

/// A number, written as a JSON number or as a string holding one (proto3 JSON accepts both).
fn number(value: &Value) -> std::result::Result<f64, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    };
    n.ok_or_else(|| "must be a number".to_owned())
}

/// A whole number (`4`, `4.0`, `"4"`); a negative one is returned as it is for the caller
/// to judge, a huge one saturates.
fn integer(value: &Value) -> std::result::Result<i128, String> {
    if let Some(n) = value.as_i64() {
        return Ok(n.into());
    }
    if let Some(n) = value.as_u64() {
        return Ok(n.into());
    }
    if let Some(s) = value.as_str()
        && let Ok(n) = s.parse::<i128>()
    {
        return Ok(n);
    }
    match number(value) {
        // `as` saturates at the ends of i128.
        Ok(n) if n.fract() == 0.0 => Ok(n as i128),
        _ => Err("must be an integer".to_owned()),
    }
}

/// A proto3 JSON `Duration` that must not be negative: decimal seconds with up to nine
/// fractional digits and an `s`, such as `"1.5s"`, `".1s"` or `"20s"`.
fn duration(value: &Value) -> std::result::Result<Duration, String> {
    let text = string(value)?;
    parse_duration(text).map_err(|why| format!("{why} (got {text:?})"))
}

fn parse_duration(text: &str) -> std::result::Result<Duration, &'static str> {
    const FORM: &str = "must be a duration in seconds such as \"1.5s\"";
    if text.starts_with('-') {
        return Err("must not be negative");
    }
    let number = text.strip_suffix('s').ok_or(FORM)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(FORM);
    }
    if fraction.len() > 9 {
        return Err("must have at most 9 digits after the decimal point");
    }
    let seconds = if whole.is_empty() {
        0
    } else {
        whole
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= MAX_DURATION_SECONDS)
            .ok_or("is out of range")?
    };
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Ok(Duration::new(seconds, nanos))
}

/// The code named by a status-code entry: its canonical name (`"UNAVAILABLE"`, exactly as
/// grpc-go, grpc-java and grpc-core accept it) or its number.
fn status_code(value: &Value) -> std::result::Result<Code, String> {
    let unknown = || {
        format!(
            "unknown status code {value} (use a name such as \"UNAVAILABLE\" or a number 0 to 16)"
        )
    };
    match value {
        Value::String(name) => code_from_name(name).ok_or_else(unknown),
        Value::Number(_) => match integer(value) {
            Ok(n) if (0..=16).contains(&n) => Ok(Code::from_i32(n as i32)),
            _ => Err(unknown()),
        },
        _ => Err("must be a status code name or number".to_owned()),
    }
}

fn code_from_name(name: &str) -> Option<Code> {
    (0..=16).map(Code::from_i32).find(|c| c.as_str() == name)
}

// The parts of the config: what spans fields.

fn method_config(wire: MethodConfigWire, at: &str) -> Result<MethodConfig> {
    let policy = match (wire.retry_policy, wire.hedging_policy) {
        (Some(_), Some(_)) => {
            return Err(error_at(
                at,
                "retryPolicy and hedgingPolicy must not both be set",
            ));
        }
        (Some(Obj(retry)), None) => Some(CallPolicy::Retry(retry_policy(
            retry,
            &format!("{at}.retryPolicy"),
        )?)),
        (None, Some(Obj(hedging))) => Some(CallPolicy::Hedging(hedging_policy(
            hedging,
            &format!("{at}.hedgingPolicy"),
        )?)),
        (None, None) => None,
    };
    Ok(MethodConfig {
        wait_for_ready: wire.wait_for_ready.map(|f| f.0),
        timeout: wire.timeout.map(|d| d.0),
        max_request_message_bytes: wire.max_request_message_bytes.map(|l| l.0),
        max_response_message_bytes: wire.max_response_message_bytes.map(|l| l.0),
        policy,
    })
}

/// One entry of a method config's `name`: `Some("service/method")`, `Some("service/")`
/// for a service's default, `None` for the default of every method. An empty string is
/// the same as an absent field.
fn method_name(name: NameWire, at: &str) -> Result<Option<String>> {
    let service = name.service.map(|p| p.0).unwrap_or_default();
    let method = name.method.map(|p| p.0).unwrap_or_default();
    match (service.is_empty(), method.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => Err(error_at(at, "a method needs its service")),
        (false, _) => Ok(Some(format!("{service}/{method}"))),
    }
}

fn retry_policy(wire: RetryPolicyWire, at: &str) -> Result<RetryPolicy> {
    let max_attempts = required(wire.max_attempts, at, "maxAttempts")?.0;
    let initial_backoff = required(wire.initial_backoff, at, "initialBackoff")?.0;
    let max_backoff = required(wire.max_backoff, at, "maxBackoff")?.0;
    let backoff_multiplier = required(wire.backoff_multiplier, at, "backoffMultiplier")?.0;
    let per_attempt_recv_timeout = wire.per_attempt_recv_timeout.map(|d| d.0);
    let retryable_status_codes: CodeSet = wire
        .retryable_status_codes
        .map(|l| l.0)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.0)
        .collect();
    if retryable_status_codes.is_empty() && per_attempt_recv_timeout.is_none() {
        return Err(error_at(
            &format!("{at}.retryableStatusCodes"),
            "must be non-empty (unless perAttemptRecvTimeout is set)",
        ));
    }
    Ok(RetryPolicy {
        max_attempts,
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_status_codes,
        per_attempt_recv_timeout,
    })
}

/// `hedgingPolicy`. A6 lets `hedgingDelay` be left out (all attempts at once);
/// `nonFatalStatusCodes` is optional in service_config.proto and in grpc-java, the
/// implementation of hedging A6 describes.
fn hedging_policy(wire: HedgingPolicyWire, at: &str) -> Result<HedgingPolicy> {
    Ok(HedgingPolicy {
        max_attempts: required(wire.max_attempts, at, "maxAttempts")?.0,
        hedging_delay: wire.hedging_delay.map_or(Duration::ZERO, |d| d.0),
        non_fatal_status_codes: wire
            .non_fatal_status_codes
            .map(|l| l.0)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.0)
            .collect(),
    })
}

fn retry_throttling(wire: RetryThrottlingWire) -> Result<RetryThrottling> {
    let at = "retryThrottling";
    Ok(RetryThrottling {
        max_tokens: required(wire.max_tokens, at, "maxTokens")?.0,
        token_ratio: required(wire.token_ratio, at, "tokenRatio")?.0,
    })
}

/// `loadBalancingConfig`: a list of single-key objects `{"policy_name": {config}}`; the
/// first policy this client supports wins, and its config must be valid. The entries after
/// it are not looked at.
fn load_balancing_config(entries: &[Value]) -> Result<LoadBalancing> {
    for (i, entry) in entries.iter().enumerate() {
        let entry_at = format!("loadBalancingConfig[{i}]");
        let Obj(policy) = read::<Obj<Map<String, Value>>>(entry, &entry_at)?;
        let mut keys = policy.iter();
        let (Some((name, config)), None) = (keys.next(), keys.next()) else {
            return Err(error_at(
                &entry_at,
                format!(
                    "must have exactly one key, the policy name (has {})",
                    policy.len()
                ),
            ));
        };
        let config_at = format!("{entry_at}.{name}");
        match name.as_str() {
            "pick_first" => {
                let config = read::<Option<Obj<PickFirstWire>>>(config, &config_at)?;
                let shuffle_address_list = config
                    .and_then(|Obj(c)| c.shuffle_address_list)
                    .is_some_and(|f| f.0);
                return Ok(LoadBalancing::PickFirst {
                    shuffle_address_list,
                });
            }
            "round_robin" => {
                read::<Option<Obj<RoundRobinWire>>>(config, &config_at)?;
                return Ok(LoadBalancing::RoundRobin);
            }
            _ => continue,
        }
    }
    Err(error_at(
        "loadBalancingConfig",
        "names no supported policy (supported: pick_first, round_robin)",
    ))
}

/// The deprecated `loadBalancingPolicy`, a policy name in any case (`"ROUND_ROBIN"` is how
/// the proto's enum writes it).
fn load_balancing_policy(name: &str, at: &str) -> Result<LoadBalancing> {
    if name.eq_ignore_ascii_case("round_robin") {
        Ok(LoadBalancing::RoundRobin)
    } else if name.eq_ignore_ascii_case("pick_first") {
        Ok(LoadBalancing::PickFirst {
            shuffle_address_list: false,
        })
    } else {
        Err(error_at(
            at,
            format!("unsupported policy {name:?} (supported: pick_first, round_robin)"),
        ))
    }
}

#[cfg(test)]
mod tests;
