//! Configuration: the file format (`file.rs`), validation into the types below
//! (`validate.rs`), and secrets (`secret.rs`).
//!
//! The rest of the program only sees [`Config`]: every value parsed, checked and typed.

mod class_teachers;
mod file;
mod ics;
mod parse;
mod rules;
mod secret;
mod validate;

pub use file::ConfigFile;
pub use parse::{format_duration, parse_duration};
pub use secret::{Secret, SecretError, read_secret_file};
pub use validate::{
    ConfigError, Environment, Problem, check_config, check_config_with, config_warnings, load,
    load_from_str, load_from_str_with, load_with, unavailable_secrets,
};

use crate::model::{SchoolId, Severity};
use crate::rules::RuleParams;
use chrono::{NaiveDate, NaiveTime, Weekday};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the config is read from when neither `--config` nor `$FEHLZEITEN_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/fehlzeiten/fehlzeiten.toml";

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages); empty for a config built in code (demo).
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    pub mail: MailConfig,
    pub schools: Vec<SchoolConfig>,
}

/// Where the daemon listens for admin commands when the config does not say (SPEC §8).
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/fehlzeiten/admin.sock";

/// `daemon.admin_socket` of the file the config was loaded from (default
/// [`DEFAULT_ADMIN_SOCKET`], relative paths against the file's directory); `None` for a config
/// built in code, which gets no admin socket.
pub fn admin_socket(config: &Config) -> Option<PathBuf> {
    config.daemon.admin_socket.clone()
}

impl Config {
    pub fn school(&self, id: &str) -> Option<&SchoolConfig> {
        self.schools.iter().find(|s| s.id.as_str() == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    De,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::De => "de",
            Language::En => "en",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_dir: PathBuf,
    pub status_listen: SocketAddr,
    pub language: Language,
    pub log_level: log::LevelFilter,
    /// Days after which the data of a school removed from the config is deleted (SPEC §9).
    pub removed_school_retention_days: u32,
    /// The admin socket (SPEC §8); `None` for a config built in code (demo, tests): no socket.
    pub admin_socket: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// RFC 5322 mailbox, e.g. `Fehlzeiten <fehlzeiten@schule.example>`.
    pub from: String,
    pub reply_to: Option<String>,
    pub transport: TransportConfig,
}

#[derive(Debug, Clone)]
pub enum TransportConfig {
    Smtp(SmtpConfig),
    /// Writes each mail as `.eml` into the directory (demo, testing).
    File {
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Tls,
    /// Plain SMTP, allowed only to a loopback host.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Holiday {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub name: String,
}

/// One lesson of the bell schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub number: u32,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// A weekly slot in school-local time, e.g. `Mon 07:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklySlot {
    pub weekday: Weekday,
    pub time: NaiveTime,
}

/// A daily time range in school-local time, e.g. `06:30-17:00`; may wrap past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TimeRange {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

#[derive(Debug, Clone)]
pub struct UntisConfig {
    pub api_base: url::Url,
    pub ca_file: Option<PathBuf>,
    pub tenant_id: String,
    pub client_id: String,
    pub password: Secret,
    pub sync_every: Duration,
    pub sync_hours: TimeRange,
    pub window_days: u32,
    pub full_reconcile_at: NaiveTime,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Recipients {
    pub social_workers: Vec<String>,
    /// Klasse name → class teacher addresses from `class_teachers_file`; replaces WebUntis for
    /// the Klassen it lists.
    pub class_teachers_override: BTreeMap<String, Vec<String>>,
    /// Whether social workers get student-level alerts (`social_workers_see = "school"`).
    pub social_workers_see_school: bool,
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub digest: WeeklySlot,
    pub social_worker_digest: Option<WeeklySlot>,
    pub immediate_min_severity: Severity,
    pub quiet_hours: Option<TimeRange>,
    pub all_quiet_mail: bool,
}

#[derive(Debug, Clone)]
pub struct SchoolConfig {
    pub id: SchoolId,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    /// Bundesland code (ISO 3166-2:DE suffix), e.g. "NW".
    pub state: String,
    pub holidays: Vec<Holiday>,
    pub half_year_starts: Vec<NaiveDate>,
    pub untis: UntisConfig,
    /// Bell schedule, sorted by lesson number.
    pub periods: Vec<Period>,
    pub recipients: Recipients,
    pub notify: NotifyConfig,
    pub rules: RuleParams,
}
