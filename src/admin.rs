//! The admin socket (SPEC §8): while the daemon runs it is the only writer of the database, so
//! `fehlzeiten sync` and `fehlzeiten silence …` ask it over a Unix socket instead of opening the
//! database themselves.
//!
//! Protocol: one JSON object per line each way. Requests:
//! `{"cmd":"sync","school":null|"id"}`, `{"cmd":"silence_add","school":…,"student":…,
//! "rule":null|…,"until":"YYYY-MM-DD","reason":…,"author":…}`,
//! `{"cmd":"silence_list","school":null|…,"all":false}`, `{"cmd":"silence_remove","id":…}`,
//! `{"cmd":"erase","school":…,"student":…,"undo":false,"by":…}`,
//! `{"cmd":"erase_list","school":null|…}`, `{"cmd":"export","school":…,"student":…,"by":…}`,
//! `{"cmd":"audit","school":null|…,"since":null|"YYYY-MM-DD","json":false}`,
//! `{"cmd":"evaluate","school":null|…,"json":false,"at":null|"YYYY-MM-DD"}`,
//! `{"cmd":"digest_preview","school":null|…,"to":…,"at":null|…,"html":false}`,
//! `{"cmd":"status"}`. Answers: `{"ok":true,"out":[lines],"err":[lines]}` (status:
//! `{"ok":true,"status":{…}}`) or `{"ok":false,"error":"one line","out":[…],"err":[…]}`.

use crate::config::{self, Config};
use crate::model::Silence;
use crate::pipeline::RunReport;
use crate::status::{self, Shared};
use crate::store::Store;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Longest request line the daemon reads.
const MAX_LINE: u64 = 64 * 1024;
/// How long the CLI waits for answers other than `sync` (which takes as long as the runs).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How many fresh ids `silence add` tries before it gives up (a clash is a 1 in 4 billion event).
const SILENCE_ID_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Sync {
        #[serde(default)]
        school: Option<String>,
    },
    SilenceAdd {
        school: String,
        student: String,
        #[serde(default)]
        rule: Option<String>,
        until: NaiveDate,
        reason: String,
        /// Who asked (the CLI's user); the daemon falls back to the peer's uid.
        #[serde(default)]
        author: Option<String>,
    },
    SilenceList {
        #[serde(default)]
        school: Option<String>,
        #[serde(default)]
        all: bool,
    },
    SilenceRemove {
        id: String,
        #[serde(default)]
        by: Option<String>,
    },
    /// GDPR Art. 17: delete everything about one student, or (`undo`) let them back in.
    Erase {
        school: String,
        student: String,
        #[serde(default)]
        undo: bool,
        #[serde(default)]
        by: Option<String>,
    },
    EraseList {
        #[serde(default)]
        school: Option<String>,
    },
    /// GDPR Art. 15: everything stored about one student, as JSON.
    Export {
        school: String,
        student: String,
        #[serde(default)]
        by: Option<String>,
    },
    Audit {
        #[serde(default)]
        school: Option<String>,
        #[serde(default)]
        since: Option<NaiveDate>,
        #[serde(default)]
        json: bool,
    },
    /// The current findings; sends nothing.
    Evaluate {
        #[serde(default)]
        school: Option<String>,
        #[serde(default)]
        json: bool,
        #[serde(default)]
        at: Option<NaiveDate>,
    },
    /// The digest `to` would get now; sends nothing.
    DigestPreview {
        #[serde(default)]
        school: Option<String>,
        to: String,
        #[serde(default)]
        at: Option<NaiveDate>,
        #[serde(default)]
        html: bool,
    },
    Status,
}

impl Request {
    /// Fills in who asks where the CLI did not say (the daemon knows the peer's uid).
    fn with_author(mut self, who: &str) -> Self {
        match &mut self {
            Request::SilenceAdd { author: by, .. }
            | Request::SilenceRemove { by, .. }
            | Request::Erase { by, .. }
            | Request::Export { by, .. } => {
                if by.as_deref().is_none_or(|b| b.trim().is_empty()) {
                    *by = Some(who.to_string());
                }
            }
            Request::Sync { .. }
            | Request::SilenceList { .. }
            | Request::EraseList { .. }
            | Request::Audit { .. }
            | Request::Evaluate { .. }
            | Request::DigestPreview { .. }
            | Request::Status => {}
        }
        self
    }
}

/// What a command prints: lines for stdout and for stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub out: Vec<String>,
    pub err: Vec<String>,
}

/// One school's result line of `sync`.
pub fn report_line(school: &str, r: &RunReport) -> String {
    let sync = r.sync.as_ref();
    format!(
        "{}: ok: {} students, {} Klassen, {} absences in {}..{}, {} requests; {} findings, {} alert mails; delivered {}, retrying {}, failed {}",
        school,
        sync.map_or(0, |x| x.students),
        sync.map_or(0, |x| x.klassen),
        sync.map_or(0, |x| x.absences),
        sync.map_or(String::new(), |x| x.window.0.to_string()),
        sync.map_or(String::new(), |x| x.window.1.to_string()),
        sync.map_or(0, |x| x.data_requests + x.token_requests),
        r.findings,
        r.immediate_mails,
        r.delivery.sent,
        r.delivery.retried,
        r.delivery.failed,
    )
}

pub(crate) fn school_ids(config: &Config) -> String {
    config
        .schools
        .iter()
        .map(|s| s.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn no_school(config: &Config, id: &str) -> String {
    format!(
        "no school `{id}` in the config; configured: {}",
        school_ids(config)
    )
}

/// The configured schools, or just `school`.
pub fn selected<'a>(
    config: &'a Config,
    school: Option<&str>,
) -> Result<Vec<&'a config::SchoolConfig>, String> {
    match school {
        None => Ok(config.schools.iter().collect()),
        Some(id) => config
            .school(id)
            .map(|s| vec![s])
            .ok_or_else(|| no_school(config, id)),
    }
}

fn all_rules_label(config: &Config) -> &'static str {
    match config.daemon.language {
        config::Language::De => "alle Regeln",
        config::Language::En => "all rules",
    }
}

/// `silence add`, on whichever store handle the caller has (its own or the daemon's).
#[allow(clippy::too_many_arguments)]
pub fn silence_add(
    config: &Config,
    store: &Store,
    school: &str,
    student: &str,
    rule: Option<&str>,
    until: NaiveDate,
    reason: &str,
    author: &str,
) -> Result<Output, String> {
    let s = config
        .school(school)
        .ok_or_else(|| no_school(config, school))?;
    let student = student.trim();
    if student.is_empty() {
        return Err("--student is empty; give the student's id as `evaluate` shows it".into());
    }
    if let Some(rule) = rule
        && !crate::rules::RULE_IDS.contains(&rule)
    {
        return Err(format!(
            "unknown rule `{rule}`; known rules: {} (leave out --rule to mute all rules)",
            crate::rules::RULE_IDS.join(", ")
        ));
    }
    let now = Utc::now();
    let today = now.with_timezone(&s.timezone).date_naive();
    if until < today {
        return Err(format!(
            "--until {until} is in the past (today is {today} in {}); give today or a later date",
            s.id
        ));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(
            "--reason is empty; say why, e.g. --reason \"known case, help plan running\"".into(),
        );
    }
    let mut silence = Silence {
        id: String::new(),
        school: s.id.clone(),
        student: crate::model::StudentId(student.to_string()),
        rule: rule.map(str::to_string),
        until,
        reason: reason.to_string(),
        author: author.to_string(),
        created: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let mut added = false;
    for _ in 0..SILENCE_ID_ATTEMPTS {
        silence.id = Silence::new_id();
        // Ids are unique across the configured schools, so `silence remove` needs no school.
        if find_silence(config, store, &silence.id)?.is_some() {
            continue;
        }
        if store.silence_add(&silence).map_err(|e| e.to_string())? {
            added = true;
            break;
        }
    }
    if !added {
        return Err("could not find a free silence id; try again".into());
    }
    let mut output = Output::default();
    if !store
        .has_student(s.id.as_str(), student)
        .map_err(|e| e.to_string())?
    {
        output.err.push(format!(
            "warning: no student `{student}` in the stored roster of {} (yet); check the id with `fehlzeiten evaluate`",
            s.id
        ));
    }
    let what = match rule {
        Some(rule) => format!("alerts of rule {rule}"),
        None => "all alerts".to_string(),
    };
    output.out.push(format!(
        "{}: mutes {what} for student {student} in {} until {until} (inclusive)",
        silence.id, s.id
    ));
    Ok(output)
}

fn find_silence(config: &Config, store: &Store, id: &str) -> Result<Option<Silence>, String> {
    for s in &config.schools {
        let found = store
            .silences(s.id.as_str())
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|x| x.id == id);
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// `silence list` as a table.
pub fn silence_list(
    config: &Config,
    store: &Store,
    school: Option<&str>,
    all: bool,
) -> Result<Output, String> {
    let schools = selected(config, school)?;
    let mut rows: Vec<[String; 7]> = Vec::new();
    for s in schools {
        let today = Utc::now().with_timezone(&s.timezone).date_naive();
        let mut silences = store.silences(s.id.as_str()).map_err(|e| e.to_string())?;
        silences.retain(|x| all || crate::alerts::silence_in_force(x, today));
        silences.sort_by(|a, b| a.until.cmp(&b.until).then(a.id.cmp(&b.id)));
        for x in silences {
            let expired = if crate::alerts::silence_in_force(&x, today) {
                ""
            } else {
                " (expired)"
            };
            rows.push([
                x.id,
                x.school.0,
                x.student.0,
                x.rule
                    .unwrap_or_else(|| all_rules_label(config).to_string()),
                format!("{}{expired}", x.until),
                x.author,
                x.reason,
            ]);
        }
    }
    let mut output = Output::default();
    if rows.is_empty() {
        output.out.push(
            if all {
                "no silences"
            } else {
                "no silences in force"
            }
            .to_string(),
        );
        return Ok(output);
    }
    let header = [
        "ID", "SCHOOL", "STUDENT", "RULE", "UNTIL", "AUTHOR", "REASON",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                // The reason comes last and is not padded: it may be long.
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        output.out.push(line.trim_end().to_string());
    }
    Ok(output)
}

/// `silence remove ID`.
pub fn silence_remove(
    config: &Config,
    store: &Store,
    id: &str,
    by: &str,
) -> Result<Output, String> {
    for s in &config.schools {
        let removed = store
            .silence_remove(s.id.as_str(), id, Utc::now(), by)
            .map_err(|e| e.to_string())?;
        if let Some(x) = removed {
            return Ok(Output {
                out: vec![format!(
                    "removed {id}: alerts for student {} in {} flow again from the next run",
                    x.student, s.id
                )],
                err: Vec::new(),
            });
        }
    }
    Err(format!(
        "no silence `{id}` in the configured schools ({}); see `fehlzeiten silence list --all`",
        school_ids(config)
    ))
}

// ---------------------------------------------------------------------------------------------
// Daemon side

/// Where a school's run result goes: the school id and its result line or error.
pub type SyncReply = mpsc::UnboundedSender<(String, Result<String, String>)>;

/// A `sync` asked over the socket: the scheduler runs these schools (after any run in flight)
/// and sends each result to `reply`.
pub struct SyncOrder {
    pub schools: Vec<String>,
    pub reply: SyncReply,
}

/// What the socket's handlers share with the daemon.
#[derive(Clone)]
pub struct AdminContext {
    pub shared: Arc<Shared>,
    pub store: Store,
    pub sync: mpsc::Sender<SyncOrder>,
}

/// The bound socket file; removed when dropped (daemon shutdown).
pub struct SocketFile(PathBuf);

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot remove the admin socket {}: {e}", self.0.display());
        }
    }
}

/// Binds the admin socket at `path`: creates the parent directory, removes a stale socket file,
/// and makes the socket mode 0660.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile), String> {
    let shown = path.display();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another process listens on {shown}; is a second daemon running?"
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot remove stale {shown}: {e}"))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("cannot listen on {shown}: {e}"))?;
    let file = SocketFile(path.to_path_buf());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set the mode of {shown}: {e}"))?;
    Ok((listener, file))
}

/// Serves the admin socket until `shutdown` is cancelled.
pub async fn serve(listener: UnixListener, ctx: AdminContext, shutdown: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(connection(stream, ctx.clone(), shutdown.clone()));
                }
                Err(e) => {
                    log::warn!("admin socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

fn error_reply(error: impl std::fmt::Display) -> Value {
    // One line, whatever the cause said.
    let line = error.to_string().replace(['\n', '\r'], " ");
    json!({"ok": false, "error": line})
}

fn output_reply(result: Result<Output, String>) -> Value {
    match result {
        Ok(o) => json!({"ok": true, "out": o.out, "err": o.err}),
        Err(e) => error_reply(e),
    }
}

async fn connection(stream: UnixStream, ctx: AdminContext, shutdown: CancellationToken) {
    let peer = stream
        .peer_cred()
        .map(|c| format!("uid {}", c.uid()))
        .unwrap_or_else(|_| "unknown".to_string());
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let read = (&mut reader).take(MAX_LINE).read_line(&mut line).await;
        let (reply, close) = match read {
            Ok(0) => return,
            Ok(_) if !line.ends_with('\n') && line.len() as u64 >= MAX_LINE => (
                error_reply(format!("request longer than {MAX_LINE} bytes")),
                true,
            ),
            Ok(_) if line.trim().is_empty() => continue,
            Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
                Ok(req) => {
                    log::info!("admin socket: {} from {peer}", command_name(&req));
                    tokio::select! {
                        reply = handle(req, &ctx, &peer) => (reply, false),
                        _ = shutdown.cancelled() => (error_reply("the daemon is stopping"), true),
                    }
                }
                Err(e) => (error_reply(format!("bad request: {e}")), false),
            },
            Err(e) => (error_reply(format!("bad request: {e}")), true),
        };
        let mut text = reply.to_string();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

fn command_name(req: &Request) -> &'static str {
    match req {
        Request::Sync { .. } => "sync",
        Request::SilenceAdd { .. } => "silence_add",
        Request::SilenceList { .. } => "silence_list",
        Request::SilenceRemove { .. } => "silence_remove",
        Request::Erase { undo: false, .. } => "erase",
        Request::Erase { undo: true, .. } => "erase --undo",
        Request::EraseList { .. } => "erase --list",
        Request::Export { .. } => "export",
        Request::Audit { .. } => "audit",
        Request::Evaluate { .. } => "evaluate",
        Request::DigestPreview { .. } => "digest --preview",
        Request::Status => "status",
    }
}

async fn handle(req: Request, ctx: &AdminContext, peer: &str) -> Value {
    match req {
        Request::Sync { school } => sync(ctx, school.as_deref()).await,
        Request::Status => match status::collect(&ctx.shared, &ctx.store).await {
            Ok(s) => match serde_json::to_value(&s) {
                Ok(v) => json!({"ok": true, "status": v}),
                Err(e) => error_reply(e),
            },
            Err(e) => error_reply(e),
        },
        req => {
            let req = req.with_author(peer);
            let config = ctx.shared.config();
            let store = ctx.store.clone();
            // redb is synchronous: the blocking pool, where the runtime's handle runs the
            // command's few async steps.
            let handle = tokio::runtime::Handle::current();
            match tokio::task::spawn_blocking(move || {
                handle.block_on(execute(&config, &store, req))
            })
            .await
            {
                Ok(result) => output_reply(result),
                Err(e) => error_reply(format!("the command failed: {e}")),
            }
        }
    }
}

/// Runs a command on the database, wherever it is open: in the daemon for a request from the
/// socket, or in the CLI when no daemon runs. `sync` and `status` need the daemon's scheduler
/// and are refused here.
pub async fn execute(config: &Config, store: &Store, req: Request) -> Result<Output, String> {
    let by = |b: Option<String>| b.unwrap_or_else(|| "unknown".to_string());
    match req {
        Request::SilenceAdd {
            school,
            student,
            rule,
            until,
            reason,
            author,
        } => silence_add(
            config,
            store,
            &school,
            &student,
            rule.as_deref(),
            until,
            &reason,
            &by(author),
        ),
        Request::SilenceList { school, all } => silence_list(config, store, school.as_deref(), all),
        Request::SilenceRemove { id, by: who } => silence_remove(config, store, &id, &by(who)),
        Request::Erase {
            school,
            student,
            undo,
            by: who,
        } => crate::privacy::erase(config, store, &school, &student, undo, &by(who)),
        Request::EraseList { school } => {
            crate::privacy::erase_list(config, store, school.as_deref())
        }
        Request::Export {
            school,
            student,
            by: who,
        } => crate::privacy::export(config, store, &school, &student, &by(who)),
        Request::Audit {
            school,
            since,
            json,
        } => crate::privacy::audit(config, store, school.as_deref(), since, json),
        Request::Evaluate { school, json, at } => {
            crate::inspect::evaluate(config, store, school.as_deref(), json, at).await
        }
        Request::DigestPreview {
            school,
            to,
            at,
            html,
        } => crate::inspect::digest_preview(config, store, school.as_deref(), &to, at, html).await,
        Request::Sync { .. } | Request::Status => {
            Err(format!("`{}` needs the running daemon", command_name(&req)))
        }
    }
}

async fn sync(ctx: &AdminContext, school: Option<&str>) -> Value {
    let config = ctx.shared.config();
    let schools = match selected(&config, school) {
        Ok(s) => s.iter().map(|s| s.id.to_string()).collect::<Vec<_>>(),
        Err(e) => return error_reply(e),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let order = SyncOrder {
        schools: schools.clone(),
        reply: tx,
    };
    if ctx.sync.send(order).await.is_err() {
        return error_reply("the scheduler is not running");
    }
    let mut results = BTreeMap::new();
    while results.len() < schools.len() {
        match rx.recv().await {
            Some((id, r)) => {
                results.insert(id, r);
            }
            None => break,
        }
    }
    let (mut out, mut err, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for id in &schools {
        match results.remove(id) {
            Some(Ok(line)) => out.push(line),
            Some(Err(e)) => {
                err.push(format!("{id}: failed: {e}"));
                failed.push(id.clone());
            }
            None => {
                err.push(format!("{id}: failed: the run was abandoned"));
                failed.push(id.clone());
            }
        }
    }
    if failed.is_empty() {
        json!({"ok": true, "out": out, "err": err})
    } else {
        json!({"ok": false, "error": format!("sync failed for: {}", failed.join(", ")), "out": out, "err": err})
    }
}

// ---------------------------------------------------------------------------------------------
// CLI side

/// Sends `req` to the daemon at `path`. `Ok(Err(why))` when no daemon answers there (no socket
/// file, connection refused, no permission): the caller may then open the database itself.
pub fn call(path: &Path, req: &Request) -> Result<Result<Value, String>, String> {
    let stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => return Ok(Err(format!("{}: {e}", path.display()))),
    };
    let timeout = match req {
        Request::Sync { .. } => None,
        _ => Some(CALL_TIMEOUT),
    };
    let fail = |e: std::io::Error| format!("the daemon's admin socket {}: {e}", path.display());
    stream.set_read_timeout(timeout).map_err(fail)?;
    let mut text = serde_json::to_string(req).map_err(|e| e.to_string())?;
    text.push('\n');
    (&stream).write_all(text.as_bytes()).map_err(fail)?;
    let mut line = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(fail)?;
    if line.trim().is_empty() {
        return Err(format!(
            "the daemon closed its admin socket {} without an answer",
            path.display()
        ));
    }
    serde_json::from_str(line.trim())
        .map(Ok)
        .map_err(|e| format!("unexpected answer on {}: {e}", path.display()))
}

/// The lines of an answer, and its error if it is not ok.
pub fn reply_output(reply: &Value) -> (Output, Option<String>) {
    let lines = |key: &str| -> Vec<String> {
        reply[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let output = Output {
        out: lines("out"),
        err: lines("err"),
    };
    let error = if reply["ok"].as_bool() == Some(true) {
        None
    } else {
        Some(
            reply["error"]
                .as_str()
                .unwrap_or("the daemon refused the command")
                .to_string(),
        )
    };
    (output, error)
}

/// For messages: the database is held by a daemon whose socket does not answer.
pub fn unreachable_message(config: &Config, why: &str) -> String {
    format!(
        "the daemon holds the database in {} but its admin socket is unreachable ({why}); check `systemctl status fehlzeiten` and daemon.admin_socket",
        config.daemon.data_dir.display()
    )
}
