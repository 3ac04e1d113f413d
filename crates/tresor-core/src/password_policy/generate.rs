//! Drawing passwords from a [`PasswordPolicy`]: `length` characters drawn uniformly and
//! independently from the policy's deduplicated charset with the system CSPRNG (rejection
//! sampling on bytes: no modulo bias), the whole candidate rejected unless every rule holds,
//! as OpenBao's `StringGenerator` does. The result is uniform over the passwords that satisfy
//! the policy. OpenBao gives up after one second; Tresor after [`MAX_ATTEMPTS`] candidates.

use ring::rand::{SecureRandom, SystemRandom};
use tresor_sdk::secret::SecretString;
use zeroize::Zeroizing;

use super::parse::PasswordPolicy;

/// Candidates drawn before giving up with OpenBao's `timed out generating string`.
pub const MAX_ATTEMPTS: usize = 1_000_000;

/// OpenBao's limit: a charset index is one random byte.
const MAX_CHARSET: usize = 256;

/// Random bytes fetched from the system source at a time.
const BUFFER: usize = 4096;

/// Random bytes, fetched from the system CSPRNG a buffer at a time, zeroized when dropped.
struct Bytes {
    rng: SystemRandom,
    buf: Zeroizing<[u8; BUFFER]>,
    next: usize,
}

impl Bytes {
    fn new() -> Self {
        Self {
            rng: SystemRandom::new(),
            buf: Zeroizing::new([0; BUFFER]),
            next: BUFFER,
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        if self.next == BUFFER {
            self.rng
                .fill(self.buf.as_mut())
                .map_err(|_| "the system random source failed".to_owned())?;
            self.next = 0;
        }
        let b = self.buf.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        Ok(b)
    }
}

impl PasswordPolicy {
    /// A password satisfying every rule, or OpenBao's error text.
    pub fn generate(&self) -> Result<SecretString, String> {
        self.generate_within(MAX_ATTEMPTS)
    }

    pub(crate) fn generate_within(&self, attempts: usize) -> Result<SecretString, String> {
        self.validate().map_err(|e| e.0)?;
        let n = self.charset.len();
        if n > MAX_CHARSET {
            return Err(
                "unable to generate random characters: charset is too long: limited to 255 characters"
                    .to_owned(),
            );
        }
        let length = usize::try_from(self.length)
            .ok()
            .filter(|l| *l > 0)
            .ok_or("unable to generate a zero or negative length runeset")?;
        // A rule asking for more characters than the password has can never pass (a negative
        // `min-chars` elsewhere lets such a policy through validation, as in OpenBao).
        if self.rules.iter().any(|r| r.min_chars > self.length) {
            return Err("timed out generating string".to_owned());
        }
        // Per rule, which charset indices count towards it.
        let members: Vec<(Vec<bool>, i64)> = self
            .rules
            .iter()
            .map(|r| {
                let set = self.charset.iter().map(|c| r.charset.contains(c)).collect();
                (set, r.min_chars)
            })
            .collect();
        // Bytes at or above `limit` are rejected: every index is equally likely.
        let limit = MAX_CHARSET - MAX_CHARSET % n;
        let mut bytes = Bytes::new();
        let mut candidate = Zeroizing::new(vec![0u8; length]);
        for _ in 0..attempts {
            for slot in candidate.iter_mut() {
                *slot = loop {
                    let b = bytes.byte()?;
                    if usize::from(b) < limit {
                        // n <= 256, so the index fits a byte.
                        break u8::try_from(usize::from(b) % n).unwrap_or_default();
                    }
                };
            }
            let passes = members.iter().all(|(set, min)| {
                *min <= 0
                    || candidate
                        .iter()
                        .filter(|i| set.get(usize::from(**i)).copied().unwrap_or(false))
                        .count()
                        >= usize::try_from(*min).unwrap_or(usize::MAX)
            });
            if passes {
                let password: String = candidate
                    .iter()
                    .filter_map(|i| self.charset.get(usize::from(*i)))
                    .collect();
                return Ok(SecretString::new(password));
            }
        }
        Err("timed out generating string".to_owned())
    }

    /// OpenBao's check on write: a test password built from each rule's `min-chars` and
    /// filled round-robin from the rules must pass every rule. With charset rules that always
    /// holds once the policy is valid, except for a rule with an empty charset (OpenBao's
    /// request panics there; Tresor refuses the policy).
    pub fn constructible(&self) -> bool {
        self.rules.iter().all(|r| !r.charset.is_empty())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn policy(text: &str) -> PasswordPolicy {
        PasswordPolicy::parse(text).unwrap()
    }

    /// Property: every draw has the policy's length, only charset characters, and meets every
    /// rule; over many draws every charset character occurs.
    fn check_many(text: &str, draws: usize) {
        let p = policy(text);
        let mut seen: HashMap<char, usize> = HashMap::new();
        for _ in 0..draws {
            let pw = p.generate().unwrap();
            let chars: Vec<char> = pw.expose().chars().collect();
            assert_eq!(chars.len() as i64, p.length);
            for c in &chars {
                assert!(p.charset.contains(c), "{c:?} is not in the charset");
                *seen.entry(*c).or_default() += 1;
            }
            for rule in &p.rules {
                let count = chars.iter().filter(|c| rule.charset.contains(c)).count() as i64;
                assert!(count >= rule.min_chars, "rule {rule:?} fails");
            }
        }
        for c in &p.charset {
            assert!(seen.contains_key(c), "{c:?} never drawn in {draws} draws");
        }
    }

    #[test]
    fn every_draw_satisfies_its_rules_and_every_character_occurs() {
        check_many(
            "length = 20\nrule \"charset\" {\n charset = \"abcdefghijklmnopqrstuvwxyz\"\n min-chars = 1\n}\nrule \"charset\" {\n charset = \"ABCDEFGHIJKLMNOPQRSTUVWXYZ\"\n min-chars = 1\n}\nrule \"charset\" {\n charset = \"0123456789\"\n min-chars = 3\n}\nrule \"charset\" {\n charset = \"!@#$%^&*\"\n min-chars = 2\n}\n",
            2000,
        );
        check_many(
            "length = 4\nrule \"charset\" {\n charset = \"ab\"\n min-chars = 2\n}\nrule \"charset\" {\n charset = \"bc\"\n min-chars = 2\n}\n",
            500,
        );
        check_many(
            "length = 6\nrule \"charset\" {\n charset = \"αβγ日本€\"\n min-chars = 1\n}\n",
            500,
        );
    }

    #[test]
    fn characters_are_drawn_without_visible_bias() {
        // 3 symbols: 256 % 3 != 0, so a modulo-biased draw would favour the first one.
        let p = policy("length = 100\nrule \"charset\" {\n charset = \"abc\"\n}\n");
        let mut counts = [0usize; 3];
        for _ in 0..300 {
            for c in p.generate().unwrap().expose().chars() {
                counts[usize::from(c as u8 - b'a')] += 1;
            }
        }
        // 30 000 draws, expected 10 000 each; 5 sigma is about 410.
        for c in counts {
            assert!((9_500..=10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn a_full_byte_charset_and_too_long_charsets() {
        let all: String = (0x100u32..0x200).filter_map(char::from_u32).collect();
        let text = format!("length = 8\nrule \"charset\" {{\n charset = \"{all}\"\n}}\n");
        let p = policy(&text);
        assert_eq!(p.charset.len(), 256);
        assert_eq!(p.generate().unwrap().expose().chars().count(), 8);
        let more: String = (0x100u32..0x201).filter_map(char::from_u32).collect();
        let text = format!("length = 8\nrule \"charset\" {{\n charset = \"{more}\"\n}}\n");
        assert_eq!(
            policy(&text).generate().unwrap_err(),
            "unable to generate random characters: charset is too long: limited to 255 characters"
        );
    }

    #[test]
    fn an_unlikely_policy_gives_up_with_openbaos_message() {
        // Four required letters among 200 symbols: about one candidate in 70 million passes.
        let others: String = (0x100u32..0x1C4).filter_map(char::from_u32).collect();
        let text = format!(
            "length = 4\nrule \"charset\" {{\n charset = \"a\"\n min-chars = 1\n}}\nrule \"charset\" {{\n charset = \"b\"\n min-chars = 1\n}}\nrule \"charset\" {{\n charset = \"c\"\n min-chars = 1\n}}\nrule \"charset\" {{\n charset = \"d{others}\"\n min-chars = 1\n}}\n"
        );
        assert_eq!(
            policy(&text).generate_within(1000).unwrap_err(),
            "timed out generating string"
        );
    }

    #[test]
    fn passwords_differ() {
        let p = policy("length = 20\nrule \"charset\" {\n charset = \"abcdefgh\"\n}\n");
        assert_ne!(p.generate().unwrap(), p.generate().unwrap());
    }
}
