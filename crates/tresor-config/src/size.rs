//! Byte sizes as Vault writes them (`parseutil.ParseCapacityString`, which hands strings with a
//! unit to go-humanize's `ParseBytes`): a whole number of bytes, or a number with a unit, SI
//! (`kB`, `MB`, `GB`, `TB`, `PB`: powers of 1000) or IEC (`KiB`, `MiB`, `GiB`, `TiB`, `PiB`:
//! powers of 1024). Units are case-insensitive, the trailing `B` may be left out (`256Mi`,
//! `1G`), a blank may separate number and unit, and the number may have a fraction (`1.5GiB`).

/// A size string we could not read; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {reason}; expected e.g. \"256MiB\", \"1GB\" or a number of bytes")]
pub struct InvalidSize {
    pub input: String,
    pub reason: &'static str,
}

/// Parses `"256MiB"`, `"1GB"`, `"1.5 GiB"`, `"512k"` or `"1048576"` (bytes) into bytes. A
/// fraction of a byte is dropped.
pub fn parse_size(input: &str) -> Result<u64, InvalidSize> {
    let fail = |reason| InvalidSize {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    if text.starts_with('-') {
        return Err(fail("it is negative"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier = unit_multiplier(unit.trim_start()).ok_or_else(|| {
        fail("unknown unit; use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB")
    })?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(fail("expected a number"));
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(fail("expected a number"));
    }
    let too_large = || fail("it is too large");
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let bytes = whole.checked_mul(multiplier).ok_or_else(too_large)?;
    bytes
        .checked_add(fraction_of(fraction, multiplier).ok_or_else(too_large)?)
        .ok_or_else(too_large)
}

/// `0.<digits>` of `multiplier`, rounded down. Digits past the 18th cannot change the result
/// for any multiplier up to a PiB, so they are ignored (and cannot overflow).
fn fraction_of(digits: &str, multiplier: u64) -> Option<u64> {
    let kept = digits.get(..digits.len().min(18)).unwrap_or(digits);
    if kept.is_empty() {
        return Some(0);
    }
    let numerator: u128 = kept.parse().ok()?;
    let denominator = 10u128.checked_pow(u32::try_from(kept.len()).ok()?)?;
    u64::try_from(numerator * u128::from(multiplier) / denominator).ok()
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    const KI: u64 = 1 << 10;
    const K: u64 = 1000;
    let lower = unit.to_ascii_lowercase();
    let unit = lower.strip_suffix('b').unwrap_or(&lower);
    Some(match unit {
        "" => 1,
        "k" => K,
        "m" => K.pow(2),
        "g" => K.pow(3),
        "t" => K.pow(4),
        "p" => K.pow(5),
        "ki" => KI,
        "mi" => KI.pow(2),
        "gi" => KI.pow(3),
        "ti" => KI.pow(4),
        "pi" => KI.pow(5),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn vault_spellings() {
        let cases: &[(&str, u64)] = &[
            ("256MiB", 256 << 20),
            ("256mib", 256 << 20),
            ("256 MiB", 256 << 20),
            ("256Mi", 256 << 20),
            ("1GB", 1_000_000_000),
            ("1gb", 1_000_000_000),
            ("1G", 1_000_000_000),
            ("1GiB", 1 << 30),
            ("1.5GiB", 3 << 29),
            (".5KiB", 512),
            ("2kB", 2000),
            ("4096", 4096),
            ("4096B", 4096),
            (" 64MiB ", 64 << 20),
            ("1PiB", 1 << 50),
            ("0.0000000000000000000001PiB", 0),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn hostile_or_mistaken_sizes_are_refused_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("-1MiB", "it is negative"),
            ("MiB", "expected a number"),
            (".", "expected a number"),
            ("1.2.3MiB", "expected a number"),
            ("1e9", "unknown unit"),
            ("256 MB/s", "unknown unit"),
            ("256 megabytes", "unknown unit"),
            ("NaN", "unknown unit"),
            ("inf", "unknown unit"),
            ("99999999999999999999", "it is too large"),
            ("18446744073709551616", "it is too large"),
            ("16384PiB", "it is too large"),
            ("17179869183.99999PiB", "it is too large"),
        ];
        for (input, reason) in cases {
            let err = parse_size(input).expect_err(input);
            assert!(err.reason.starts_with(reason), "{input}: {}", err.reason);
            assert!(err.to_string().contains("256MiB"), "{err}");
        }
    }
}
