//! The status endpoint (SPEC §7): `/healthz`, `/status` (JSON) and `/metrics` (Prometheus text)
//! on hyper. It shows ids and counts only, never a name or an address: it listens on TCP.

use crate::config::{Config, SchoolConfig};
use crate::model::{AlertState, Severity};
use crate::store::{OutboxSummary, Store, StoreError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `/healthz` trusts the scheduler loop's last heartbeat. The loop wakes at least once
/// a minute, so two missed wake-ups mean it is stuck.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(150);

/// A school's next sync and its next class-teacher and school-wide digests, as the scheduler
/// computed them.
pub type NextRuns = (DateTime<Utc>, [Option<DateTime<Utc>>; 2]);
type Gauge = (&'static str, fn(&SchoolStatus) -> i64);
type TimeField = fn(&SchoolStatus) -> &Option<String>;

/// What the scheduler shares with the endpoint.
pub struct Shared {
    pub started: Instant,
    pub config: RwLock<Arc<Config>>,
    /// Per school id: next sync and next digest, as the scheduler computed them.
    pub next: Mutex<BTreeMap<String, NextRuns>>,
    /// Milliseconds since `started` of the scheduler loop's last iteration.
    heartbeat_ms: AtomicU64,
    alive: AtomicBool,
}

impl Shared {
    pub fn new(config: Arc<Config>) -> Shared {
        Shared {
            started: Instant::now(),
            config: RwLock::new(config),
            next: Mutex::new(BTreeMap::new()),
            heartbeat_ms: AtomicU64::new(0),
            alive: AtomicBool::new(false),
        }
    }

    /// Called by the scheduler loop on each iteration.
    pub fn beat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
        self.alive.store(true, Ordering::Relaxed);
    }

    /// Called when the scheduler loop ends.
    pub fn stopped(&self) {
        self.alive.store(false, Ordering::Relaxed);
    }

    pub fn scheduler_alive(&self) -> bool {
        let last = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.alive.load(Ordering::Relaxed)
            && self.started.elapsed().saturating_sub(last) < HEARTBEAT_TIMEOUT
    }

    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LastSync {
    pub started: Option<String>,
    pub finished: Option<String>,
    pub ok: Option<bool>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AlertCounts {
    pub watch: u64,
    pub warning: u64,
    pub critical: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SchoolStatus {
    pub id: String,
    pub students: u64,
    pub klassen: u64,
    pub absences: u64,
    pub unmapped_klassen: u64,
    pub last_sync: LastSync,
    pub next_sync: Option<String>,
    pub next_digest: Option<String>,
    /// The next school-wide digest to the social workers; null when it is off.
    #[serde(default)]
    pub next_school_digest: Option<String>,
    pub alerts: AlertCounts,
    pub outbox: OutboxJson,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct OutboxJson {
    pub pending: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl From<OutboxSummary> for OutboxJson {
    fn from(s: OutboxSummary) -> Self {
        OutboxJson {
            pending: s.pending,
            failed: s.failed,
            last_error: s.last_error,
        }
    }
}

/// The `/status` document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Status {
    pub version: String,
    pub uptime_s: u64,
    pub scheduler_alive: bool,
    pub schools: Vec<SchoolStatus>,
    /// All schools together.
    pub outbox: OutboxJson,
}

/// An RFC 3339 instant shown in the school's local time, as the school reads its clocks.
fn local(school: &SchoolConfig, t: DateTime<Utc>) -> String {
    t.with_timezone(&school.timezone).to_rfc3339()
}

fn local_str(school: &SchoolConfig, s: &str) -> String {
    DateTime::parse_from_rfc3339(s)
        .map(|t| local(school, t.with_timezone(&Utc)))
        .unwrap_or_else(|_| s.to_string())
}

fn school_status(
    store: &Store,
    school: &SchoolConfig,
    next: Option<NextRuns>,
) -> Result<SchoolStatus, StoreError> {
    let id = school.id.as_str();
    let roster = store.load_roster(id)?;
    let (_, unmapped) = crate::alerts::digest_recipients(school, &roster);
    let mut alerts = AlertCounts {
        watch: 0,
        warning: 0,
        critical: 0,
    };
    for a in store.alerts(id)? {
        if a.state != AlertState::Active {
            continue;
        }
        match a.severity {
            Severity::Watch => alerts.watch += 1,
            Severity::Warning => alerts.warning += 1,
            Severity::Critical => alerts.critical += 1,
        }
    }
    let last = store.school_state(id)?.last_sync;
    Ok(SchoolStatus {
        id: id.to_string(),
        students: roster.students.len() as u64,
        klassen: roster.klassen.len() as u64,
        absences: store.absence_count(id)?,
        unmapped_klassen: unmapped.len() as u64,
        last_sync: LastSync {
            started: last.as_ref().map(|r| local_str(school, &r.started)),
            finished: last.as_ref().map(|r| local_str(school, &r.finished)),
            ok: last.as_ref().map(|r| r.ok),
            error: last.and_then(|r| r.error),
        },
        next_sync: next.map(|(s, _)| local(school, s)),
        next_digest: next.and_then(|(_, d)| d[0]).map(|d| local(school, d)),
        next_school_digest: next.and_then(|(_, d)| d[1]).map(|d| local(school, d)),
        alerts,
        outbox: store.outbox_summary(id)?.into(),
    })
}

/// Reads the status document (store reads on the blocking pool).
pub async fn collect(shared: &Shared, store: &Store) -> Result<Status, StoreError> {
    let config = shared.config();
    let next = match shared.next.lock() {
        Ok(n) => n.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let schools = store
        .blocking(move |s| {
            config
                .schools
                .iter()
                .map(|school| school_status(s, school, next.get(school.id.as_str()).copied()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let mut outbox = OutboxJson::default();
    for s in &schools {
        outbox.pending += s.outbox.pending;
        outbox.failed += s.outbox.failed;
        if outbox.last_error.is_none() {
            outbox.last_error = s.outbox.last_error.clone();
        }
    }
    Ok(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: shared.started.elapsed().as_secs(),
        scheduler_alive: shared.scheduler_alive(),
        schools,
        outbox,
    })
}

/// The status as Prometheus text.
pub fn metrics(status: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let ts = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map_or(0, |t| t.timestamp())
    };
    let _ = writeln!(
        out,
        "# TYPE fehlzeiten_uptime_seconds gauge\nfehlzeiten_uptime_seconds {}",
        status.uptime_s
    );
    let _ = writeln!(
        out,
        "# TYPE fehlzeiten_scheduler_alive gauge\nfehlzeiten_scheduler_alive {}",
        u8::from(status.scheduler_alive)
    );
    let gauges: [Gauge; 9] = [
        ("students", |s| s.students as i64),
        ("klassen", |s| s.klassen as i64),
        ("absences", |s| s.absences as i64),
        ("unmapped_klassen", |s| s.unmapped_klassen as i64),
        ("last_sync_ok", |s| {
            i64::from(s.last_sync.ok.unwrap_or(false))
        }),
        ("last_sync_started_timestamp_seconds", |s| {
            s.last_sync
                .started
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| t.timestamp())
        }),
        ("outbox_pending", |s| s.outbox.pending as i64),
        ("outbox_failed", |s| s.outbox.failed as i64),
        ("alerts_critical", |s| s.alerts.critical as i64),
    ];
    for (name, value) in gauges {
        let _ = writeln!(out, "# TYPE fehlzeiten_{name} gauge");
        for s in &status.schools {
            let _ = writeln!(out, "fehlzeiten_{name}{{school=\"{}\"}} {}", s.id, value(s));
        }
    }
    let _ = writeln!(out, "# TYPE fehlzeiten_alerts gauge");
    for s in &status.schools {
        for (sev, n) in [
            ("watch", s.alerts.watch),
            ("warning", s.alerts.warning),
            ("critical", s.alerts.critical),
        ] {
            let _ = writeln!(
                out,
                "fehlzeiten_alerts{{school=\"{}\",severity=\"{sev}\"}} {n}",
                s.id
            );
        }
    }
    let next: [(&str, TimeField); 3] = [
        ("next_sync_timestamp_seconds", |s| &s.next_sync),
        ("next_digest_timestamp_seconds", |s| &s.next_digest),
        ("next_school_digest_timestamp_seconds", |s| {
            &s.next_school_digest
        }),
    ];
    for (name, pick) in next {
        let _ = writeln!(out, "# TYPE fehlzeiten_{name} gauge");
        for s in &status.schools {
            let t = ts(pick(s));
            let _ = writeln!(out, "fehlzeiten_{name}{{school=\"{}\"}} {t}", s.id);
        }
    }
    out
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    store: Store,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "GET only\n".into(),
        ));
    }
    let path = req.uri().path();
    if path == "/healthz" {
        return Ok(if shared.scheduler_alive() {
            reply(StatusCode::OK, TEXT, "ok\n".into())
        } else {
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                "scheduler not running\n".into(),
            )
        });
    }
    if path != "/status" && path != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found; try /healthz, /status or /metrics\n".into(),
        ));
    }
    let status = match collect(&shared, &store).await {
        Ok(s) => s,
        Err(e) => {
            log::warn!("status: cannot read the database: {e}");
            return Ok(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                format!("cannot read the database: {e}\n"),
            ));
        }
    };
    Ok(if path == "/status" {
        match serde_json::to_string(&status) {
            Ok(json) => reply(StatusCode::OK, "application/json", json),
            Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{e}\n")),
        }
    } else {
        reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics(&status),
        )
    })
}

/// Serves until `shutdown`, then lets open connections finish for up to five seconds.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    store: Store,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: wait, then accept again.
                    Err(e) => {
                        log::warn!("status endpoint: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (shared, store) = (shared.clone(), store.clone());
                let service = service_fn(move |req| handle(req, shared.clone(), store.clone()));
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        log::debug!("status endpoint: connection: {e}");
                    }
                });
            }
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {
            log::warn!("status endpoint: connections still open after 5 s; closing them");
        }
    }
    Ok(())
}
