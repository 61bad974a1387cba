//! Fuzz target: `grpc-timeout` parse and format.
//! Invariants: parsing never panics and accepts only 1 to 8 digits and a unit; what it
//! accepts formats and parses back to the same duration; any duration formats to a valid
//! value that parses back to at least the duration and less than one unit more (or, past
//! the largest value, to that largest value).
#![no_main]

use std::time::Duration;

use h2grpc::metadata::{MAX_TIMEOUT_DIGITS, format_timeout, parse_timeout};
use libfuzzer_sys::fuzz_target;

/// Nanoseconds per unit, by unit letter.
fn unit_nanos(unit: u8) -> Option<u128> {
    Some(match unit {
        b'n' => 1,
        b'u' => 1_000,
        b'm' => 1_000_000,
        b'S' => 1_000_000_000,
        b'M' => 60_000_000_000,
        b'H' => 3_600_000_000_000,
        _ => return None,
    })
}

/// The largest duration `grpc-timeout` can carry: 99999999H.
const LARGEST: u128 = 99_999_999 * 3_600_000_000_000;

fn check_wire_form(text: &[u8]) -> (u128, u128) {
    let (&unit, digits) = text.split_last().expect("empty grpc-timeout");
    assert!(
        (1..=MAX_TIMEOUT_DIGITS).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit),
        "formatted {:?}",
        String::from_utf8_lossy(text)
    );
    let per = unit_nanos(unit).expect("formatted with an unknown unit");
    let value: u128 = std::str::from_utf8(digits).unwrap().parse().unwrap();
    (value, per)
}

fuzz_target!(|input: &[u8]| {
    // 1. Arbitrary bytes as a header value.
    if let Some(parsed) = parse_timeout(input) {
        let (value, per) = check_wire_form(input);
        assert_eq!(parsed.as_nanos(), value * per);
        let again = parse_timeout(format_timeout(parsed).as_bytes());
        assert_eq!(again, Some(parsed), "accepted values round-trip exactly");
    }

    // 2. Arbitrary durations: a scale byte makes small ones as likely as huge ones.
    if input.len() >= 13 {
        let shift = u32::from(input[0] % 64);
        let secs = u64::from_le_bytes(input[1..9].try_into().unwrap()) >> shift;
        let nanos = u32::from_le_bytes(input[9..13].try_into().unwrap()) % 1_000_000_000;
        let duration = Duration::new(secs, nanos);
        let wire = format_timeout(duration);
        let (_, per) = check_wire_form(wire.as_bytes());
        let back = parse_timeout(wire.as_bytes()).expect("formatted value parses");
        let (want, got) = (duration.as_nanos(), back.as_nanos());
        if want <= LARGEST {
            assert!(
                got >= want,
                "{duration:?} -> {wire:?} -> {back:?}: rounded down"
            );
            assert!(
                got - want < per,
                "{duration:?} -> {wire:?} -> {back:?}: more than one unit up"
            );
        } else {
            assert_eq!(
                got, LARGEST,
                "{duration:?} -> {wire:?}: past the largest value"
            );
        }
    }
});
