//! Shamir secret sharing over GF(2^8), so that no single operator holds the root key.
//!
//! The share layout matches HashiCorp Vault's `shamir` package — the y bytes (one per secret
//! byte) followed by a single x byte — so unseal keys look and behave like Vault's.
//!
//! The field arithmetic is written to run in constant time: share bytes and the secret are key
//! material, so neither multiplication nor inversion may branch on them or use them as table
//! indices (log/exp tables leak through the cache).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use ring::rand::{SecureRandom, SystemRandom};
use tresor_sdk::secret::SecretBytes;
use zeroize::Zeroizing;

/// Why a split or combine was refused. Messages never contain share or secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    #[error("secret must not be empty")]
    EmptySecret,
    #[error("parts must be at least 2")]
    TooFewParts,
    #[error("parts cannot exceed 255")]
    TooManyParts,
    #[error("threshold must be at least 2")]
    ThresholdTooSmall,
    #[error("threshold cannot exceed parts")]
    ThresholdExceedsParts,
    #[error("at least 2 shares are required")]
    TooFewShares,
    #[error("shares must be at least 2 bytes long")]
    ShareTooShort,
    #[error("shares must have the same length")]
    ShareLengthMismatch,
    #[error("duplicate share")]
    DuplicateShare,
    #[error("share has an invalid x coordinate of 0")]
    ZeroCoordinate,
    #[error("system random number generator failed")]
    Random,
}

/// Splits `secret` into `parts` shares, any `threshold` of which recover it.
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<SecretBytes>, ShamirError> {
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    if parts < 2 {
        return Err(ShamirError::TooFewParts);
    }
    if parts > 255 {
        return Err(ShamirError::TooManyParts);
    }
    if threshold < 2 {
        return Err(ShamirError::ThresholdTooSmall);
    }
    if threshold > parts {
        return Err(ShamirError::ThresholdExceedsParts);
    }

    // Random x order, as Vault does, so a share's position in the output says nothing about
    // which coordinate it holds. The coordinates are public; only their order is randomised.
    let mut xs: Vec<u8> = (1..=255).collect();
    let mut rng = StdRng::try_from_os_rng().map_err(|_| ShamirError::Random)?;
    xs.shuffle(&mut rng);
    xs.truncate(parts);

    // One row of `threshold - 1` random coefficients per secret byte; the intercept is the
    // secret byte itself. Zeroizing because these coefficients, with the shares, are the secret.
    let degree = threshold - 1;
    let mut coefficients = Zeroizing::new(vec![0u8; secret.len() * degree]);
    SystemRandom::new()
        .fill(coefficients.as_mut_slice())
        .map_err(|_| ShamirError::Random)?;

    let mut shares = Vec::with_capacity(parts);
    for &x in &xs {
        // Exact capacity so the share never reallocates and leaves an unwiped copy behind.
        let mut share = Vec::with_capacity(secret.len() + 1);
        for (&intercept, row) in secret.iter().zip(coefficients.chunks_exact(degree)) {
            share.push(evaluate(intercept, row, x));
        }
        share.push(x);
        shares.push(SecretBytes::new(share));
    }
    Ok(shares)
}

/// Recovers the secret from shares produced by [`split`].
///
/// With fewer shares than the threshold this returns an unrelated value rather than an
/// error: the shares carry no threshold, which is exactly what makes them hide the secret.
pub fn combine(shares: &[&[u8]]) -> Result<SecretBytes, ShamirError> {
    let (first, rest) = shares.split_first().ok_or(ShamirError::TooFewShares)?;
    if rest.is_empty() {
        return Err(ShamirError::TooFewShares);
    }
    let share_len = first.len();
    if share_len < 2 {
        return Err(ShamirError::ShareTooShort);
    }
    if rest.iter().any(|s| s.len() != share_len) {
        return Err(ShamirError::ShareLengthMismatch);
    }
    let secret_len = share_len - 1;

    let mut xs = Vec::with_capacity(shares.len());
    let mut seen = [false; 256];
    for share in shares {
        let x = share.last().copied().ok_or(ShamirError::ShareTooShort)?;
        if x == 0 {
            return Err(ShamirError::ZeroCoordinate);
        }
        let slot = seen
            .get_mut(usize::from(x))
            .ok_or(ShamirError::ZeroCoordinate)?;
        if *slot {
            return Err(ShamirError::DuplicateShare);
        }
        *slot = true;
        xs.push(x);
    }

    // The Lagrange basis at 0 depends only on the public x coordinates, so compute it once:
    // basis_i = prod_{j != i} x_j / (x_j - x_i), where subtraction in GF(2^8) is XOR.
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            xs.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(1u8, |acc, (_, &xj)| gf_mul(acc, gf_div(xj, xj ^ xi)))
        })
        .collect();

    let mut secret = vec![0u8; secret_len];
    for (share, &weight) in shares.iter().zip(&basis) {
        for (out, &y) in secret.iter_mut().zip(share.iter()) {
            *out ^= gf_mul(weight, y);
        }
    }
    Ok(SecretBytes::new(secret))
}

/// Horner evaluation of `intercept + row[0]·x + row[1]·x² + …` at `x`.
fn evaluate(intercept: u8, row: &[u8], x: u8) -> u8 {
    let highest_first = row.iter().rev().fold(0u8, |acc, &c| gf_mul(acc, x) ^ c);
    gf_mul(highest_first, x) ^ intercept
}

/// Multiplication modulo the AES polynomial x⁸ + x⁴ + x³ + x + 1 (0x11b).
///
/// Masks stand in for the textbook `if` statements so the instruction trace is the same for
/// every input.
fn gf_mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & (b & 1).wrapping_neg();
        let carry = (a >> 7).wrapping_neg();
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// a⁻¹ = a²⁵⁴ (Fermat): a fixed chain of squarings, with no data-dependent branch.
/// Maps 0 to 0, which callers never rely on.
fn gf_inv(a: u8) -> u8 {
    // a^254 = a^2 · a^4 · a^8 · … · a^128.
    let mut square = a;
    let mut result = 1u8;
    for _ in 0..7 {
        square = gf_mul(square, square);
        result = gf_mul(result, square);
    }
    result
}

fn gf_div(a: u8, b: u8) -> u8 {
    gf_mul(a, gf_inv(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Textbook shift-and-add with branches, kept only as an independent oracle for `gf_mul`.
    fn slow_mul(a: u8, b: u8) -> u8 {
        let mut acc: u16 = 0;
        for bit in 0..8 {
            if b & (1 << bit) != 0 {
                acc ^= u16::from(a) << bit;
            }
        }
        for bit in (8..16).rev() {
            if acc & (1 << bit) != 0 {
                acc ^= 0x11b << (bit - 8);
            }
        }
        acc as u8
    }

    fn refs(shares: &[SecretBytes]) -> Vec<&[u8]> {
        shares.iter().map(SecretBytes::expose).collect()
    }

    #[test]
    fn mul_matches_the_reference_for_every_pair() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(gf_mul(a, b), slow_mul(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn mul_known_answers() {
        // FIPS-197 §4.2: {57} · {83} = {c1}, {57} · {13} = {fe}.
        assert_eq!(gf_mul(0x57, 0x83), 0xc1);
        assert_eq!(gf_mul(0x57, 0x13), 0xfe);
    }

    #[test]
    fn every_nonzero_element_times_its_inverse_is_one() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "a = {a}");
            assert_eq!(gf_div(a, a), 1);
        }
        assert_eq!(gf_inv(0), 0);
    }

    #[test]
    fn mul_is_commutative_associative_and_distributive_on_samples() {
        let samples = [0u8, 1, 2, 3, 0x53, 0x57, 0x80, 0xca, 0xfe, 0xff];
        for &a in &samples {
            assert_eq!(gf_mul(a, 1), a);
            assert_eq!(gf_mul(a, 0), 0);
            for &b in &samples {
                assert_eq!(gf_mul(a, b), gf_mul(b, a));
                for &c in &samples {
                    assert_eq!(gf_mul(gf_mul(a, b), c), gf_mul(a, gf_mul(b, c)));
                    assert_eq!(gf_mul(a, b ^ c), gf_mul(a, b) ^ gf_mul(a, c));
                }
            }
        }
    }

    #[test]
    fn parameters_are_validated() {
        assert_eq!(split(b"", 3, 2).unwrap_err(), ShamirError::EmptySecret);
        assert_eq!(split(b"s", 1, 2).unwrap_err(), ShamirError::TooFewParts);
        assert_eq!(split(b"s", 256, 2).unwrap_err(), ShamirError::TooManyParts);
        assert_eq!(
            split(b"s", 3, 1).unwrap_err(),
            ShamirError::ThresholdTooSmall
        );
        assert_eq!(
            split(b"s", 3, 4).unwrap_err(),
            ShamirError::ThresholdExceedsParts
        );
        assert_eq!(
            ShamirError::ThresholdTooSmall.to_string(),
            "threshold must be at least 2"
        );
        assert_eq!(
            ShamirError::TooManyParts.to_string(),
            "parts cannot exceed 255"
        );
    }

    #[test]
    fn malformed_share_sets_are_rejected() {
        let shares = split(b"secret", 3, 2).unwrap();
        let [a, b, _] = [&shares[0], &shares[1], &shares[2]].map(SecretBytes::expose);
        assert_eq!(combine(&[]).unwrap_err(), ShamirError::TooFewShares);
        assert_eq!(combine(&[a]).unwrap_err(), ShamirError::TooFewShares);
        assert_eq!(combine(&[a, a]).unwrap_err(), ShamirError::DuplicateShare);
        assert_eq!(
            combine(&[a, &b[1..]]).unwrap_err(),
            ShamirError::ShareLengthMismatch
        );
        assert_eq!(
            combine(&[&a[..1], &b[..1]]).unwrap_err(),
            ShamirError::ShareTooShort
        );
        let mut zero_x = b.to_vec();
        *zero_x.last_mut().unwrap() = 0;
        assert_eq!(
            combine(&[a, &zero_x]).unwrap_err(),
            ShamirError::ZeroCoordinate
        );
        assert_eq!(ShamirError::DuplicateShare.to_string(), "duplicate share");
    }

    #[test]
    fn shares_have_vault_layout_with_distinct_nonzero_x() {
        let secret = b"0123456789abcdef";
        let shares = split(secret, 255, 3).unwrap();
        assert_eq!(shares.len(), 255);
        let mut xs: Vec<u8> = shares.iter().map(|s| *s.expose().last().unwrap()).collect();
        assert!(shares.iter().all(|s| s.len() == secret.len() + 1));
        assert!(!xs.contains(&0));
        // 255 distinct nonzero values: every x appears once. The order is random, so it is
        // (with overwhelming probability) not simply ascending.
        let ascending: Vec<u8> = (1..=255).collect();
        assert_ne!(xs, ascending);
        xs.sort_unstable();
        assert_eq!(xs, ascending);
    }

    #[test]
    fn one_share_of_a_two_of_n_split_is_uniform_whatever_the_secret() {
        // y = s + a·x with a uniform and x ≠ 0, so y is uniform for every s. Checked with a
        // chi-square statistic over 256 bins (255 degrees of freedom, mean 255, sd ≈ 22.6);
        // 400 is ≈ 6 sd out, so a correct implementation fails with negligible probability,
        // while a secret-dependent bias of a few percent per bin would be caught.
        const SPLITS: usize = 256 * 40;
        for secret in [0x00u8, 0x5a, 0xff] {
            let mut counts = [0u32; 256];
            for _ in 0..SPLITS {
                let shares = split(&[secret], 2, 2).unwrap();
                counts[usize::from(shares[0].expose()[0])] += 1;
            }
            assert!(counts.iter().all(|&c| c > 0), "some y value never appeared");
            let expected = SPLITS as f64 / 256.0;
            let chi2: f64 = counts
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            assert!(chi2 < 400.0, "chi-square {chi2} for secret {secret:#04x}");
        }
    }

    /// Secret, parts and threshold, with parts mostly small (fast) and occasionally 255.
    fn scheme(min_secret: usize) -> impl Strategy<Value = (Vec<u8>, usize, usize)> {
        let parts = prop_oneof![9 => 2usize..=20, 1 => Just(255usize)];
        (
            proptest::collection::vec(any::<u8>(), min_secret..64),
            parts,
        )
            .prop_flat_map(|(secret, parts)| (Just(secret), Just(parts), 2..=parts))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_threshold_sized_or_larger_subset_recovers_the_secret(
            (secret, parts, threshold) in scheme(1),
            seed in any::<u64>(),
            extra in 0usize..=255,
        ) {
            let mut shares = split(&secret, parts, threshold).unwrap();
            let size = threshold + extra % (parts - threshold + 1);
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            shares.shuffle(&mut rng);
            let recovered = combine(&refs(&shares[..size])).unwrap();
            prop_assert_eq!(recovered.expose(), &secret[..]);
        }

        #[test]
        fn fewer_than_threshold_shares_do_not_reproduce_the_secret(
            (secret, parts, threshold) in scheme(16),
            seed in any::<u64>(),
        ) {
            let mut shares = split(&secret, parts, threshold).unwrap();
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            shares.shuffle(&mut rng);
            match combine(&refs(&shares[..threshold - 1])) {
                // A single share (threshold 2) is refused outright.
                Err(e) => prop_assert_eq!(e, ShamirError::TooFewShares),
                Ok(guess) => prop_assert_ne!(guess.expose(), &secret[..]),
            }
        }

        #[test]
        fn combine_ignores_share_order(
            (secret, parts, threshold) in scheme(1),
            seed in any::<u64>(),
        ) {
            let shares = split(&secret, parts, threshold).unwrap();
            let subset = refs(&shares[..threshold]);
            let mut permuted = subset.clone();
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            permuted.shuffle(&mut rng);
            prop_assert_eq!(combine(&subset).unwrap(), combine(&permuted).unwrap());
        }

        #[test]
        fn tampering_a_y_byte_changes_the_result(
            (secret, parts, threshold) in scheme(1),
            which in any::<prop::sample::Index>(),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let shares = split(&secret, parts, threshold).unwrap();
            let mut subset: Vec<Vec<u8>> =
                shares[..threshold].iter().map(|s| s.expose().to_vec()).collect();
            // Every Lagrange weight is nonzero, so any change to a y byte reaches the output.
            let victim = which.index(threshold);
            subset[victim][position.index(secret.len())] ^= flip;
            let tampered: Vec<&[u8]> = subset.iter().map(Vec::as_slice).collect();
            let recovered = combine(&tampered).unwrap();
            prop_assert_ne!(recovered.expose(), &secret[..]);
        }

        #[test]
        fn tampering_an_x_byte_changes_the_result_or_is_rejected(
            (secret, parts, threshold) in scheme(16),
            which in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let shares = split(&secret, parts, threshold).unwrap();
            let mut subset: Vec<Vec<u8>> =
                shares[..threshold].iter().map(|s| s.expose().to_vec()).collect();
            let victim = which.index(threshold);
            *subset[victim].last_mut().unwrap() ^= flip;
            let tampered: Vec<&[u8]> = subset.iter().map(Vec::as_slice).collect();
            match combine(&tampered) {
                Err(e) => prop_assert!(
                    matches!(e, ShamirError::DuplicateShare | ShamirError::ZeroCoordinate)
                ),
                Ok(guess) => prop_assert_ne!(guess.expose(), &secret[..]),
            }
        }
    }
}
