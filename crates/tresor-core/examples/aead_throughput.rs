//! The crypto baseline for transit benchmarks: raw AES-256-GCM sealing throughput of `ring` (the
//! crate transit encrypts with) on one core, 1 KiB messages, a fresh random 96-bit nonce each, as
//! transit does. `bench/run` runs it and compares the transit batch workload's plaintext bytes/s
//! with it. Prints one line: `AEAD_BASELINE {"bytes_per_sec": …, "messages_per_sec": …}`.
//!
//! Run with `cargo run --release -p tresor-core --example aead_throughput [seconds]`.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const MESSAGE: usize = 1024;

fn main() -> Result<(), Box<dyn Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let rng = SystemRandom::new();
    let mut key_bytes = [0u8; 32];
    rng.fill(&mut key_bytes).map_err(|_| "rng")?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).map_err(|_| "key")?);
    let plaintext = vec![0x5au8; MESSAGE];
    let mut buffer = Vec::with_capacity(MESSAGE + 16);

    let run = |budget: Duration, buffer: &mut Vec<u8>| -> Result<(u64, Duration), String> {
        let start = Instant::now();
        let mut messages = 0u64;
        while start.elapsed() < budget {
            for _ in 0..256 {
                let mut nonce = [0u8; NONCE_LEN];
                rng.fill(&mut nonce).map_err(|_| "rng")?;
                buffer.clear();
                buffer.extend_from_slice(&plaintext);
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    buffer,
                )
                .map_err(|_| "seal")?;
                black_box(&buffer);
                messages += 1;
            }
        }
        Ok((messages, start.elapsed()))
    };

    run(Duration::from_millis(500), &mut buffer)?; // warm-up
    let (messages, elapsed) = run(Duration::from_secs(seconds), &mut buffer)?;
    let per_sec = messages as f64 / elapsed.as_secs_f64();
    println!(
        "AEAD_BASELINE {{\"bytes_per_sec\": {:.0}, \"messages_per_sec\": {:.0}, \"message_bytes\": {MESSAGE}}}",
        per_sec * MESSAGE as f64,
        per_sec
    );
    Ok(())
}
