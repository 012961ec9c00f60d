//! `fehlzeiten run` (SPEC §6): the status endpoint, the scheduler loop, signals, sd_notify and
//! the watchdog, with one shutdown token handed to every task.
//!
//! The scheduler loop wakes at the next slot of any school (at least once a minute on the real
//! clock), starts the runs that are due, and never starts a second run of a school while one is
//! in flight. What was done lives in the store: the last sync in the school state, the last
//! digest slot and the first start in marks, so a restart neither skips nor repeats a digest.

use crate::admin;
use crate::config::{self, Config, SchoolConfig};
use crate::mail::Transport;
use crate::pipeline::{self, PipelineError, RunOptions, RunReport};
use crate::privacy;
use crate::schedule::{self, Digest};
use crate::status::{self, Shared};
use crate::store::{Store, StoreError};
use crate::untis::UntisClient;
use chrono::{DateTime, TimeDelta, Utc};
use sd_notify::NotifyState;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Mark: when the daemon first ran a school (RFC 3339); digest slots before it are never due.
pub const FIRST_START_MARK: &str = "daemon|first-start";

/// How long shutdown waits for runs in flight: an abandoned sync stops at once, so this is the
/// SMTP transaction in flight (bounded by `mail.timeout`). Below systemd's 20 s
/// `TimeoutStopSec` with room for the status endpoint and closing the database; a transaction
/// still running then is dropped (the mail stays pending and may go out twice, with the same
/// Message-ID).
const RUN_DRAIN: Duration = Duration::from_secs(15);
/// The real-clock loop wakes at least this often (reloads, heartbeat, wall-clock jumps).
const MAX_SLEEP: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "cannot listen on {addr} for the status endpoint: {source}; set daemon.status_listen to a free address"
    )]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up signal handling: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("mail transport: {0}")]
    Transport(String),
    #[error("the status endpoint stopped: {0}")]
    StatusEndpoint(String),
}

/// Where the daemon reads the time, and how it waits for it. Tests pass a virtual clock that
/// jumps to the next wake-up at once, so a month runs in seconds.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// A virtual clock must not overtake a run: the daemon lets runs in flight finish before it
    /// asks such a clock to sleep.
    fn is_virtual(&self) -> bool {
        false
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that jumps to each wake-up at once and stops the daemon at `end`: tests run a school
/// month in seconds with it. It never waits, so it is of no use outside tests and simulations.
pub struct VirtualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
    end: DateTime<Utc>,
    stop: CancellationToken,
}

impl VirtualClock {
    pub fn new(from: DateTime<Utc>, end: DateTime<Utc>, stop: CancellationToken) -> Self {
        VirtualClock {
            now: std::sync::Mutex::new(from),
            end,
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // The guarded value is a plain instant; a poisoned lock still holds a valid one.
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut now = self.lock();
        if until >= self.end {
            *now = self.end;
            self.stop.cancel();
        } else {
            *now = until.max(*now);
        }
        Box::pin(tokio::task::yield_now())
    }

    fn is_virtual(&self) -> bool {
        true
    }
}

/// The scheduler's view of one school.
struct SchoolPlan {
    first_start: DateTime<Utc>,
    last_sync: Option<DateTime<Utc>>,
    /// Per [`Digest`] kind: the last slot whose run completed (kept in a mark).
    last_digest: [Option<DateTime<Utc>>; 2],
    /// Per kind: the slot whose run last failed, retried with the next sync, not on every tick.
    digest_failed: [Option<DateTime<Utc>>; 2],
    running: bool,
    /// SIGUSR1 arrived (while a run was in flight, it runs after that one).
    forced: bool,
    /// Admin-socket `sync`s waiting for the next run, and those the run in flight answers.
    waiting: Vec<admin::SyncReply>,
    answers: Vec<admin::SyncReply>,
}

/// Sends a run's result to the admin-socket `sync`s that wait for it.
fn answer(plan: &mut SchoolPlan, id: &str, result: &Result<String, String>) {
    for reply in plan.answers.drain(..) {
        let _ = reply.send((id.to_string(), result.clone()));
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads the school's bookkeeping, recording the first start if this is it.
async fn load_plan(
    store: &Store,
    school: &str,
    now: DateTime<Utc>,
) -> Result<SchoolPlan, StoreError> {
    let id = school.to_string();
    store
        .blocking(move |s| {
            let first_start = match s
                .mark(&id, FIRST_START_MARK)?
                .as_deref()
                .and_then(parse_time)
            {
                Some(t) => t,
                None => {
                    s.set_mark(&id, FIRST_START_MARK, &now.to_rfc3339())?;
                    now
                }
            };
            let mut last_digest = [None; 2];
            for kind in Digest::ALL {
                last_digest[kind.index()] = s
                    .mark(&id, kind.done_mark())?
                    .as_deref()
                    .and_then(parse_time);
            }
            let last_sync = s
                .school_state(&id)?
                .last_sync
                .and_then(|r| parse_time(&r.started));
            Ok(SchoolPlan {
                first_start,
                last_sync,
                last_digest,
                digest_failed: [None; 2],
                running: false,
                // SPEC §6: the first sync runs right after start, however recent the last one
                // (a restart after a config change must show its effect at once).
                forced: true,
                waiting: Vec::new(),
                answers: Vec::new(),
            })
        })
        .await
}

/// A run's school, the digest slots it was to make, and its result.
type RunResult = (
    String,
    Vec<(Digest, DateTime<Utc>)>,
    Result<RunReport, PipelineError>,
);

/// One run of one school; with a due digest it still goes out from stored data when WebUntis
/// fails, since teachers expect it on Monday morning either way.
///
/// On shutdown (`stop`) the sync, rules and outbox part is abandoned at once, which is safe:
/// each of its steps commits in one transaction, and a digest whose outbox entry was committed
/// is not made again (its week mark is in the same transaction). Delivery then starts no new
/// mail but finishes the SMTP transaction in flight.
async fn run_one(
    store: Store,
    config: Arc<Config>,
    school: SchoolConfig,
    transport: Arc<Transport>,
    now: DateTime<Utc>,
    digests: Vec<(Digest, DateTime<Utc>)>,
    stop: CancellationToken,
) -> RunResult {
    let id = school.id.to_string();
    let evaluated = tokio::select! {
        r = evaluate_one(&store, &config, &school, &transport, now, &digests) => r,
        _ = stop.cancelled() => Err(PipelineError::Stopped { school: id.clone() }),
    };
    let result = match evaluated {
        Ok(mut report) => {
            report.delivery =
                crate::mail::deliver_due_until(&store, &id, &transport, now, &stop).await;
            Ok(report)
        }
        Err(e) => Err(e),
    };
    record_digests(&store, &school, digests, result).await
}

/// The part of a run before delivery: sync (or stored data), rules, alerts and the outbox.
async fn evaluate_one(
    store: &Store,
    config: &Config,
    school: &SchoolConfig,
    transport: &Transport,
    now: DateTime<Utc>,
    digests: &[(Digest, DateTime<Utc>)],
) -> Result<RunReport, PipelineError> {
    let id = school.id.to_string();
    let has = |kind: Digest| digests.iter().any(|(k, _)| *k == kind);
    let options = RunOptions {
        digests: has(Digest::ClassTeachers),
        school_digest: has(Digest::SchoolWide),
        deliver: false,
    };
    let result = match UntisClient::new(&school.untis) {
        Ok(client) => {
            pipeline::run_school(
                store,
                config,
                school,
                Some(&client),
                transport,
                now,
                options,
            )
            .await
        }
        Err(e) => Err(PipelineError::Sync {
            school: id.clone(),
            source: crate::sync::SyncError::Untis(e),
        }),
    };
    match result {
        Err(PipelineError::Sync { source, .. }) if !digests.is_empty() => {
            log::warn!("school {id}: sync failed ({source}); sending the digest from stored data");
            pipeline::run_school(store, config, school, None, transport, now, options).await
        }
        other => other,
    }
}

/// Records the digest slots of a successful run as done.
async fn record_digests(
    store: &Store,
    school: &SchoolConfig,
    digests: Vec<(Digest, DateTime<Utc>)>,
    result: Result<RunReport, PipelineError>,
) -> RunResult {
    let id = school.id.to_string();
    if result.is_ok() && !digests.is_empty() {
        let (sid, done) = (id.clone(), digests.clone());
        if let Err(e) = store
            .blocking(move |s| {
                for (kind, slot) in &done {
                    s.set_mark(&sid, kind.done_mark(), &slot.to_rfc3339())?;
                }
                Ok(())
            })
            .await
        {
            return (
                id,
                digests,
                Err(PipelineError::Store {
                    school: school.id.to_string(),
                    source: e,
                }),
            );
        }
    }
    (id, digests, result)
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("sd_notify failed: {e}");
    }
}

/// Loads the config file again; on any problem keeps `current` and says why in one line.
fn reload(current: &Arc<Config>) -> Option<Arc<Config>> {
    if current.path.as_os_str().is_empty() {
        log::warn!("SIGHUP: this config was not read from a file; nothing to reload");
        return None;
    }
    match config::load(&current.path) {
        Ok(c) => {
            // Said at the old level, so a quieter new one still shows the reload.
            log::info!(
                "SIGHUP: reloaded {} (log level {})",
                current.path.display(),
                c.daemon.log_level
            );
            crate::logging::init(c.daemon.log_level);
            Some(Arc::new(c))
        }
        Err(e) => {
            let first = e
                .problems
                .first()
                .map_or_else(|| "invalid".to_string(), ToString::to_string);
            log::error!(
                "SIGHUP: keeping the running config, the new one has {} problem(s): {first}",
                e.problems.len()
            );
            None
        }
    }
}

/// Runs the daemon until `shutdown` is cancelled or SIGTERM/SIGINT arrives. Returns an error
/// when an essential task dies, so that systemd restarts the service.
pub async fn run(
    config: Config,
    store: Store,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let mut config = Arc::new(config);
    let mut transport = Arc::new(
        Transport::from_config(&config.mail).map_err(|e| DaemonError::Transport(e.to_string()))?,
    );
    let shared = Arc::new(Shared::new(config.clone()));

    // Signal streams are created once, before READY, so no signal is lost after it.
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(DaemonError::Signals)?;

    let addr = config.daemon.status_listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let mut server = tokio::spawn(status::serve(
        listener,
        shared.clone(),
        store.clone(),
        shutdown.child_token(),
    ));

    // The admin socket (SPEC §8); without it the CLI cannot reach the daemon, but the daemon
    // still does its work, so a failure to bind is a warning.
    let (sync_tx, mut sync_rx) = tokio::sync::mpsc::channel::<admin::SyncOrder>(16);
    let mut admin_socket = None;
    let mut admin_task = None;
    if let Some(path) = config::admin_socket(&config) {
        match admin::bind(&path) {
            Ok((listener, file)) => {
                log::info!("admin socket on {}", file.path().display());
                admin_socket = Some(file);
                let ctx = admin::AdminContext {
                    shared: shared.clone(),
                    store: store.clone(),
                    sync: sync_tx.clone(),
                };
                admin_task = Some(tokio::spawn(admin::serve(
                    listener,
                    ctx,
                    shutdown.child_token(),
                )));
            }
            Err(e) => log::warn!("no admin socket, the CLI cannot reach the daemon: {e}"),
        }
    }
    drop(sync_tx);

    let mut plans: BTreeMap<String, SchoolPlan> = BTreeMap::new();
    for school in &config.schools {
        let plan = load_plan(&store, school.id.as_str(), clock.now()).await?;
        plans.insert(school.id.to_string(), plan);
    }
    let watchdog = sd_notify::watchdog_enabled();
    shared.beat();
    notify(&[
        NotifyState::Ready,
        NotifyState::Status(&format!(
            "running: {} school(s), status on {addr}",
            config.schools.len()
        )),
    ]);
    log::info!(
        "started: {} school(s), status on {addr}",
        config.schools.len()
    );

    // SPEC §9: the retention job, daily at its slot, and at start when a slot was missed.
    let mut retention_last = store.blocking(|s| s.retention_last_run()).await?;
    let mut runs: JoinSet<RunResult> = JoinSet::new();
    // Which school each run belongs to, to free it even when the run panicked.
    let mut run_schools: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
    let mut outcome = Ok(());
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        shared.beat();
        if watchdog.is_some() {
            notify(&[NotifyState::Watchdog]);
        }
        let now = clock.now();
        let mut wake = if clock.is_virtual() {
            now + TimeDelta::days(1)
        } else {
            now + MAX_SLEEP
        };
        if privacy::next_retention(&config, retention_last).is_none_or(|t| t <= now) {
            let cfg = config.clone();
            if let Err(e) = store
                .blocking(move |s| Ok(privacy::run_retention(s, &cfg, now)))
                .await
            {
                log::error!("retention: the job did not run: {e}");
            }
            retention_last = Some(now);
        }
        if let Some(t) = privacy::next_retention(&config, retention_last) {
            wake = wake.min(t);
        }
        let mut next_times = BTreeMap::new();
        for school in &config.schools {
            let id = school.id.to_string();
            let Some(plan) = plans.get_mut(&id) else {
                continue;
            };
            let next_sync = schedule::next_sync(school, now, plan.last_sync);
            let next_digests = Digest::ALL.map(|kind| schedule::next_digest(school, kind, now));
            next_times.insert(id.clone(), (next_sync, next_digests));
            if plan.running {
                continue;
            }
            let digests: Vec<(Digest, DateTime<Utc>)> = Digest::ALL
                .into_iter()
                .filter_map(|kind| {
                    let i = kind.index();
                    schedule::due_digest(school, kind, now, plan.first_start, plan.last_digest[i])
                        .filter(|slot| plan.digest_failed[i] != Some(*slot) || next_sync <= now)
                        .map(|slot| (kind, slot))
                })
                .collect();
            if plan.forced || next_sync <= now || !digests.is_empty() {
                plan.forced = false;
                plan.running = true;
                plan.answers = std::mem::take(&mut plan.waiting);
                plan.last_sync = Some(now);
                log::info!(
                    "school {id}: run started{}",
                    if digests.is_empty() {
                        ""
                    } else {
                        " with digests"
                    }
                );
                let handle = runs.spawn(run_one(
                    store.clone(),
                    config.clone(),
                    school.clone(),
                    transport.clone(),
                    now,
                    digests,
                    shutdown.clone(),
                ));
                run_schools.insert(handle.id(), id.clone());
            } else {
                wake = wake.min(next_sync);
                for d in next_digests.into_iter().flatten() {
                    wake = wake.min(d);
                }
            }
        }
        match shared.next.lock() {
            Ok(mut n) => *n = next_times,
            Err(poisoned) => *poisoned.into_inner() = next_times,
        }
        if let Some(period) = watchdog {
            let half = TimeDelta::from_std(period / 2).unwrap_or(MAX_SLEEP);
            wake = wake.min(now + half);
        }

        // A virtual clock would jump past the runs in flight: let them finish first.
        let sleep: Pin<Box<dyn Future<Output = ()> + Send + '_>> =
            if clock.is_virtual() && !runs.is_empty() {
                Box::pin(std::future::pending())
            } else {
                clock.sleep_until(wake)
            };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = term.recv() => { log::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { log::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                if let Some(new) = reload(&config) {
                    match Transport::from_config(&new.mail) {
                        Ok(t) => {
                            transport = Arc::new(t);
                            config = new;
                            for school in &config.schools {
                                let id = school.id.to_string();
                                if let std::collections::btree_map::Entry::Vacant(e) = plans.entry(id) {
                                    let plan = load_plan(&store, e.key(), clock.now()).await?;
                                    e.insert(plan);
                                }
                            }
                            match shared.config.write() {
                                Ok(mut c) => *c = config.clone(),
                                Err(poisoned) => *poisoned.into_inner() = config.clone(),
                            }
                        }
                        Err(e) => log::error!("SIGHUP: keeping the running config, the new mail transport fails: {e}"),
                    }
                }
            }
            _ = usr1.recv() => {
                log::info!("SIGUSR1: syncing every school now");
                for plan in plans.values_mut() {
                    plan.forced = true;
                }
            }
            Some(order) = sync_rx.recv() => {
                log::info!("admin socket: syncing {} school(s) now", order.schools.len());
                for id in order.schools {
                    match plans.get_mut(&id) {
                        Some(plan) => {
                            plan.forced = true;
                            plan.waiting.push(order.reply.clone());
                        }
                        None => {
                            let _ = order.reply.send((id, Err("not a configured school".to_string())));
                        }
                    }
                }
            }
            Some(done) = runs.join_next_with_id(), if !runs.is_empty() => {
                finish(&mut plans, &mut run_schools, done);
            }
            ended = &mut server => {
                // Stopping already (the endpoint saw the same token first): not a failure.
                if shutdown.is_cancelled() {
                    break;
                }
                let why = match ended {
                    Ok(Ok(())) => "ended".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                log::error!("the status endpoint stopped: {why}; exiting so that systemd restarts the daemon");
                outcome = Err(DaemonError::StatusEndpoint(why));
                break;
            }
            _ = sleep => {}
        }
    }

    notify(&[NotifyState::Stopping]);
    shared.stopped();
    shutdown.cancel();
    // Finish the runs in flight; one that takes too long is abandoned: a run writes the store in
    // single transactions, so an abandoned one leaves the last committed state.
    let drained = tokio::time::timeout(RUN_DRAIN, async {
        while let Some(done) = runs.join_next_with_id().await {
            finish(&mut plans, &mut run_schools, done);
        }
    })
    .await;
    if drained.is_err() {
        log::warn!("shutdown: abandoning {} run(s) still in flight", runs.len());
        runs.abort_all();
        while runs.join_next_with_id().await.is_some() {}
    }
    if !server.is_finished() {
        // Both were cancelled with the runs and had the drain's time to stop: 15 + 2 + 1 s stays
        // below the 20 s systemd grants.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut server).await;
    }
    if let Some(task) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    drop(admin_socket);
    // Admin `sync`s still waiting get no answer: their channels close with the plans.
    drop(plans);
    drop(shared);
    drop(transport);
    store.close()?;
    log::info!("stopped");
    outcome
}

fn finish(
    plans: &mut BTreeMap<String, SchoolPlan>,
    run_schools: &mut BTreeMap<tokio::task::Id, String>,
    done: Result<(tokio::task::Id, RunResult), tokio::task::JoinError>,
) {
    let (id, digests, result) = match done {
        Ok((task, r)) => {
            run_schools.remove(&task);
            r
        }
        Err(e) => {
            // A run that panicked: free its school so the next slot runs it again.
            if let Some(id) = run_schools.remove(&e.id()) {
                log::error!("school {id}: run ended abnormally: {e}");
                if let Some(plan) = plans.get_mut(&id) {
                    plan.running = false;
                    answer(plan, &id, &Err("the run ended abnormally".to_string()));
                }
            }
            return;
        }
    };
    let Some(plan) = plans.get_mut(&id) else {
        return;
    };
    plan.running = false;
    let line = match &result {
        Ok(report) => Ok(admin::report_line(&id, report)),
        Err(e) => Err(e.to_string()),
    };
    answer(plan, &id, &line);
    match result {
        Ok(report) => {
            for (kind, slot) in digests {
                plan.last_digest[kind.index()] = Some(slot);
                plan.digest_failed[kind.index()] = None;
            }
            log::info!(
                "school {id}: run done: {} findings, {} alert mails, {} digests; delivered {}, retrying {}, failed {}",
                report.findings,
                report.immediate_mails,
                report.digest_mails,
                report.delivery.sent,
                report.delivery.retried,
                report.delivery.failed
            );
        }
        Err(e) => {
            for (kind, slot) in digests {
                plan.digest_failed[kind.index()] = Some(slot);
            }
            log::warn!("run failed: {e}");
        }
    }
}
