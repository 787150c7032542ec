//! The unread rest of a refused upload, read and discarded so the refusal reaches the client.
//!
//! An upload can be refused before its body is read (no `altinn:broker.write` scope, an unknown
//! transfer, a declared length over the limit). The server then closes the connection with the
//! client's bytes still unread, the kernel answers them with a reset, and a client busy sending
//! sees "connection reset" instead of the problem+json it was sent. Reading a bounded rest of the
//! body first lets the answer through; past the bound the connection is closed as before.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;

/// Most bytes of a refused body read before giving up on it.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;
/// Longest time spent reading them.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long an error answer waits for the handler to let go of the body: a body that went into
/// a gRPC stream is dropped by the connection's task shortly after the call failed.
const RELEASE_TIME: Duration = Duration::from_millis(200);

/// Middleware: after an error answer, reads what its handler left of the request body.
pub async fn drain_refused(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (released, unread) = oneshot::channel();
    let body = Body::new(Tracked {
        inner: Some(body),
        released: Some(released),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    let refused = response.status().is_client_error() || response.status().is_server_error();
    if refused && let Ok(Ok(Some(rest))) = tokio::time::timeout(RELEASE_TIME, unread).await {
        drain(rest).await;
    }
    response
}

async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut read = 0;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len();
            if read > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// A request body that, when dropped, hands over what is left of it (`None` when read to the
/// end).
struct Tracked {
    inner: Option<Body>,
    released: Option<oneshot::Sender<Option<Body>>>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let rest = self
            .inner
            .take()
            .filter(|body| !http_body::Body::is_end_stream(body));
        if let Some(released) = self.released.take() {
            // Nobody listens after a successful answer; the rest is then simply dropped.
            let _ = released.send(rest);
        }
    }
}
