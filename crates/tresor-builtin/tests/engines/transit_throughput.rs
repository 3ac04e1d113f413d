//! A rough in-process throughput check of the transit hot path against raw AES-256-GCM from
//! the same crate (ring) on one core. Ignored by default (timing depends on the machine);
//! run with `cargo test -p tresor-builtin --release --test engines transit_throughput --
//! --ignored --nocapture`. The real benchmark (HTTP, against OpenBao) is the bench harness.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::support;

use std::time::Instant;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::json;
use support::{Harness, b64};

const ITEM: usize = 1024;

fn raw_aes_bytes_per_sec(rounds: usize) -> f64 {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut buf = vec![0u8; ITEM];
    let start = Instant::now();
    for i in 0..rounds {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .unwrap();
        let _ = std::hint::black_box(tag);
    }
    (rounds * ITEM) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "timing measurement; run explicitly"]
async fn batch_encrypt_throughput_against_raw_aes_gcm() {
    let h = Harness::transit();
    h.write("keys/bench", json!({})).await.assert_status(200);
    let plaintext = b64(&[0x5au8; ITEM]);
    let items: Vec<_> = (0..100)
        .map(|_| json!({ "plaintext": plaintext }))
        .collect();
    let body = json!({ "batch_input": items });
    let single = json!({ "plaintext": plaintext });

    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let r = h.write("encrypt/bench", body.clone()).await;
        assert_eq!(r.status, 200);
    }
    let batch_rate = (rounds * 100 * ITEM) as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..rounds * 10 {
        let r = h.write("encrypt/bench", single.clone()).await;
        assert_eq!(r.status, 200);
    }
    let single_ops = (rounds * 10) as f64 / start.elapsed().as_secs_f64();

    let raw = raw_aes_bytes_per_sec(200_000);
    println!(
        "raw AES-256-GCM {:.0} MiB/s; engine batch 100×1KiB {:.0} MiB/s ({:.1}% of raw); engine single 1KiB {:.0} ops/s",
        raw / 1_048_576.0,
        batch_rate / 1_048_576.0,
        100.0 * batch_rate / raw,
        single_ops
    );
    assert!(
        batch_rate > raw / 50.0,
        "the engine should stay within 50× of raw AES-GCM"
    );
}
