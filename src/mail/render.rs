//! Rendering: mail view types → subject, text and HTML (minijinja templates embedded from
//! `templates/`), and the RFC 5322 message.
//!
//! Every mail has a stable id derived from its logical key, so rendering the same logical mail
//! again (after a crash, on a retry) gives the same Message-ID and the same outbox key.

use super::MailError;
use super::i18n::{self, phrases};
use crate::config::Language;
use crate::model::Severity;
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where an alert stands relative to the last mail about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    New,
    Escalated,
    Ongoing,
    Resolved,
}

/// One alert as a mail shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertItem {
    pub alert_id: String,
    pub rule: String,
    pub severity: Severity,
    pub status: ItemStatus,
    pub value: u32,
    pub period: String,
    /// ISO dates, maybe followed by text ("2026-03-02 (3 Std.)"); other strings are shown as
    /// they are.
    pub evidence: Vec<String>,
}

/// What a cell of the per-student calendar strip shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayMark {
    /// Weekend, public holiday or school holiday.
    NoSchool,
    Present,
    /// Late arrival (`type = DELAY`), otherwise present.
    Late,
    /// Some lessons missed, fewer than an absence day.
    Partial,
    /// Absence day, excused.
    Excused,
    /// Absence day, unexcused or without an excuse decision yet.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub mark: DayMark,
}

/// One student and the alerts a mail names about them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentAlerts {
    pub student_id: String,
    /// Empty = unknown (a student without a roster entry): shown as "Schüler/in (ID …)".
    pub name: String,
    pub klasse: Option<String>,
    pub alerts: Vec<AlertItem>,
    /// Optional strip of the last weeks (digest): days in any order, weekends are skipped.
    pub calendar: Vec<CalendarDay>,
}

/// What every mail of a school shares.
#[derive(Debug, Clone)]
pub struct MailContext {
    pub school_id: String,
    pub school_name: String,
    pub language: Language,
    /// RFC 5322 mailbox (`Name <addr>` or `addr`).
    pub from: String,
    pub reply_to: Option<String>,
    /// Whom to ask, e.g. the social workers' address.
    pub contact: Option<String>,
}

/// The immediate mail to one social worker, one per sync run.
#[derive(Debug, Clone)]
pub struct AlertMail {
    pub recipient: String,
    pub run_at: DateTime<Tz>,
    pub students: Vec<StudentAlerts>,
}

/// The weekly digest for one class teacher (active and resolved items). With no Klassen it is
/// the school-wide digest for a social worker.
#[derive(Debug, Clone)]
pub struct DigestMail {
    pub recipient: String,
    pub teacher_name: String,
    pub klassen: Vec<String>,
    /// ISO week, "2026-W10".
    pub week: String,
    pub sent_at: DateTime<Tz>,
    pub students: Vec<StudentAlerts>,
}

/// `send-test-mail`: names no student.
#[derive(Debug, Clone)]
pub struct TestMail {
    pub recipient: String,
    pub sent_at: DateTime<Utc>,
    /// How it is sent, for the reader ("SMTP mail.example:587 (STARTTLS)").
    pub transport: String,
}

/// A rendered mail, ready for [`to_message`] and the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// Stable id of the logical mail: outbox key, `.eml` file name, Message-ID local part.
    pub id: String,
    /// `<{id}@{domain of from}>`
    pub message_id: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Students the mail names (ids only), for the audit log.
    pub student_ids: Vec<String>,
    pub alert_ids: Vec<String>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    (
        "students.html",
        include_str!("../../templates/students.html"),
    ),
    ("alert.html", include_str!("../../templates/alert.html")),
    ("digest.html", include_str!("../../templates/digest.html")),
    ("test.html", include_str!("../../templates/test.html")),
    ("layout.txt", include_str!("../../templates/layout.txt")),
    ("students.txt", include_str!("../../templates/students.txt")),
    ("alert.txt", include_str!("../../templates/alert.txt")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("test.txt", include_str!("../../templates/test.txt")),
];

fn environment() -> Result<Environment<'static>, MailError> {
    let mut env = Environment::new();
    // HTML auto-escaping follows the template name (.html); text templates are not escaped.
    env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| template_error(name, &e))?;
    }
    Ok(env)
}

fn template_error(name: &str, e: &minijinja::Error) -> MailError {
    MailError::Template {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

fn render_pair(kind: &str, page: &PageView) -> Result<(String, String), MailError> {
    let env = environment()?;
    let mut out = Vec::with_capacity(2);
    for ext in ["txt", "html"] {
        let name = format!("{kind}.{ext}");
        let tmpl = env
            .get_template(&name)
            .map_err(|e| template_error(&name, &e))?;
        out.push(tmpl.render(page).map_err(|e| template_error(&name, &e))?);
    }
    let html = out.pop().unwrap_or_default();
    let text = out.pop().unwrap_or_default();
    Ok((tidy_text(&text), html))
}

/// Text mails: no trailing spaces, at most one blank line in a row, one final newline.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

// ---- view model handed to the templates ----

#[derive(Serialize)]
struct PageView {
    lang: &'static str,
    title: String,
    /// Hidden first line that phone mail apps show in the list.
    preheader: String,
    greeting: String,
    intro: Vec<String>,
    students: Vec<StudentView>,
    /// Shown instead of the student list when it is empty.
    quiet: Option<String>,
    outro: Vec<String>,
    as_of: String,
    footer: Vec<String>,
    labels: Labels,
}

#[derive(Serialize)]
struct Labels {
    dates: &'static str,
    klasse: &'static str,
    calendar: &'static str,
    legend: &'static str,
    /// Mon..Fri column heads of the calendar strip.
    weekdays: Vec<&'static str>,
}

#[derive(Serialize)]
struct StudentView {
    name: String,
    klasse: Option<String>,
    /// Severity key of the most severe active item; "resolved" if all items are resolved.
    severity: &'static str,
    severity_label: String,
    items: Vec<ItemView>,
    weeks: Vec<WeekView>,
}

#[derive(Serialize)]
struct ItemView {
    sentence: String,
    severity: &'static str,
    severity_label: &'static str,
    status: &'static str,
    status_label: &'static str,
    evidence: Vec<String>,
}

#[derive(Serialize)]
struct WeekView {
    label: String,
    days: Vec<DayView>,
}

#[derive(Serialize)]
struct DayView {
    weekday: &'static str,
    date: String,
    letter: &'static str,
    bg: &'static str,
    fg: &'static str,
}

fn labels(lang: Language) -> Labels {
    let p = phrases(lang);
    Labels {
        dates: p.dates,
        klasse: p.klasse,
        calendar: p.calendar,
        legend: i18n::calendar_legend(lang),
        weekdays: [
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
        ]
        .into_iter()
        .map(|w| i18n::weekday_short(lang, w))
        .collect(),
    }
}

fn status_key(s: ItemStatus) -> &'static str {
    match s {
        ItemStatus::New => "new",
        ItemStatus::Escalated => "escalated",
        ItemStatus::Ongoing => "ongoing",
        ItemStatus::Resolved => "resolved",
    }
}

/// Most severe active item of a student; `None` if every item is resolved.
fn top_severity(s: &StudentAlerts) -> Option<Severity> {
    s.alerts
        .iter()
        .filter(|a| a.status != ItemStatus::Resolved)
        .map(|a| a.severity)
        .max()
}

fn student_rank(s: &StudentAlerts) -> (Option<Severity>, usize) {
    let active = s
        .alerts
        .iter()
        .filter(|a| a.status != ItemStatus::Resolved)
        .count();
    (top_severity(s), active)
}

/// Students most severe first (students with only resolved items last), then by Klasse and
/// name so the order is stable.
fn sorted_students(students: &[StudentAlerts]) -> Vec<&StudentAlerts> {
    let mut v: Vec<&StudentAlerts> = students.iter().collect();
    v.sort_by(|a, b| {
        student_rank(b)
            .cmp(&student_rank(a))
            .then_with(|| a.klasse.cmp(&b.klasse))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.student_id.cmp(&b.student_id))
    });
    v
}

fn item_order(a: &AlertItem) -> (bool, std::cmp::Reverse<Severity>, u8) {
    let status = match a.status {
        ItemStatus::Escalated => 0,
        ItemStatus::New => 1,
        ItemStatus::Ongoing => 2,
        ItemStatus::Resolved => 3,
    };
    (
        a.status == ItemStatus::Resolved,
        std::cmp::Reverse(a.severity),
        status,
    )
}

/// Evidence entries a mail shows per alert; older ones are summarised, the class register has
/// them all.
const MAX_EVIDENCE: usize = 10;

/// The most recent entries (evidence is in date order), after a count of the older ones.
fn short_evidence(lang: Language, evidence: &[String]) -> Vec<String> {
    let skip = evidence.len().saturating_sub(MAX_EVIDENCE);
    let mut out = Vec::with_capacity(evidence.len().min(MAX_EVIDENCE) + 1);
    if skip > 0 {
        out.push(i18n::earlier_evidence(lang, skip));
    }
    out.extend(evidence[skip..].iter().map(|e| i18n::evidence(lang, e)));
    out
}

/// Students most severe first, as the templates show them.
fn student_views(lang: Language, students: &[StudentAlerts]) -> Vec<StudentView> {
    sorted_students(students)
        .into_iter()
        .map(|s| student_view(lang, s))
        .collect()
}

fn student_view(lang: Language, s: &StudentAlerts) -> StudentView {
    let mut items: Vec<&AlertItem> = s.alerts.iter().collect();
    items.sort_by(|a, b| item_order(a).cmp(&item_order(b)).then(a.rule.cmp(&b.rule)));
    let items = items
        .into_iter()
        .map(|a| ItemView {
            sentence: i18n::rule_sentence(lang, &a.rule, a.value, &a.evidence),
            severity: a.severity.as_str(),
            severity_label: i18n::severity_label(lang, a.severity),
            status: status_key(a.status),
            status_label: i18n::status_label(lang, a.status),
            evidence: short_evidence(lang, &a.evidence),
        })
        .collect();
    let name = if s.name.trim().is_empty() {
        i18n::unknown_student(lang, &s.student_id)
    } else {
        s.name.trim().to_string()
    };
    let (severity, severity_label) = match top_severity(s) {
        Some(sev) => (sev.as_str(), i18n::severity_label(lang, sev).to_string()),
        None => (
            "resolved",
            i18n::status_label(lang, ItemStatus::Resolved).to_string(),
        ),
    };
    StudentView {
        name,
        klasse: s.klasse.clone(),
        severity,
        severity_label,
        items,
        weeks: calendar_weeks(lang, &s.calendar),
    }
}

/// Groups the calendar strip into school weeks (Mon–Fri), oldest first.
fn calendar_weeks(lang: Language, days: &[CalendarDay]) -> Vec<WeekView> {
    let mut by_week: BTreeMap<(i32, u32), BTreeMap<NaiveDate, DayMark>> = BTreeMap::new();
    for d in days {
        if d.date.weekday().number_from_monday() > 5 {
            continue;
        }
        let w = d.date.iso_week();
        by_week
            .entry((w.year(), w.week()))
            .or_default()
            .insert(d.date, d.mark);
    }
    by_week
        .into_iter()
        .map(|((year, week), marks)| {
            let label = match lang {
                Language::De => format!("KW {week:02}"),
                Language::En => format!("W{week:02}"),
            };
            // Always Mon–Fri, so the columns line up; a day without data stays blank.
            let days = [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ]
            .into_iter()
            .filter_map(|wd| NaiveDate::from_isoywd_opt(year, week, wd))
            .map(|date| {
                let (letter, bg, fg) = match marks.get(&date) {
                    Some(mark) => i18n::day_mark(lang, *mark),
                    None => ("", "#ffffff", "#ffffff"),
                };
                DayView {
                    weekday: i18n::weekday_short(lang, date.weekday()),
                    date: i18n::date(lang, date),
                    letter,
                    bg,
                    fg,
                }
            })
            .collect();
            WeekView { label, days }
        })
        .collect()
}

fn time_label(lang: Language, t: &DateTime<Tz>) -> String {
    match lang {
        Language::De => t.format("%d.%m.%Y, %H:%M Uhr").to_string(),
        Language::En => t.format("%Y-%m-%d %H:%M").to_string(),
    }
}

fn base_footer(ctx: &MailContext, why: String) -> Vec<String> {
    let p = phrases(ctx.language);
    let contact = ctx.contact.as_deref().or(ctx.reply_to.as_deref());
    vec![
        why,
        i18n::contact_line(ctx.language, contact),
        p.privacy.to_string(),
        p.automatic.to_string(),
    ]
}

/// The stable id of a logical mail: `<kind>-` plus 128 bits of the key's SHA-256.
fn stable_id(kind: &str, key_parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for part in key_parts {
        // A separator that cannot occur in ids or addresses keeps the parts unambiguous.
        h.update([0x1f]);
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}-{hex}")
}

fn normalized_address(addr: &str) -> String {
    addr.trim().to_ascii_lowercase()
}

/// The domain of the From address, for Message-IDs.
fn from_domain(from: &str) -> Result<String, MailError> {
    let mbox: Mailbox = from.parse().map_err(|_| MailError::InvalidAddress {
        field: "mail.from".into(),
    })?;
    Ok(mbox.email.domain().to_string())
}

/// The bare address of a mailbox (`Name <a@b>` → `a@b`), for the SMTP envelope.
pub fn envelope_address(mailbox: &str) -> Result<String, MailError> {
    let mbox: Mailbox = mailbox.parse().map_err(|_| MailError::InvalidAddress {
        field: "mail.from".into(),
    })?;
    Ok(mbox.email.to_string())
}

fn ids_of(students: &[StudentAlerts]) -> (Vec<String>, Vec<String>) {
    let student_ids = students.iter().map(|s| s.student_id.clone()).collect();
    let alert_ids = students
        .iter()
        .flat_map(|s| s.alerts.iter().map(|a| a.alert_id.clone()))
        .collect();
    (student_ids, alert_ids)
}

/// The immediate alert to one social worker.
pub fn render_alert(ctx: &MailContext, mail: &AlertMail) -> Result<RenderedMail, MailError> {
    let lang = ctx.language;
    let p = phrases(lang);
    let mut keyed: Vec<String> = mail
        .students
        .iter()
        .flat_map(|s| s.alerts.iter())
        .map(|a| format!("{}\t{}", a.alert_id, a.severity.as_str()))
        .collect();
    keyed.sort();
    keyed.dedup();
    let recipient = normalized_address(&mail.recipient);
    let mut key: Vec<&str> = vec![&ctx.school_id, &recipient];
    key.extend(keyed.iter().map(String::as_str));
    let id = stable_id("alert", &key);

    let count = i18n::students_count(lang, mail.students.len());
    let any_critical = mail
        .students
        .iter()
        .any(|s| top_severity(s) == Some(Severity::Critical));
    let subject = match lang {
        Language::De => format!(
            "Sofortmeldung: {count} mit {} Fehlzeiten – {}",
            if any_critical {
                "kritischen"
            } else {
                "auffälligen"
            },
            ctx.school_name
        ),
        Language::En => format!(
            "Immediate alert: {count} with {} absences – {}",
            if any_critical { "critical" } else { "notable" },
            ctx.school_name
        ),
    };
    let as_of = time_label(lang, &mail.run_at);
    let (greeting, intro, why) = match lang {
        Language::De => (
            "Guten Tag,".to_string(),
            vec![format!(
                "die Auswertung der Fehlzeiten vom {as_of} hat neue oder stärkere Auffälligkeiten gefunden: {count}. Bitte sehen Sie sich die Fälle zeitnah an."
            )],
            format!(
                "Sie erhalten diese Sofortmeldung als Schulsozialarbeit der Schule {}.",
                ctx.school_name
            ),
        ),
        Language::En => (
            "Hello,".to_string(),
            vec![format!(
                "The absence evaluation of {as_of} found new or more serious findings: {count}. Please look into them soon."
            )],
            format!(
                "You receive this immediate alert as a school social worker at {}.",
                ctx.school_name
            ),
        ),
    };
    let page = PageView {
        lang: lang.code(),
        title: subject.clone(),
        preheader: intro.first().cloned().unwrap_or_default(),
        greeting,
        intro,
        students: student_views(lang, &mail.students),
        quiet: None,
        outro: vec![p.check_register.to_string()],
        as_of: format!("{}: {as_of}", p.as_of),
        footer: base_footer(ctx, why),
        labels: labels(lang),
    };
    finish(
        ctx,
        "alert",
        id,
        &mail.recipient,
        subject,
        &page,
        &mail.students,
    )
}

/// The weekly digest of one class teacher (or, with no Klassen, the school-wide digest of a
/// social worker). With no students it renders the "all quiet" variant; the caller decides
/// whether to send it.
pub fn render_digest(ctx: &MailContext, mail: &DigestMail) -> Result<RenderedMail, MailError> {
    let lang = ctx.language;
    let p = phrases(lang);
    let school_wide = mail.klassen.is_empty();
    let recipient = normalized_address(&mail.recipient);
    let kind = if school_wide {
        "school-digest"
    } else {
        "digest"
    };
    let id = stable_id(kind, &[&ctx.school_id, &recipient, &mail.week]);

    let week = i18n::week_label(lang, &mail.week);
    let klassen = mail.klassen.join(", ");
    let scope = if school_wide {
        ctx.school_name.clone()
    } else {
        klassen.clone()
    };
    let quiet_now = mail.students.is_empty();
    let subject = match lang {
        Language::De => format!(
            "Fehlzeiten-Wochenübersicht {scope} – {week}{}",
            if quiet_now { " (keine Hinweise)" } else { "" }
        ),
        Language::En => format!(
            "Weekly absence summary {scope} – {week}{}",
            if quiet_now { " (no findings)" } else { "" }
        ),
    };
    let active = mail
        .students
        .iter()
        .filter(|s| top_severity(s).is_some())
        .count();
    let resolved: usize = mail
        .students
        .iter()
        .map(|s| {
            s.alerts
                .iter()
                .filter(|a| a.status == ItemStatus::Resolved)
                .count()
        })
        .sum();
    let name = mail.teacher_name.trim();
    let (greeting, intro, quiet, why) = match lang {
        Language::De => {
            let greeting = if name.is_empty() {
                "Guten Tag,".to_string()
            } else {
                format!("Guten Tag {name},")
            };
            let whose = if school_wide {
                format!("der Schule {}", ctx.school_name)
            } else if mail.klassen.len() == 1 {
                format!("Ihrer Klasse {klassen}")
            } else {
                format!("Ihrer Klassen {klassen}")
            };
            let mut intro = vec![format!(
                "hier ist die wöchentliche Übersicht der Fehlzeiten-Hinweise {whose} ({week})."
            )];
            if !quiet_now {
                let mut summary =
                    format!("Aktuelle Hinweise: {}.", i18n::students_count(lang, active));
                if resolved > 0 {
                    summary.push_str(&format!(
                        " Seit der letzten Übersicht erledigt: {resolved} {}.",
                        if resolved == 1 { "Hinweis" } else { "Hinweise" }
                    ));
                }
                intro.push(summary);
            }
            let quiet = quiet_now.then(|| {
                let scope = if school_wide {
                    format!("die Schule {}", ctx.school_name)
                } else if mail.klassen.len() == 1 {
                    format!("Ihre Klasse {klassen}")
                } else {
                    format!("Ihre Klassen {klassen}")
                };
                format!("Für {scope} gibt es in dieser Woche keine Fehlzeiten-Hinweise.")
            });
            let why = if school_wide {
                format!(
                    "Sie erhalten diese Übersicht als Schulsozialarbeit der Schule {}.",
                    ctx.school_name
                )
            } else {
                format!(
                    "Sie erhalten diese Übersicht als Klassenleitung {} {klassen} der Schule {}.",
                    if mail.klassen.len() == 1 {
                        "der Klasse"
                    } else {
                        "der Klassen"
                    },
                    ctx.school_name
                )
            };
            (greeting, intro, quiet, why)
        }
        Language::En => {
            let greeting = if name.is_empty() {
                "Hello,".to_string()
            } else {
                format!("Hello {name},")
            };
            let whose = if school_wide {
                ctx.school_name.clone()
            } else if mail.klassen.len() == 1 {
                format!("your class {klassen}")
            } else {
                format!("your classes {klassen}")
            };
            let mut intro = vec![format!(
                "Here is the weekly summary of absence findings for {whose} ({week})."
            )];
            if !quiet_now {
                let mut summary =
                    format!("Current findings: {}.", i18n::students_count(lang, active));
                if resolved > 0 {
                    summary.push_str(&format!(
                        " Resolved since the last summary: {resolved} {}.",
                        if resolved == 1 { "finding" } else { "findings" }
                    ));
                }
                intro.push(summary);
            }
            let quiet =
                quiet_now.then(|| format!("There are no absence findings for {whose} this week."));
            let why = if school_wide {
                format!(
                    "You receive this summary as a school social worker at {}.",
                    ctx.school_name
                )
            } else {
                format!(
                    "You receive this summary as class teacher of {klassen} at {}.",
                    ctx.school_name
                )
            };
            (greeting, intro, quiet, why)
        }
    };
    let as_of = time_label(lang, &mail.sent_at);
    let page = PageView {
        lang: lang.code(),
        title: subject.clone(),
        preheader: intro.get(1).or(intro.first()).cloned().unwrap_or_default(),
        greeting,
        intro,
        students: student_views(lang, &mail.students),
        quiet,
        outro: if quiet_now {
            Vec::new()
        } else {
            vec![p.check_register.to_string()]
        },
        as_of: format!("{}: {as_of}", p.as_of),
        footer: base_footer(ctx, why),
        labels: labels(lang),
    };
    finish(
        ctx,
        "digest",
        id,
        &mail.recipient,
        subject,
        &page,
        &mail.students,
    )
}

/// Renders both parts of a page and wraps them with the ids a mail needs.
fn finish(
    ctx: &MailContext,
    template: &str,
    id: String,
    recipient: &str,
    subject: String,
    page: &PageView,
    students: &[StudentAlerts],
) -> Result<RenderedMail, MailError> {
    let (text, html) = render_pair(template, page)?;
    let (student_ids, alert_ids) = ids_of(students);
    Ok(RenderedMail {
        message_id: format!("<{id}@{}>", from_domain(&ctx.from)?),
        id,
        to: vec![recipient.trim().to_string()],
        subject,
        text,
        html,
        student_ids,
        alert_ids,
    })
}

/// The `send-test-mail` message. Its id is unique per call: every test is a new mail.
pub fn render_test(ctx: &MailContext, mail: &TestMail) -> Result<RenderedMail, MailError> {
    let lang = ctx.language;
    let p = phrases(lang);
    let recipient = normalized_address(&mail.recipient);
    let nanos = mail
        .sent_at
        .timestamp_nanos_opt()
        .unwrap_or_else(|| mail.sent_at.timestamp())
        .to_string();
    let id = stable_id("test", &[&ctx.school_id, &recipient, &nanos]);
    let sent = mail.sent_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let (subject, greeting, intro, why) = match lang {
        Language::De => (
            "Fehlzeiten-Frühwarnsystem: Testnachricht".to_string(),
            "Guten Tag,".to_string(),
            vec![
                "diese Testnachricht zeigt, dass das Fehlzeiten-Frühwarnsystem Ihrer Schule E-Mails versenden kann.".to_string(),
                format!("Versandweg: {}", mail.transport),
                format!("Gesendet: {sent}"),
            ],
            "Sie erhalten sie, weil die Schul-IT mit `fehlzeiten send-test-mail` den Mailversand an diese Adresse geprüft hat. Sie enthält keine Daten von Schülerinnen und Schülern.".to_string(),
        ),
        Language::En => (
            "Absence early-warning system: test message".to_string(),
            "Hello,".to_string(),
            vec![
                "This test message shows that your school's absence early-warning system can send e-mail.".to_string(),
                format!("Sent via: {}", mail.transport),
                format!("Sent at: {sent}"),
            ],
            "You receive it because the school's IT checked mail delivery to this address with `fehlzeiten send-test-mail`. It contains no student data.".to_string(),
        ),
    };
    let contact = ctx.contact.as_deref().or(ctx.reply_to.as_deref());
    let page = PageView {
        lang: lang.code(),
        title: subject.clone(),
        preheader: intro.first().cloned().unwrap_or_default(),
        greeting,
        intro,
        students: Vec::new(),
        quiet: None,
        outro: Vec::new(),
        as_of: format!("{}: {sent}", p.as_of),
        footer: vec![
            why,
            i18n::contact_line(lang, contact),
            p.automatic.to_string(),
        ],
        labels: labels(lang),
    };
    finish(ctx, "test", id, &mail.recipient, subject, &page, &[])
}

fn raw_header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

/// The complete RFC 5322 message: multipart/alternative (text, then HTML), with the mail's
/// stable Message-ID and the given Date.
pub fn to_message(
    ctx: &MailContext,
    mail: &RenderedMail,
    date: DateTime<Utc>,
) -> Result<String, MailError> {
    let from: Mailbox = ctx.from.parse().map_err(|_| MailError::InvalidAddress {
        field: "mail.from".into(),
    })?;
    let mut builder = Message::builder()
        .from(from)
        .subject(mail.subject.clone())
        .date(date.into())
        .message_id(Some(mail.message_id.clone()))
        // RFC 3834: keeps vacation responders and auto-forwarders quiet.
        .raw_header(raw_header("Auto-Submitted", "auto-generated"))
        .raw_header(raw_header("X-Auto-Response-Suppress", "All"))
        .raw_header(raw_header("Content-Language", ctx.language.code()));
    if let Some(reply_to) = &ctx.reply_to {
        let mbox: Mailbox = reply_to.parse().map_err(|_| MailError::InvalidAddress {
            field: "mail.reply_to".into(),
        })?;
        builder = builder.reply_to(mbox);
    }
    if mail.to.is_empty() {
        return Err(MailError::Message("the mail has no recipient".into()));
    }
    for to in &mail.to {
        let mbox: Mailbox = to.parse().map_err(|_| MailError::InvalidAddress {
            field: format!("recipient of mail {}", mail.id),
        })?;
        builder = builder.to(mbox);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| MailError::Message(e.to_string()))?;
    String::from_utf8(message.formatted())
        .map_err(|e| MailError::Message(format!("message is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests;
