//! The per-request wrapper between hyper and the router: client address, the body read
//! deadline (`http_read_timeout`), the request deadline (`max_request_duration`), and the
//! connection's in-flight count (through a [`RequestGuard`] carried by the response body).
//! The handler runs in a task of its own, so a deadline or a vanished client never cancels
//! it half-way through a change.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use tresor_config::ListenerLimits;

use super::watch::{ConnState, RequestGuard};

/// Serves one request of a connection.
pub async fn serve(
    app: Router,
    state: Arc<ConnState>,
    limits: ListenerLimits,
    remote: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let http2 = request.version() == Version::HTTP_2;
    let guard = state.begin_request(http2);
    let timed_out = Arc::new(AtomicBool::new(false));
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(remote));
    let body = Body::new(DeadlineBody {
        inner: body,
        sleep: Box::pin(tokio::time::sleep_until(
            Instant::now() + limits.read_timeout,
        )),
        timed_out: Arc::clone(&timed_out),
    });
    // The handler runs as its own task, so it always runs to completion: neither this
    // deadline nor a client that hangs up (hyper then drops this future) can cancel it at an
    // await in the middle of a change (storage written but a cache or routing table not yet
    // updated, half of a multi-step cleanup). Past the deadline the client gets its 503 and
    // the task finishes on its own; its answer is dropped. See docs/configuration.md.
    let mut call = tokio::spawn(app.oneshot(Request::from_parts(parts, body)));
    let response = match tokio::time::timeout(limits.max_request_duration, &mut call).await {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(join)) => {
            // A panic in a handler: the task is gone, the client hears a plain 500.
            tracing::error!(panicked = join.is_panic(), "request handler task failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the request did not finish within max_request_duration ({:?})",
                limits.max_request_duration
            ),
        ),
    };
    let response = if timed_out.load(Ordering::Relaxed) {
        // Whatever the handler made of a body that stopped arriving, the client hears why; an
        // HTTP/1 connection is closed after it, since the rest of that body may still come.
        let mut response = error_response(
            StatusCode::REQUEST_TIMEOUT,
            "the request body was not received within http_read_timeout",
        );
        if !http2 {
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    } else {
        response
    };
    Ok(response.map(|body| {
        Body::new(Guarded {
            inner: body,
            _guard: guard,
        })
    }))
}

fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "errors": [message] }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The request body until its deadline; then an error, and `timed_out` set.
struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a body read gets once `http_read_timeout` has passed.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within http_read_timeout")]
struct BodyTimeout;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct Guarded {
    inner: Body,
    _guard: RequestGuard,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
