//! The transport of a push: [`Transport`] is what the dispatcher needs
//! (send a signed body to a URL by a deadline, say what became of it);
//! [`HttpTransport`] is the real one: sign, POST with a deadline, read a
//! bounded answer, and classify what happened. Keep-alive connections are
//! pooled per endpoint by reqwest. The simulation plugs in its own.

use reqwest::StatusCode;

use crate::engine::TraceContext;
use crate::signing::{self, Secret};

/// What became of one push.
#[derive(Debug)]
pub enum Delivery {
    /// The endpoint answered; the body is at most the configured size.
    Answered { status: StatusCode, body: Vec<u8> },
    /// The endpoint did not take the request (connection refused, 429, 503):
    /// no handler code ran.
    Refused(String),
    /// No complete answer before the deadline.
    TimedOut,
    /// Anything else: a broken connection, an oversized answer.
    Failed(String),
}

/// Sends one push and reports what became of it.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// POSTs `body` to `url`, signed with every secret (Standard Webhooks)
    /// at `now_secs`, waiting at most `timeout` for the whole answer;
    /// `trace` goes along as the `traceparent` / `tracestate` headers.
    async fn push(
        &self,
        url: &str,
        secrets: &[Secret],
        body: Vec<u8>,
        timeout: std::time::Duration,
        now_secs: i64,
        trace: Option<&TraceContext>,
    ) -> Delivery;
}

/// Pushes over HTTP(S) with reqwest.
#[derive(Clone)]
pub struct HttpTransport {
    http: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpTransport {
    /// `roots`: CAs `https://` endpoints may be signed by, besides the
    /// built-in web roots (certificates are always verified).
    pub fn new(max_response_bytes: usize, roots: Vec<reqwest::Certificate>) -> HttpTransport {
        let mut builder = reqwest::Client::builder();
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
        let http = builder
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        HttpTransport {
            http,
            max_response_bytes,
        }
    }
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    async fn push(
        &self,
        url: &str,
        secrets: &[Secret],
        body: Vec<u8>,
        timeout: std::time::Duration,
        now_secs: i64,
        trace: Option<&TraceContext>,
    ) -> Delivery {
        let msg_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let signature = signing::sign(secrets, &msg_id, now_secs, &body);
        let mut request = self
            .http
            .post(url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", now_secs.to_string())
            .header("webhook-signature", signature);
        if let Some(trace) = trace {
            request = request.header("traceparent", &trace.traceparent);
            if let Some(state) = &trace.tracestate {
                request = request.header("tracestate", state);
            }
        }
        let request = request.body(body);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Delivery::TimedOut,
            Err(e) if e.is_connect() => return Delivery::Refused(error_chain(&e)),
            Err(e) => return Delivery::Failed(error_chain(&e)),
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            return Delivery::Refused(format!("endpoint answered {status}"));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_response_bytes {
                        return Delivery::Failed(format!(
                            "answer exceeds {} bytes",
                            self.max_response_bytes
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Delivery::TimedOut,
                Err(e) => return Delivery::Failed(error_chain(&e)),
            }
        }
        Delivery::Answered { status, body }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
