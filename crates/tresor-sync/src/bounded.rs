//! Runs futures with at most `limit` in flight and returns their outputs in input order. The
//! engine fetches its resources through this: 5,000 resources do not wait for one another's
//! round trips one by one, and the server never sees more than `limit` of them at once. No
//! task is spawned: the futures borrow the engine and run on the caller's task.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// `futures`, at most `limit` (at least 1) polled at a time, outputs in input order.
pub async fn ordered<F: Future>(
    futures: impl IntoIterator<Item = F>,
    limit: usize,
) -> Vec<F::Output> {
    let limit = limit.max(1);
    let mut pending = futures.into_iter().enumerate();
    let mut running: Vec<(usize, Pin<Box<F>>)> = Vec::with_capacity(limit);
    let mut done: Vec<Option<F::Output>> = Vec::new();
    std::future::poll_fn(|cx| {
        loop {
            while running.len() < limit {
                let Some((i, f)) = pending.next() else { break };
                running.push((i, Box::pin(f)));
            }
            if running.is_empty() {
                return Poll::Ready(());
            }
            // Every running future is polled on each wake-up: with a small limit that costs
            // less than tracking which one woke.
            let mut progressed = false;
            let mut k = 0;
            while let Some((i, f)) = running.get_mut(k) {
                match f.as_mut().poll(cx) {
                    Poll::Ready(out) => {
                        let i = *i;
                        if done.len() <= i {
                            done.resize_with(i + 1, || None);
                        }
                        if let Some(slot) = done.get_mut(i) {
                            *slot = Some(out);
                        }
                        running.swap_remove(k);
                        progressed = true;
                    }
                    Poll::Pending => k += 1,
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::ordered;

    #[tokio::test]
    async fn outputs_keep_input_order_and_in_flight_stays_bounded() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let started = AtomicUsize::new(0);
        let n = 50;
        // Later futures finish first (fewer yields), so completion order is reversed.
        let futures = (0..n).map(|i| {
            let (in_flight, most, started) = (&in_flight, &most, &started);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                for _ in 0..(n - i) {
                    tokio::task::yield_now().await;
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }
        });
        let out = ordered(futures, 8).await;
        assert_eq!(out, (0..n).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(started.load(Ordering::SeqCst), n);
        assert_eq!(
            most.load(Ordering::SeqCst),
            8,
            "the limit is reached and never passed"
        );
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_limit_of_one_is_sequential_and_zero_means_one() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let futures = (0..10).map(|i| {
            let (in_flight, most) = (&in_flight, &most);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                i
            }
        });
        assert_eq!(ordered(futures, 0).await, (0..10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let empty: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(ordered(empty, 4).await.is_empty());
    }
}
