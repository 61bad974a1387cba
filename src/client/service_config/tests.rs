//! The service config's tests: every field, every error and its JSON path.

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
    let config = parse(r#"{"methodConfig": [{"timeout": "1s"}, {"name": [], "timeout": "2s"}]}"#);
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
        retry_error(&RETRY.replace(r#""backoffMultiplier": 2"#, r#""backoffMultiplier": "NaN""#)),
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
