//! The WebUntis simulator: the HTTP contract of SPEC §3 over loopback, serving a [`Scenario`].
//!
//! Routes:
//! - `POST /WebUntis/api/sso/v3/{tenant}/token` (client credentials, HTTP Basic),
//! - `GET /ims/oneroster/v1p1/{orgs,schools,academicSessions,classes,users,students,teachers,enrollments}[/{id}]`,
//! - `GET /WebUntis/api/rest/extern/v1/classreg/students/absencetimes`.
//!
//! Data routes need a Bearer token of the tenant that has not expired on the simulator's clock,
//! which tests can move forward ([`SimHandle::advance_clock`]). Every request is logged for
//! tests ([`SimHandle::requests`]), including those a fault answered or dropped. Faults and data
//! changes are switched on with [`SimHandle::set_faults`] (see [`Faults`]). No request makes
//! the simulator panic: odd input gets a 4xx.
//!
//! The default credentials ([`SimConfig::default`]: tenant `1234567`, client `fehlzeiten`,
//! password `sim-password`) are fixed test credentials of this fake server, not secrets.

mod absences;
mod auth;
mod faults;
mod oneroster;
mod standalone;

pub use faults::{
    DataChange, FaultAction, FaultRule, Faults, RetryAfter, RouteMatch, Trigger, When,
};
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
    /// Number of the request since the faults were last set (1-based; see [`Faults`]).
    pub number: u64,
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The status answered; 0 while the answer is not ready, and when a fault closed the
    /// connection without one.
    pub status: u16,
    /// Whether this was a request to the token endpoint.
    pub token_request: bool,
    /// The Bearer token presented, if any (tokens of this fake server are not secrets).
    pub bearer: Option<String>,
    /// What the fault layer did to this request, e.g. `status 503`, `truncate` or
    /// `tokens revoked`.
    pub fault: Option<String>,
}

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
    roster: Mutex<oneroster::Dataset>,
    absences: Mutex<absences::Index>,
    tokens: Mutex<HashMap<String, auth::Token>>,
    tokens_issued: AtomicU64,
    /// Every token ever issued, oldest first.
    issued: Mutex<Vec<String>>,
    requests: Mutex<Vec<RequestLogEntry>>,
    faults: Mutex<faults::Runtime>,
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
            roster: Mutex::new(oneroster::Dataset::build(&scenario, base_url)),
            absences: Mutex::new(absences::Index::build(&scenario)),
            config,
            scenario,
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicU64::new(0),
            issued: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(faults::Runtime::default()),
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

    /// Every token issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Switches faults on or off for the following requests, and starts numbering requests
    /// from 1 again.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults::Runtime::new(faults);
    }

    /// Changes the simulated school's data now.
    pub fn apply_change(&self, change: &DataChange) {
        apply_change(&self.state, change);
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
                // Each request runs in a task of its own, so one whose client gave up (a
                // timeout during a delay fault) still finishes and reaches the request log.
                let service = service_fn(move |req| {
                    let request = tokio::spawn(handle(Arc::clone(&state), req));
                    async move { request.await.unwrap_or(Err(Dropped)) }
                });
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

/// Makes hyper close the connection without an answer (the `Close` fault).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by a simulator fault")
    }
}

impl std::error::Error for Dropped {}

impl Route {
    fn kind(&self) -> faults::RouteKind {
        match self {
            Route::Token { .. } => faults::RouteKind::Token,
            Route::OneRoster(rest) => {
                faults::RouteKind::OneRoster(rest.first().cloned().unwrap_or_default())
            }
            Route::AbsenceTimes => faults::RouteKind::AbsenceTimes,
            Route::NotFound => faults::RouteKind::Other,
        }
    }

    /// The collection, when this is the first page of a OneRoster list.
    fn first_page(&self, query: Option<&str>) -> Option<String> {
        let Route::OneRoster(rest) = self else {
            return None;
        };
        let [collection] = rest.as_slice() else {
            return None;
        };
        let pairs = query_pairs(query);
        matches!(
            query_value(&pairs, "offset").map(str::trim),
            None | Some("0")
        )
        .then(|| collection.clone())
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let route = route(&path);
    let token_request = matches!(route, Route::Token { .. });
    let first_page = route.first_page(query.as_deref());
    let decision = lock(&state.faults).decide(&route.kind());
    if decision.revoke {
        lock(&state.tokens).clear();
    }
    if !decision.advance.is_zero() {
        state.clock.advance(decision.advance);
    }
    // Logged on arrival, so a request whose client gave up is in the log at once; the status
    // follows when the answer is ready.
    let slot = {
        let mut log = lock(&state.requests);
        log.push(RequestLogEntry {
            number: decision.number,
            method: method.to_string(),
            path,
            query,
            status: 0,
            token_request,
            bearer,
            fault: decision.label(),
        });
        log.len() - 1
    };
    let response = match &decision.action {
        Some(FaultAction::Status {
            status,
            retry_after,
        }) => Some(fault_status(&state, *status, *retry_after)),
        Some(FaultAction::Close) => None,
        Some(FaultAction::Delay(pause)) => {
            tokio::time::sleep(*pause).await;
            Some(dispatch(&state, route, req).await)
        }
        Some(FaultAction::Truncate) => Some(truncate(dispatch(&state, route, req).await).await),
        None => Some(dispatch(&state, route, req).await),
    };
    let status = response.as_ref().map_or(0, |r| r.status().as_u16());
    if let Some(entry) = lock(&state.requests).get_mut(slot) {
        entry.status = status;
    }
    let first_page = first_page.filter(|_| status == 200);
    let due = lock(&state.faults).due_changes(decision.number, first_page.as_deref());
    for change in &due {
        apply_change(&state, change);
    }
    response.ok_or(Dropped)
}

/// An error answer of a fault, with the Untis error body and an optional `Retry-After`.
fn fault_status(state: &State, status: u16, retry_after: Option<RetryAfter>) -> Resp {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = untis_error(
        state,
        code,
        &code
            .canonical_reason()
            .unwrap_or("ERROR")
            .to_ascii_uppercase()
            .replace(' ', "_"),
        "Simulated fault.",
    );
    let value = match retry_after {
        None => None,
        Some(RetryAfter::Seconds(s)) => Some(s.to_string()),
        Some(RetryAfter::DateIn(d)) => {
            let at = chrono::Utc::now()
                + chrono::Duration::from_std(d).unwrap_or_default()
                + chrono::Duration::milliseconds(999);
            Some(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        }
    };
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    resp
}

/// The same answer with only the first half of its body.
async fn truncate(resp: Resp) -> Resp {
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    Response::from_parts(parts, Full::new(bytes.slice(..bytes.len() / 2)))
}

/// Applies a data change to the roster and the register (one lock at a time).
fn apply_change(state: &State, change: &DataChange) {
    match change {
        DataChange::InsertStudent { klasse } => {
            let added = lock(&state.roster).insert_student(klasse);
            if let Some((untis_id, key)) = added {
                lock(&state.absences).add_student(untis_id, key, klasse);
            }
        }
        DataChange::Vanish { sourced_id } => {
            let removed = lock(&state.roster).vanish(sourced_id);
            if let Some(untis_id) = removed {
                lock(&state.absences).remove_student(untis_id);
            }
        }
        DataChange::MoveStudent {
            sourced_id,
            to_klasse,
        } => {
            let moved = lock(&state.roster).move_student(sourced_id, to_klasse);
            if let Some(untis_id) = moved {
                lock(&state.absences).move_student(untis_id, to_klasse);
            }
        }
        DataChange::MarkToBeDeleted { sourced_id } => {
            lock(&state.roster).mark_tobedeleted(sourced_id);
        }
        DataChange::RenameKlasse { sourced_id, title } => {
            let old = lock(&state.roster).rename_class(sourced_id, title);
            if let Some(old) = old {
                lock(&state.absences).rename_klasse(&old, title);
            }
        }
        DataChange::SetExcuse { untis_id, status } => {
            lock(&state.absences).set_excuse(*untis_id, *status);
        }
        DataChange::AddAbsence { untis_id, absence } => {
            lock(&state.absences).add_absence(*untis_id, absence.clone());
        }
    }
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
