//! From findings to alerts (SPEC §5): deduplication by `(school, student, rule, period)`,
//! escalation, resolution, inhibition and silences, then who is told what. Pure: no I/O, no
//! clock (the run's time and day are passed in). It plans mails; `mail` renders and sends them.

use crate::config::SchoolConfig;
use crate::mail::{AlertItem, ItemStatus, StudentAlerts};
use crate::model::{
    Alert, AlertKey, AlertState, Finding, Roster, SchoolId, Severity, Silence, StudentId,
};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Whether a silence is still in force on `today` (school-local): `until` is inclusive. An
/// expired silence mutes nothing, so nothing has to clean it up for alerts to flow again.
pub fn silence_in_force(silence: &Silence, today: NaiveDate) -> bool {
    silence.until >= today
}

/// Whether a silence covers an alert: same school and student, and its rule if it names one.
pub fn silence_covers(silence: &Silence, key: &AlertKey) -> bool {
    silence.school == key.school
        && silence.student == key.student
        && silence.rule.as_deref().is_none_or(|r| r == key.rule)
}

/// The silences of a school in force on one day.
#[derive(Debug, Clone, Default)]
pub struct ActiveSilences<'a> {
    active: Vec<&'a Silence>,
}

impl<'a> ActiveSilences<'a> {
    /// The silences of `school` among `silences` that are in force on `today`.
    pub fn new(school: &SchoolId, silences: &'a [Silence], today: NaiveDate) -> Self {
        ActiveSilences {
            active: silences
                .iter()
                .filter(|s| &s.school == school && silence_in_force(s, today))
                .collect(),
        }
    }

    /// Whether an alert is muted: it is then neither sent at once nor listed in a digest.
    pub fn mutes(&self, key: &AlertKey) -> bool {
        self.active.iter().any(|s| silence_covers(s, key))
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

/// A critical finding of a rule mutes the same rule's milder findings for that student, so one
/// student never produces a pile of mails. Returns the kept findings and the muted keys.
pub fn inhibit(school: &SchoolId, findings: Vec<Finding>) -> (Vec<Finding>, BTreeSet<String>) {
    let critical: BTreeSet<(StudentId, String)> = findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .map(|f| (f.student.clone(), f.rule.clone()))
        .collect();
    let mut kept = Vec::new();
    let mut muted = BTreeSet::new();
    for f in findings {
        if f.severity < Severity::Critical
            && critical.contains(&(f.student.clone(), f.rule.clone()))
        {
            muted.insert(key_of(school, &f).id());
        } else {
            kept.push(f);
        }
    }
    (kept, muted)
}

pub fn key_of(school: &SchoolId, f: &Finding) -> AlertKey {
    AlertKey {
        school: school.clone(),
        student: f.student.clone(),
        rule: f.rule.clone(),
        period: f.period.clone(),
    }
}

/// Applies a run's findings to the stored alerts. Returns every alert whose state changed (new,
/// updated or resolved). An alert that is firing again after it was resolved starts anew.
/// Alerts muted by inhibition are left untouched.
pub fn reconcile(
    school: &SchoolId,
    existing: &[Alert],
    findings: &[Finding],
    muted: &BTreeSet<String>,
    now: &str,
) -> Vec<Alert> {
    let mut by_id: HashMap<String, &Alert> = existing.iter().map(|a| (a.key.id(), a)).collect();
    let mut changed = Vec::new();
    for f in findings {
        let key = key_of(school, f);
        let id = key.id();
        let alert = match by_id.remove(&id) {
            Some(old) if old.state == AlertState::Active => {
                let mut a = old.clone();
                a.severity = f.severity;
                a.value = f.value;
                a.evidence = f.evidence.clone();
                // An unchanged alert is not rewritten on every run; `last_seen` is the last
                // time its content changed.
                if a == *old {
                    continue;
                }
                a.last_seen = now.to_string();
                a
            }
            _ => Alert {
                key,
                severity: f.severity,
                value: f.value,
                evidence: f.evidence.clone(),
                state: AlertState::Active,
                first_seen: now.to_string(),
                last_seen: now.to_string(),
                resolved_at: None,
                notified_severity: None,
                listed_in_digest: None,
            },
        };
        changed.push(alert);
    }
    for (id, old) in by_id {
        if old.state == AlertState::Active && !muted.contains(&id) {
            let mut a = old.clone();
            a.state = AlertState::Resolved;
            a.resolved_at = Some(now.to_string());
            changed.push(a);
        }
    }
    changed.sort_by(|a, b| a.key.cmp(&b.key));
    changed
}

/// Whether an alert must go to the social workers now: active, at or above the threshold, and
/// not yet sent at this severity (new, or escalated since).
pub fn needs_immediate(a: &Alert, min: Severity) -> bool {
    a.state == AlertState::Active
        && a.severity >= min
        && a.notified_severity.is_none_or(|sent| a.severity > sent)
}

/// Student display data for mails.
pub struct Directory<'a> {
    students: HashMap<&'a StudentId, &'a crate::model::Student>,
    klassen: HashMap<&'a str, &'a crate::model::Klasse>,
}

impl<'a> Directory<'a> {
    pub fn new(roster: &'a Roster) -> Self {
        Directory {
            students: roster.students.iter().map(|s| (&s.id, s)).collect(),
            klassen: roster.klassen.iter().map(|k| (k.id.as_str(), k)).collect(),
        }
    }

    pub fn name(&self, id: &StudentId) -> String {
        self.students
            .get(id)
            .map(|s| s.full_name())
            .unwrap_or_default()
    }

    pub fn klasse_id(&self, id: &StudentId) -> Option<&'a str> {
        self.students.get(id).and_then(|s| s.klasse_id.as_deref())
    }

    pub fn klasse_name(&self, id: &StudentId) -> Option<String> {
        self.klasse_id(id)
            .and_then(|k| self.klassen.get(k))
            .map(|k| k.name.clone())
    }
}

/// Groups alert items by student, most severe student first, then by Klasse and name.
pub fn group_by_student(dir: &Directory, items: Vec<(StudentId, AlertItem)>) -> Vec<StudentAlerts> {
    let mut map: BTreeMap<StudentId, Vec<AlertItem>> = BTreeMap::new();
    for (s, item) in items {
        map.entry(s).or_default().push(item);
    }
    let mut out: Vec<StudentAlerts> = map
        .into_iter()
        .map(|(id, mut alerts)| {
            alerts.sort_by(|a, b| {
                status_rank(a.status)
                    .cmp(&status_rank(b.status))
                    .then(b.severity.cmp(&a.severity))
                    .then(a.rule.cmp(&b.rule))
                    .then(a.period.cmp(&b.period))
            });
            StudentAlerts {
                name: dir.name(&id),
                klasse: dir.klasse_name(&id),
                student_id: id.0,
                alerts,
                calendar: Vec::new(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        max_active_severity(b)
            .cmp(&max_active_severity(a))
            .then(a.klasse.cmp(&b.klasse))
            .then(a.name.cmp(&b.name))
            .then(a.student_id.cmp(&b.student_id))
    });
    out
}

fn status_rank(s: ItemStatus) -> u8 {
    match s {
        ItemStatus::Escalated | ItemStatus::New => 0,
        ItemStatus::Ongoing => 1,
        ItemStatus::Resolved => 2,
    }
}

fn max_active_severity(s: &StudentAlerts) -> Option<Severity> {
    s.alerts
        .iter()
        .filter(|a| a.status != ItemStatus::Resolved)
        .map(|a| a.severity)
        .max()
}

pub fn item(a: &Alert, status: ItemStatus) -> AlertItem {
    AlertItem {
        alert_id: a.key.id(),
        rule: a.key.rule.clone(),
        severity: a.severity,
        status,
        value: a.value,
        period: a.key.period.clone(),
        evidence: a.evidence.clone(),
    }
}

/// The alerts to send to the social workers now: those that need it, unless a silence mutes
/// them. A muted alert stays unsent, so it goes out once its silence has expired if it still
/// fires. Empty when the school's social workers get no student-level alerts.
pub fn immediate_alerts<'a>(
    school: &SchoolConfig,
    alerts: &'a [Alert],
    silences: &ActiveSilences,
) -> Vec<&'a Alert> {
    if !school.recipients.social_workers_see_school || school.recipients.social_workers.is_empty() {
        return Vec::new();
    }
    let min = school.notify.immediate_min_severity;
    alerts
        .iter()
        .filter(|a| needs_immediate(a, min) && !silences.mutes(&a.key))
        .collect()
}

/// The immediate mail's content: [`immediate_alerts`] grouped by student. The same for every
/// social worker of the school (one mail per recipient is built from it).
pub fn immediate_items(
    school: &SchoolConfig,
    alerts: &[Alert],
    silences: &ActiveSilences,
    dir: &Directory,
) -> Vec<StudentAlerts> {
    let items = immediate_alerts(school, alerts, silences)
        .into_iter()
        .map(|a| {
            let status = if a.notified_severity.is_some() {
                ItemStatus::Escalated
            } else {
                ItemStatus::New
            };
            (a.key.student.clone(), item(a, status))
        })
        .collect();
    group_by_student(dir, items)
}

/// A digest's audience: a class teacher with their Klassen, or a social worker with the whole
/// school (no Klassen: the school-wide digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRecipient {
    pub email: String,
    pub name: String,
    /// Klasse ids; empty for the school-wide digest.
    pub klassen: Vec<String>,
}

impl DigestRecipient {
    /// A social worker's school-wide digest.
    pub fn school_wide(email: &str) -> Self {
        DigestRecipient {
            email: email.to_string(),
            name: String::new(),
            klassen: Vec::new(),
        }
    }

    pub fn is_school_wide(&self) -> bool {
        self.klassen.is_empty()
    }

    /// The mark of this recipient's digest of ISO week `week`: set when it is made, so a
    /// restart does not make it again. Class-teacher and school-wide digests to the same
    /// address are kept apart.
    pub fn week_mark(&self, week: &str) -> String {
        format!(
            "{}|{}|{week}",
            digest_mark_kind(self.is_school_wide()),
            self.email.to_ascii_lowercase()
        )
    }

    /// The mark of when this recipient's last digest was made: what "since the last digest"
    /// means.
    pub fn last_mark(&self) -> String {
        format!(
            "{}-last|{}",
            digest_mark_kind(self.is_school_wide()),
            self.email.to_ascii_lowercase()
        )
    }
}

/// The first part of a digest mark's key: `digest` for class teachers, `school-digest` for
/// the school-wide digest.
pub fn digest_mark_kind(school_wide: bool) -> &'static str {
    if school_wide {
        "school-digest"
    } else {
        "digest"
    }
}

/// Class teachers with their Klassen: from WebUntis (primary teacher enrollments), replaced per
/// Klasse by `class_teachers_file`. Klassen without any teacher address are returned separately.
pub fn digest_recipients(
    school: &SchoolConfig,
    roster: &Roster,
) -> (Vec<DigestRecipient>, Vec<String>) {
    let teachers: HashMap<&str, &crate::model::Teacher> =
        roster.teachers.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut by_email: BTreeMap<String, DigestRecipient> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for k in &roster.klassen {
        let addresses: Vec<(String, String)> =
            match school.recipients.class_teachers_override.get(&k.name) {
                Some(list) => list.iter().map(|e| (e.clone(), String::new())).collect(),
                None => k
                    .class_teacher_ids
                    .iter()
                    .filter_map(|t| teachers.get(t.as_str()))
                    .filter_map(|t| {
                        t.email.clone().map(|e| {
                            (
                                e,
                                format!("{} {}", t.given_name, t.family_name)
                                    .trim()
                                    .to_string(),
                            )
                        })
                    })
                    .collect(),
            };
        if addresses.is_empty() {
            unmapped.push(k.name.clone());
        }
        for (email, name) in addresses {
            let r = by_email
                .entry(email.to_ascii_lowercase())
                .or_insert_with(|| DigestRecipient {
                    email: email.clone(),
                    name: name.clone(),
                    klassen: Vec::new(),
                });
            if r.name.is_empty() {
                r.name = name;
            }
            if !r.klassen.contains(&k.id) {
                r.klassen.push(k.id.clone());
            }
        }
    }
    (by_email.into_values().collect(), unmapped)
}

/// A digest's items for one teacher: active alerts of students in their Klassen (new, or
/// ongoing) and alerts resolved since `since`, listed once. The school-wide digest (no Klassen)
/// has every student's alerts at "warning" or above. `None` for `since` is the first
/// digest. Alerts muted by inhibition (`muted`) or by a silence are left out.
///
/// An active alert is new until a digest has listed it, so one that was silenced at the last
/// digest is new to the teacher when its silence ends. A resolved alert that no digest ever
/// listed although it existed at the last one (it was muted then) is not reported either.
pub fn digest_items(
    recipient: &DigestRecipient,
    alerts: &[Alert],
    muted: &BTreeSet<String>,
    silences: &ActiveSilences,
    since: Option<&str>,
    dir: &Directory,
) -> Vec<StudentAlerts> {
    let klassen: BTreeSet<&str> = recipient.klassen.iter().map(String::as_str).collect();
    let school_wide = recipient.is_school_wide();
    // Whether the recipient has seen the alert in a digest: a class teacher when a digest
    // listed it; the school-wide digest when it existed at the last one.
    let seen = |a: &Alert, since: &str| {
        a.first_seen.as_str() <= since && (school_wide || a.listed_in_digest.is_some())
    };
    let items = alerts
        .iter()
        .filter(|a| {
            school_wide
                || dir
                    .klasse_id(&a.key.student)
                    .is_some_and(|k| klassen.contains(k))
        })
        .filter(|a| !muted.contains(&a.key.id()) && !silences.mutes(&a.key))
        // School-wide, "watch" findings of hundreds of students would bury the serious ones:
        // a class teacher knows their students, a social worker needs the warnings.
        .filter(|a| !school_wide || a.severity >= Severity::Warning)
        .filter_map(|a| {
            let status = match a.state {
                AlertState::Active => match since {
                    Some(s) if seen(a, s) => ItemStatus::Ongoing,
                    _ => ItemStatus::New,
                },
                AlertState::Resolved => {
                    // Resolved before the first digest: nothing to report.
                    let since = since?;
                    let resolved = a.resolved_at.as_deref()?;
                    if resolved <= since
                        || (!school_wide
                            && a.listed_in_digest.is_none()
                            && a.first_seen.as_str() <= since)
                    {
                        return None;
                    }
                    ItemStatus::Resolved
                }
            };
            Some((a.key.student.clone(), item(a, status)))
        })
        .collect();
    group_by_student(dir, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(student: &str, rule: &str, severity: Severity, period: &str) -> Finding {
        Finding {
            student: StudentId(student.into()),
            rule: rule.into(),
            severity,
            period: period.into(),
            value: 1,
            evidence: vec!["2026-03-02".into()],
        }
    }

    #[test]
    fn lifecycle_new_unchanged_escalated_resolved() {
        let school = SchoolId("s".into());
        let none = BTreeSet::new();
        let f1 = finding("a", "consecutive_days", Severity::Warning, "2026-03-02");
        let run1 = reconcile(&school, &[], std::slice::from_ref(&f1), &none, "t1");
        assert_eq!(run1.len(), 1);
        assert!(needs_immediate(&run1[0], Severity::Warning));
        let mut stored = run1.clone();
        stored[0].notified_severity = Some(Severity::Warning);

        // Same finding again: nothing changes, nothing to send.
        assert!(reconcile(&school, &stored, std::slice::from_ref(&f1), &none, "t2").is_empty());

        // Escalation.
        let mut f2 = f1.clone();
        f2.severity = Severity::Critical;
        let run3 = reconcile(&school, &stored, &[f2], &none, "t3");
        assert_eq!(run3[0].severity, Severity::Critical);
        assert!(needs_immediate(&run3[0], Severity::Warning));

        // It stops firing: resolved.
        let run4 = reconcile(&school, &run3, &[], &none, "t4");
        assert_eq!(run4[0].state, AlertState::Resolved);
        assert_eq!(run4[0].resolved_at.as_deref(), Some("t4"));
    }

    fn silence(student: &str, rule: Option<&str>, until: &str) -> Silence {
        Silence {
            id: "sil-00000001".into(),
            school: SchoolId("s".into()),
            student: StudentId(student.into()),
            rule: rule.map(str::to_string),
            until: until.parse().unwrap(),
            reason: "known case".into(),
            author: "admin".into(),
            created: "2026-03-02T08:00:00+00:00".into(),
        }
    }

    fn key(student: &str, rule: &str) -> AlertKey {
        AlertKey {
            school: SchoolId("s".into()),
            student: StudentId(student.into()),
            rule: rule.into(),
            period: "2026-03-02".into(),
        }
    }

    #[test]
    fn a_silence_mutes_its_student_and_rule_until_it_expires() {
        let school = SchoolId("s".into());
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let all = [
            silence("a", None, "2026-03-06"),
            silence("b", Some("consecutive_days"), "2026-03-06"),
        ];
        let on = ActiveSilences::new(&school, &all, day("2026-03-06"));
        assert!(on.mutes(&key("a", "consecutive_days")));
        assert!(on.mutes(&key("a", "absence_rate")));
        assert!(on.mutes(&key("b", "consecutive_days")));
        assert!(!on.mutes(&key("b", "absence_rate")));
        assert!(!on.mutes(&key("c", "consecutive_days")));
        // Another school's alert with the same student id is not muted.
        let mut other = key("a", "consecutive_days");
        other.school = SchoolId("t".into());
        assert!(!on.mutes(&other));
        // `until` is inclusive; the day after, nothing is muted.
        let after = ActiveSilences::new(&school, &all, day("2026-03-07"));
        assert!(after.is_empty());
        assert!(!after.mutes(&key("a", "consecutive_days")));
        // Silences of another school are not in force here.
        assert!(ActiveSilences::new(&SchoolId("t".into()), &all, day("2026-03-01")).is_empty());
    }

    #[test]
    fn a_muted_alert_is_new_to_the_teacher_when_its_silence_ends() {
        let school = SchoolId("s".into());
        let f = finding("a", "consecutive_days", Severity::Warning, "2026-03-02");
        let mut alert = reconcile(&school, &[], &[f], &BTreeSet::new(), "2026-03-05T06:00:00Z")
            .pop()
            .unwrap();
        let recipient = DigestRecipient {
            email: "kl@x".into(),
            name: String::new(),
            klassen: vec!["k".into()],
        };
        let roster = Roster {
            klassen: vec![crate::model::Klasse {
                id: "k".into(),
                name: "7b".into(),
                class_teacher_ids: vec![],
            }],
            students: vec![crate::model::Student {
                klasse_id: Some("k".into()),
                ..crate::model::Student::unlisted(1)
            }],
            teachers: vec![],
        };
        alert.key.student = roster.students[0].id.clone();
        let dir = Directory::new(&roster);
        let none = BTreeSet::new();
        let statuses = |alerts: &[Alert], silences: &ActiveSilences, since: Option<&str>| {
            digest_items(&recipient, alerts, &none, silences, since, &dir)
                .into_iter()
                .flat_map(|s| s.alerts)
                .map(|i| i.status)
                .collect::<Vec<_>>()
        };
        let all = [silence(&alert.key.student.0, None, "2026-03-08")];
        let muted = ActiveSilences::new(&school, &all, "2026-03-05".parse().unwrap());
        let expired = ActiveSilences::new(&school, &all, "2026-03-09".parse().unwrap());
        let since = Some("2026-03-05T06:00:00Z");
        assert!(statuses(std::slice::from_ref(&alert), &muted, since).is_empty());
        // Never listed: new, although it is older than the last digest.
        assert_eq!(
            statuses(std::slice::from_ref(&alert), &expired, since),
            [ItemStatus::New]
        );
        let mut listed = alert.clone();
        listed.listed_in_digest = Some("2026-03-05T06:00:00Z".into());
        assert_eq!(
            statuses(std::slice::from_ref(&listed), &expired, since),
            [ItemStatus::Ongoing]
        );
        // Resolved while muted and never listed: the teacher never heard of it.
        let mut resolved = alert.clone();
        resolved.state = AlertState::Resolved;
        resolved.resolved_at = Some("2026-03-06T06:00:00Z".into());
        assert!(statuses(std::slice::from_ref(&resolved), &expired, since).is_empty());
        resolved.listed_in_digest = Some("2026-03-05T06:00:00Z".into());
        assert_eq!(
            statuses(std::slice::from_ref(&resolved), &expired, since),
            [ItemStatus::Resolved]
        );
    }

    #[test]
    fn critical_mutes_milder_findings_of_the_same_rule() {
        let school = SchoolId("s".into());
        let (kept, muted) = inhibit(
            &school,
            vec![
                finding("a", "consecutive_days", Severity::Critical, "2026-03-02"),
                finding("a", "consecutive_days", Severity::Warning, "2026-02-02"),
                finding("a", "absence_rate", Severity::Warning, "2025-2026"),
                finding("b", "consecutive_days", Severity::Warning, "2026-02-02"),
            ],
        );
        assert_eq!(kept.len(), 3);
        assert_eq!(muted.len(), 1);
        assert!(
            muted
                .iter()
                .next()
                .unwrap()
                .starts_with("s|a|consecutive_days|2026-02-02")
        );
    }
}
