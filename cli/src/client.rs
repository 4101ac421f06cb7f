//! A small blocking client for the node's HTTP API, with errors a person can act on.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

/// Largest JSON answer read from a node.
pub const MAX_JSON_ANSWER: u64 = 64 * 1024 * 1024;
/// Largest genesis document read from a node.
pub const MAX_GENESIS_ANSWER: u64 = ledger_core::codec::MAX_GENESIS_BYTES as u64;
/// How long one request may take before the CLI gives up (an export is streamed, and may take longer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached at all.
    #[error("cannot reach the node at {url}: {detail} (is it running? see --node)")]
    Unreachable { url: String, detail: String },
    /// The node answered with an error.
    #[error("the node refused: {message} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The node's answer could not be read.
    #[error("bad answer from the node at {url}: {detail}")]
    BadAnswer { url: String, detail: String },
}

/// A node's API.
#[derive(Debug, Clone)]
pub struct Node {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Node {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7300`).
    pub fn new(base: &str, token: Option<String>) -> Node {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Node {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: ureq::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            detail: e.to_string(),
        }
    }

    fn bad(&self, detail: impl ToString) -> ClientError {
        ClientError::BadAnswer {
            url: self.base.clone(),
            detail: detail.to_string(),
        }
    }

    /// Turns a non-2xx answer into `Refused` with the node's `{code, message}`.
    fn check(&self, mut r: ureq::http::Response<ureq::Body>) -> Result<ureq::Body, ClientError> {
        let status = r.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(r.into_body());
        }
        let body = r
            .body_mut()
            .with_config()
            .limit(MAX_JSON_ANSWER)
            .read_to_vec()
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Err(ClientError::Refused {
            status,
            code: v["code"].as_str().unwrap_or("http-error").to_owned(),
            message: v["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
        })
    }

    /// GET with the request time limit; the body of a 2xx answer.
    fn get(&self, path: &str) -> Result<ureq::Body, ClientError> {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .call()
            .map_err(|e| self.unreachable(e))?;
        self.check(r)
    }

    /// POST with the request time limit and the bearer token; the body of a 2xx answer.
    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<ureq::Body, ClientError> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .header("content-type", content_type);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let r = req.send(body).map_err(|e| self.unreachable(e))?;
        self.check(r)
    }

    /// Reads a JSON answer (at most [`MAX_JSON_ANSWER`] bytes).
    fn json(&self, mut body: ureq::Body) -> Result<Value, ClientError> {
        let bytes = body
            .with_config()
            .limit(MAX_JSON_ANSWER)
            .read_to_vec()
            .map_err(|e| self.bad(e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.bad(format!("not JSON: {e}")))
    }

    /// GET a JSON document.
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let body = self.get(path)?;
        self.json(body)
    }

    /// GET bytes (at most `limit`).
    pub fn get_bytes(&self, path: &str, limit: u64) -> Result<Vec<u8>, ClientError> {
        let mut body = self.get(path)?;
        body.with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| self.bad(e))
    }

    /// GET a stream (the export), with no overall time limit.
    pub fn get_stream(&self, path: &str) -> Result<impl Read + use<>, ClientError> {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .map_err(|e| self.unreachable(e))?;
        Ok(self.check(r)?.into_reader())
    }

    /// POST JSON with the bearer token.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let answer = self.post(path, "application/json", body.to_string().as_bytes())?;
        self.json(answer)
    }

    /// POST exact event bytes with the bearer token (`/v1/events`).
    pub fn post_event(&self, bytes: &[u8]) -> Result<Value, ClientError> {
        let answer = self.post("/v1/events", "application/octet-stream", bytes)?;
        self.json(answer)
    }
}
