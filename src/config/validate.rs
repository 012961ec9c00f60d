//! Loading and validation of the config file into [`super::Config`].
//!
//! Validation collects every problem instead of stopping at the first, so an admin fixes the
//! file in one round (`fehlzeiten check-config`). Each problem is one line,
//! `file: key.path: what is wrong; how to fix it`, and never contains a secret.

use super::class_teachers::parse_class_teachers;
use super::file::{
    ConfigFile, DaemonSection, MailSection, NotifySection, RecipientsSection, SchoolSection,
    UntisSection,
};
use super::ics::parse_holidays;
use super::parse::{
    check_mailbox, config_dir, format_duration, is_loopback_host, parse_date, parse_duration,
    parse_time, parse_time_range, parse_weekly_slot, resolve_path,
};
use super::rules as rule_checks;
use super::secret::{Secret, SecretError, read_secret_file};
use super::{
    Config, DaemonConfig, Holiday, Language, MailConfig, NotifyConfig, Period, Recipients,
    SchoolConfig, Security, SmtpConfig, TransportConfig, UntisConfig,
};
use crate::calendar::STATES;
use crate::model::{SchoolId, Severity};
use crate::rules::RuleParams;
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem in the config: `file: key.path: problem; how to fix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// TOML key path (`school[gym-musterstadt].untis.sync_every`), `line L, column C` for
    /// syntax errors, or empty when the problem is about the whole file.
    pub key: String,
    pub message: String,
}

impl Problem {
    fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            key: key.into(),
            message: one_line(&message.into()),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.lines().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// The problems as the lines `check-config` prints.
    pub fn lines(&self) -> Vec<String> {
        self.problems.iter().map(Problem::to_string).collect()
    }
}

/// Set by the systemd unit: this process is the service (or its `ExecStartPre=`), which gets
/// the systemd credentials.
pub const SERVICE_ENV: &str = "FEHLZEITEN_SERVICE";

/// What validation reads from the process environment, passed in so tests can set it.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `$CREDENTIALS_DIRECTORY`: where systemd puts `LoadCredential=` secrets.
    pub credentials_dir: Option<PathBuf>,
    /// Outside the service (no `$CREDENTIALS_DIRECTORY`), credentials are unavailable secrets
    /// instead of problems: for operator commands and `check-config` run by hand.
    pub credentials_optional: bool,
}

impl Environment {
    /// What the daemon sees: every secret must be readable.
    pub fn from_process() -> Environment {
        Environment {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            credentials_optional: false,
        }
    }

    /// What an operator command sees: systemd credentials may be missing (only the service
    /// gets them); a command that needs one says so when it does. Within the service (the
    /// unit sets `FEHLZEITEN_SERVICE=1`, so its `ExecStartPre=` check-config) every secret must
    /// be readable.
    pub fn for_operator() -> Environment {
        Environment {
            credentials_optional: std::env::var_os(SERVICE_ENV).is_none_or(|v| v.is_empty()),
            ..Environment::from_process()
        }
    }
}

/// Reads, parses and validates the config file, reading its secrets.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &Environment::from_process())
}

/// [`load`] with an explicit environment.
pub fn load_with(path: &Path, env: &Environment) -> Result<Config, ConfigError> {
    let text = read_config_text(path).map_err(|p| ConfigError { problems: vec![p] })?;
    load_from_str_with(path, &text, env)
}

/// Parses and validates config text that was read from `path` (relative paths in it are
/// resolved against the directory of `path`).
pub fn load_from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    load_from_str_with(path, text, &Environment::from_process())
}

/// [`load_from_str`] with an explicit environment.
pub fn load_from_str_with(
    path: &Path,
    text: &str,
    env: &Environment,
) -> Result<Config, ConfigError> {
    let single = |p: Problem| ConfigError { problems: vec![p] };
    if text.trim().is_empty() {
        return Err(single(Problem::new(
            path,
            "",
            "the config file is empty; start from the commented example that the package installs as /etc/fehlzeiten/fehlzeiten.toml",
        )));
    }
    // Parse once untyped so that a file of nothing but comments gets a clearer message than
    // "missing field `mail`".
    match toml::from_str::<toml::Table>(text) {
        Err(e) => return Err(single(toml_problem(path, text, &e))),
        Ok(table) if table.is_empty() => {
            return Err(single(Problem::new(
                path,
                "",
                "the config file contains only comments; uncomment and fill in [mail] and at least one [[school]]",
            )));
        }
        Ok(_) => {}
    }
    let file: ConfigFile =
        toml::from_str(text).map_err(|e| single(toml_problem(path, text, &e)))?;
    Checker::new(path, env).config(&file)
}

/// What `fehlzeiten check-config` prints: one line per problem; empty when the config is
/// valid. Secret files are read (and their modes checked) like the daemon does.
pub fn check_config(path: &Path) -> Vec<String> {
    check_config_with(path, &Environment::from_process())
}

/// [`check_config`] with an explicit environment.
pub fn check_config_with(path: &Path, env: &Environment) -> Vec<String> {
    match load_with(path, env) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

/// Secrets this process cannot read (systemd credentials outside the service), as lines in the
/// format of problems. `check-config` run by hand prints them as notes: only the service, and
/// its `ExecStartPre=` check, can read them.
pub fn unavailable_secrets(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    let mut note = |key: String, secret: &Secret| {
        if let Some(why) = secret.unavailable_reason() {
            lines.push(
                Problem::new(&config.path, key, format!("note: not checked here: {why}"))
                    .to_string(),
            );
        }
    };
    if let TransportConfig::Smtp(smtp) = &config.mail.transport
        && let Some(password) = &smtp.password
    {
        note("mail.password_credential".into(), password);
    }
    for school in &config.schools {
        note(
            format!("school[{}].untis.password_credential", school.id),
            &school.untis.password,
        );
    }
    lines
}

/// Hints about a valid config that is probably not what the admin wants (same line format as
/// problems). `check-config` prints them but they do not fail it, so the daemon still starts.
/// `today` is the server's local date.
pub fn config_warnings(config: &Config, today: NaiveDate) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut warn = |key: String, message: String| {
        warnings.push(Problem::new(&config.path, key, format!("warning: {message}")).to_string());
    };
    if let TransportConfig::Smtp(smtp) = &config.mail.transport {
        match (smtp.security, smtp.port) {
            (Security::Tls, 587) => warn(
                "mail.port".into(),
                "port 587 is the STARTTLS port but security = \"tls\"; use security = \"starttls\", or port 465 for tls".into(),
            ),
            (Security::StartTls, 465) => warn(
                "mail.port".into(),
                "port 465 is the implicit-TLS port but security = \"starttls\"; use security = \"tls\", or port 587 for starttls".into(),
            ),
            _ => {}
        }
    }
    for school in &config.schools {
        if school.notify.social_worker_digest.is_some()
            && !school.recipients.social_workers_see_school
        {
            warn(
                format!("school[{}].notify.social_worker_digest", school.id),
                "is set but social_workers_see = \"none\", so social workers get no student-level data and no school-wide digest is sent; set social_workers_see = \"school\", or social_worker_digest = \"\"".into(),
            );
        }
    }
    // German school years start in summer; holidays from August on belong to the next one.
    let year_start_year = if today.month() >= 8 {
        today.year()
    } else {
        today.year() - 1
    };
    let (Some(year_start), Some(second_half), Some(year_end)) = (
        NaiveDate::from_ymd_opt(year_start_year, 8, 1),
        NaiveDate::from_ymd_opt(year_start_year + 1, 2, 1),
        NaiveDate::from_ymd_opt(year_start_year + 1, 7, 31),
    ) else {
        return warnings;
    };
    let label = format!("{}-{}", year_start_year, year_start_year + 1);
    for school in &config.schools {
        let overlaps = |from: NaiveDate, to: NaiveDate| {
            school.holidays.iter().any(|h| h.from <= to && from <= h.to)
        };
        let key = format!("school[{}].holidays", school.id);
        if !overlaps(year_start, year_end) {
            warn(
                key,
                format!(
                    "no Ferien are configured for the school year {label}, so they count as school days; add them with holidays or holidays_file"
                ),
            );
        } else if !overlaps(second_half, year_end) {
            warn(
                key,
                format!(
                    "no Ferien are configured after {second_half} (second half of the school year {label}); add the rest of the year's Ferien"
                ),
            );
        }
    }
    warnings
}

fn read_config_text(path: &Path) -> Result<String, Problem> {
    let bytes = std::fs::read(path).map_err(|e| {
        let message = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "the config file does not exist; create it from the commented example, or give another one with --config PATH or $FEHLZEITEN_CONFIG".to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "the config file cannot be read (permission denied); run as root or as a member of the group fehlzeiten (the file should be 0640 root:fehlzeiten)".to_string()
            }
            std::io::ErrorKind::IsADirectory => {
                "this is a directory, not a config file; give the path of the .toml file".to_string()
            }
            kind => format!("the config file cannot be read ({kind}); check the path and its permissions"),
        };
        Problem::new(path, "", message)
    })?;
    String::from_utf8(bytes).map_err(|_| {
        Problem::new(
            path,
            "",
            "the config file is not UTF-8 text; save it as UTF-8 (umlauts in names are fine then)",
        )
    })
}

/// Condenses the toml crate's multi-line error (with its source excerpt and caret) into one
/// line that keeps line and column.
fn toml_problem(path: &Path, text: &str, e: &toml::de::Error) -> Problem {
    let mut message = one_line(e.message());
    let (key, source_line) = match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            (format!("line {line}, column {column}"), source)
        }
        None => (String::new(), ""),
    };
    let fix = if message.starts_with("unknown field") {
        "check the spelling against the commented example"
    } else if message.starts_with("missing field") {
        // toml points at the header of the table that lacks the key.
        if source_line.starts_with('[') {
            message = format!("{message} in {source_line}");
        }
        "add it (the commented example shows every key)"
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "write the value in the form the commented example shows (text in quotes, numbers without)"
    } else if message.contains("duplicate") {
        if !source_line.is_empty() {
            message = format!(
                "{message} `{}`",
                source_line.chars().take(60).collect::<String>()
            );
        }
        "remove one of them"
    } else {
        "fix the TOML syntax there (text values need quotes, tables are written [name])"
    };
    Problem::new(path, key, format!("{message}; {fix}"))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Joins the lines of a message, so that every problem is exactly one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A secret that may be given as `*_file` or `*_credential`.
enum SecretSource {
    NotGiven,
    /// Given but unusable; the problem has been reported.
    Invalid,
    Read(Secret),
}

/// Walks the parsed file, collecting problems and building the typed config.
struct Checker<'a> {
    file: PathBuf,
    dir: PathBuf,
    env: &'a Environment,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn new(file: &Path, env: &'a Environment) -> Checker<'a> {
        Checker {
            file: file.to_path_buf(),
            dir: config_dir(file),
            env,
            problems: Vec::new(),
        }
    }

    fn report(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let p = Problem::new(&self.file, key, message);
        self.problems.push(p);
    }

    /// Reports the error of `r` under `key`.
    fn check<T>(&mut self, key: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.report(key, m);
                None
            }
        }
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        resolve_path(&self.dir, p)
    }

    fn config(mut self, file: &ConfigFile) -> Result<Config, ConfigError> {
        let daemon = self.daemon(&file.daemon);
        let mail = self.mail(&file.mail);

        let mut global_rules = RuleParams::default();
        rule_checks::apply(&mut global_rules, &file.rules);
        for p in rule_checks::check(&global_rules, rule_checks::Layer::Global) {
            self.report(format!("rules.{}", p.key), p.message);
        }
        if let Some(p) = rule_checks::check_min_lessons(&global_rules, 0) {
            self.report(format!("rules.{}", p.key), p.message);
        }

        if file.school.is_empty() {
            self.report(
                "school",
                "no school is configured; add a [[school]] table with its [school.untis] (see the commented example)",
            );
        }
        // Id → label of the first school that uses it.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut schools = Vec::new();
        for (index, s) in file.school.iter().enumerate() {
            schools.push(self.school(index, s, &mut seen, &global_rules));
        }

        let schools: Option<Vec<SchoolConfig>> = schools.into_iter().collect();
        match (daemon, mail, schools) {
            (Some(daemon), Some(mail), Some(schools)) if self.problems.is_empty() => Ok(Config {
                path: self.file,
                daemon,
                mail,
                schools,
            }),
            _ => {
                if self.problems.is_empty() {
                    // Every `None` above comes with a problem; this guards against a slip.
                    self.report(
                        "",
                        "the config could not be validated; please report this as a bug",
                    );
                }
                Err(ConfigError {
                    problems: self.problems,
                })
            }
        }
    }

    fn daemon(&mut self, d: &DaemonSection) -> Option<DaemonConfig> {
        let data_dir = if d.data_dir.as_os_str().is_empty() {
            self.report(
                "daemon.data_dir",
                "is empty; give the directory for the database, e.g. \"/var/lib/fehlzeiten\"",
            );
            None
        } else {
            Some(self.resolve(&d.data_dir))
        };
        let status_listen = self.check(
            "daemon.status_listen",
            d.status_listen.trim().parse::<SocketAddr>().map_err(|_| {
                format!(
                    "`{}` is not an IP address with port; write it as IP:port, e.g. \"127.0.0.1:8787\" (a host name is not accepted)",
                    d.status_listen
                )
            }),
        );
        let language = match d.language.trim() {
            "de" => Some(Language::De),
            "en" => Some(Language::En),
            other => {
                self.report(
                    "daemon.language",
                    format!("`{other}` is not a supported language; use \"de\" or \"en\""),
                );
                None
            }
        };
        let log_level = match d.log_level.trim().to_ascii_lowercase().as_str() {
            "error" => Some(log::LevelFilter::Error),
            "warn" => Some(log::LevelFilter::Warn),
            "info" => Some(log::LevelFilter::Info),
            "debug" => Some(log::LevelFilter::Debug),
            "trace" => Some(log::LevelFilter::Trace),
            other => {
                self.report(
                    "daemon.log_level",
                    format!(
                        "`{other}` is not a log level; use one of error, warn, info, debug, trace"
                    ),
                );
                None
            }
        };
        let removed_school_retention_days = self.check(
            "daemon.removed_school_retention_days",
            u32::try_from(d.removed_school_retention_days)
                .ok()
                .filter(|n| (1..=3650).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{} is out of range; give a number of days from 1 to 3650, e.g. 30",
                        d.removed_school_retention_days
                    )
                }),
        );
        let admin_socket = self.resolve(
            d.admin_socket
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(super::DEFAULT_ADMIN_SOCKET)),
        );
        Some(DaemonConfig {
            data_dir: data_dir?,
            status_listen: status_listen?,
            language: language?,
            log_level: log_level?,
            removed_school_retention_days: removed_school_retention_days?,
            admin_socket: Some(admin_socket),
        })
    }

    fn mail(&mut self, m: &MailSection) -> Option<MailConfig> {
        let from = self.check(
            "mail.from",
            check_mailbox(&m.from).map(|()| m.from.trim().to_string()),
        );
        let reply_to = match m.reply_to.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(r) => self.check(
                "mail.reply_to",
                check_mailbox(r).map(|()| Some(r.to_string())),
            ),
        };
        let transport = match m.transport.trim() {
            "smtp" => self.smtp(m).map(TransportConfig::Smtp),
            "file" => match &m.file_dir {
                Some(dir) if !dir.as_os_str().is_empty() => Some(TransportConfig::File {
                    dir: self.resolve(dir),
                }),
                _ => {
                    self.report(
                        "mail.file_dir",
                        "transport = \"file\" needs a directory for the .eml files; add file_dir = \"/var/lib/fehlzeiten/outbox-files\"",
                    );
                    None
                }
            },
            other => {
                self.report(
                    "mail.transport",
                    format!(
                        "`{other}` is not a mail transport; use \"smtp\" (or \"file\" for testing)"
                    ),
                );
                None
            }
        };
        Some(MailConfig {
            from: from?,
            reply_to: reply_to?,
            transport: transport?,
        })
    }

    fn smtp(&mut self, m: &MailSection) -> Option<SmtpConfig> {
        let host = match m.host.as_deref().map(str::trim) {
            None | Some("") => {
                self.report(
                    "mail.host",
                    "the SMTP server is missing; add host = \"mail.schule.example\"",
                );
                None
            }
            Some(h) if h.contains("://") || h.contains(char::is_whitespace) => {
                self.report("mail.host", format!("`{h}` is not a host name; give only the server name, e.g. \"mail.schule.example\""));
                None
            }
            Some(h) if h.contains(':') && h.parse::<std::net::Ipv6Addr>().is_err() => {
                self.report("mail.host", format!("`{h}` contains a port; give only the host name and put the port into `port`"));
                None
            }
            Some(h) => Some(h.to_string()),
        };
        let security = match m.security.trim() {
            "starttls" => Some(Security::StartTls),
            "tls" => Some(Security::Tls),
            "none" => Some(Security::None),
            other => {
                self.report("mail.security", format!("`{other}` is not a security mode; use \"starttls\" (port 587), \"tls\" (port 465) or \"none\" (loopback relay only)"));
                None
            }
        };
        if let (Some(Security::None), Some(h)) = (security, host.as_deref())
            && !is_loopback_host(h)
        {
            self.report(
                "mail.security",
                format!("\"none\" would send mail and password unencrypted to `{h}`, which is not a loopback host; use security = \"starttls\" (port 587) or \"tls\" (port 465)"),
            );
        }
        let port = match (m.port, security) {
            (Some(0), _) => {
                self.report("mail.port", "0 is not a port; use 587 (starttls), 465 (tls) or 25, or leave it out for the default");
                None
            }
            (Some(p), _) => Some(p),
            (None, Some(Security::StartTls)) => Some(587),
            (None, Some(Security::Tls)) => Some(465),
            (None, Some(Security::None)) => Some(25),
            (None, None) => None,
        };
        let username = m
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let password = self.secret("mail", &m.password_file, &m.password_credential);
        let password = match (username, password) {
            (Some(_), SecretSource::NotGiven) => {
                self.report(
                    "mail.username",
                    "a username is set but no password; add password_file = \"smtp.secret\" (or password_credential), or remove username",
                );
                None
            }
            (None, SecretSource::Read(_)) => {
                let key = if m.password_file.is_some() {
                    "mail.password_file"
                } else {
                    "mail.password_credential"
                };
                self.report(key, "a password is set but no username; add username = \"…\", or remove the password");
                None
            }
            (_, SecretSource::Invalid) => None,
            (_, SecretSource::Read(s)) => Some(Some(s)),
            (None, SecretSource::NotGiven) => Some(None),
        };
        let ca_file = self.ca_file("mail.ca_file", &m.ca_file);
        let timeout = self.duration("mail.timeout", &m.timeout, Duration::from_secs(1));
        Some(SmtpConfig {
            host: host?,
            port: port?,
            security: security?,
            username: username.map(str::to_string),
            password: password?,
            ca_file: ca_file?,
            timeout: timeout?,
        })
    }

    /// Reads a password given as `<prefix>.password_file` or `<prefix>.password_credential`.
    fn secret(
        &mut self,
        prefix: &str,
        file: &Option<PathBuf>,
        credential: &Option<String>,
    ) -> SecretSource {
        let file_key = format!("{prefix}.password_file");
        let cred_key = format!("{prefix}.password_credential");
        match (file, credential) {
            (None, None) => SecretSource::NotGiven,
            (Some(_), Some(_)) => {
                self.report(
                    file_key,
                    "both password_file and password_credential are set; keep only one of them",
                );
                SecretSource::Invalid
            }
            (Some(f), None) if f.as_os_str().is_empty() => {
                self.report(
                    file_key,
                    "is empty; give the path of the file that holds the password",
                );
                SecretSource::Invalid
            }
            (Some(f), None) => match read_secret_file(&self.resolve(f)) {
                Ok(s) => SecretSource::Read(s),
                Err(e) => {
                    self.report(file_key, secret_message(&e));
                    SecretSource::Invalid
                }
            },
            (None, Some(name)) => match self.credential(name) {
                Ok(s) => SecretSource::Read(s),
                Err(m) => {
                    self.report(cred_key, m);
                    SecretSource::Invalid
                }
            },
        }
    }

    /// Reads a systemd credential. The directory is private to the service (systemd
    /// guarantees that), so the file mode is not checked here.
    fn credential(&self, name: &str) -> Result<Secret, String> {
        let name = name.trim();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!(
                "`{name}` is not a credential name; give the name used in LoadCredential=NAME:PATH, e.g. \"untis-password\""
            ));
        }
        let Some(dir) = &self.env.credentials_dir else {
            if self.env.credentials_optional {
                return Ok(Secret::unavailable(format!(
                    "the systemd credential `{name}` is only available to the service; run this through the daemon (systemctl start fehlzeiten), or use password_file"
                )));
            }
            return Err(format!(
                "$CREDENTIALS_DIRECTORY is not set, so the systemd credential `{name}` cannot be read; add LoadCredential={name}:/etc/fehlzeiten/{name}.secret to the service (systemctl edit fehlzeiten), or use password_file outside systemd"
            ));
        };
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "the systemd credential `{name}` was not passed to the service; add LoadCredential={name}:/etc/fehlzeiten/{name}.secret to the service (systemctl edit fehlzeiten)"
            ),
            kind => format!("the systemd credential `{name}` cannot be read ({kind}); check LoadCredential= in the service"),
        })?;
        let value = text.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(format!(
                "the systemd credential `{name}` is empty; write the password into the file it is loaded from"
            ));
        }
        Ok(Secret::new(value))
    }

    /// An optional extra root certificate: `Some(None)` when not given (or `""`).
    fn ca_file(&mut self, key: &str, p: &Option<PathBuf>) -> Option<Option<PathBuf>> {
        let Some(p) = p.as_deref().filter(|p| !p.as_os_str().is_empty()) else {
            return Some(None);
        };
        let path = self.resolve(p);
        self.check(key, check_pem_certificates(&path))
            .map(|()| Some(path))
    }

    /// A text value that must not be blank (trimmed).
    fn non_empty(&mut self, key: &str, value: &str, hint: &str) -> Option<String> {
        let v = value.trim();
        if v.is_empty() {
            self.report(key, format!("is empty; {hint}"));
            return None;
        }
        Some(v.to_string())
    }

    /// A duration value of at least `min`.
    fn duration(&mut self, key: &str, text: &str, min: Duration) -> Option<Duration> {
        let d = self.check(key, parse_duration(text))?;
        if d < min {
            let min = format_duration(min);
            self.report(
                key,
                format!("{} is too short; give at least {min}", format_duration(d)),
            );
            return None;
        }
        Some(d)
    }

    fn school(
        &mut self,
        index: usize,
        s: &SchoolSection,
        seen: &mut BTreeMap<String, String>,
        global_rules: &RuleParams,
    ) -> Option<SchoolConfig> {
        let index_label = format!("school[{index}]");
        let id = s.id.trim();
        let label = if !SchoolId::is_valid(id) {
            self.report(
                format!("{index_label}.id"),
                format!("`{id}` is not a valid school id; use lowercase letters, digits and dashes, e.g. \"gym-musterstadt\""),
            );
            index_label
        } else if let Some(first) = seen.get(id) {
            self.report(
                format!("{index_label}.id"),
                format!("the id `{id}` is already used by {first}; give every school its own id"),
            );
            index_label
        } else {
            let label = format!("school[{id}]");
            seen.insert(id.to_string(), format!("the [[school]] at index {index}"));
            label
        };
        let key = |k: &str| format!("{label}.{k}");

        let name = self.non_empty(
            &key("name"),
            &s.name,
            "give the school's name, as it should appear in mails",
        );
        let timezone = self.check(
            &key("timezone"),
            s.timezone.trim().parse::<chrono_tz::Tz>().map_err(|_| {
                format!(
                    "`{}` is not a known time zone; use an IANA name such as \"Europe/Berlin\"",
                    s.timezone
                )
            }),
        );
        let state = {
            let raw = s.state.trim().to_ascii_uppercase();
            let code = raw.strip_prefix("DE-").unwrap_or(&raw).to_string();
            if STATES.contains(&code.as_str()) {
                Some(code)
            } else {
                self.report(
                    key("state"),
                    format!(
                        "`{}` is not a German state code; use one of {}",
                        s.state,
                        STATES.join(", ")
                    ),
                );
                None
            }
        };
        let holidays = self.holidays(&label, s);
        let half_year_starts = self.half_year_starts(&label, &s.half_year_starts);
        let untis = self.untis(&label, &s.untis);
        let periods = self.periods(&label, &s.periods);
        let recipients = self.recipients(&label, &s.recipients);
        let notify = self.notify(&label, &s.notify, &s.recipients);

        let mut rules = global_rules.clone();
        if let Some(section) = &s.rules {
            rule_checks::apply(&mut rules, section);
            let layer = rule_checks::Layer::School {
                global: global_rules,
            };
            for p in rule_checks::check(&rules, layer) {
                self.report(format!("{label}.rules.{}", p.key), p.message);
            }
        }
        let school_sets_min_lessons = s
            .rules
            .as_ref()
            .is_some_and(|r| r.absence_day_min_lessons.is_some());
        // An inherited value above the maximum was reported under [rules] already.
        if (school_sets_min_lessons || rules.absence_day_min_lessons <= rule_checks::MAX_LESSONS)
            && let Some(p) =
                rule_checks::check_min_lessons(&rules, periods.as_ref().map_or(0, Vec::len))
        {
            let message = if school_sets_min_lessons {
                p.message
            } else {
                format!("{} (set in [rules])", p.message)
            };
            self.report(format!("{label}.rules.{}", p.key), message);
        }

        Some(SchoolConfig {
            id: SchoolId(id.to_string()),
            name: name?,
            timezone: timezone?,
            state: state?,
            holidays: holidays?,
            half_year_starts: half_year_starts?,
            untis: untis?,
            periods: periods?,
            recipients: recipients?,
            notify: notify?,
            rules,
        })
    }

    /// `holidays` and `holidays_file` together (both may be given).
    fn holidays(&mut self, label: &str, s: &SchoolSection) -> Option<Vec<Holiday>> {
        let mut ok = true;
        let mut holidays = Vec::new();
        for (j, h) in s.holidays.iter().enumerate() {
            let key = format!("{label}.holidays[{j}]");
            let from = self.check(&format!("{key}.from"), parse_date(&h.from));
            let to = self.check(&format!("{key}.to"), parse_date(&h.to));
            let (Some(from), Some(to)) = (from, to) else {
                ok = false;
                continue;
            };
            if from > to {
                self.report(
                    key,
                    format!(
                        "from {from} is after to {to}; swap the dates (both days are holidays)"
                    ),
                );
                ok = false;
                continue;
            }
            let name = if h.name.trim().is_empty() {
                "Ferien".to_string()
            } else {
                h.name.trim().to_string()
            };
            holidays.push(Holiday { from, to, name });
        }
        if let Some(p) = s.holidays_file.as_deref() {
            let key = format!("{label}.holidays_file");
            let path = self.resolve(p);
            match std::fs::read_to_string(&path) {
                Err(e) => {
                    let why = if e.kind() == std::io::ErrorKind::NotFound {
                        "does not exist".to_string()
                    } else {
                        format!("cannot be read ({})", e.kind())
                    };
                    self.report(key, format!("{} {why}; give the path of the Ferien calendar (.ics), or remove holidays_file", path.display()));
                    ok = false;
                }
                Ok(text) => match parse_holidays(&text) {
                    Ok(mut list) => holidays.append(&mut list),
                    Err(errors) => {
                        for e in errors {
                            self.report(
                                key.clone(),
                                format!("{} line {}: {}", path.display(), e.line, e.message),
                            );
                        }
                        ok = false;
                    }
                },
            }
        }
        holidays.sort_by_key(|h| (h.from, h.to));
        ok.then_some(holidays)
    }

    fn half_year_starts(&mut self, label: &str, starts: &[String]) -> Option<Vec<NaiveDate>> {
        let mut dates = Vec::new();
        let mut ok = true;
        for (j, text) in starts.iter().enumerate() {
            match self.check(&format!("{label}.half_year_starts[{j}]"), parse_date(text)) {
                Some(d) => dates.push(d),
                None => ok = false,
            }
        }
        if let Some(pair) = dates.windows(2).find(|w| w[0] >= w[1]) {
            self.report(
                format!("{label}.half_year_starts"),
                format!(
                    "the dates must be in ascending order, but {} is not before {}; sort them",
                    pair[0], pair[1]
                ),
            );
            ok = false;
        }
        ok.then_some(dates)
    }

    fn untis(&mut self, label: &str, u: &UntisSection) -> Option<UntisConfig> {
        let key = |k: &str| format!("{label}.untis.{k}");
        let api_base = self.check(&key("api_base"), check_api_base(&u.api_base));
        let ca_file = self.ca_file(&key("ca_file"), &u.ca_file);
        let tenant_id = self.non_empty(
            &key("tenant_id"),
            &u.tenant_id,
            "give the school's WebUntis tenant id (shown in the WebUntis platform app settings)",
        );
        let client_id = self.non_empty(
            &key("client_id"),
            &u.client_id,
            "give the client id of the WebUntis platform app, e.g. \"fehlzeiten\"",
        );
        let password = match self.secret(
            &format!("{label}.untis"),
            &u.password_file,
            &u.password_credential,
        ) {
            SecretSource::Read(s) => Some(s),
            SecretSource::Invalid => None,
            SecretSource::NotGiven => {
                self.report(
                    key("password_file"),
                    "no WebUntis password is given; add password_file = \"untis.secret\" (the platform password, not the OIDC secret) or password_credential",
                );
                None
            }
        };
        let sync_every = self.duration(&key("sync_every"), &u.sync_every, Duration::from_secs(60));
        let sync_hours = self.check(&key("sync_hours"), parse_time_range(&u.sync_hours));
        let window_days = if (1..=366).contains(&u.window_days) {
            Some(u.window_days)
        } else {
            self.report(
                key("window_days"),
                format!(
                    "{} is out of range; give 1 to 366 days (30 is a good default)",
                    u.window_days
                ),
            );
            None
        };
        let full_reconcile_at =
            self.check(&key("full_reconcile_at"), parse_time(&u.full_reconcile_at));
        let request_timeout = self.duration(
            &key("request_timeout"),
            &u.request_timeout,
            Duration::from_secs(1),
        );
        Some(UntisConfig {
            api_base: api_base?,
            ca_file: ca_file?,
            tenant_id: tenant_id?,
            client_id: client_id?,
            password: password?,
            sync_every: sync_every?,
            sync_hours: sync_hours?,
            window_days: window_days?,
            full_reconcile_at: full_reconcile_at?,
            request_timeout: request_timeout?,
        })
    }

    fn periods(&mut self, label: &str, raw: &BTreeMap<String, String>) -> Option<Vec<Period>> {
        let mut ok = true;
        let mut periods = Vec::new();
        // Keys are strings in TOML, so "10" sorts before "2": go by number, so that problems
        // are reported in the order of the bell schedule.
        let mut entries: Vec<(&String, &String)> = raw.iter().collect();
        entries.sort_by_key(|(k, _)| (k.trim().parse::<u32>().unwrap_or(u32::MAX), k.as_str()));
        for (k, v) in entries {
            let key = format!("{label}.periods.{k}");
            let number = match k.trim().parse::<u32>() {
                Ok(n) if (1..=16).contains(&n) => n,
                _ => {
                    self.report(
                        key,
                        format!("`{k}` is not a lesson number; number the lessons 1 to 16"),
                    );
                    ok = false;
                    continue;
                }
            };
            let Some(range) = self.check(&key, parse_time_range(v)) else {
                ok = false;
                continue;
            };
            if range.start > range.end {
                self.report(key, format!("lesson {number} ends ({}) before it starts ({}); write start-end, e.g. \"07:45-08:30\"", range.end.format("%H:%M"), range.start.format("%H:%M")));
                ok = false;
                continue;
            }
            periods.push(Period {
                number,
                start: range.start,
                end: range.end,
            });
        }
        periods.sort_by_key(|p| p.number);
        for pair in periods.windows(2) {
            let [a, b] = pair else { continue };
            if b.start < a.end {
                self.report(
                    format!("{label}.periods.{}", b.number),
                    format!(
                        "lesson {} starts at {}, before lesson {} ends at {}; lessons must not overlap and must follow the order of their numbers",
                        b.number,
                        b.start.format("%H:%M"),
                        a.number,
                        a.end.format("%H:%M")
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(periods)
    }

    fn recipients(&mut self, label: &str, r: &RecipientsSection) -> Option<Recipients> {
        let key = |k: &str| format!("{label}.recipients.{k}");
        let mut ok = true;
        let mut social_workers = Vec::new();
        for (j, a) in r.social_workers.iter().enumerate() {
            match check_mailbox(a) {
                Ok(()) => social_workers.push(a.trim().to_string()),
                Err(m) => {
                    self.report(format!("{}[{j}]", key("social_workers")), m);
                    ok = false;
                }
            }
        }
        let see_school = match r.social_workers_see.trim() {
            "school" => Some(true),
            "none" => Some(false),
            other => {
                self.report(key("social_workers_see"), format!("`{other}` is not allowed; use \"school\" (social workers get student-level alerts) or \"none\""));
                None
            }
        };
        if see_school == Some(true) && r.social_workers.is_empty() {
            self.report(
                key("social_workers"),
                "is empty, so immediate alerts would reach nobody; add social_workers = [\"sozialarbeit@schule.example\"], or set social_workers_see = \"none\"",
            );
            ok = false;
        }
        let mut class_teachers_override = BTreeMap::new();
        if let Some(p) = r.class_teachers_file.as_deref() {
            let path = self.resolve(p);
            match std::fs::read_to_string(&path) {
                Err(e) => {
                    let why = if e.kind() == std::io::ErrorKind::NotFound {
                        "does not exist".to_string()
                    } else {
                        format!("cannot be read ({})", e.kind())
                    };
                    self.report(key("class_teachers_file"), format!("{} {why}; create it with `Klasse;E-Mail` lines, or remove class_teachers_file", path.display()));
                    ok = false;
                }
                Ok(text) => match parse_class_teachers(&text) {
                    Ok(map) => class_teachers_override = map,
                    Err(errors) => {
                        for e in errors {
                            self.report(
                                key("class_teachers_file"),
                                format!("{} line {}: {}", path.display(), e.line, e.message),
                            );
                        }
                        ok = false;
                    }
                },
            }
        }
        let see_school = see_school?;
        ok.then_some(Recipients {
            social_workers,
            class_teachers_override,
            social_workers_see_school: see_school,
        })
    }

    fn notify(
        &mut self,
        label: &str,
        n: &NotifySection,
        r: &RecipientsSection,
    ) -> Option<NotifyConfig> {
        let key = |k: &str| format!("{label}.notify.{k}");
        let digest = self.check(&key("digest"), parse_weekly_slot(&n.digest));
        let social_worker_digest = match n.social_worker_digest.trim() {
            "" => Some(None),
            text => {
                let slot = self.check(&key("social_worker_digest"), parse_weekly_slot(text));
                if slot.is_some() && r.social_workers.is_empty() {
                    self.report(
                        key("social_worker_digest"),
                        "is set but recipients.social_workers is empty, so the digest would reach nobody; add social worker addresses, or set social_worker_digest = \"\"",
                    );
                    None
                } else {
                    slot.map(Some)
                }
            }
        };
        let immediate_min_severity = self.check(
            &key("immediate_min_severity"),
            Severity::parse(n.immediate_min_severity.trim()).ok_or_else(|| {
                format!(
                    "`{}` is not a severity; use \"watch\", \"warning\" or \"critical\"",
                    n.immediate_min_severity
                )
            }),
        );
        let quiet_hours = match n.quiet_hours.trim() {
            "" => Some(None),
            text => self
                .check(&key("quiet_hours"), parse_time_range(text))
                .map(Some),
        };
        Some(NotifyConfig {
            digest: digest?,
            social_worker_digest: social_worker_digest?,
            immediate_min_severity: immediate_min_severity?,
            quiet_hours: quiet_hours?,
            all_quiet_mail: n.all_quiet_mail,
        })
    }
}

/// `api_base` must be https, or http to a loopback host (the simulator in tests).
fn check_api_base(text: &str) -> Result<url::Url, String> {
    let s = text.trim();
    let url = url::Url::parse(s).map_err(|_| {
        format!("`{s}` is not a URL; write it as https://host, e.g. \"https://api.webuntis.com\"")
    })?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(host) => Ok(url),
        "http" => Err(format!(
            "plain http to `{host}` would send the WebUntis password unencrypted; use https:// (http is allowed only for a loopback host, for testing)"
        )),
        other => Err(format!(
            "`{other}` is not a web scheme; write it as https://host, e.g. \"https://api.webuntis.com\""
        )),
    }
}

/// A CA file must exist and hold at least one PEM certificate.
fn check_pem_certificates(path: &Path) -> Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let bytes = std::fs::read(path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else {
            format!("cannot be read ({})", e.kind())
        };
        format!(
            "{} {why}; give the path of the extra root certificate (PEM), or remove ca_file",
            path.display()
        )
    })?;
    let mut count = 0usize;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        if cert.is_err() {
            return Err(format!(
                "{} is not valid PEM; give the certificate in PEM form (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "{} contains no PEM certificate; give the CA certificate in PEM form (convert DER with `openssl x509 -inform der -in ca.der -out ca.pem`)",
            path.display()
        ));
    }
    Ok(())
}

/// The message for a secret file that cannot be used. Says how to fix it, never the content.
fn secret_message(e: &SecretError) -> String {
    match e {
        SecretError::Missing(p) => format!(
            "secret file {} does not exist; write the password into it and run chmod 0600 on it (owner: the user the service runs as, fehlzeiten)",
            p.display()
        ),
        SecretError::Unreadable(p, err) => format!(
            "secret file {} cannot be read ({}); make the service user its owner: chown fehlzeiten {} && chmod 0600 {}",
            p.display(),
            err.kind(),
            p.display(),
            p.display()
        ),
        SecretError::GroupReadable(p, mode) => format!(
            "secret file {} is readable by its group (mode {mode:04o}); run chmod 0600 {}",
            p.display(),
            p.display()
        ),
        SecretError::WorldReadable(p, mode) => format!(
            "secret file {} is readable by everyone (mode {mode:04o}); run chmod 0600 {}",
            p.display(),
            p.display()
        ),
        SecretError::Empty(p) => format!(
            "secret file {} is empty; write the password into it",
            p.display()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nüber = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        let offset = text.find("= 2").unwrap();
        assert_eq!(line_column(text, offset), (2, 6));
    }

    #[test]
    fn problems_print_as_one_line() {
        let p = Problem::new(Path::new("/etc/f.toml"), "mail.from", "bad\nthing; fix it");
        assert_eq!(p.to_string(), "/etc/f.toml: mail.from: bad thing; fix it");
        let p = Problem::new(Path::new("/etc/f.toml"), "", "empty; fill it");
        assert_eq!(p.to_string(), "/etc/f.toml: empty; fill it");
    }

    #[test]
    fn api_base_needs_https_except_on_loopback() {
        assert!(check_api_base("https://api.webuntis.com").is_ok());
        assert!(check_api_base("http://127.0.0.1:8080").is_ok());
        assert!(check_api_base("http://[::1]:8080").is_ok());
        assert!(check_api_base("http://localhost:8080/").is_ok());
        assert!(
            check_api_base("http://api.webuntis.com")
                .unwrap_err()
                .contains("unencrypted")
        );
        assert!(check_api_base("ftp://api.webuntis.com").is_err());
        assert!(check_api_base("api.webuntis.com").is_err());
    }

    #[test]
    fn toml_errors_become_one_line_with_position() {
        let text = "[daemon]\ncorn = 5\n";
        let e = toml::from_str::<ConfigFile>(text).unwrap_err();
        let p = toml_problem(Path::new("/etc/f.toml"), text, &e);
        let line = p.to_string();
        assert!(
            line.starts_with("/etc/f.toml: line 2, column 1: unknown field `corn`"),
            "{line}"
        );
        assert!(
            line.ends_with("check the spelling against the commented example"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn missing_keys_name_their_table_and_duplicates_their_line() {
        let text = "[mail]\nfrom = \"a@b.de\"\n[[school]]\nid = \"x\"\nname = \"X\"\nstate = \"NW\"\n[school.untis]\nclient_id = \"c\"\n[school.recipients]\n";
        let e = toml::from_str::<ConfigFile>(text).unwrap_err();
        let line = toml_problem(Path::new("/f.toml"), text, &e).to_string();
        assert_eq!(
            line,
            "/f.toml: line 7, column 1: missing field `tenant_id` in [school.untis]; add it (the commented example shows every key)"
        );
        let text = "[daemon]\nlanguage = \"de\"\nlanguage = \"en\"\n";
        let e = toml::from_str::<ConfigFile>(text).unwrap_err();
        let line = toml_problem(Path::new("/f.toml"), text, &e).to_string();
        assert!(
            line.contains(
                "line 3, column 1: duplicate key `language = \"en\"`; remove one of them"
            ),
            "{line}"
        );
    }

    #[test]
    fn pem_files_need_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        assert!(
            check_pem_certificates(&p)
                .unwrap_err()
                .contains("no PEM certificate")
        );
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(check_pem_certificates(&p).is_ok());
        assert!(
            check_pem_certificates(&dir.path().join("nope.pem"))
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn credentials_come_from_the_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("untis-password"), "geheim\n").unwrap();
        let env = Environment {
            credentials_dir: Some(dir.path().to_path_buf()),
            credentials_optional: false,
        };
        let checker = Checker::new(Path::new("/etc/f.toml"), &env);
        assert_eq!(
            checker
                .credential("untis-password")
                .unwrap()
                .expose()
                .unwrap(),
            "geheim"
        );
        assert!(
            checker
                .credential("other")
                .unwrap_err()
                .contains("LoadCredential=other:")
        );
        assert!(checker.credential("../x").is_err());
        let unset = Environment::default();
        let checker = Checker::new(Path::new("/etc/f.toml"), &unset);
        assert!(
            checker
                .credential("untis-password")
                .unwrap_err()
                .contains("$CREDENTIALS_DIRECTORY is not set")
        );
    }

    #[test]
    fn holiday_coverage_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("u.secret");
        std::fs::write(&secret, "pw").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = r#"
[mail]
from = "f@schule.example"
transport = "file"
file_dir = "out"
[[school]]
id = "s"
name = "S"
state = "NW"
holidays = [{ from = "2025-10-13", to = "2025-10-25", name = "Herbstferien" }]
[school.untis]
tenant_id = "1"
client_id = "c"
password_file = "u.secret"
[school.recipients]
social_workers = ["sw@schule.example"]
"#;
        let config =
            load_from_str_with(&dir.path().join("f.toml"), text, &Environment::default()).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let w = config_warnings(&config, d("2025-11-01"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("school[s].holidays: warning: no Ferien are configured after 2026-02-01"),
            "{w:?}"
        );
        let w = config_warnings(&config, d("2026-09-01"));
        assert!(w[0].contains("school year 2026-2027"), "{w:?}");
        // July still belongs to the school year that started the August before.
        let w = config_warnings(&config, d("2026-07-01"));
        assert!(w[0].contains("after 2026-02-01"), "{w:?}");
    }
}
