//! The one HTTP client every call to an identity provider goes through (discovery, keys, token
//! exchange): a timeout per request, a cap on the response body and no redirects, so a slow,
//! huge or redirecting answer cannot stall a login or fill the hub's memory.
use openidconnect::{http, AsyncHttpClient, HttpRequest, HttpResponse};
use std::{future::Future, pin::Pin, time::Duration};

/// Per request, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents and key sets are a few KiB; Entra's are the largest seen, under 20 KiB.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct BoundedHttp {
    client: reqwest::Client,
    max_body: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request to {url} failed: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
}

impl BoundedHttp {
    pub fn new() -> anyhow::Result<BoundedHttp> {
        Self::with_limits(TIMEOUT, MAX_BODY)
    }

    pub fn with_limits(timeout: Duration, max_body: usize) -> anyhow::Result<BoundedHttp> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout)
            // OpenID Connect endpoints answer directly; following redirects would only widen
            // where the hub can be sent.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(BoundedHttp { client, max_body })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = request.uri().to_string();
        let failed = |source| HttpError::Request {
            url: url.clone(),
            source,
        };
        let request = reqwest::Request::try_from(request).map_err(failed)?;
        let mut response = self.client.execute(request).await.map_err(failed)?;
        let too_large = || HttpError::TooLarge {
            url: url.clone(),
            limit: self.max_body,
        };
        if response.content_length().unwrap_or(0) > self.max_body as u64 {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::builder().status(response.status());
        if let Some(headers) = out.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        Ok(out
            .body(body)
            .expect("status and headers come from a valid response"))
    }
}

impl<'c> AsyncHttpClient<'c> for BoundedHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
