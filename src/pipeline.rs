//! One run for one school: sync → evaluate → alerts → outbox → delivery. The daemon runs it on
//! its schedule; `sync` and `demo` run it once.

use crate::alerts::{self, Directory};
use crate::calendar::Calendar;
use crate::config::{Config, SchoolConfig};
use crate::mail::{
    self, AlertMail, DeliveryReport, DigestMail, ItemStatus, MailContext, RenderedMail, Transport,
};
use crate::model::{Alert, AlertState, Finding, Severity};
use crate::rules;
use crate::store::{OutboxEntry, SchoolSnapshot, Store, StoreError};
use crate::sync::{SyncError, SyncReport, sync_school};
use crate::untis::UntisClient;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("school {school}: sync failed: {source}")]
    Sync { school: String, source: SyncError },
    #[error("school {school}: {source}")]
    Store { school: String, source: StoreError },
    #[error("school {school}: mail: {message}")]
    Mail { school: String, message: String },
    #[error("school {school}: the run was abandoned at shutdown")]
    Stopped { school: String },
}

/// What a run should do besides evaluating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Send the weekly class-teacher digests now (the daemon's schedule decides when).
    pub digests: bool,
    /// Send the weekly school-wide digest to the social workers now (where
    /// `social_worker_digest` is set and social workers see the whole school).
    pub school_digest: bool,
    /// Try to deliver due outbox mails at the end of the run.
    pub deliver: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub sync: Option<SyncReport>,
    pub findings: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub immediate_mails: usize,
    pub digest_mails: usize,
    /// The mails this run planned, with their kind (`alert`, `digest`), for summaries.
    pub mails: Vec<(String, RenderedMail)>,
    /// For each entry of `mails`, in the same order: the alerts it names (by id) and their
    /// status in it.
    pub items: Vec<BTreeMap<String, ItemStatus>>,
    /// Active alerts muted by a silence in this run (tracked, but neither sent nor listed).
    pub silenced: usize,
    pub delivery: DeliveryReport,
}

/// The school calendar for a school year.
pub fn calendar_for(school: &SchoolConfig, year: crate::model::SchoolYear) -> Calendar {
    let periods = school.periods.clone();
    Calendar::new(
        year,
        &school.state,
        &school.holidays,
        &school.half_year_starts,
        &periods,
    )
}

/// Every rule for every student of the snapshot, as of `today`. Nothing before the first sync.
pub fn evaluate_school(
    snapshot: &SchoolSnapshot,
    school: &SchoolConfig,
    today: NaiveDate,
) -> Vec<Finding> {
    let Some(year) = snapshot.state.school_year else {
        return Vec::new();
    };
    let calendar = calendar_for(school, year);
    // The store lists absences by student, so each student's rules read only their own slice;
    // a snapshot built another way is sorted here first.
    let sorted: std::borrow::Cow<'_, [crate::model::Absence]> = if snapshot
        .absences
        .is_sorted_by(|a, b| a.student <= b.student)
    {
        std::borrow::Cow::Borrowed(&snapshot.absences)
    } else {
        let mut v = snapshot.absences.clone();
        v.sort_by(|a, b| a.student.cmp(&b.student));
        std::borrow::Cow::Owned(v)
    };
    let by_student: BTreeMap<&crate::model::StudentId, &[crate::model::Absence]> = sorted
        .chunk_by(|a, b| a.student == b.student)
        .filter_map(|chunk| Some((&chunk.first()?.student, chunk)))
        .collect();
    let mut out = Vec::new();
    for s in &snapshot.roster.students {
        let absences = by_student.get(&s.id).copied().unwrap_or_default();
        out.extend(rules::evaluate_student(
            &s.id,
            absences,
            &calendar,
            &school.rules,
            today,
        ));
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.student.cmp(&b.student))
            .then(a.rule.cmp(&b.rule))
            .then(a.period.cmp(&b.period))
    });
    out
}

/// School weeks shown in a digest's calendar strip.
const STRIP_WEEKS: i64 = 6;

/// The calendar strip of the last weeks for one student: one cell per weekday.
pub fn calendar_strip(
    student: &crate::model::StudentId,
    absences: &[crate::model::Absence],
    calendar: &Calendar,
    params: &rules::RuleParams,
    today: NaiveDate,
) -> Vec<mail::CalendarDay> {
    use chrono::Weekday;
    use mail::DayMark;
    let history = rules::History::build(student, absences, calendar, params, today);
    // From the Monday six weeks back up to today.
    let start = today - chrono::Duration::days(7 * STRIP_WEEKS - 1);
    let start = start - chrono::Duration::days(i64::from(start.weekday().num_days_from_monday()));
    let mut out = Vec::new();
    let mut day = start;
    while day <= today {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            let mark = if !calendar.is_school_day(day) {
                DayMark::NoSchool
            } else {
                match history.days.get(&day) {
                    Some(r) if r.absence_day && !r.unexcused_day && !r.pending => DayMark::Excused,
                    Some(r) if r.absence_day => DayMark::Absent,
                    Some(r) if r.lessons_missed > 0 => DayMark::Partial,
                    Some(r) if r.delays > 0 => DayMark::Late,
                    _ => DayMark::Present,
                }
            };
            out.push(mail::CalendarDay { date: day, mark });
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// Adds each student's calendar strip to a digest's items.
fn add_strips(
    students: &mut [mail::StudentAlerts],
    snapshot: &SchoolSnapshot,
    school: &SchoolConfig,
    today: NaiveDate,
) {
    let Some(year) = snapshot.state.school_year else {
        return;
    };
    let calendar = calendar_for(school, year);
    for s in students.iter_mut() {
        let id = crate::model::StudentId(s.student_id.clone());
        let absences: Vec<crate::model::Absence> = snapshot
            .absences
            .iter()
            .filter(|a| a.student == id)
            .cloned()
            .collect();
        s.calendar = calendar_strip(&id, &absences, &calendar, &school.rules, today);
    }
}

/// The mail context of a school.
pub fn mail_context(config: &Config, school: &SchoolConfig) -> MailContext {
    MailContext {
        school_id: school.id.to_string(),
        school_name: school.name.clone(),
        language: config.daemon.language,
        from: config.mail.from.clone(),
        reply_to: config.mail.reply_to.clone(),
        contact: config
            .mail
            .reply_to
            .clone()
            .or_else(|| school.recipients.social_workers.first().cloned()),
    }
}

/// ISO week label, e.g. `2026-W10`.
pub fn iso_week_label(day: NaiveDate) -> String {
    let w = day.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// When a mail planned at `now` may go out: at once, or at the end of the quiet hours.
fn release_time(school: &SchoolConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    let Some(quiet) = school.notify.quiet_hours else {
        return now;
    };
    let local = now.with_timezone(&school.timezone);
    if !quiet.contains(local.time()) {
        return now;
    }
    let mut day = local.date_naive();
    if local.time() >= quiet.end {
        day = day.succ_opt().unwrap_or(day);
    }
    school
        .timezone
        .from_local_datetime(&day.and_time(quiet.end))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
        .max(now)
}

fn outbox_entry(
    ctx: &MailContext,
    rendered: &RenderedMail,
    kind: &str,
    now: DateTime<Utc>,
    release: DateTime<Utc>,
) -> Result<OutboxEntry, mail::MailError> {
    let message = mail::to_message(ctx, rendered, now)?;
    let mut entry = mail::enqueue_entry(rendered, message, kind, &ctx.from, now);
    entry.next_attempt = release.to_rfc3339();
    Ok(entry)
}

/// Runs one school once. `client` is `None` to skip the sync (evaluate stored data only).
pub async fn run_school(
    store: &Store,
    config: &Config,
    school: &SchoolConfig,
    client: Option<&UntisClient>,
    transport: &Transport,
    now: DateTime<Utc>,
    options: RunOptions,
) -> Result<RunReport, PipelineError> {
    let sid = school.id.to_string();
    let store_err = |source| PipelineError::Store {
        school: sid.clone(),
        source,
    };
    let mail_err = |e: mail::MailError| PipelineError::Mail {
        school: sid.clone(),
        message: e.to_string(),
    };
    let mut report = RunReport::default();
    if let Some(client) = client {
        let r = sync_school(store, school, client, now)
            .await
            .map_err(|source| PipelineError::Sync {
                school: sid.clone(),
                source,
            })?;
        report.sync = Some(r);
    }

    let (snapshot, existing, all_silences) = {
        let id = sid.clone();
        store
            .blocking(move |s| Ok((s.load_school(&id)?, s.alerts(&id)?, s.silences(&id)?)))
            .await
            .map_err(store_err)?
    };
    let local_now = now.with_timezone(&school.timezone);
    let today = local_now.date_naive();
    let findings = evaluate_school(&snapshot, school, today);
    let (kept, muted) = alerts::inhibit(&school.id, findings);
    report.findings = kept.len();
    for f in &kept {
        *report.by_severity.entry(f.severity).or_default() += 1;
    }
    let now_s = now.to_rfc3339();
    let mut changed: BTreeMap<String, Alert> =
        alerts::reconcile(&school.id, &existing, &kept, &muted, &now_s)
            .into_iter()
            .map(|a| (a.key.id(), a))
            .collect();
    let mut current: BTreeMap<String, Alert> =
        existing.into_iter().map(|a| (a.key.id(), a)).collect();
    for (id, a) in &changed {
        current.insert(id.clone(), a.clone());
    }
    let current: Vec<Alert> = current.into_values().collect();
    let silences = alerts::ActiveSilences::new(&school.id, &all_silences, today);
    report.silenced = current
        .iter()
        .filter(|a| a.state == AlertState::Active && silences.mutes(&a.key))
        .count();
    let dir = Directory::new(&snapshot.roster);
    let ctx = mail_context(config, school);
    let mut outbox = Vec::new();
    let mut marks = Vec::new();

    // Immediate alerts: one bundled mail per social worker per run.
    let students = alerts::immediate_items(school, &current, &silences, &dir);
    if !students.is_empty() {
        let release = release_time(school, now);
        for recipient in &school.recipients.social_workers {
            let mail = AlertMail {
                recipient: recipient.clone(),
                run_at: local_now,
                students: students.clone(),
            };
            let rendered = mail::render_alert(&ctx, &mail).map_err(mail_err)?;
            outbox.push(outbox_entry(&ctx, &rendered, "alert", now, release).map_err(mail_err)?);
            report.immediate_mails += 1;
            report.mails.push(("alert".to_string(), rendered));
            report.items.push(statuses(&students));
        }
        for a in alerts::immediate_alerts(school, &current, &silences) {
            let mut a = a.clone();
            a.notified_severity = Some(a.severity);
            changed.insert(a.key.id(), a);
        }
    }

    let mut audiences = Vec::new();
    if options.digests {
        audiences.extend(alerts::digest_recipients(school, &snapshot.roster).0);
    }
    if options.school_digest {
        audiences.extend(school_digest_recipients(school));
    }
    if !audiences.is_empty() {
        let current_index: BTreeMap<String, usize> = current
            .iter()
            .enumerate()
            .map(|(i, a)| (a.key.id(), i))
            .collect();
        let week = iso_week_label(today);
        for r in audiences {
            let (week_mark, last_mark) = (r.week_mark(&week), r.last_mark());
            let (done, since) = {
                let (id, wm, lm) = (sid.clone(), week_mark.clone(), last_mark.clone());
                store
                    .blocking(move |s| Ok((s.mark(&id, &wm)?.is_some(), s.mark(&id, &lm)?)))
                    .await
                    .map_err(store_err)?
            };
            if done {
                continue;
            }
            let mut students =
                alerts::digest_items(&r, &current, &muted, &silences, since.as_deref(), &dir);
            if students.is_empty() && !school.notify.all_quiet_mail {
                continue;
            }
            let listed = statuses(&students);
            add_strips(&mut students, &snapshot, school, today);
            let rendered = render_digest_for(&ctx, &r, &snapshot, &week, local_now, students)
                .map_err(mail_err)?;
            let kind = if r.is_school_wide() {
                "social_worker_digest"
            } else {
                "digest"
            };
            outbox.push(outbox_entry(&ctx, &rendered, kind, now, now).map_err(mail_err)?);
            report.mails.push((kind.to_string(), rendered));
            // From now on a teacher has seen these alerts: later digests call them ongoing.
            for (id, status) in &listed {
                if *status == ItemStatus::Resolved || r.is_school_wide() {
                    continue;
                }
                let Some(a) = changed
                    .get(id)
                    .or_else(|| current_index.get(id).map(|&i| &current[i]))
                else {
                    continue;
                };
                if a.listed_in_digest.is_none() {
                    let mut a = a.clone();
                    a.listed_in_digest = Some(now_s.clone());
                    changed.insert(id.clone(), a);
                }
            }
            report.items.push(listed);
            marks.push((week_mark, now_s.clone()));
            marks.push((last_mark, now_s.clone()));
            report.digest_mails += 1;
        }
    }

    let changed: Vec<Alert> = changed.into_values().collect();
    {
        let id = sid.clone();
        store
            .blocking(move |s| s.commit_alert_run(&id, &changed, &outbox, &marks))
            .await
            .map_err(store_err)?;
    }
    if options.deliver {
        report.delivery = mail::deliver_due(store, &sid, transport, now).await;
    }
    Ok(report)
}

/// The social workers who get the weekly school-wide digest: none unless it is configured and
/// they see student-level alerts (`social_workers_see = "school"`).
fn school_digest_recipients(school: &SchoolConfig) -> Vec<alerts::DigestRecipient> {
    if school.notify.social_worker_digest.is_none() || !school.recipients.social_workers_see_school
    {
        return Vec::new();
    }
    school
        .recipients
        .social_workers
        .iter()
        .map(|e| alerts::DigestRecipient::school_wide(e))
        .collect()
}

/// The alerts a mail names and their status in it.
fn statuses(students: &[mail::StudentAlerts]) -> BTreeMap<String, ItemStatus> {
    students
        .iter()
        .flat_map(|s| &s.alerts)
        .map(|a| (a.alert_id.clone(), a.status))
        .collect()
}

fn render_digest_for(
    ctx: &MailContext,
    r: &alerts::DigestRecipient,
    snapshot: &SchoolSnapshot,
    week: &str,
    sent_at: DateTime<chrono_tz::Tz>,
    students: Vec<mail::StudentAlerts>,
) -> Result<RenderedMail, mail::MailError> {
    let names: BTreeMap<&str, &str> = snapshot
        .roster
        .klassen
        .iter()
        .map(|k| (k.id.as_str(), k.name.as_str()))
        .collect();
    let mut klassen: Vec<String> = r
        .klassen
        .iter()
        .filter_map(|k| names.get(k.as_str()).map(|n| n.to_string()))
        .collect();
    klassen.sort();
    mail::render_digest(
        ctx,
        &DigestMail {
            recipient: r.email.clone(),
            teacher_name: r.name.clone(),
            klassen,
            week: week.to_string(),
            sent_at,
            students,
        },
    )
}

/// The digest `to` would get now, rendered but neither stored nor sent. `None` when `to` is no
/// class teacher of the school or would get no mail.
pub async fn preview_digest(
    store: &Store,
    config: &Config,
    school: &SchoolConfig,
    to: &str,
    now: DateTime<Utc>,
) -> Result<Option<RenderedMail>, PipelineError> {
    let sid = school.id.to_string();
    let (snapshot, existing, all_silences) = {
        let id = sid.clone();
        store
            .blocking(move |s| Ok((s.load_school(&id)?, s.alerts(&id)?, s.silences(&id)?)))
            .await
            .map_err(|source| PipelineError::Store {
                school: sid.clone(),
                source,
            })?
    };
    let local_now = now.with_timezone(&school.timezone);
    let today = local_now.date_naive();
    let (kept, muted) = alerts::inhibit(&school.id, evaluate_school(&snapshot, school, today));
    let changed = alerts::reconcile(&school.id, &existing, &kept, &muted, &now.to_rfc3339());
    let mut current: BTreeMap<String, Alert> =
        existing.into_iter().map(|a| (a.key.id(), a)).collect();
    for a in changed {
        current.insert(a.key.id(), a);
    }
    let current: Vec<Alert> = current.into_values().collect();
    let silences = alerts::ActiveSilences::new(&school.id, &all_silences, today);
    // A class teacher's digest; for a social worker the school-wide one.
    let (recipients, _) = alerts::digest_recipients(school, &snapshot.roster);
    let Some(r) = recipients
        .into_iter()
        .chain(school_digest_recipients(school))
        .find(|r| r.email.eq_ignore_ascii_case(to))
    else {
        return Ok(None);
    };
    let since = {
        let (id, last_mark) = (sid.clone(), r.last_mark());
        store
            .blocking(move |s| s.mark(&id, &last_mark))
            .await
            .map_err(|source| PipelineError::Store {
                school: sid.clone(),
                source,
            })?
    };
    let dir = Directory::new(&snapshot.roster);
    let mut students =
        alerts::digest_items(&r, &current, &muted, &silences, since.as_deref(), &dir);
    if students.is_empty() && !school.notify.all_quiet_mail {
        return Ok(None);
    }
    add_strips(&mut students, &snapshot, school, today);
    let ctx = mail_context(config, school);
    let rendered = render_digest_for(
        &ctx,
        &r,
        &snapshot,
        &iso_week_label(today),
        local_now,
        students,
    )
    .map_err(|e| PipelineError::Mail {
        school: sid.clone(),
        message: e.to_string(),
    })?;
    Ok(Some(rendered))
}

/// Ids of the students named in a set of findings, for tests and summaries.
pub fn students_in(findings: &[Finding], min: Severity) -> BTreeSet<String> {
    findings
        .iter()
        .filter(|f| f.severity >= min)
        .map(|f| f.student.0.clone())
        .collect()
}

/// Runs several schools at once, each with a WebUntis client of its own (its own token cache),
/// so one school's failing or slow WebUntis neither stops nor slows the others. Results come
/// in the order of `schools`.
pub async fn run_schools(
    store: &Store,
    config: &Config,
    schools: &[&SchoolConfig],
    transport: &Transport,
    now: DateTime<Utc>,
    options: RunOptions,
) -> Vec<Result<RunReport, PipelineError>> {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    type Run<'a> = Pin<Box<dyn Future<Output = Result<RunReport, PipelineError>> + Send + 'a>>;
    let mut runs: Vec<Run<'_>> = schools
        .iter()
        .map(|school| -> Run<'_> {
            Box::pin(async move {
                let client = UntisClient::new(&school.untis).map_err(|e| PipelineError::Sync {
                    school: school.id.to_string(),
                    source: SyncError::Untis(e),
                })?;
                run_school(
                    store,
                    config,
                    school,
                    Some(&client),
                    transport,
                    now,
                    options,
                )
                .await
            })
        })
        .collect();
    let mut results: Vec<Option<Result<RunReport, PipelineError>>> =
        schools.iter().map(|_| None).collect();
    // A join of a handful of futures on this task: each wake polls the unfinished ones.
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (run, result) in runs.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match run.as_mut().poll(cx) {
                    Poll::Ready(r) => *result = Some(r),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
