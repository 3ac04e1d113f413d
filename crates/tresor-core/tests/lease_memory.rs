//! Memory per outstanding lease in the expiration manager's timer queue (the figure the
//! 100,000-lease restart target depends on), measured as the growth of this process's resident
//! set while 100,000 token leases are queued. Allocator overhead and fragmentation included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use tresor_core::expiration::TimerQueue;

#[cfg(target_os = "linux")]
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn a_queued_token_lease_costs_under_200_bytes() {
    const N: usize = 100_000;
    let queue = TimerQueue::new();
    let before = resident_bytes();
    for i in 0..N {
        // A token lease id: the creation path and a 64-hex-digit id hash, built in place so
        // only what the queue keeps stays allocated.
        let id = format!("auth/token/create/{:064x}", i as u128 * 7919);
        queue.schedule(1_000_000_000 + i as i64, &id);
    }
    let per_lease = resident_bytes().saturating_sub(before) / N;
    eprintln!("timer queue: {per_lease} resident bytes per queued token lease");
    assert_eq!(queue.len(), N);
    assert!(
        per_lease > 0 && per_lease < 200,
        "{per_lease} bytes per lease"
    );
}
