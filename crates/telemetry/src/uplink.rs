//! How a process that does not host the built-in trace store sends its spans there: by
//! OTLP/HTTP (protobuf) to the receiver in the gateway's process, each body carrying a
//! credential that vouches for exactly that body.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use opentelemetry_http::{HttpClient, HttpError};

/// The `Authorization` header value for a request body; an error leaves it unsent.
pub type Authorize = Arc<dyn Fn(&[u8]) -> Result<String, String> + Send + Sync>;

/// Where spans go when this process has no store of its own.
#[derive(Clone)]
pub struct StoreUplink {
    /// The receiver's URL: `http://<gateway>/v1/traces`.
    pub url: String,
    /// Signs each body (a service credential over its digest, say).
    pub authorize: Authorize,
}

impl std::fmt::Debug for StoreUplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreUplink").field("url", &self.url).finish_non_exhaustive()
    }
}

/// The HTTP client of the uplink's exporter: a blocking client (the batch processor
/// exports from its own thread, outside any async runtime) that signs every body.
#[derive(Debug)]
pub(crate) struct SigningClient {
    inner: reqwest::blocking::Client,
    uplink: StoreUplink,
}

impl SigningClient {
    /// # Errors
    /// The HTTP client cannot be built (no TLS backend, say).
    pub(crate) fn new(uplink: StoreUplink) -> Result<SigningClient, String> {
        // A blocking client must not be built on an async runtime's thread.
        let inner = std::thread::spawn(|| {
            reqwest::blocking::Client::builder().timeout(crate::OTLP_TIMEOUT).build()
        })
        .join()
        .map_err(|_| "cannot build the trace uplink's HTTP client".to_owned())?
        .map_err(|e| format!("cannot build the trace uplink's HTTP client: {e}"))?;
        Ok(SigningClient { inner, uplink })
    }
}

#[async_trait]
impl HttpClient for SigningClient {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let credential = (self.uplink.authorize)(request.body())?;
        request.headers_mut().insert(AUTHORIZATION, HeaderValue::from_str(&credential)?);
        self.inner.send_bytes(request).await
    }
}
