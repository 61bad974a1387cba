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

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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

/// A service config that did not parse or is not valid: where (a JSON path such as
/// `methodConfig[0].retryPolicy.maxAttempts`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfigError {
    path: String,
    message: String,
}

impl ServiceConfigError {
    /// The JSON path of the bad value; empty for the document itself (bad JSON, say).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with the value.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "service config: {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ServiceConfigError {}

type Result<T> = std::result::Result<T, ServiceConfigError>;

impl ServiceConfig {
    /// Parse and validate a service config.
    pub fn from_json(json: &str) -> Result<ServiceConfig> {
        let value: Value = serde_json::from_str(json).map_err(|e| ServiceConfigError {
            path: String::new(),
            message: format!("invalid JSON: {e}"),
        })?;
        ServiceConfig::from_value(&value)
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

    fn from_value(value: &Value) -> Result<ServiceConfig> {
        let root = At::Root;
        let top = object(value, &root)?;
        let mut config = ServiceConfig::default();

        let lb_config = At::Field(&root, "loadBalancingConfig");
        if let Some(v) = field(top, "loadBalancingConfig") {
            config.load_balancing = Some(load_balancing_config(v, &lb_config)?);
        } else if let Some(v) = field(top, "loadBalancingPolicy") {
            let at = At::Field(&root, "loadBalancingPolicy");
            config.load_balancing = Some(load_balancing_policy(string(v, &at)?, &at)?);
        }

        if let Some(v) = field(top, "methodConfig") {
            let at = At::Field(&root, "methodConfig");
            for (i, entry) in array(v, &at)?.iter().enumerate() {
                config.add_method_config(entry, &At::Index(&at, i))?;
            }
        }

        if let Some(v) = field(top, "retryThrottling") {
            let at = At::Field(&root, "retryThrottling");
            config.retry_throttling = Some(retry_throttling(v, &at)?);
        }
        Ok(config)
    }

    /// Parse one entry of `methodConfig` and register its names.
    fn add_method_config(&mut self, value: &Value, at: &At<'_>) -> Result<()> {
        let obj = object(value, at)?;
        let parsed = method_config(obj, at)?;
        let index = self.methods.len();
        let mut named = false;
        if let Some(names) = field(obj, "name") {
            let names_at = At::Field(at, "name");
            for (j, name) in array(names, &names_at)?.iter().enumerate() {
                let name_at = At::Index(&names_at, j);
                let slot = match method_name(name, &name_at)? {
                    None => self.default.replace(index),
                    Some(key) => self.by_name.insert(key, index),
                };
                if let Some(earlier) = slot {
                    let message = if earlier == index {
                        "duplicate name within this method config".to_owned()
                    } else {
                        format!("duplicate name: methodConfig[{}] has it too", earlier)
                    };
                    return Err(name_at.error(message));
                }
                named = true;
            }
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

/// A position in the JSON document, built on the stack as parsing descends and turned
/// into a path string only for an error.
enum At<'a> {
    Root,
    Field(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn error(&self, message: impl Into<String>) -> ServiceConfigError {
        ServiceConfigError {
            path: self.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root => Ok(()),
            At::Field(At::Root, name) => f.write_str(name),
            At::Field(parent, name) => write!(f, "{parent}.{name}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

// Values, as proto3 JSON writes them.

/// A field of an object; `null` counts as absent.
fn field<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn object<'v>(value: &'v Value, at: &At<'_>) -> Result<&'v Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| at.error("must be an object"))
}

fn array<'v>(value: &'v Value, at: &At<'_>) -> Result<&'v Vec<Value>> {
    value.as_array().ok_or_else(|| at.error("must be an array"))
}

fn string<'v>(value: &'v Value, at: &At<'_>) -> Result<&'v str> {
    value.as_str().ok_or_else(|| at.error("must be a string"))
}

fn boolean(value: &Value, at: &At<'_>) -> Result<bool> {
    value
        .as_bool()
        .ok_or_else(|| at.error("must be true or false"))
}

/// A number, written as a JSON number or as a string holding one (proto3 JSON accepts both).
fn number(value: &Value, at: &At<'_>) -> Result<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    };
    n.ok_or_else(|| at.error("must be a number"))
}

/// A whole number (`4`, `4.0`, `"4"`); a negative one is returned as it is for the caller
/// to judge, a huge one saturates.
fn integer(value: &Value, at: &At<'_>) -> Result<i128> {
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
    let n = number(value, at).map_err(|_| at.error("must be an integer"))?;
    if n.fract() != 0.0 {
        return Err(at.error("must be an integer"));
    }
    // `as` saturates at the ends of i128.
    Ok(n as i128)
}

/// A required field.
fn required<'v>(obj: &'v Map<String, Value>, name: &str, at: &At<'_>) -> Result<&'v Value> {
    field(obj, name).ok_or_else(|| At::Field(at, name).error("is required"))
}

/// A proto3 JSON `Duration` that must not be negative: decimal seconds with up to nine
/// fractional digits and an `s`, such as `"1.5s"`, `".1s"` or `"20s"`.
fn duration(value: &Value, at: &At<'_>) -> Result<Duration> {
    let text = string(value, at)?;
    parse_duration(text).map_err(|why| at.error(format!("{why} (got {text:?})")))
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
fn status_code(value: &Value, at: &At<'_>) -> Result<Code> {
    let unknown = || {
        at.error(format!(
            "unknown status code {value} (use a name such as \"UNAVAILABLE\" or a number 0 to 16)"
        ))
    };
    match value {
        Value::String(name) => code_from_name(name).ok_or_else(unknown),
        Value::Number(_) => {
            let n = integer(value, at).map_err(|_| unknown())?;
            if (0..=16).contains(&n) {
                Ok(Code::from_i32(n as i32))
            } else {
                Err(unknown())
            }
        }
        _ => Err(at.error("must be a status code name or number")),
    }
}

fn code_from_name(name: &str) -> Option<Code> {
    (0..=16).map(Code::from_i32).find(|c| c.as_str() == name)
}

/// A list of status codes, of which none may be `OK`.
fn status_codes(value: &Value, at: &At<'_>) -> Result<CodeSet> {
    let mut set = CodeSet::new();
    for (i, entry) in array(value, at)?.iter().enumerate() {
        let entry_at = At::Index(at, i);
        let code = status_code(entry, &entry_at)?;
        if code == Code::Ok {
            return Err(entry_at.error("must not be OK"));
        }
        set = set.with(code);
    }
    Ok(set)
}

/// `maxAttempts` of either policy: at least 2, lowered to the client's limit.
fn max_attempts(obj: &Map<String, Value>, at: &At<'_>) -> Result<u32> {
    let at_field = At::Field(at, "maxAttempts");
    let n = integer(required(obj, "maxAttempts", at)?, &at_field)?;
    if n < 2 {
        return Err(at_field.error("must be at least 2"));
    }
    Ok(n.min(i128::from(MAX_ATTEMPTS_LIMIT)) as u32)
}

/// A byte limit: a whole number, not negative; one above `usize::MAX` means no limit.
fn byte_limit(value: &Value, at: &At<'_>) -> Result<usize> {
    let n = integer(value, at)?;
    if n < 0 {
        return Err(at.error("must not be negative"));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

// The parts of the config.

fn method_config(obj: &Map<String, Value>, at: &At<'_>) -> Result<MethodConfig> {
    let mut config = MethodConfig::default();
    if let Some(v) = field(obj, "waitForReady") {
        config.wait_for_ready = Some(boolean(v, &At::Field(at, "waitForReady"))?);
    }
    if let Some(v) = field(obj, "timeout") {
        config.timeout = Some(duration(v, &At::Field(at, "timeout"))?);
    }
    if let Some(v) = field(obj, "maxRequestMessageBytes") {
        let limit = byte_limit(v, &At::Field(at, "maxRequestMessageBytes"))?;
        config.max_request_message_bytes = Some(limit);
    }
    if let Some(v) = field(obj, "maxResponseMessageBytes") {
        let limit = byte_limit(v, &At::Field(at, "maxResponseMessageBytes"))?;
        config.max_response_message_bytes = Some(limit);
    }
    config.policy = match (field(obj, "retryPolicy"), field(obj, "hedgingPolicy")) {
        (Some(_), Some(_)) => {
            return Err(at.error("retryPolicy and hedgingPolicy must not both be set"));
        }
        (Some(v), None) => Some(CallPolicy::Retry(retry_policy(
            v,
            &At::Field(at, "retryPolicy"),
        )?)),
        (None, Some(v)) => Some(CallPolicy::Hedging(hedging_policy(
            v,
            &At::Field(at, "hedgingPolicy"),
        )?)),
        (None, None) => None,
    };
    Ok(config)
}

/// One entry of a method config's `name`: `Some("service/method")`, `Some("service/")`
/// for a service's default, `None` for the default of every method. An empty string is
/// the same as an absent field.
fn method_name(value: &Value, at: &At<'_>) -> Result<Option<String>> {
    let obj = object(value, at)?;
    let part = |name: &str| -> Result<&str> {
        let Some(v) = field(obj, name) else {
            return Ok("");
        };
        let at = At::Field(at, name);
        let s = string(v, &at)?;
        if s.contains('/') {
            return Err(at.error("must not contain '/'"));
        }
        Ok(s)
    };
    let service = part("service")?;
    let method = part("method")?;
    match (service.is_empty(), method.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => Err(at.error("a method needs its service")),
        (false, _) => Ok(Some(format!("{service}/{method}"))),
    }
}

fn retry_policy(value: &Value, at: &At<'_>) -> Result<RetryPolicy> {
    let obj = object(value, at)?;
    let max_attempts = max_attempts(obj, at)?;
    let positive_duration = |name: &str| -> Result<Duration> {
        let at_field = At::Field(at, name);
        let d = duration(required(obj, name, at)?, &at_field)?;
        if d.is_zero() {
            return Err(at_field.error("must be greater than 0"));
        }
        Ok(d)
    };
    let initial_backoff = positive_duration("initialBackoff")?;
    let max_backoff = positive_duration("maxBackoff")?;
    let multiplier_at = At::Field(at, "backoffMultiplier");
    let backoff_multiplier = number(required(obj, "backoffMultiplier", at)?, &multiplier_at)?;
    if backoff_multiplier <= 0.0 {
        return Err(multiplier_at.error("must be greater than 0"));
    }
    let per_attempt_recv_timeout = match field(obj, "perAttemptRecvTimeout") {
        Some(_) => Some(positive_duration("perAttemptRecvTimeout")?),
        None => None,
    };
    let codes_at = At::Field(at, "retryableStatusCodes");
    let retryable_status_codes = match field(obj, "retryableStatusCodes") {
        Some(v) => status_codes(v, &codes_at)?,
        None => CodeSet::new(),
    };
    if retryable_status_codes.is_empty() && per_attempt_recv_timeout.is_none() {
        return Err(codes_at.error("must be non-empty (unless perAttemptRecvTimeout is set)"));
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
fn hedging_policy(value: &Value, at: &At<'_>) -> Result<HedgingPolicy> {
    let obj = object(value, at)?;
    let max_attempts = max_attempts(obj, at)?;
    let hedging_delay = match field(obj, "hedgingDelay") {
        Some(v) => duration(v, &At::Field(at, "hedgingDelay"))?,
        None => Duration::ZERO,
    };
    let non_fatal_status_codes = match field(obj, "nonFatalStatusCodes") {
        Some(v) => status_codes(v, &At::Field(at, "nonFatalStatusCodes"))?,
        None => CodeSet::new(),
    };
    Ok(HedgingPolicy {
        max_attempts,
        hedging_delay,
        non_fatal_status_codes,
    })
}

fn retry_throttling(value: &Value, at: &At<'_>) -> Result<RetryThrottling> {
    let obj = object(value, at)?;
    let tokens_at = At::Field(at, "maxTokens");
    let max_tokens = integer(required(obj, "maxTokens", at)?, &tokens_at)?;
    if max_tokens <= 0 {
        return Err(tokens_at.error("must be greater than 0"));
    }
    if max_tokens > i128::from(MAX_THROTTLING_TOKENS) {
        return Err(tokens_at.error(format!("must be at most {MAX_THROTTLING_TOKENS}")));
    }
    let ratio_at = At::Field(at, "tokenRatio");
    let ratio = number(required(obj, "tokenRatio", at)?, &ratio_at)?;
    if ratio <= 0.0 {
        return Err(ratio_at.error("must be greater than 0"));
    }
    // Thousandths, the further digits dropped. The nudge keeps a value written with three
    // decimals (1.005) from landing just under its thousandth in binary floating point.
    let thousandths = (ratio * 1000.0 + 1e-6).floor();
    if thousandths < 1.0 {
        return Err(ratio_at.error("must be at least 0.001 (three decimal places are used)"));
    }
    Ok(RetryThrottling {
        max_tokens: max_tokens as u32,
        token_ratio: thousandths / 1000.0,
    })
}

/// `loadBalancingConfig`: a list of single-key objects `{"policy_name": {config}}`; the
/// first policy this client supports wins, and its config must be valid.
fn load_balancing_config(value: &Value, at: &At<'_>) -> Result<LoadBalancing> {
    for (i, entry) in array(value, at)?.iter().enumerate() {
        let entry_at = At::Index(at, i);
        let obj = object(entry, &entry_at)?;
        let mut keys = obj.iter();
        let (Some((name, config)), None) = (keys.next(), keys.next()) else {
            return Err(entry_at.error(format!(
                "must have exactly one key, the policy name (has {})",
                obj.len()
            )));
        };
        let config_at = At::Field(&entry_at, name);
        match name.as_str() {
            "pick_first" => {
                let mut shuffle_address_list = false;
                if !config.is_null() {
                    let obj = object(config, &config_at)?;
                    if let Some(v) = field(obj, "shuffleAddressList") {
                        let at = At::Field(&config_at, "shuffleAddressList");
                        shuffle_address_list = boolean(v, &at)?;
                    }
                }
                return Ok(LoadBalancing::PickFirst {
                    shuffle_address_list,
                });
            }
            "round_robin" => {
                if !config.is_null() {
                    object(config, &config_at)?;
                }
                return Ok(LoadBalancing::RoundRobin);
            }
            _ => continue,
        }
    }
    Err(at.error("names no supported policy (supported: pick_first, round_robin)"))
}

/// The deprecated `loadBalancingPolicy`, a policy name in any case (`"ROUND_ROBIN"` is how
/// the proto's enum writes it).
fn load_balancing_policy(name: &str, at: &At<'_>) -> Result<LoadBalancing> {
    if name.eq_ignore_ascii_case("round_robin") {
        Ok(LoadBalancing::RoundRobin)
    } else if name.eq_ignore_ascii_case("pick_first") {
        Ok(LoadBalancing::PickFirst {
            shuffle_address_list: false,
        })
    } else {
        Err(at.error(format!(
            "unsupported policy {name:?} (supported: pick_first, round_robin)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ServiceConfig {
        ServiceConfig::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// The error's Display for `json`.
    fn error(json: &str) -> String {
        match ServiceConfig::from_json(json) {
            Ok(config) => panic!("{json} was accepted: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// A config with one method config for every method, holding `body`.
    fn method_json(body: &str) -> String {
        format!(r#"{{"methodConfig": [{{"name": [{{}}], {body}}}]}}"#)
    }

    fn only_method(body: &str) -> MethodConfig {
        parse(&method_json(body)).method("/a.B/C").unwrap().clone()
    }

    fn retry(policy: &str) -> RetryPolicy {
        match only_method(&format!(r#""retryPolicy": {policy}"#)).policy {
            Some(CallPolicy::Retry(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    fn retry_error(policy: &str) -> String {
        error(&method_json(&format!(r#""retryPolicy": {policy}"#)))
    }

    fn hedging(policy: &str) -> HedgingPolicy {
        match only_method(&format!(r#""hedgingPolicy": {policy}"#)).policy {
            Some(CallPolicy::Hedging(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    fn hedging_error(policy: &str) -> String {
        error(&method_json(&format!(r#""hedgingPolicy": {policy}"#)))
    }

    const RETRY: &str = r#"{"maxAttempts": 4, "initialBackoff": ".1s", "maxBackoff": "1s",
        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#;

    #[test]
    fn a6_integration_example_parses_in_full() {
        let config = parse(
            r#"{
              "loadBalancingConfig": [{"round_robin": {}}],
              "methodConfig": [{
                "name": [{"service": "helloworld.Greeter", "method": "SayHello"}],
                "waitForReady": true,
                "timeout": "1.5s",
                "maxRequestMessageBytes": 1024,
                "maxResponseMessageBytes": 2048,
                "retryPolicy": {
                  "maxAttempts": 4,
                  "initialBackoff": ".1s",
                  "maxBackoff": "1s",
                  "backoffMultiplier": 2,
                  "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
                }
              }],
              "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
            }"#,
        );
        let m = config.method("/helloworld.Greeter/SayHello").unwrap();
        assert_eq!(m.wait_for_ready, Some(true));
        assert_eq!(m.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(m.max_request_message_bytes, Some(1024));
        assert_eq!(m.max_response_message_bytes, Some(2048));
        assert_eq!(
            m.policy,
            Some(CallPolicy::Retry(RetryPolicy {
                max_attempts: 4,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                backoff_multiplier: 2.0,
                retryable_status_codes: [Code::Unavailable, Code::ResourceExhausted]
                    .into_iter()
                    .collect(),
                per_attempt_recv_timeout: None,
            }))
        );
        assert_eq!(config.load_balancing(), Some(&LoadBalancing::RoundRobin));
        assert_eq!(
            config.retry_throttling(),
            Some(&RetryThrottling {
                max_tokens: 10,
                token_ratio: 0.1
            })
        );
        assert!(config.method("/helloworld.Greeter/Other").is_none());
    }

    #[test]
    fn empty_config_sets_nothing() {
        let config = parse("{}");
        assert!(config.method("/a.B/C").is_none());
        assert!(config.load_balancing().is_none());
        assert!(config.retry_throttling().is_none());
        let config: ServiceConfig = r#"{"methodConfig": []}"#.parse().unwrap();
        assert!(config.method("/a.B/C").is_none());
    }

    #[test]
    fn invalid_json_and_non_object_documents_are_errors() {
        assert!(error("").starts_with("service config: invalid JSON"));
        assert!(error("{").starts_with("service config: invalid JSON"));
        assert!(error(r#"{"methodConfig": [}"#).starts_with("service config: invalid JSON"));
        assert_eq!(error("[]"), "service config: must be an object");
        assert_eq!(error("null"), "service config: must be an object");
        let e = ServiceConfig::from_json("42").unwrap_err();
        assert_eq!((e.path(), e.message()), ("", "must be an object"));
    }

    #[test]
    fn unknown_fields_are_ignored_everywhere() {
        let config = parse(
            r#"{
              "healthCheckConfig": {"serviceName": "x"},
              "somethingNew": [1, 2, 3],
              "methodConfig": [{
                "name": [{"service": "s", "futureNameField": 1}],
                "futureMethodField": {"a": "b"},
                "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s",
                  "backoffMultiplier": 1, "retryableStatusCodes": [14], "futurePolicyField": true}
              }],
              "retryThrottling": {"maxTokens": 1, "tokenRatio": 1, "future": null}
            }"#,
        );
        assert!(matches!(
            config.method("/s/m").unwrap().policy,
            Some(CallPolicy::Retry(_))
        ));
    }

    #[test]
    fn null_is_the_same_as_absent() {
        let m = only_method(
            r#""timeout": null, "waitForReady": null, "retryPolicy": null,
            "hedgingPolicy": null, "maxRequestMessageBytes": null"#,
        );
        assert_eq!(m, MethodConfig::default());
        let config = parse(
            r#"{"methodConfig": [{"name": [{"service": "s", "method": null}]}],
            "loadBalancingConfig": null, "retryThrottling": null}"#,
        );
        assert!(config.method("/s/anything").is_some());
        assert!(config.load_balancing().is_none());
    }

    // Lookup.

    const LOOKUP: &str = r#"{"methodConfig": [
        {"name": [{}], "timeout": "1s"},
        {"name": [{"service": "pkg.S"}], "timeout": "2s"},
        {"name": [{"service": "pkg.S", "method": "Exact"}, {"service": "pkg.T", "method": "M"}],
         "timeout": "3s"}
    ]}"#;

    fn timeout_for(config: &ServiceConfig, path: &str) -> Option<u64> {
        config.method(path).map(|m| m.timeout.unwrap().as_secs())
    }

    #[test]
    fn lookup_prefers_exact_then_service_then_global_default() {
        let config = parse(LOOKUP);
        assert_eq!(timeout_for(&config, "/pkg.S/Exact"), Some(3));
        assert_eq!(timeout_for(&config, "/pkg.T/M"), Some(3));
        assert_eq!(timeout_for(&config, "/pkg.S/Other"), Some(2));
        assert_eq!(timeout_for(&config, "/pkg.T/Other"), Some(1));
        assert_eq!(timeout_for(&config, "/other.Service/Exact"), Some(1));
        // A path that is not `/service/method` gets the global default only.
        assert_eq!(timeout_for(&config, "pkg.S/Exact"), Some(1));
        assert_eq!(timeout_for(&config, "/pkg.S"), Some(1));
        assert_eq!(timeout_for(&config, ""), Some(1));
    }

    #[test]
    fn lookup_without_a_default_finds_nothing_for_other_methods() {
        let config = parse(
            r#"{"methodConfig": [{"name": [{"service": "pkg.S", "method": "M"}], "timeout": "1s"}]}"#,
        );
        assert!(config.method("/pkg.S/M").is_some());
        assert!(config.method("/pkg.S/N").is_none());
        assert!(config.method("/pkg.SS/M").is_none());
        assert!(config.method("/pkg.S/MM").is_none());
        // Service and method names are case-sensitive.
        assert!(config.method("/pkg.s/M").is_none());
    }

    #[test]
    fn empty_strings_in_a_name_are_the_same_as_absent() {
        let config = parse(
            r#"{"methodConfig": [
                {"name": [{"service": "", "method": ""}], "timeout": "1s"},
                {"name": [{"service": "pkg.S", "method": ""}], "timeout": "2s"}
            ]}"#,
        );
        assert_eq!(timeout_for(&config, "/x.Y/Z"), Some(1));
        assert_eq!(timeout_for(&config, "/pkg.S/Z"), Some(2));
    }

    #[test]
    fn method_config_without_names_applies_to_nothing_but_is_validated() {
        let config =
            parse(r#"{"methodConfig": [{"timeout": "1s"}, {"name": [], "timeout": "2s"}]}"#);
        assert!(config.method("/a.B/C").is_none());
        assert_eq!(
            error(r#"{"methodConfig": [{"timeout": "soon"}]}"#),
            r#"methodConfig[0].timeout: must be a duration in seconds such as "1.5s" (got "soon")"#
        );
    }

    #[test]
    fn duplicate_names_are_errors() {
        assert_eq!(
            error(
                r#"{"methodConfig": [{"name": [{"service": "s", "method": "m"}]},
                {"name": [{"service": "t"}, {"service": "s", "method": "m"}]}]}"#
            ),
            "methodConfig[1].name[1]: duplicate name: methodConfig[0] has it too"
        );
        assert_eq!(
            error(
                r#"{"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "s", "method": ""}]}]}"#
            ),
            "methodConfig[1].name[0]: duplicate name: methodConfig[0] has it too"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{}]}, {"name": [{"service": ""}]}]}"#),
            "methodConfig[1].name[0]: duplicate name: methodConfig[0] has it too"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{"service": "s"}, {"service": "s"}]}]}"#),
            "methodConfig[0].name[1]: duplicate name within this method config"
        );
    }

    #[test]
    fn malformed_names_are_errors() {
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{"method": "m"}]}]}"#),
            "methodConfig[0].name[0]: a method needs its service"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{"service": "", "method": "m"}]}]}"#),
            "methodConfig[0].name[0]: a method needs its service"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{"service": "a/b"}]}]}"#),
            "methodConfig[0].name[0].service: must not contain '/'"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{"service": 1}]}]}"#),
            "methodConfig[0].name[0].service: must be a string"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": {"service": "s"}}]}"#),
            "methodConfig[0].name: must be an array"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": ["s"]}]}"#),
            "methodConfig[0].name[0]: must be an object"
        );
        assert_eq!(
            error(r#"{"methodConfig": {}}"#),
            "methodConfig: must be an array"
        );
        assert_eq!(
            error(r#"{"methodConfig": [[]]}"#),
            "methodConfig[0]: must be an object"
        );
    }

    // Per-method values.

    #[test]
    fn wait_for_ready_and_timeout_parse_and_are_type_checked() {
        let m = only_method(r#""waitForReady": false, "timeout": "0.000000001s""#);
        assert_eq!(m.wait_for_ready, Some(false));
        assert_eq!(m.timeout, Some(Duration::from_nanos(1)));
        assert_eq!(
            error(&method_json(r#""waitForReady": "yes""#)),
            "methodConfig[0].waitForReady: must be true or false"
        );
        assert_eq!(
            error(&method_json(r#""timeout": 5"#)),
            "methodConfig[0].timeout: must be a string"
        );
        assert_eq!(
            error(&method_json(r#""timeout": "-1s""#)),
            r#"methodConfig[0].timeout: must not be negative (got "-1s")"#
        );
    }

    #[test]
    fn durations_follow_proto3_json() {
        let ok = [
            ("1s", Duration::from_secs(1)),
            ("1.5s", Duration::from_millis(1500)),
            (".1s", Duration::from_millis(100)),
            ("1.s", Duration::from_secs(1)),
            ("0s", Duration::ZERO),
            ("0.000s", Duration::ZERO),
            ("20.000000001s", Duration::new(20, 1)),
            ("315576000000s", Duration::from_secs(MAX_DURATION_SECONDS)),
            ("007s", Duration::from_secs(7)),
        ];
        for (text, expected) in ok {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        let bad = [
            "",
            "s",
            ".s",
            "1",
            "1m",
            "1ms",
            "1.5",
            " 1s",
            "1s ",
            "+1s",
            "1e3s",
            "1..5s",
            "1.2.3s",
            "0x1s",
            "1,5s",
            "-0s",
            "-1.5s",
            "1.0000000001s",
            "315576000001s",
            "99999999999999999999999s",
            "１s",
        ];
        for text in bad {
            assert!(parse_duration(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn message_byte_limits_accept_zero_and_saturate_when_huge() {
        let m = only_method(r#""maxRequestMessageBytes": 0, "maxResponseMessageBytes": "4096""#);
        assert_eq!(m.max_request_message_bytes, Some(0));
        assert_eq!(m.max_response_message_bytes, Some(4096));
        let m = only_method(
            r#""maxRequestMessageBytes": 1e40, "maxResponseMessageBytes": 18446744073709551615"#,
        );
        assert_eq!(m.max_request_message_bytes, Some(usize::MAX));
        assert_eq!(m.max_response_message_bytes, Some(usize::MAX));
        assert_eq!(
            error(&method_json(r#""maxRequestMessageBytes": -1"#)),
            "methodConfig[0].maxRequestMessageBytes: must not be negative"
        );
        assert_eq!(
            error(&method_json(r#""maxResponseMessageBytes": 1.5"#)),
            "methodConfig[0].maxResponseMessageBytes: must be an integer"
        );
        assert_eq!(
            error(&method_json(r#""maxResponseMessageBytes": true"#)),
            "methodConfig[0].maxResponseMessageBytes: must be an integer"
        );
    }

    // retryPolicy.

    #[test]
    fn retry_policy_max_attempts_must_be_at_least_two() {
        for n in ["1", "0", "-3", "\"1\""] {
            assert_eq!(
                retry_error(&format!(
                    r#"{{"maxAttempts": {n}, "initialBackoff": "1s", "maxBackoff": "1s",
                    "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}"#
                )),
                "methodConfig[0].retryPolicy.maxAttempts: must be at least 2",
                "{n}"
            );
        }
        assert_eq!(
            retry_error(&RETRY.replace(r#""maxAttempts": 4,"#, "")),
            "methodConfig[0].retryPolicy.maxAttempts: is required"
        );
        assert_eq!(
            retry_error(&RETRY.replace(r#""maxAttempts": 4"#, r#""maxAttempts": 2.5"#)),
            "methodConfig[0].retryPolicy.maxAttempts: must be an integer"
        );
    }

    #[test]
    fn retry_policy_max_attempts_above_five_is_capped() {
        let policy = |n: &str| {
            format!(
                r#"{{"maxAttempts": {n}, "initialBackoff": "1s", "maxBackoff": "1s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}"#
            )
        };
        assert_eq!(retry(&policy("2")).max_attempts, 2);
        assert_eq!(retry(&policy("5")).max_attempts, 5);
        assert_eq!(retry(&policy("6")).max_attempts, 5);
        assert_eq!(retry(&policy("4294967296")).max_attempts, 5);
        assert_eq!(retry(&policy("1e30")).max_attempts, 5);
        assert_eq!(retry(&policy("\"3\"")).max_attempts, 3);
        assert_eq!(retry(&policy("3.0")).max_attempts, 3);
    }

    #[test]
    fn retry_policy_backoffs_must_be_present_and_positive() {
        for field in ["initialBackoff", "maxBackoff"] {
            let with = |value: &str| {
                RETRY.replace(
                    &format!(
                        r#""{field}": "{}""#,
                        if field == "maxBackoff" { "1s" } else { ".1s" }
                    ),
                    &format!(r#""{field}": {value}"#),
                )
            };
            assert_eq!(
                retry_error(&with(r#""0s""#)),
                format!("methodConfig[0].retryPolicy.{field}: must be greater than 0")
            );
            assert_eq!(
                retry_error(&with(r#""-1s""#)),
                format!(r#"methodConfig[0].retryPolicy.{field}: must not be negative (got "-1s")"#)
            );
            assert_eq!(
                retry_error(&with("null")),
                format!("methodConfig[0].retryPolicy.{field}: is required")
            );
            assert_eq!(
                retry_error(&with("1")),
                format!("methodConfig[0].retryPolicy.{field}: must be a string")
            );
        }
    }

    #[test]
    fn retry_policy_backoff_multiplier_must_be_positive() {
        for bad in ["0", "-1", "0.0", "\"-2\""] {
            assert_eq!(
                retry_error(&RETRY.replace(
                    r#""backoffMultiplier": 2"#,
                    &format!(r#""backoffMultiplier": {bad}"#)
                )),
                "methodConfig[0].retryPolicy.backoffMultiplier: must be greater than 0",
                "{bad}"
            );
        }
        assert_eq!(
            retry_error(&RETRY.replace(r#""backoffMultiplier": 2,"#, "")),
            "methodConfig[0].retryPolicy.backoffMultiplier: is required"
        );
        assert_eq!(
            retry_error(
                &RETRY.replace(r#""backoffMultiplier": 2"#, r#""backoffMultiplier": "NaN""#)
            ),
            "methodConfig[0].retryPolicy.backoffMultiplier: must be a number"
        );
        let p = retry(&RETRY.replace(r#""backoffMultiplier": 2"#, r#""backoffMultiplier": "1.5""#));
        assert_eq!(p.backoff_multiplier, 1.5);
        let p = retry(&RETRY.replace(r#""backoffMultiplier": 2"#, r#""backoffMultiplier": 0.5"#));
        assert_eq!(p.backoff_multiplier, 0.5);
    }

    #[test]
    fn retryable_status_codes_are_names_or_numbers() {
        let p = retry(&RETRY.replace(
            r#"["UNAVAILABLE"]"#,
            r#"["UNAVAILABLE", 4, "DATA_LOSS", 14, 16.0, "CANCELLED"]"#,
        ));
        assert_eq!(
            p.retryable_status_codes.iter().collect::<Vec<_>>(),
            [
                Code::Cancelled,
                Code::DeadlineExceeded,
                Code::Unavailable,
                Code::DataLoss,
                Code::Unauthenticated
            ]
        );
        assert_eq!(p.retryable_status_codes.len(), 5);
        // Every canonical name is accepted.
        for code in (0..=16).map(Code::from_i32).filter(|c| *c != Code::Ok) {
            let p = retry(&RETRY.replace("UNAVAILABLE", code.as_str()));
            assert!(p.retryable_status_codes.contains(code), "{code}");
            assert_eq!(p.retryable_status_codes.len(), 1);
        }
    }

    #[test]
    fn retryable_status_codes_reject_unknown_names_ok_and_empty() {
        // The name is matched exactly, as grpc-go, grpc-java and grpc-core do.
        for bad in [
            r#""unavailable""#,
            r#""Unavailable""#,
            r#""UNAVAILABLE ""#,
            r#""14""#,
            "17",
            "-1",
            "1.5",
        ] {
            let e = retry_error(&RETRY.replace(r#""UNAVAILABLE""#, bad));
            assert!(
                e.starts_with(
                    "methodConfig[0].retryPolicy.retryableStatusCodes[0]: unknown status code"
                ),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            retry_error(&RETRY.replace(r#""UNAVAILABLE""#, "true")),
            "methodConfig[0].retryPolicy.retryableStatusCodes[0]: must be a status code name or number"
        );
        assert_eq!(
            retry_error(&RETRY.replace(r#"["UNAVAILABLE"]"#, r#"["UNAVAILABLE", "OK"]"#)),
            "methodConfig[0].retryPolicy.retryableStatusCodes[1]: must not be OK"
        );
        assert_eq!(
            retry_error(&RETRY.replace(r#"["UNAVAILABLE"]"#, "[0]")),
            "methodConfig[0].retryPolicy.retryableStatusCodes[0]: must not be OK"
        );
        let empty = concat!(
            "methodConfig[0].retryPolicy.retryableStatusCodes: ",
            "must be non-empty (unless perAttemptRecvTimeout is set)"
        );
        assert_eq!(
            retry_error(&RETRY.replace(r#"["UNAVAILABLE"]"#, "[]")),
            empty
        );
        assert_eq!(
            retry_error(&RETRY.replace(r#"["UNAVAILABLE"]"#, "null")),
            empty
        );
        assert_eq!(
            retry_error(&RETRY.replace(r#"["UNAVAILABLE"]"#, r#""UNAVAILABLE""#)),
            "methodConfig[0].retryPolicy.retryableStatusCodes: must be an array"
        );
    }

    #[test]
    fn per_attempt_recv_timeout_is_optional_positive_and_allows_no_codes() {
        assert_eq!(retry(RETRY).per_attempt_recv_timeout, None);
        let p = retry(&RETRY.replace(
            r#"["UNAVAILABLE"]"#,
            r#"[], "perAttemptRecvTimeout": "0.25s""#,
        ));
        assert_eq!(p.per_attempt_recv_timeout, Some(Duration::from_millis(250)));
        assert!(p.retryable_status_codes.is_empty());
        assert_eq!(
            retry_error(&RETRY.replace(
                r#"["UNAVAILABLE"]"#,
                r#"[14], "perAttemptRecvTimeout": "0s""#
            )),
            "methodConfig[0].retryPolicy.perAttemptRecvTimeout: must be greater than 0"
        );
    }

    #[test]
    fn retry_policy_must_be_an_object() {
        assert_eq!(
            retry_error("[]"),
            "methodConfig[0].retryPolicy: must be an object"
        );
    }

    // hedgingPolicy.

    #[test]
    fn hedging_policy_parses_with_a6_examples() {
        let p = hedging(
            r#"{"maxAttempts": 4, "hedgingDelay": ".5s",
            "nonFatalStatusCodes": ["UNAVAILABLE", "INTERNAL", "ABORTED"]}"#,
        );
        assert_eq!(
            p,
            HedgingPolicy {
                max_attempts: 4,
                hedging_delay: Duration::from_millis(500),
                non_fatal_status_codes: [Code::Unavailable, Code::Internal, Code::Aborted]
                    .into_iter()
                    .collect(),
            }
        );
        let p = hedging(r#"{"maxAttempts": 4, "hedgingDelay": "0s", "nonFatalStatusCodes": [14]}"#);
        assert_eq!(p.hedging_delay, Duration::ZERO);
    }

    #[test]
    fn hedging_delay_and_non_fatal_codes_are_optional() {
        let p = hedging(r#"{"maxAttempts": 3}"#);
        assert_eq!(p.hedging_delay, Duration::ZERO);
        assert!(p.non_fatal_status_codes.is_empty());
    }

    #[test]
    fn hedging_policy_validation() {
        assert_eq!(
            hedging_error(r#"{"maxAttempts": 1}"#),
            "methodConfig[0].hedgingPolicy.maxAttempts: must be at least 2"
        );
        assert_eq!(
            hedging_error(r#"{"hedgingDelay": "1s"}"#),
            "methodConfig[0].hedgingPolicy.maxAttempts: is required"
        );
        assert_eq!(hedging(r#"{"maxAttempts": 100}"#).max_attempts, 5);
        assert_eq!(
            hedging_error(r#"{"maxAttempts": 2, "hedgingDelay": "-0.5s"}"#),
            r#"methodConfig[0].hedgingPolicy.hedgingDelay: must not be negative (got "-0.5s")"#
        );
        assert_eq!(
            hedging_error(r#"{"maxAttempts": 2, "nonFatalStatusCodes": ["OK"]}"#),
            "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]: must not be OK"
        );
        assert!(
            hedging_error(r#"{"maxAttempts": 2, "nonFatalStatusCodes": ["NOPE"]}"#).starts_with(
                "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]: unknown status code \"NOPE\""
            )
        );
    }

    #[test]
    fn retry_and_hedging_policies_are_mutually_exclusive() {
        assert_eq!(
            error(&method_json(&format!(
                r#""retryPolicy": {RETRY}, "hedgingPolicy": {{"maxAttempts": 2}}"#
            ))),
            "methodConfig[0]: retryPolicy and hedgingPolicy must not both be set"
        );
    }

    // retryThrottling.

    #[test]
    fn retry_throttling_validation() {
        let throttling = |body: &str| format!(r#"{{"retryThrottling": {body}}}"#);
        let ok = |body: &str| *parse(&throttling(body)).retry_throttling().unwrap();
        assert_eq!(
            ok(r#"{"maxTokens": 1000, "tokenRatio": 0.001}"#),
            RetryThrottling {
                max_tokens: 1000,
                token_ratio: 0.001
            }
        );
        assert_eq!(
            ok(r#"{"maxTokens": 1, "tokenRatio": 0.1234}"#).token_ratio,
            0.123
        );
        assert_eq!(
            ok(r#"{"maxTokens": 1, "tokenRatio": 1.005}"#).token_ratio,
            1.005
        );
        assert_eq!(
            ok(r#"{"maxTokens": 1, "tokenRatio": 0.0019}"#).token_ratio,
            0.001
        );
        assert_eq!(ok(r#"{"maxTokens": "7", "tokenRatio": "2"}"#).max_tokens, 7);
        let cases = [
            (
                r#"{"maxTokens": 0, "tokenRatio": 0.1}"#,
                "retryThrottling.maxTokens: must be greater than 0",
            ),
            (
                r#"{"maxTokens": -5, "tokenRatio": 0.1}"#,
                "retryThrottling.maxTokens: must be greater than 0",
            ),
            (
                r#"{"maxTokens": 1001, "tokenRatio": 0.1}"#,
                "retryThrottling.maxTokens: must be at most 1000",
            ),
            (
                r#"{"maxTokens": 10.5, "tokenRatio": 0.1}"#,
                "retryThrottling.maxTokens: must be an integer",
            ),
            (
                r#"{"tokenRatio": 0.1}"#,
                "retryThrottling.maxTokens: is required",
            ),
            (
                r#"{"maxTokens": 10}"#,
                "retryThrottling.tokenRatio: is required",
            ),
            (
                r#"{"maxTokens": 10, "tokenRatio": 0}"#,
                "retryThrottling.tokenRatio: must be greater than 0",
            ),
            (
                r#"{"maxTokens": 10, "tokenRatio": -0.1}"#,
                "retryThrottling.tokenRatio: must be greater than 0",
            ),
            (
                r#"{"maxTokens": 10, "tokenRatio": 0.0001}"#,
                "retryThrottling.tokenRatio: must be at least 0.001 (three decimal places are used)",
            ),
            (
                r#"{"maxTokens": 10, "tokenRatio": "x"}"#,
                "retryThrottling.tokenRatio: must be a number",
            ),
            ("[]", "retryThrottling: must be an object"),
        ];
        for (body, expected) in cases {
            assert_eq!(error(&throttling(body)), expected, "{body}");
        }
    }

    // Load balancing.

    #[test]
    fn first_supported_load_balancing_config_wins() {
        let lb = |json: &str| {
            *parse(&format!(r#"{{"loadBalancingConfig": {json}}}"#))
                .load_balancing()
                .unwrap()
        };
        assert_eq!(
            lb(
                r#"[{"grpclb": {}}, {"weighted_round_robin": {}}, {"round_robin": {}}, {"pick_first": {}}]"#
            ),
            LoadBalancing::RoundRobin
        );
        assert_eq!(
            lb(r#"[{"pick_first": {"shuffleAddressList": true}}, {"round_robin": {}}]"#),
            LoadBalancing::PickFirst {
                shuffle_address_list: true
            }
        );
        assert_eq!(
            lb(r#"[{"pick_first": {}}]"#),
            LoadBalancing::PickFirst {
                shuffle_address_list: false
            }
        );
        assert_eq!(
            lb(r#"[{"pick_first": null}]"#),
            LoadBalancing::PickFirst {
                shuffle_address_list: false
            }
        );
        // The config of an unsupported policy is not looked at.
        assert_eq!(
            lb(r#"[{"rls_experimental": 42}, {"round_robin": {}}]"#),
            LoadBalancing::RoundRobin
        );
        // The deprecated field is ignored when the list is there.
        let config = parse(
            r#"{"loadBalancingConfig": [{"pick_first": {}}], "loadBalancingPolicy": "round_robin"}"#,
        );
        assert_eq!(
            config.load_balancing(),
            Some(&LoadBalancing::PickFirst {
                shuffle_address_list: false
            })
        );
    }

    #[test]
    fn load_balancing_config_errors() {
        let lb_error = |json: &str| error(&format!(r#"{{"loadBalancingConfig": {json}}}"#));
        let none =
            "loadBalancingConfig: names no supported policy (supported: pick_first, round_robin)";
        assert_eq!(lb_error("[]"), none);
        assert_eq!(
            lb_error(r#"[{"grpclb": {}}, {"xds_experimental": {}}]"#),
            none
        );
        assert_eq!(
            lb_error(r#"[{"round_robin": {}, "pick_first": {}}]"#),
            "loadBalancingConfig[0]: must have exactly one key, the policy name (has 2)"
        );
        assert_eq!(
            lb_error(r#"[{"grpclb": {}}, {}]"#),
            "loadBalancingConfig[1]: must have exactly one key, the policy name (has 0)"
        );
        assert_eq!(
            lb_error(r#"["round_robin"]"#),
            "loadBalancingConfig[0]: must be an object"
        );
        assert_eq!(
            lb_error(r#"{"round_robin": {}}"#),
            "loadBalancingConfig: must be an array"
        );
        assert_eq!(
            lb_error(r#"[{"pick_first": {"shuffleAddressList": "yes"}}]"#),
            "loadBalancingConfig[0].pick_first.shuffleAddressList: must be true or false"
        );
        assert_eq!(
            lb_error(r#"[{"round_robin": []}]"#),
            "loadBalancingConfig[0].round_robin: must be an object"
        );
    }

    #[test]
    fn deprecated_load_balancing_policy_is_a_name_in_any_case() {
        let lb = |name: &str| {
            *parse(&format!(r#"{{"loadBalancingPolicy": "{name}"}}"#))
                .load_balancing()
                .unwrap()
        };
        assert_eq!(lb("round_robin"), LoadBalancing::RoundRobin);
        assert_eq!(lb("ROUND_ROBIN"), LoadBalancing::RoundRobin);
        assert_eq!(
            lb("pick_first"),
            LoadBalancing::PickFirst {
                shuffle_address_list: false
            }
        );
        assert_eq!(
            error(r#"{"loadBalancingPolicy": "grpclb"}"#),
            r#"loadBalancingPolicy: unsupported policy "grpclb" (supported: pick_first, round_robin)"#
        );
        assert_eq!(
            error(r#"{"loadBalancingPolicy": 1}"#),
            "loadBalancingPolicy: must be a string"
        );
    }

    #[test]
    fn truncated_or_deeply_nested_input_is_an_error_not_a_panic() {
        let full = format!(
            r#"{{"loadBalancingConfig": [{{"pick_first": {{"shuffleAddressList": true}}}}],
            "methodConfig": [{{"name": [{{"service": "s", "method": "m"}}], "timeout": "1.5s",
            "retryPolicy": {RETRY}}}], "retryThrottling": {{"maxTokens": 10, "tokenRatio": 0.1}}}}"#
        );
        parse(&full);
        for end in (0..full.len()).filter(|i| full.is_char_boundary(*i)) {
            assert!(
                ServiceConfig::from_json(&full[..end]).is_err(),
                "{}",
                &full[..end]
            );
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let json = format!(r#"{{"methodConfig": {deep}}}"#);
        assert!(error(&json).starts_with("service config: invalid JSON"));
    }

    #[test]
    fn code_set_holds_each_code_once() {
        let set: CodeSet = [
            Code::Unavailable,
            Code::Unavailable,
            Code::Ok,
            Code::Unauthenticated,
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 3);
        assert!(set.contains(Code::Ok) && set.contains(Code::Unauthenticated));
        assert!(!set.contains(Code::Internal));
        assert!(CodeSet::new().is_empty());
        assert_eq!(format!("{set:?}"), "{Ok, Unavailable, Unauthenticated}");
    }
}
