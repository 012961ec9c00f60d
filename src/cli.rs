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
    /// GDPR Art. 15: print everything stored about one student as JSON.
    Export {
        /// The school's id from the config.
        #[arg(long)]
        school: String,
        /// The student's id as `evaluate` shows it.
        #[arg(long)]
        student: String,
    },
    /// GDPR Art. 17: delete everything about one student now and keep them out of later syncs.
    Erase {
        /// The school's id from the config.
        #[arg(long, required_unless_present = "list")]
        school: Option<String>,
        /// The student's id as `evaluate` shows it.
        #[arg(long, required_unless_present = "list")]
        student: Option<String>,
        /// Undo an erasure: the next sync brings the student back.
        #[arg(long, conflicts_with = "list")]
        undo: bool,
        /// List the erased students (kept out of the syncs).
        #[arg(long)]
        list: bool,
    },
    /// Print the audit log: mails sent, silences, exports and erasures (kept 90 days).
    Audit {
        /// Only this school.
        #[arg(long)]
        school: Option<String>,
        /// From this day on (YYYY-MM-DD, school-local).
        #[arg(long, value_name = "DATE")]
        since: Option<NaiveDate>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
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
    // clap's first paragraph, on one line ("… not provided:" is followed by the arguments).
    let rendered = e.render().to_string();
    let line = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let line = if line.is_empty() {
        "invalid arguments"
    } else {
        &line
    };
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

/// The config as an operator command needs it: systemd credentials, which only the service
/// can read, may be missing (a command that needs one says so then).
fn load_config(cli: &Cli) -> Result<Config, String> {
    load_config_with(cli, &config::Environment::for_operator())
}

fn load_config_with(cli: &Cli, env: &config::Environment) -> Result<Config, String> {
    config::load_with(&cli.config, env).map_err(|e| {
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

fn run(cli: Cli) -> Result<ExitCode, String> {
    match &cli.command {
        Command::Run => {
            // Start order (SPEC §6): logger, config, database, then the daemon binds the status
            // endpoint, starts the scheduler and says READY.
            crate::logging::init(log::LevelFilter::Info);
            // The daemon needs every secret.
            let config = load_config_with(&cli, &config::Environment::from_process())?;
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
            // Under systemd (ExecStartPre) the credentials are there and checked; by hand they
            // are not readable, which is said but is no problem.
            let env = config::Environment::for_operator();
            let problems = config::check_config_with(&cli.config, &env);
            if problems.is_empty() {
                if let Ok(config) = config::load_with(&cli.config, &env) {
                    let today = Utc::now().date_naive();
                    for w in config::config_warnings(&config, today) {
                        eprintln!("warning: {w}");
                    }
                    for n in config::unavailable_secrets(&config) {
                        eprintln!("{n}");
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
            let request = crate::admin::Request::Sync {
                school: school.clone(),
            };
            match via_daemon(&config, &request)? {
                Routed::Done(code) => Ok(code),
                Routed::NoDaemon(why) => {
                    runtime()?.block_on(sync(&config, school.as_deref(), &why))
                }
            }
        }
        Command::Evaluate { school, json, at } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            operator_command(
                &config,
                crate::admin::Request::Evaluate {
                    school: school.clone(),
                    json: *json,
                    at: *at,
                },
            )
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
            let request = crate::admin::Request::DigestPreview {
                school: school.clone(),
                to: to.clone(),
                at: *at,
                html: out.is_some(),
            };
            let output = operator_output(&config, &request)?;
            match out {
                Some(path) => {
                    let mut html = output.out.join("\n");
                    html.push('\n');
                    std::fs::write(path, html)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    out!("wrote {}", path.display());
                }
                None => print_output(&output)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Silence { action } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            operator_command(&config, silence_request(action))
        }
        Command::Export { school, student } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            operator_command(
                &config,
                crate::admin::Request::Export {
                    school: school.clone(),
                    student: student.clone(),
                    by: Some(invoking_user()),
                },
            )
        }
        Command::Erase {
            school,
            student,
            undo,
            list,
        } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            let request = match (school, student) {
                (school, _) if *list => crate::admin::Request::EraseList {
                    school: school.clone(),
                },
                (Some(school), Some(student)) => crate::admin::Request::Erase {
                    school: school.clone(),
                    student: student.clone(),
                    undo: *undo,
                    by: Some(invoking_user()),
                },
                _ => return Err("erase needs --school and --student (or --list)".into()),
            };
            operator_command(&config, request)
        }
        Command::Audit {
            school,
            since,
            json,
        } => {
            let config = load_config(&cli)?;
            crate::logging::init(config.daemon.log_level.min(log::LevelFilter::Warn));
            operator_command(
                &config,
                crate::admin::Request::Audit {
                    school: school.clone(),
                    since: *since,
                    json: *json,
                },
            )
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
            "  next sync: {}; next digest: {}{}",
            school.next_sync.as_deref().unwrap_or("-"),
            school.next_digest.as_deref().unwrap_or("-"),
            school
                .next_school_digest
                .as_deref()
                .map(|t| format!("; next school-wide digest: {t}"))
                .unwrap_or_default()
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

/// How a command that changes data went: answered by the daemon, or no daemon answered (why).
enum Routed {
    Done(ExitCode),
    NoDaemon(String),
}

/// Sends `request` to the running daemon's admin socket (SPEC §8) and prints its answer.
fn via_daemon(config: &Config, request: &crate::admin::Request) -> Result<Routed, String> {
    match ask_daemon(config, request)? {
        Err(why) => Ok(Routed::NoDaemon(why)),
        Ok((output, error)) => {
            print_output(&output)?;
            match error {
                None => Ok(Routed::Done(ExitCode::SUCCESS)),
                Some(e) => Err(e),
            }
        }
    }
}

/// The daemon's answer to a request (its output and error), or why no daemon answered.
type DaemonAnswer = Result<(crate::admin::Output, Option<String>), String>;

fn ask_daemon(config: &Config, request: &crate::admin::Request) -> Result<DaemonAnswer, String> {
    let Some(path) = config::admin_socket(config) else {
        return Ok(Err("no admin socket configured".into()));
    };
    Ok(crate::admin::call(&path, request)?.map(|reply| crate::admin::reply_output(&reply)))
}

fn print_output(output: &crate::admin::Output) -> Result<(), String> {
    for line in &output.err {
        eprintln!("{line}");
    }
    for line in &output.out {
        out!("{line}");
    }
    Ok(())
}

/// Opens the database for a command that found no daemon on the admin socket; a database held
/// by a daemon whose socket does not answer is said in one line.
fn open_store_without_daemon(config: &Config, why: &str) -> Result<Store, String> {
    Store::open(&config.daemon.data_dir).map_err(|e| match e {
        crate::store::StoreError::InUse(_) => crate::admin::unreachable_message(config, why),
        crate::store::StoreError::Open(_, msg) if msg.contains("already open") => {
            crate::admin::unreachable_message(config, why)
        }
        other => other.to_string(),
    })
}

async fn sync(config: &Config, school: Option<&str>, why: &str) -> Result<ExitCode, String> {
    let schools = crate::admin::selected(config, school)?;
    let store = open_store_without_daemon(config, why)?;
    let transport = Transport::from_config(&config.mail).map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    let options = RunOptions {
        digests: false,
        school_digest: false,
        deliver: true,
    };
    // All schools at once: one school's failing WebUntis must not hold up the others.
    let results =
        pipeline::run_schools(&store, config, &schools, &transport, Utc::now(), options).await;
    for (s, result) in schools.iter().zip(results) {
        match result {
            Ok(r) => {
                out!("{}", crate::admin::report_line(s.id.as_str(), &r));
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

fn silence_request(action: &SilenceCommand) -> crate::admin::Request {
    match action {
        SilenceCommand::Add {
            school,
            student,
            rule,
            until,
            reason,
        } => crate::admin::Request::SilenceAdd {
            school: school.clone(),
            student: student.clone(),
            rule: rule.clone(),
            until: *until,
            reason: reason.clone(),
            author: Some(invoking_user()),
        },
        SilenceCommand::List { school, all } => crate::admin::Request::SilenceList {
            school: school.clone(),
            all: *all,
        },
        SilenceCommand::Remove { id } => crate::admin::Request::SilenceRemove {
            id: id.clone(),
            by: Some(invoking_user()),
        },
    }
}

/// An operator command on the database (`silence`, `export`, `erase`, `audit`): while the daemon
/// runs it holds the database, so it is asked over the admin socket (SPEC §8); otherwise the
/// command opens the database itself.
fn operator_command(config: &Config, request: crate::admin::Request) -> Result<ExitCode, String> {
    let why = match via_daemon(config, &request)? {
        Routed::Done(code) => return Ok(code),
        Routed::NoDaemon(why) => why,
    };
    print_output(&execute_locally(config, request, &why)?)?;
    Ok(ExitCode::SUCCESS)
}

/// An operator command whose output the caller handles itself: from the daemon, or run on the
/// database when no daemon answers.
fn operator_output(
    config: &Config,
    request: &crate::admin::Request,
) -> Result<crate::admin::Output, String> {
    match ask_daemon(config, request)? {
        Ok((output, None)) => Ok(output),
        Ok((output, Some(e))) => {
            for line in &output.err {
                eprintln!("{line}");
            }
            Err(e)
        }
        Err(why) => execute_locally(config, request.clone(), &why),
    }
}

/// Opens the database (no daemon holds it) and runs the command on it.
fn execute_locally(
    config: &Config,
    request: crate::admin::Request,
    why: &str,
) -> Result<crate::admin::Output, String> {
    let store = open_store_without_daemon(config, why)?;
    let output = runtime()?.block_on(crate::admin::execute(config, &store, request));
    store.close().map_err(|e| e.to_string())?;
    output
}
