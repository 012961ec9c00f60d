//! The config file as serde structs (SPEC §2). Every struct denies unknown fields, so a typo is
//! an error with line and column. Semantic checks live in `validate.rs`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub daemon: DaemonSection,
    pub mail: MailSection,
    #[serde(default)]
    pub rules: RulesSection,
    #[serde(default)]
    pub school: Vec<SchoolSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_status_listen")]
    pub status_listen: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default = "default_removed_school_retention_days")]
    pub removed_school_retention_days: i64,
    /// The admin socket (SPEC §8); default `/run/fehlzeiten/admin.sock`.
    #[serde(default)]
    pub admin_socket: Option<PathBuf>,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            data_dir: default_data_dir(),
            status_listen: default_status_listen(),
            language: default_language(),
            log_level: default_log_level(),
            removed_school_retention_days: default_removed_school_retention_days(),
            admin_socket: None,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/fehlzeiten")
}
fn default_status_listen() -> String {
    "127.0.0.1:8787".to_string()
}
fn default_language() -> String {
    "de".to_string()
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_removed_school_retention_days() -> i64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    pub from: String,
    pub reply_to: Option<String>,
    #[serde(default = "default_transport")]
    pub transport: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default = "default_security")]
    pub security: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Name of a systemd credential (`LoadCredential=`) holding the password.
    pub password_credential: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub file_dir: Option<PathBuf>,
    #[serde(default = "default_mail_timeout")]
    pub timeout: String,
}

fn default_transport() -> String {
    "smtp".to_string()
}
fn default_security() -> String {
    "starttls".to_string()
}
fn default_mail_timeout() -> String {
    "30s".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchoolSection {
    pub id: String,
    pub name: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    pub state: String,
    #[serde(default)]
    pub holidays: Vec<HolidayEntry>,
    pub holidays_file: Option<PathBuf>,
    #[serde(default)]
    pub half_year_starts: Vec<String>,
    pub untis: UntisSection,
    #[serde(default)]
    pub periods: BTreeMap<String, String>,
    pub recipients: RecipientsSection,
    #[serde(default)]
    pub notify: NotifySection,
    /// Per-school overrides of `[rules]`.
    #[serde(default)]
    pub rules: Option<RulesSection>,
}

fn default_timezone() -> String {
    "Europe/Berlin".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayEntry {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UntisSection {
    #[serde(default = "default_api_base")]
    pub api_base: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub tenant_id: String,
    pub client_id: String,
    pub password_file: Option<PathBuf>,
    pub password_credential: Option<String>,
    #[serde(default = "default_sync_every")]
    pub sync_every: String,
    #[serde(default = "default_sync_hours")]
    pub sync_hours: String,
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    #[serde(default = "default_full_reconcile_at")]
    pub full_reconcile_at: String,
    #[serde(default = "default_request_timeout")]
    pub request_timeout: String,
}

fn default_api_base() -> String {
    "https://api.webuntis.com".to_string()
}
fn default_sync_every() -> String {
    "15m".to_string()
}
fn default_sync_hours() -> String {
    "06:30-17:00".to_string()
}
fn default_window_days() -> u32 {
    30
}
fn default_full_reconcile_at() -> String {
    "02:30".to_string()
}
fn default_request_timeout() -> String {
    "30s".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientsSection {
    #[serde(default)]
    pub social_workers: Vec<String>,
    pub class_teachers_file: Option<PathBuf>,
    #[serde(default = "default_social_workers_see")]
    pub social_workers_see: String,
}

fn default_social_workers_see() -> String {
    "school".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    #[serde(default = "default_digest")]
    pub digest: String,
    #[serde(default)]
    pub social_worker_digest: String,
    #[serde(default = "default_immediate_min_severity")]
    pub immediate_min_severity: String,
    #[serde(default = "default_quiet_hours")]
    pub quiet_hours: String,
    /// Send a short "all quiet" digest when a teacher's Klassen have no alerts.
    #[serde(default)]
    pub all_quiet_mail: bool,
}

impl Default for NotifySection {
    fn default() -> Self {
        NotifySection {
            digest: default_digest(),
            social_worker_digest: String::new(),
            immediate_min_severity: default_immediate_min_severity(),
            quiet_hours: default_quiet_hours(),
            all_quiet_mail: false,
        }
    }
}

fn default_digest() -> String {
    "Mon 07:00".to_string()
}
fn default_immediate_min_severity() -> String {
    "critical".to_string()
}
fn default_quiet_hours() -> String {
    "20:00-06:30".to_string()
}

/// `[rules]`: every field optional so that `[school.rules]` can override single values.
///
/// Each rule has its own table type that lists exactly the keys the rule understands, so a key
/// written under the wrong rule (`weeks` under `days_per_half_year`) is an unknown field with
/// line and column, like any other typo.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    pub absence_day_min_lessons: Option<u32>,
    pub days_per_half_year: Option<BandsTable>,
    pub absence_rate: Option<AbsenceRateTable>,
    pub consecutive_days: Option<BandsTable>,
    pub unexcused: Option<UnexcusedTable>,
    pub pending_excuse: Option<BandsTable>,
    pub same_weekday: Option<BandsTable>,
    pub around_weekend_holiday: Option<AroundWeekendTable>,
    pub edge_lessons: Option<WindowedTable>,
    pub subject_avoidance: Option<WindowedTable>,
    pub lateness: Option<WindowedTable>,
    pub early_year: Option<EarlyYearTable>,
    pub rising_trend: Option<RisingTrendTable>,
}

/// A rule with nothing but thresholds by severity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandsTable {
    pub enabled: Option<bool>,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
}

/// `absence_rate`: percentage thresholds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsenceRateTable {
    pub enabled: Option<bool>,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// School days that must have passed before the rate is judged.
    pub min_school_days: Option<u32>,
}

/// `unexcused`: day thresholds plus lesson thresholds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnexcusedTable {
    pub enabled: Option<bool>,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub warning_lessons: Option<f64>,
    pub critical_lessons: Option<f64>,
}

/// `around_weekend_holiday`: thresholds on days, the share they must reach, the window.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AroundWeekendTable {
    pub enabled: Option<bool>,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// Percent of all absence days in the window.
    pub min_share: Option<f64>,
    pub weeks: Option<u32>,
}

/// A count over the last `weeks` weeks (`edge_lessons`, `subject_avoidance`, `lateness`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowedTable {
    pub enabled: Option<bool>,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub weeks: Option<u32>,
}

/// `early_year`: thresholds on absence days in the first `school_days` of the year.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyYearTable {
    pub enabled: Option<bool>,
    pub watch: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub school_days: Option<u32>,
}

/// `rising_trend`: no severity bands; a rise is always a warning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RisingTrendTable {
    pub enabled: Option<bool>,
    pub ratio: Option<f64>,
    /// Percent of school days.
    pub min_rate: Option<f64>,
    pub recent_weeks: Option<u32>,
    pub baseline_weeks: Option<u32>,
}
