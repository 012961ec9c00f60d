//! Domain types shared by every stage of the pipeline.
//!
//! Data moves one way (untis → sync → store → rules → alerts → mail) and each stage hands the
//! next these plain types, never a JSON value or a database handle. This module depends on no
//! other module of the crate.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Local id of a school, as configured (`[a-z0-9-]+`). Every store key starts with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchoolId(pub String);

impl SchoolId {
    /// Whether `s` is a valid school id: non-empty, lowercase ASCII letters, digits and dashes.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SchoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A student's id: the OneRoster `sourcedId`, or `untis:<studentId>` for a student who appears in
/// the absences but not in the roster (students without a WebUntis account).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StudentId(pub String);

impl StudentId {
    pub fn from_untis(untis_id: i64) -> Self {
        StudentId(format!("untis:{untis_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StudentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A student as stored: only what the mails need (data minimisation, SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Student {
    pub id: StudentId,
    pub given_name: String,
    pub family_name: String,
    /// Id (`sourcedId`) of the Klasse the student belongs to, if known.
    pub klasse_id: Option<String>,
    /// The numeric WebUntis person id (`userIds[type=person-id]`), joins to absences' `studentId`.
    pub untis_id: Option<i64>,
    /// `userIds[type=external-person-id]`, joins to absences' `studentExternKey`.
    pub extern_key: Option<String>,
}

impl Student {
    /// A student known only from the absences: shown as "Schüler/in (ID …)".
    pub fn unlisted(untis_id: i64) -> Self {
        Student {
            id: StudentId::from_untis(untis_id),
            given_name: String::new(),
            family_name: String::new(),
            klasse_id: None,
            untis_id: Some(untis_id),
            extern_key: None,
        }
    }

    /// Whether the roster knows this student's name.
    pub fn has_name(&self) -> bool {
        !(self.given_name.is_empty() && self.family_name.is_empty())
    }

    /// Display name; empty for a student known only by id (the renderer adds the label).
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
            .trim()
            .to_string()
    }
}

/// A teacher: only names and the e-mail address the digest goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teacher {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
}

/// A Klasse (homeroom class) and its class teachers (Klassenleitung).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Klasse {
    /// OneRoster `sourcedId` of the homeroom class.
    pub id: String,
    /// The Klasse's name, e.g. "7b"; this is also the `className` of the absences API.
    pub name: String,
    /// Teacher ids with a primary enrollment in this Klasse.
    pub class_teacher_ids: Vec<String>,
}

/// The active school year from `academicSessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolYear {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl SchoolYear {
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }

    /// "2025-2026", the label used in alert periods.
    pub fn label(&self) -> String {
        use chrono::Datelike;
        format!("{}-{}", self.start.year(), self.end.year())
    }
}

/// Everything the roster sync produces for one school.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub klassen: Vec<Klasse>,
    pub students: Vec<Student>,
    pub teachers: Vec<Teacher>,
}

/// Excuse state of an absence in the class register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcuseStatus {
    Excused,
    Unexcused,
    /// No decision yet ("?" in WebUntis).
    Pending,
}

/// Whether an entry is an absence or a late arrival (`type = DELAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbsenceKind {
    Absence,
    Delay,
}

/// One entry of the class register, school-local times without offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absence {
    pub student: StudentId,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub minutes: u32,
    /// Subject short name ("M", "D"), when the register has one.
    pub subject: Option<String>,
    pub status: ExcuseStatus,
    pub kind: AbsenceKind,
}

impl Absence {
    pub fn date(&self) -> NaiveDate {
        self.start.date()
    }
}

/// How serious a finding is: `watch < warning < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Watch,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Watch, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Watch => "watch",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|sev| sev.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule found about one student.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub student: StudentId,
    /// Rule id from SPEC §4, e.g. `consecutive_days`.
    pub rule: String,
    pub severity: Severity,
    /// The period the finding belongs to; part of the alert key, so a new period is a new alert.
    /// E.g. `2025-2026/2` (half-year), `2025-2026` (school year), `2026-03-02` (a streak's start).
    pub period: String,
    /// The measured value that crossed the threshold (days, weeks, lessons, percent).
    pub value: u32,
    /// Concrete dates (and lessons) that triggered the finding, so a teacher can check them
    /// against the class register. Each entry is `YYYY-MM-DD`, optionally followed by tokens:
    /// `L1-2,5` (lesson numbers), `+12min` (minutes late) or a subject short name (`M`).
    pub evidence: Vec<String>,
}

/// The key that deduplicates alerts: `(school, student, rule, period)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    pub school: SchoolId,
    pub student: StudentId,
    pub rule: String,
    pub period: String,
}

impl AlertKey {
    /// A stable textual id, used in store keys, Message-IDs and the audit log.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.school, self.student, self.rule, self.period
        )
    }
}

/// Lifecycle state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Active,
    Resolved,
}

/// A finding as tracked over time (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    pub severity: Severity,
    pub value: u32,
    pub evidence: Vec<String>,
    pub state: AlertState,
    /// When it first fired (RFC 3339, UTC).
    pub first_seen: String,
    pub last_seen: String,
    pub resolved_at: Option<String>,
    /// Highest severity already sent as an immediate alert (none: not sent immediately).
    pub notified_severity: Option<Severity>,
    /// When a class-teacher digest first listed it (RFC 3339, UTC); none while no teacher has
    /// seen it, e.g. because a silence muted it. Until then a digest shows it as new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_in_digest: Option<String>,
}

/// A silence (SPEC §5): mutes the alerts about one student (of one rule, or of all rules) up to
/// and including `until`, e.g. "known case, help plan running". Muted alerts are still tracked;
/// they are neither sent nor listed in digests while the silence is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// `sil-` and 8 hex digits, unique across schools, so `silence remove ID` needs no school.
    pub id: String,
    pub school: SchoolId,
    pub student: StudentId,
    /// The rule id it mutes; `None`: every rule.
    pub rule: Option<String>,
    /// Last day it is in force (inclusive, school-local date).
    pub until: NaiveDate,
    pub reason: String,
    /// The login of who set it.
    pub author: String,
    /// When it was set (RFC 3339).
    pub created: String,
}

impl Silence {
    /// A fresh random id, e.g. `sil-3f9a0c1e`.
    pub fn new_id() -> String {
        format!("sil-{:08x}", rand::random::<u32>())
    }
}
