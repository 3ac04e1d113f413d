//! Sending several statements on one connection without waiting for each answer.
//!
//! `tokio-postgres` puts a request on the wire the first time its future is polled and
//! PostgreSQL answers in order, so polling a list of request futures front to back sends them
//! in that order in one round trip. [`in_order`] guarantees that order on every poll (a
//! general `join_all` does not promise it), which a `BEGIN … COMMIT` block depends on.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// A request on the wire, boxed so that different statements share one list.
pub(super) type Request<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// Polls every request front to back until all have answered; the answers come back in the
/// same order.
pub(super) async fn in_order<T>(
    mut requests: Vec<Request<'_, T>>,
) -> Vec<Result<T, tokio_postgres::Error>> {
    let mut answers: Vec<Option<Result<T, tokio_postgres::Error>>> =
        requests.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (request, answer) in requests.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(result) => *answer = Some(result),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    answers.into_iter().flatten().collect()
}
