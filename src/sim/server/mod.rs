//! The WebUntis simulator: the HTTP contract of SPEC §3 over loopback, serving a [`Scenario`].
//!
//! Routes:
//! - `POST /WebUntis/api/sso/v3/{tenant}/token` (client credentials, HTTP Basic),
//! - `GET /ims/oneroster/v1p1/{orgs,schools,academicSessions,classes,users,students,teachers,enrollments}[/{id}]`,
//! - `GET /WebUntis/api/rest/extern/v1/classreg/students/absencetimes`.
//!
//! Data routes need a Bearer token of the tenant that has not expired on the simulator's clock,
//! which tests can move forward ([`SimHandle::advance_clock`]). Every request is logged for
//! tests ([`SimHandle::requests`]). No request makes the simulator panic: odd input gets a 4xx.
//!
//! The default credentials ([`SimConfig::default`]: tenant `1234567`, client `fehlzeiten`,
//! password `sim-password`) are fixed test credentials of this fake server, not secrets.

mod absences;
mod auth;
mod oneroster;
mod standalone;

pub use standalone::{SnippetSchool, config_snippet, run_standalone};

use super::scenario::Scenario;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the simulated tenant is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub tenant_id: String,
    pub client_id: String,
    /// The platform password the token endpoint accepts.
    pub password: String,
    /// How long an issued token is valid on the simulator's clock.
    pub token_lifetime: Duration,
}

impl Default for SimConfig {
    /// Fixed test credentials of the simulator (not secrets): tenant `1234567`, client
    /// `fehlzeiten`, password `sim-password`, tokens valid 180 s like Untis' own.
    fn default() -> Self {
        SimConfig {
            tenant_id: "1234567".to_string(),
            client_id: "fehlzeiten".to_string(),
            password: "sim-password".to_string(),
            token_lifetime: Duration::from_secs(180),
        }
    }
}

/// One served request, as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogEntry {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub status: u16,
    /// Whether this was a request to the token endpoint.
    pub token_request: bool,
}

/// Switchable misbehaviour of the simulator (429 with Retry-After, 5xx, delays, truncated
/// bodies, revoked tokens, records changing between pages). A later issue fills it; with the
/// default every request is served normally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {}

/// The simulator's clock: real monotonic time plus an offset that tests can advance, so that
/// token expiry is testable without sleeping.
#[derive(Debug, Default)]
struct SimClock {
    offset: Mutex<Duration>,
}

impl SimClock {
    fn now(&self) -> Instant {
        Instant::now() + *lock(&self.offset)
    }

    fn advance(&self, by: Duration) {
        *lock(&self.offset) += by;
    }
}

/// A poisoned lock only means another request panicked mid-update of a log or token map;
/// the data is still usable, so take it rather than fail every later request.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything a request handler needs.
struct State {
    config: SimConfig,
    scenario: Arc<Scenario>,
    roster: oneroster::Dataset,
    absences: absences::Index,
    tokens: Mutex<HashMap<String, auth::Token>>,
    tokens_issued: AtomicU64,
    requests: Mutex<Vec<RequestLogEntry>>,
    faults: Mutex<Faults>,
    clock: SimClock,
    /// Token bytes; seeded per process, tokens need not be reproducible.
    rng: Mutex<ChaCha8Rng>,
    request_seq: AtomicU64,
}

impl State {
    fn new(scenario: Arc<Scenario>, config: SimConfig, base_url: &str) -> State {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        State {
            roster: oneroster::Dataset::build(&scenario, base_url),
            absences: absences::Index::build(&scenario),
            config,
            scenario,
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            clock: SimClock::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(hasher.finish())),
            request_seq: AtomicU64::new(0),
        }
    }

    /// An id for error bodies (`requestId`, `traceId`).
    fn next_request_id(&self) -> String {
        format!(
            "sim-{:08}",
            self.request_seq.fetch_add(1, Ordering::Relaxed) + 1
        )
    }
}

/// A running simulator. Dropping it stops accepting connections; [`SimHandle::shutdown`]
/// also waits until open connections are done.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<State>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the `api_base` of a school config that syncs this simulator.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        lock(&self.state.requests).clone()
    }

    /// Tokens issued so far.
    pub fn token_count(&self) -> u64 {
        self.state.tokens_issued.load(Ordering::Relaxed)
    }

    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.state.scenario
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// Moves the simulator's clock forward (tokens expire against it).
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Switches faults on or off for the following requests.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    /// Stops the server and waits (up to 5 s) for open connections to finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // A join error means the accept loop panicked; there is nothing left to stop.
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts the simulator for `scenario` on `bind` (use `127.0.0.1:0` in tests).
pub async fn start(
    scenario: Arc<Scenario>,
    config: SimConfig,
    bind: SocketAddr,
) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State::new(scenario, config, &format!("http://{addr}")));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve(listener, Arc::clone(&state), cancel.clone()));
    Ok(SimHandle {
        addr,
        state,
        cancel,
        task: Some(task),
    })
}

async fn serve(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // A failed accept (e.g. too many open files) concerns one connection only.
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                let service = service_fn(move |req| handle(Arc::clone(&state), req));
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client hanging up mid-request is its business, not the simulator's.
                    let _ = conn.await;
                });
            }
            () = cancel.cancelled() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

/// Which handler a path belongs to.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Token { tenant: String },
    OneRoster(Vec<String>),
    AbsenceTimes,
    NotFound,
}

const ONEROSTER_PREFIX: [&str; 3] = ["ims", "oneroster", "v1p1"];
const ABSENCE_TIMES: [&str; 8] = [
    "WebUntis",
    "api",
    "rest",
    "extern",
    "v1",
    "classreg",
    "students",
    "absencetimes",
];

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["WebUntis", "api", "sso", "v3", tenant, "token"] => Route::Token {
            tenant: (*tenant).to_string(),
        },
        s if s == ABSENCE_TIMES => Route::AbsenceTimes,
        [a, b, c, rest @ ..] if [*a, *b, *c] == ONEROSTER_PREFIX && !rest.is_empty() => {
            Route::OneRoster(rest.iter().map(|s| (*s).to_string()).collect())
        }
        _ => Route::NotFound,
    }
}

type Resp = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let route = route(&path);
    let token_request = matches!(route, Route::Token { .. });
    let response = match apply_faults(&state, &req) {
        Some(r) => r,
        None => dispatch(&state, route, req).await,
    };
    lock(&state.requests).push(RequestLogEntry {
        method: method.to_string(),
        path,
        query,
        status: response.status().as_u16(),
        token_request,
    });
    Ok(response)
}

/// The hook for [`Faults`]: a response that replaces the normal one. None yet.
fn apply_faults(state: &State, _req: &Request<Incoming>) -> Option<Resp> {
    let _faults = lock(&state.faults).clone();
    None
}

async fn dispatch(state: &State, route: Route, req: Request<Incoming>) -> Resp {
    match route {
        Route::Token { tenant } => {
            if req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            auth::token(state, &tenant, req).await
        }
        Route::OneRoster(rest) => {
            if req.method() != Method::GET {
                return method_not_allowed("GET");
            }
            if let Some(denied) = auth::require_bearer(state, req.headers()) {
                return denied;
            }
            oneroster::handle(state, &rest, req.uri().query())
        }
        Route::AbsenceTimes => {
            if req.method() != Method::GET {
                return method_not_allowed("GET");
            }
            if let Some(denied) = auth::require_bearer(state, req.headers()) {
                return denied;
            }
            absences::handle(state, req.uri().query())
        }
        Route::NotFound => untis_error(
            state,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such resource in the WebUntis simulator.",
        ),
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

/// The Untis platform error body: `{errorCode, errorMessage, requestId, traceId}`.
fn untis_error(state: &State, status: StatusCode, code: &str, message: &str) -> Resp {
    let id = state.next_request_id();
    json(
        status,
        &serde_json::json!({
            "errorCode": code,
            "errorMessage": message,
            "requestId": id,
            "traceId": format!("trace-{id}"),
        }),
    )
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({"errorCode": "METHOD_NOT_ALLOWED", "errorMessage": format!("use {allow}")}),
    );
    resp.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Query pairs, percent-decoded; invalid UTF-8 becomes U+FFFD and then fails validation.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/WebUntis/api/sso/v3/1234567/token"),
            Route::Token {
                tenant: "1234567".into()
            }
        );
        assert_eq!(
            route("/WebUntis/api/rest/extern/v1/classreg/students/absencetimes"),
            Route::AbsenceTimes
        );
        assert_eq!(
            route("/ims/oneroster/v1p1/users/abc"),
            Route::OneRoster(vec!["users".into(), "abc".into()])
        );
        assert_eq!(route("/ims/oneroster/v1p1"), Route::NotFound);
        assert_eq!(route("/"), Route::NotFound);
        assert_eq!(route("/WebUntis/api/sso/v3/token"), Route::NotFound);
    }
}
