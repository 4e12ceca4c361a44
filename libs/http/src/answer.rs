//! Reading a far end's answer within a bound. Help desks, knowledge bases,
//! monitoring APIs and LLM providers are at addresses a tenant configures:
//! one that answered with gigabytes would otherwise be read whole into the
//! memory of a process every tenant shares.

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;

/// The most of one answer read: far above any page of notes, tickets or a
/// completion, far below what would hurt a process.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the answer: {0}")]
    Read(#[source] reqwest::Error),
    #[error("the answer is not the JSON expected: {0}")]
    Json(#[source] serde_json::Error),
}

/// The answer's body, refused past `max` bytes (by its declared length
/// before reading anything, else as it arrives).
pub async fn bytes_within(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Bytes, AnswerError> {
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(AnswerError::TooLarge(max));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(AnswerError::Read)? {
        if body.len() + chunk.len() > max {
            return Err(AnswerError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The answer's body (at most [`MAX_ANSWER_BYTES`]) as JSON.
pub async fn json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, AnswerError> {
    let body = bytes_within(response, MAX_ANSWER_BYTES).await?;
    serde_json::from_slice(&body).map_err(AnswerError::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    #[tokio::test]
    async fn an_answer_past_the_bound_is_refused_whether_or_not_it_declares_its_length() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let declared = || async { "x".repeat(2048) };
        // Streamed, without a length: refused as it arrives.
        let streamed = || async {
            let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from("y".repeat(512))));
            axum::body::Body::from_stream(futures::stream::iter(chunks))
        };
        let url = serve(
            axum::Router::new()
                .route("/declared", get(declared))
                .route("/streamed", get(streamed)),
        )
        .await;
        let get = |path: &str| reqwest::get(format!("{url}{path}"));
        for path in ["/declared", "/streamed"] {
            let refused = bytes_within(get(path).await.unwrap(), 1024).await;
            assert!(
                matches!(refused, Err(AnswerError::TooLarge(1024))),
                "{path}"
            );
            let read = bytes_within(get(path).await.unwrap(), 4096).await.unwrap();
            assert_eq!(read.len(), 2048, "{path}");
        }
    }
}
