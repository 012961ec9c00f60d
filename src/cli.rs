//! Command line (SPEC §1): clap definitions and the glue that calls the library. Every expected
//! failure ends as one line on stderr and exit code 1.

use crate::config::{self, Config, DEFAULT_CONFIG_PATH};
use crate::mail::Transport;
use crate::pipeline::{self, RunOptions};
use crate::store::Store;
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Writes a line to stdout. A closed pipe (`fehlzeiten evaluate | head`) ends the command
/// quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// Like [`out!`] without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))?
    };
}

/// The error that stands for a closed stdout; `main` exits quietly on it.
const STDOUT_CLOSED: &str = "\u{0}stdout closed";

pub(crate) fn write_stdout(args: std::fmt::Arguments) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(STDOUT_CLOSED.to_string()),
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "fehlzeiten",
    version,
    about = "Early-warning system for school absenteeism: syncs WebUntis, evaluates absence patterns, mails class teachers and social workers"
)]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "FEHLZEITEN_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: sync, evaluate and mail on each school's schedule (systemd runs this).
    Run,
    /// Ask the running daemon how it is doing (its status endpoint).
    Status {
        /// Print the daemon's JSON as it is.
        #[arg(long)]
        json: bool,
    },
    /// Run the whole pipeline on a simulated school and write the mails into a directory.
    Demo(DemoArgs),
    /// Check the config file and print every problem; exit 1 if there is any.
    CheckConfig,
    /// Sync every configured school now, evaluate, and send the immediate alerts.
    Sync {
        /// Only this school.
        #[arg(long)]
        school: Option<String>,
    },
    /// Print the current findings (what would be alerted) without sending anything.
    Evaluate {
        /// Only this school.
        #[arg(long)]
        school: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Evaluate as of this date (YYYY-MM-DD) instead of today.
        #[arg(long, value_name = "DATE")]
        at: Option<NaiveDate>,
    },
    /// Render the digest a class teacher would get now; sends nothing.
    Digest {
        /// Render only (the one supported mode).
        #[arg(long, required = true)]
        preview: bool,
        /// The school (needed when several are configured).
        #[arg(long)]
        school: Option<String>,
        /// The class teacher's address.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// Write the HTML part to this file instead of printing the text part.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Render as of this date (YYYY-MM-DD) instead of today.
        #[arg(long, value_name = "DATE")]
        at: Option<NaiveDate>,
    },
    /// Send one test mail with the configured transport.
    SendTestMail {
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
    /// Mute a student's alerts for a while, e.g. "known case, help plan running".
    Silence {
        #[command(subcommand)]
        action: SilenceCommand,
    },
    /// Run the WebUntis simulator standalone, for trying a config without a real school.
    SimulateUntis {
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8780")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 120)]
        students: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Mute the alerts about one student (all rules, or one) up to and including a date.
    Add {
        /// The school's id from the config.
        #[arg(long)]
        school: String,
        /// The student's id as `evaluate` shows it.
        #[arg(long)]
        student: String,
        /// Mute only this rule (default: all rules).
        #[arg(long)]
        rule: Option<String>,
        /// Last day it is in force (YYYY-MM-DD, inclusive, school-local).
        #[arg(long, value_name = "DATE")]
        until: NaiveDate,
        /// Why, for colleagues, e.g. "known case, help plan running".
        #[arg(long)]
        reason: String,
    },
    /// List the silences in force.
    List {
        /// Only this school.
        #[arg(long)]
        school: Option<String>,
        /// Include expired silences.
        #[arg(long)]
        all: bool,
    },
    /// Remove a silence; its alerts flow again from the next run on.
    Remove {
        /// The id `silence add` printed (`sil-…`).
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to write the mails and index.html.
    #[arg(long, default_value = "fehlzeiten-demo")]
    pub out: PathBuf,
    /// Students in the simulated school.
    #[arg(long, default_value_t = 120)]
    pub students: usize,
    /// Seed of the scenario generator (same seed, same school).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The demo's "today" (YYYY-MM-DD); default: today, or the end of the last school year when
    /// today has too little school history.
    #[arg(long, value_name = "DATE")]
    pub today: Option<NaiveDate>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(message) if message == STDOUT_CLOSED => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fehlzeiten: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout with exit 0; a usage error becomes one line and exit 1.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let line = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    eprintln!("fehlzeiten: {line}; see `fehlzeiten --help`");
    ExitCode::FAILURE
}

/// A bug must still end as one readable line, not a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("fehlzeiten: internal error{place}; please report it with the command you ran");
    }));
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    config::load(&cli.config).map_err(|e| {
        let mut lines = e.problems.iter().map(ToString::to_string);
        let first = lines
            .next()
            .unwrap_or_else(|| "the config is invalid".to_string());
        match lines.count() {
            0 => first,
            more => format!("{first} (and {more} more: run `fehlzeiten check-config`)"),
        }
    })
}

fn selected<'a>(
    config: &'a Config,
    school: Option<&str>,
) -> Result<Vec<&'a config::SchoolConfig>, String> {
    match school {
        None => Ok(config.schools.iter().collect()),
        Some(id) => config.school(id).map(|s| vec![s]).ok_or_else(|| {
            format!(
                "no school `{id}` in the config; configured: {}",
                school_ids(config)
            )
        }),
    }
}

fn school_ids(config: &Config) -> String {
    config
        .schools
        .iter()
        .map(|s| s.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match &cli.command {
        Command::Run => {
            // Start order (SPEC §6): logger, config, database, then the daemon binds the status
            // endpoint, starts the scheduler and says READY.
            crate::logging::init(log::LevelFilter::Info);
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level);
            let store = open_store(&config)?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            runtime()?
                .block_on(crate::daemon::run(
                    config,
                    store,
                    std::sync::Arc::new(crate::daemon::SystemClock),
                    shutdown,
                ))
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let config = load_config(&cli)?;
            crate::logging::init(log::LevelFilter::Warn);
            runtime()?.block_on(status(&config, *json))
        }
        Command::CheckConfig => {
            crate::logging::init(log::LevelFilter::Warn);
            let problems = config::check_config(&cli.config);
            if problems.is_empty() {
                if let Ok(config) = config::load(&cli.config) {
                    let today = Utc::now().date_naive();
                    for w in config::config_warnings(&config, today) {
                        eprintln!("warning: {w}");
                    }
                }
                out!("{}: ok", cli.config.display());
                return Ok(ExitCode::SUCCESS);
            }
            for p in &problems {
                eprintln!("{p}");
            }
            Ok(ExitCode::FAILURE)
        }
        Command::Demo(args) => {
            crate::logging::init(log::LevelFilter::Warn);
            let summary = runtime()?.block_on(crate::demo::run(crate::demo::DemoOptions {
                out: args.out.clone(),
                students: args.students,
                seed: args.seed,
                today: args.today,
            }))?;
            out_raw!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::SimulateUntis {
            listen,
            students,
            seed,
        } => {
            crate::logging::init(log::LevelFilter::Info);
            let today = Utc::now()
                .with_timezone(&chrono_tz::Europe::Berlin)
                .date_naive();
            runtime()?.block_on(crate::sim::run_standalone(
                *listen,
                *students,
                *seed,
                today,
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync { school } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            runtime()?.block_on(sync(&config, school.as_deref()))
        }
        Command::Evaluate { school, json, at } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            runtime()?.block_on(evaluate(&config, school.as_deref(), *json, *at))
        }
        Command::Digest {
            preview: _,
            school,
            to,
            out,
            at,
        } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            runtime()?.block_on(digest_preview(
                &config,
                school.as_deref(),
                to,
                out.as_deref(),
                *at,
            ))
        }
        Command::Silence { action } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            silence(&config, action)
        }
        Command::SendTestMail { to } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            let line = runtime()?.block_on(crate::mail::send_test_mail(&config, to))?;
            out!("{line}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The daemon's status endpoint as seen from this host.
fn status_url(config: &Config, path: &str) -> String {
    let mut addr = config.daemon.status_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}{path}")
}

async fn status(config: &Config, json: bool) -> Result<ExitCode, String> {
    let url = status_url(config, "/status");
    let fail = |e: reqwest::Error| {
        format!(
            "cannot reach the daemon at {url}: {e}; is `fehlzeiten run` (systemctl status fehlzeiten) running?"
        )
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let body = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(fail)?
        .text()
        .await
        .map_err(fail)?;
    if json {
        out!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let s: crate::status::Status =
        serde_json::from_str(&body).map_err(|e| format!("unexpected answer from {url}: {e}"))?;
    out!(
        "fehlzeiten {}, up {} s, scheduler {}",
        s.version,
        s.uptime_s,
        if s.scheduler_alive {
            "running"
        } else {
            "NOT RUNNING"
        }
    );
    for school in &s.schools {
        let last = &school.last_sync;
        out!("{}:", school.id);
        out!(
            "  {} students, {} Klassen, {} absences, {} Klassen without class teacher",
            school.students,
            school.klassen,
            school.absences,
            school.unmapped_klassen
        );
        out!(
            "  last sync: {} {}{}",
            last.started.as_deref().unwrap_or("never"),
            match last.ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "",
            },
            last.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        out!(
            "  next sync: {}; next digest: {}",
            school.next_sync.as_deref().unwrap_or("-"),
            school.next_digest.as_deref().unwrap_or("-")
        );
        out!(
            "  alerts: {} critical, {} warning, {} watch; outbox: {} pending, {} failed",
            school.alerts.critical,
            school.alerts.warning,
            school.alerts.watch,
            school.outbox.pending,
            school.outbox.failed
        );
        if let Some(e) = &school.outbox.last_error {
            out!("  last mail error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open_store(config: &Config) -> Result<Store, String> {
    Store::open(&config.daemon.data_dir).map_err(|e| e.to_string())
}

async fn sync(config: &Config, school: Option<&str>) -> Result<ExitCode, String> {
    let schools = selected(config, school)?;
    let store = open_store(config)?;
    let transport = Transport::from_config(&config.mail).map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    let options = RunOptions {
        digests: false,
        deliver: true,
    };
    // All schools at once: one school's failing WebUntis must not hold up the others.
    let results =
        pipeline::run_schools(&store, config, &schools, &transport, Utc::now(), options).await;
    for (s, result) in schools.iter().zip(results) {
        match result {
            Ok(r) => {
                let sync = r.sync.as_ref();
                out!(
                    "{}: ok: {} students, {} Klassen, {} absences in {}..{}, {} requests; {} findings, {} alert mails; delivered {}, retrying {}, failed {}",
                    s.id,
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
                );
            }
            Err(e) => {
                eprintln!("{}: failed: {e}", s.id);
                failed.push(s.id.to_string());
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!("sync failed for: {}", failed.join(", ")))
    }
}

/// One finding as `evaluate --json` prints it (SPEC §7).
#[derive(serde::Serialize)]
struct FindingJson<'a> {
    school: &'a str,
    student: StudentJson,
    rule: &'a str,
    severity: &'a str,
    period: &'a str,
    value: u32,
    evidence: &'a [String],
    /// Muted by a silence: found, but no mail names it.
    silenced: bool,
}

#[derive(serde::Serialize)]
struct StudentJson {
    id: String,
    name: String,
    klasse: Option<String>,
}

async fn evaluate(
    config: &Config,
    school: Option<&str>,
    json: bool,
    at: Option<NaiveDate>,
) -> Result<ExitCode, String> {
    let schools = selected(config, school)?;
    let store = open_store(config)?;
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for s in schools {
        let id = s.id.to_string();
        let (snapshot, silences) = store
            .blocking(move |st| Ok((st.load_school(&id)?, st.silences(&id)?)))
            .await
            .map_err(|e| e.to_string())?;
        let today = at.unwrap_or_else(|| Utc::now().with_timezone(&s.timezone).date_naive());
        let (findings, _) =
            crate::alerts::inhibit(&s.id, pipeline::evaluate_school(&snapshot, s, today));
        rows.push((s, snapshot, silences, today, findings));
    }
    for (s, snapshot, silences, today, findings) in &rows {
        let dir = crate::alerts::Directory::new(&snapshot.roster);
        let active = crate::alerts::ActiveSilences::new(&s.id, silences, *today);
        for f in findings {
            all.push(FindingJson {
                school: s.id.as_str(),
                student: StudentJson {
                    id: f.student.0.clone(),
                    name: dir.name(&f.student),
                    klasse: dir.klasse_name(&f.student),
                },
                rule: &f.rule,
                severity: f.severity.as_str(),
                period: &f.period,
                value: f.value,
                evidence: &f.evidence,
                silenced: active.mutes(&crate::alerts::key_of(&s.id, f)),
            });
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        out!("{text}");
    } else if all.is_empty() {
        out!("no findings");
    } else {
        for f in &all {
            let name = if f.student.name.is_empty() {
                format!("({})", f.student.id)
            } else {
                f.student.name.clone()
            };
            out!(
                "{:<8}{} {:<20} {:<5} {:<28} {:<20} {:>4}  {}",
                f.severity,
                if f.silenced { " (muted)" } else { "" },
                f.rule,
                f.student.klasse.as_deref().unwrap_or("-"),
                name,
                f.period,
                f.value,
                f.evidence.join(" ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn digest_preview(
    config: &Config,
    school: Option<&str>,
    to: &str,
    out: Option<&std::path::Path>,
    at: Option<NaiveDate>,
) -> Result<ExitCode, String> {
    let schools = selected(config, school)?;
    let [s] = schools.as_slice() else {
        return Err(format!(
            "several schools are configured; choose one with --school ({})",
            school_ids(config)
        ));
    };
    let store = open_store(config)?;
    let now = match at {
        Some(day) => crate::demo::local_time(s.timezone, day, 7, 0),
        None => Utc::now(),
    };
    let rendered = pipeline::preview_digest(&store, config, s, to, now)
        .await
        .map_err(|e| e.to_string())?;
    let Some(mail) = rendered else {
        return Err(format!(
            "{to} gets no digest now: not a class teacher of a Klasse of {}, or no alerts for their Klassen",
            s.id
        ));
    };
    match out {
        Some(path) => {
            std::fs::write(path, &mail.html)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            out!("wrote {}", path.display());
        }
        None => {
            out!("Subject: {}\n\n{}", mail.subject, mail.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who runs the command, for the silence's author and the audit log: the user behind `sudo`,
/// else the login, else the numeric uid.
fn invoking_user() -> String {
    use std::os::unix::fs::MetadataExt;
    ["SUDO_USER", "USER"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| m.uid().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// How many fresh ids `silence add` tries before it gives up (a clash is a 1 in 4 billion event).
const SILENCE_ID_ATTEMPTS: usize = 5;

fn silence(config: &Config, action: &SilenceCommand) -> Result<ExitCode, String> {
    // These commands open the database themselves. While the daemon runs it holds the database;
    // routing them through its admin socket (SPEC §8) goes here.
    match action {
        SilenceCommand::Add {
            school,
            student,
            rule,
            until,
            reason,
        } => silence_add(config, school, student, rule.as_deref(), *until, reason),
        SilenceCommand::List { school, all } => silence_list(config, school.as_deref(), *all),
        SilenceCommand::Remove { id } => silence_remove(config, id),
    }
}

fn all_rules_label(config: &Config) -> &'static str {
    match config.daemon.language {
        config::Language::De => "alle Regeln",
        config::Language::En => "all rules",
    }
}

fn silence_add(
    config: &Config,
    school: &str,
    student: &str,
    rule: Option<&str>,
    until: NaiveDate,
    reason: &str,
) -> Result<ExitCode, String> {
    let s = config.school(school).ok_or_else(|| {
        format!(
            "no school `{school}` in the config; configured: {}",
            school_ids(config)
        )
    })?;
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
    let store = open_store(config)?;
    let mut silence = crate::model::Silence {
        id: String::new(),
        school: s.id.clone(),
        student: crate::model::StudentId(student.to_string()),
        rule: rule.map(str::to_string),
        until,
        reason: reason.to_string(),
        author: invoking_user(),
        created: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let mut added = false;
    for _ in 0..SILENCE_ID_ATTEMPTS {
        silence.id = crate::model::Silence::new_id();
        // Ids are unique across the configured schools, so `silence remove` needs no school.
        if find_silence(config, &store, &silence.id)?.is_some() {
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
    if !store
        .has_student(s.id.as_str(), student)
        .map_err(|e| e.to_string())?
    {
        eprintln!(
            "warning: no student `{student}` in the stored roster of {} (yet); check the id with `fehlzeiten evaluate`",
            s.id
        );
    }
    let what = match rule {
        Some(rule) => format!("alerts of rule {rule}"),
        None => "all alerts".to_string(),
    };
    out!(
        "{}: mutes {what} for student {student} in {} until {until} (inclusive)",
        silence.id,
        s.id
    );
    Ok(ExitCode::SUCCESS)
}

/// The school and silence with this id among the configured schools.
fn find_silence<'a>(
    config: &'a Config,
    store: &Store,
    id: &str,
) -> Result<Option<(&'a config::SchoolConfig, crate::model::Silence)>, String> {
    for s in &config.schools {
        let found = store
            .silences(s.id.as_str())
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|x| x.id == id);
        if let Some(found) = found {
            return Ok(Some((s, found)));
        }
    }
    Ok(None)
}

fn silence_list(config: &Config, school: Option<&str>, all: bool) -> Result<ExitCode, String> {
    let schools = selected(config, school)?;
    let store = open_store(config)?;
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
    if rows.is_empty() {
        out!(
            "{}",
            if all {
                "no silences"
            } else {
                "no silences in force"
            }
        );
        return Ok(ExitCode::SUCCESS);
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
        out!("{}", line.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn silence_remove(config: &Config, id: &str) -> Result<ExitCode, String> {
    let store = open_store(config)?;
    let by = invoking_user();
    for s in &config.schools {
        let removed = store
            .silence_remove(s.id.as_str(), id, Utc::now(), &by)
            .map_err(|e| e.to_string())?;
        if let Some(x) = removed {
            out!(
                "removed {id}: alerts for student {} in {} flow again from the next run",
                x.student,
                s.id
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err(format!(
        "no silence `{id}` in the configured schools ({}); see `fehlzeiten silence list --all`",
        school_ids(config)
    ))
}
