//! The only code that knows WebUntis (SPEC §3): the token, the OneRoster rosters and the
//! class-register absences. It returns `model` types and never writes the store.

mod absences;
mod oneroster;
mod token;

pub use absences::StudentAbsences;

use crate::config::UntisConfig;
use crate::model::{Roster, SchoolYear};
use chrono::NaiveDate;
use rand::Rng;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use token::TokenCache;

/// Path of the OneRoster 1.1 API below `api_base`.
const ONEROSTER_PATH: &str = "ims/oneroster/v1p1/";
/// Path of the class-register absences API below `api_base`.
const ABSENCES_PATH: &str = "WebUntis/api/rest/extern/v1/classreg/students/absencetimes";
/// Page size for OneRoster lists.
pub const PAGE_LIMIT: usize = 500;
/// Attempts for retryable answers (429, 502, 503, 504, network errors).
const MAX_ATTEMPTS: u32 = 5;
/// Retries after a 500.
const MAX_RETRIES_ON_500: u32 = 2;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one backoff pause, including a server's `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, thiserror::Error)]
pub enum UntisError {
    #[error("{0}")]
    Auth(String),
    #[error(
        "WebUntis refused {0} (403): the permission is not granted in the WebUntis platform app; ask the school's WebUntis admin to grant it under Administration → Plattform"
    )]
    Forbidden(String),
    #[error("WebUntis answered {status} to {what}")]
    Status {
        what: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("cannot reach WebUntis ({what}): {detail}")]
    Network { what: String, detail: String },
    #[error("WebUntis sent an answer that cannot be read: {0}")]
    Parse(String),
    #[error("{0}")]
    Setup(String),
}

impl UntisError {
    fn network(what: &str, e: &reqwest::Error) -> UntisError {
        let detail = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed (check untis.api_base and the network)".to_string()
        } else {
            // The chain without the URL: it may carry the tenant, never a secret, but stays short.
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        };
        UntisError::Network {
            what: what.to_string(),
            detail,
        }
    }

    /// Whether another attempt may succeed.
    fn retryable(&self, retries_on_500: u32) -> bool {
        match self {
            UntisError::Network { .. } => true,
            UntisError::Status { status, .. } => {
                matches!(status, 429 | 502 | 503 | 504)
                    || (*status == 500 && retries_on_500 < MAX_RETRIES_ON_500)
            }
            _ => false,
        }
    }
}

/// Counts requests, for the status page and the request-count tests.
#[derive(Default)]
pub struct RequestCounter {
    data: AtomicU32,
    token: AtomicU32,
}

impl RequestCounter {
    fn count_data(&self) {
        self.data.fetch_add(1, Ordering::Relaxed);
    }
    fn count_token(&self) {
        self.token.fetch_add(1, Ordering::Relaxed);
    }
}

/// A client for one school (tenant). Tokens are per client, so a token never reaches another
/// tenant's URL.
pub struct UntisClient {
    http: reqwest::Client,
    base: url::Url,
    tokens: TokenCache,
    counter: RequestCounter,
    timeout: Duration,
}

impl UntisClient {
    pub fn new(cfg: &UntisConfig) -> Result<UntisClient, UntisError> {
        let mut base = cfg.api_base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fehlzeiten/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                UntisError::Setup(format!("cannot read untis.ca_file {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                UntisError::Setup(format!("untis.ca_file {} is not PEM: {e}", ca.display()))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| UntisError::Setup(format!("cannot set up the HTTP client: {e}")))?;
        let token_url = base
            .join(&format!(
                "WebUntis/api/sso/v3/{}/token",
                url_segment(&cfg.tenant_id)
            ))
            .map_err(|e| UntisError::Setup(format!("bad untis.api_base: {e}")))?;
        Ok(UntisClient {
            http,
            tokens: TokenCache::new(token_url, cfg.client_id.clone(), cfg.password.clone()),
            base,
            counter: RequestCounter::default(),
            timeout: cfg.request_timeout,
        })
    }

    /// Data requests made so far (token requests not included).
    pub fn data_requests(&self) -> u32 {
        self.counter.data.load(Ordering::Relaxed)
    }

    /// Token requests made so far.
    pub fn token_requests(&self) -> u32 {
        self.counter.token.load(Ordering::Relaxed)
    }

    /// The active school year: the `schoolYear` session containing `today`, else the one
    /// marked active.
    pub async fn school_year(&self, today: NaiveDate) -> Result<SchoolYear, UntisError> {
        oneroster::school_year(self, today).await
    }

    /// Klassen, students, teachers and their memberships.
    pub async fn roster(&self) -> Result<Roster, UntisError> {
        oneroster::roster(self).await
    }

    /// The register entries of one Klasse between two dates (inclusive), which must lie in one
    /// school year.
    pub async fn absences(
        &self,
        klasse: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StudentAbsences>, UntisError> {
        absences::fetch(self, klasse, from, to).await
    }

    /// GET a JSON document with a bearer token: renews the token once on 401, retries what may
    /// pass on a later attempt with exponential backoff and jitter, honouring `Retry-After`.
    async fn get_json(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, UntisError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| UntisError::Setup(format!("bad URL for {what}: {e}")))?;
        let mut attempt = 0u32;
        let mut retries_on_500 = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            let result = self.get_once(what, &url, query).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(GetError::Unauthorized(token)) if !renewed => {
                    renewed = true;
                    self.tokens.invalidate(&token).await;
                    continue;
                }
                Err(GetError::Unauthorized(_)) => {
                    return Err(UntisError::Auth(format!(
                        "WebUntis rejected a fresh token for {what} (401): the platform app may be deactivated for this school"
                    )));
                }
                Err(GetError::Other(e)) => e,
            };
            if !err.retryable(retries_on_500) || attempt >= MAX_ATTEMPTS {
                return Err(err);
            }
            if matches!(err, UntisError::Status { status: 500, .. }) {
                retries_on_500 += 1;
            }
            let retry_after = match &err {
                UntisError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            tokio::time::sleep(backoff(attempt, retry_after)).await;
        }
    }

    async fn get_once(
        &self,
        what: &str,
        url: &url::Url,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, GetError> {
        let token = self
            .tokens
            .get(&self.http, &self.counter)
            .await
            .map_err(GetError::Other)?;
        self.counter.count_data();
        let resp = self
            .http
            .get(url.clone())
            .query(query)
            .bearer_auth(&token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| GetError::Other(UntisError::network(what, &e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(GetError::Unauthorized(token));
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            return Err(GetError::Other(UntisError::Forbidden(what.to_string())));
        }
        if !status.is_success() {
            return Err(GetError::Other(UntisError::Status {
                what: what.to_string(),
                status: status.as_u16(),
                retry_after: retry_after(resp.headers()),
            }));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| GetError::Other(UntisError::network(what, &e)))?;
        serde_json::from_slice(&body)
            .map_err(|e| GetError::Other(UntisError::Parse(format!("{what}: invalid JSON ({e})"))))
    }
}

enum GetError {
    /// 401 with this token.
    Unauthorized(String),
    Other(UntisError),
}

/// `Retry-After` as seconds or HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Exponential backoff with full jitter: up to 0.5 s · 2^(attempt-1), at least what the server
/// asked for, never more than [`MAX_BACKOFF`].
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let cap = Duration::from_millis(500u64.saturating_mul(1 << (attempt - 1).min(10)));
    let jitter = Duration::from_millis(rand::rng().random_range(0..=cap.as_millis() as u64));
    retry_after
        .unwrap_or(Duration::ZERO)
        .max(jitter)
        .min(MAX_BACKOFF)
}

/// Percent-encodes one path segment (the tenant id is configured text).
fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Booleans that may arrive as `true` or `"true"` (SPEC §3).
fn lenient_bool(v: Option<&serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A string field, or `None` when absent, null or not a string.
fn str_field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_honours_retry_after_and_caps() {
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(backoff(3, Some(Duration::from_secs(600))), MAX_BACKOFF);
        assert!(backoff(2, None) <= Duration::from_secs(1));
    }

    #[test]
    fn lenient_booleans() {
        use serde_json::json;
        assert!(lenient_bool(Some(&json!(true))));
        assert!(lenient_bool(Some(&json!("true"))));
        assert!(lenient_bool(Some(&json!("TRUE"))));
        assert!(!lenient_bool(Some(&json!("false"))));
        assert!(!lenient_bool(None));
    }
}
