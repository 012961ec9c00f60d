//! The only code that knows WebUntis (SPEC §3): the token, the OneRoster rosters and the
//! class-register absences. It returns `model` types and never writes the store.

mod absences;
mod oneroster;
mod token;

pub use absences::StudentAbsences;
pub(crate) use oneroster::later_watermark;
pub use oneroster::{Membership, MembershipKind, RosterDelta, RosterFetch};

use crate::config::UntisConfig;
use crate::model::SchoolYear;
use chrono::NaiveDate;
use rand::Rng;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use token::TokenCache;

/// Path of the OneRoster 1.1 API below `api_base`.
const ONEROSTER_PATH: &str = "ims/oneroster/v1p1/";
/// Path of the class-register absences API below `api_base`.
const ABSENCES_PATH: &str = "WebUntis/api/rest/extern/v1/classreg/students/absencetimes";
/// Default page size for OneRoster lists.
pub const PAGE_LIMIT: usize = 500;
/// Retries after a 500: a server error that persists is a bug on the server's side, not load.
const MAX_RETRIES_ON_500: u32 = 2;

/// Knobs of the HTTP layer. The defaults are for production; tests shorten the backoff so that
/// a retried request costs milliseconds, not seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// `limit` of every OneRoster page.
    pub page_limit: usize,
    /// First backoff step; step n waits between half and all of `base_backoff · 2^(n-1)`.
    pub base_backoff: Duration,
    /// Longest pause between two attempts. A `Retry-After` longer than this ends the request
    /// (the next scheduled sync tries again) instead of being cut short, so the server is never
    /// asked sooner than it wants.
    pub max_backoff: Duration,
    /// Attempts of one request for retryable failures (429, 502, 503, 504, network errors,
    /// unreadable bodies); a 500 gets at most [`MAX_RETRIES_ON_500`] retries within them.
    pub max_attempts: u32,
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            page_limit: PAGE_LIMIT,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_attempts: 5,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum UntisError {
    #[error("{0}")]
    Auth(String),
    #[error(
        "WebUntis refused {0} (403): the permission is not granted in the WebUntis platform app; ask the school's WebUntis admin to grant it under Administration → Plattform"
    )]
    Forbidden(String),
    #[error(
        "WebUntis has no {0} (404): check untis.api_base (normally https://api.webuntis.com) and untis.tenant_id"
    )]
    NotFound(String),
    #[error(
        "WebUntis rejected the request for {what} as invalid (400{detail}); this fehlzeiten version may not match the WebUntis API: please report it"
    )]
    BadRequest { what: String, detail: String },
    #[error("WebUntis answered {status} to {what}")]
    Status {
        what: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("cannot reach WebUntis ({what}): {detail}")]
    Network { what: String, detail: String },
    /// A 200 whose body is not JSON (cut off, or an error page of a proxy): worth another try.
    #[error("WebUntis sent an unreadable answer to {what}: {detail}")]
    InvalidBody { what: String, detail: String },
    /// Valid JSON that does not have the expected shape: another try would not help.
    #[error("WebUntis sent an answer that cannot be read: {0}")]
    Parse(String),
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<UntisError>,
    },
    #[error(
        "WebUntis asked to wait {} s before the next request to {what}; the next scheduled sync will try again",
        .wait.as_secs()
    )]
    RetryLater { what: String, wait: Duration },
    #[error("{0}")]
    Setup(String),
}

impl UntisError {
    fn network(what: &str, e: &reqwest::Error) -> UntisError {
        let detail = if e.is_timeout() {
            "timed out (untis.request_timeout)".to_string()
        } else if e.is_connect() {
            "connection failed (check untis.api_base and the network)".to_string()
        } else {
            // The whole chain: the URL in it carries the tenant and Klasse, never a secret.
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

    /// Whether another attempt may succeed (500 is counted separately).
    fn retryable(&self) -> bool {
        match self {
            UntisError::Network { .. } | UntisError::InvalidBody { .. } => true,
            UntisError::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The HTTP status of a failed answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            UntisError::Status { status, .. } => Some(*status),
            UntisError::Forbidden(_) => Some(403),
            UntisError::NotFound(_) => Some(404),
            UntisError::BadRequest { .. } => Some(400),
            UntisError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }
}

/// Requests made by a client: data requests and token requests, each attempt counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub data: u32,
    pub token: u32,
}

impl RequestCounts {
    pub fn total(self) -> u32 {
        self.data + self.token
    }

    /// The requests made since `earlier`.
    pub fn since(self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            data: self.data.saturating_sub(earlier.data),
            token: self.token.saturating_sub(earlier.token),
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

/// A client for one school (tenant). Tokens are per client and redirects are never followed,
/// so a token never reaches another tenant's URL.
pub struct UntisClient {
    http: reqwest::Client,
    base: url::Url,
    tokens: TokenCache,
    counter: RequestCounter,
    timeout: Duration,
    options: ClientOptions,
}

impl UntisClient {
    pub fn new(cfg: &UntisConfig) -> Result<UntisClient, UntisError> {
        UntisClient::with_options(cfg, ClientOptions::default())
    }

    pub fn with_options(
        cfg: &UntisConfig,
        options: ClientOptions,
    ) -> Result<UntisClient, UntisError> {
        if options.page_limit == 0 || options.max_attempts == 0 {
            return Err(UntisError::Setup(
                "page limit and attempts must be at least 1".into(),
            ));
        }
        let mut base = cfg.api_base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
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
            options,
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

    /// Both counters at once.
    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            data: self.data_requests(),
            token: self.token_requests(),
        }
    }

    /// The OneRoster page size this client uses.
    pub fn page_limit(&self) -> usize {
        self.options.page_limit
    }

    /// The active school year: the `schoolYear` session containing `today`, else the one
    /// marked active.
    pub async fn school_year(&self, today: NaiveDate) -> Result<SchoolYear, UntisError> {
        oneroster::school_year(self, today).await
    }

    /// Klassen, students, teachers and their memberships, with the roster watermark.
    pub async fn roster(&self) -> Result<RosterFetch, UntisError> {
        oneroster::roster(self).await
    }

    /// What changed in the roster after the watermark `since` (a `dateLastModified` as the
    /// server wrote it): three lists, each usually one page.
    pub async fn roster_changes(&self, since: &str) -> Result<RosterDelta, UntisError> {
        oneroster::roster_changes(self, since).await
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
        let mut failures_500 = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            let err = match self.get_once(what, &url, query).await {
                Ok(v) => return Ok(v),
                Err(GetError::Unauthorized(token)) if !renewed => {
                    // An expired or revoked token: renew once (shared with concurrent requests)
                    // and try again; this is not a failure of the server.
                    renewed = true;
                    attempt -= 1;
                    self.tokens.invalidate(&token).await;
                    continue;
                }
                Err(GetError::Unauthorized(_)) => {
                    return Err(UntisError::Auth(format!(
                        "WebUntis rejected a fresh token for {what} (401): the platform app may be deactivated for this school; check it in WebUntis under Administration → Plattform"
                    )));
                }
                Err(GetError::Other(e)) => e,
            };
            let retry = if err.status() == Some(500) {
                failures_500 += 1;
                failures_500 <= MAX_RETRIES_ON_500
            } else {
                err.retryable()
            };
            if !retry || attempt >= self.options.max_attempts {
                return Err(if attempt > 1 {
                    UntisError::GaveUp {
                        attempts: attempt,
                        last: Box::new(err),
                    }
                } else {
                    err
                });
            }
            let retry_after = match &err {
                UntisError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            if let Some(wait) = retry_after
                && wait > self.options.max_backoff
            {
                return Err(UntisError::RetryLater {
                    what: what.to_string(),
                    wait,
                });
            }
            let pause = backoff(&self.options, attempt, retry_after);
            log::debug!(
                "{what}: attempt {attempt} failed ({err}); next attempt in {} ms",
                pause.as_millis()
            );
            tokio::time::sleep(pause).await;
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
        let started = std::time::Instant::now();
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
        // The path and the query carry ids and dates only, never names.
        log::debug!(
            "GET {}: {} in {} ms",
            url.path(),
            status.as_u16(),
            started.elapsed().as_millis()
        );
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(GetError::Unauthorized(token));
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            return Err(GetError::Other(UntisError::Forbidden(what.to_string())));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(GetError::Other(UntisError::NotFound(what.to_string())));
        }
        if status == reqwest::StatusCode::BAD_REQUEST {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(GetError::Other(UntisError::BadRequest {
                what: what.to_string(),
                detail: error_detail(&body),
            }));
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
        serde_json::from_slice(&body).map_err(|e| {
            GetError::Other(UntisError::InvalidBody {
                what: what.to_string(),
                detail: format!("not JSON ({e})"),
            })
        })
    }
}

enum GetError {
    /// 401 with this token.
    Unauthorized(String),
    Other(UntisError),
}

/// The machine-readable part of an error body (Untis `errorCode` and validation paths, or the
/// IMS minor code), never its free text: it could echo request data.
fn error_detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(code) = str_field(&v, "errorCode") {
        parts.push(code.to_string());
    }
    if let Some(errors) = v.get("validationErrors").and_then(|e| e.as_array()) {
        for e in errors {
            if let Some(path) = str_field(e, "path") {
                parts.push(format!("field {path}"));
            }
        }
    }
    if let Some(minor) = v
        .pointer("/imsx_CodeMinor/imsx_codeMinorField/0/imsx_codeMinorFieldValue")
        .and_then(|m| m.as_str())
    {
        parts.push(minor.to_string());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
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

/// Exponential backoff with jitter: between half and all of `base · 2^(attempt-1)` (so
/// clients that failed together do not retry together, yet never at once), at least what the
/// server asked for, never more than `max_backoff`.
fn backoff(options: &ClientOptions, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let step = options
        .base_backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(options.max_backoff);
    let half = step / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let jitter = Duration::from_millis(rand::rng().random_range(0..=jitter_ms));
    retry_after
        .unwrap_or(Duration::ZERO)
        .max(half + jitter)
        .min(options.max_backoff)
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
        let o = ClientOptions::default();
        assert_eq!(
            backoff(&o, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff(&o, 3, Some(Duration::from_secs(600))),
            o.max_backoff
        );
        for attempt in 1..=4 {
            let b = backoff(&o, attempt, None);
            let step = Duration::from_millis(500 << (attempt - 1));
            assert!(b >= step / 2 && b <= step, "{attempt}: {b:?}");
        }
        assert!(backoff(&o, 30, None) <= o.max_backoff);
    }

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        let date = later.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        h.insert("retry-after", date.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_details_keep_codes_not_text() {
        let body = br#"{"errorCode":"VALIDATION_ERROR","errorMessage":"Lena M. is wrong","validationErrors":[{"path":"start","errorMessage":"x"}]}"#;
        assert_eq!(error_detail(body), ": VALIDATION_ERROR, field start");
        assert_eq!(error_detail(b"<html>"), "");
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
