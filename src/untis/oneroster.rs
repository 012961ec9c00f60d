//! OneRoster 1.1 rosters: paging and the mapping to Klassen, students and teachers.
//!
//! SPEC §3 assumption, kept in this one place: a Klasse is a `homeroom` class named by its
//! `title`; a teacher's `primary` enrollment in it makes them class teacher. Only the fields the
//! mails need are kept; everything else in a record is dropped here.

use super::{ONEROSTER_PATH, UntisClient, UntisError, lenient_bool, str_field};
use crate::model::{Klasse, Roster, SchoolYear, Student, StudentId, Teacher};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// How far an incremental sync reaches back before the watermark. Records are stamped when a
/// change starts but become visible when it is committed, and a record changed while a sync
/// was paging may carry an older stamp than one the sync already saw; re-reading the last
/// minutes costs nothing (they fit in the one page the list needs anyway) and closes that gap.
const WATERMARK_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);

/// A full roster with its watermark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterFetch {
    pub roster: Roster,
    /// The latest `dateLastModified` among the records read, as the server wrote it.
    pub watermark: Option<String>,
    /// Klasse memberships (of students, and primary ones of teachers) whose user was not in
    /// the user lists. A user deleted while the lists were paged shifts the later pages, so
    /// the record after it is skipped; its enrollment, read afterwards, still names it. The
    /// sync keeps such users from the stored roster instead of dropping them for a day.
    pub missing_members: Vec<Membership>,
}

/// What changed in the roster after a watermark, already mapped to Klassen, students and
/// teachers (the mapping of SPEC §3 stays in this module).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterDelta {
    /// Homeroom classes created or changed; their class teachers come from `memberships`.
    pub klassen: Vec<Klasse>,
    /// Classes that are gone (`tobedeleted`) or are not a Klasse (any id not stored is a
    /// lesson and is ignored).
    pub removed_klassen: Vec<String>,
    /// Students created or changed; their Klasse comes from `memberships`.
    pub students: Vec<Student>,
    pub removed_students: Vec<String>,
    pub teachers: Vec<Teacher>,
    pub removed_teachers: Vec<String>,
    /// Enrollment changes in the order the server listed them.
    pub memberships: Vec<Membership>,
    /// The latest `dateLastModified` among the changed records, if any.
    pub watermark: Option<String>,
    /// Records the server returned (for the log).
    pub records: usize,
}

/// One changed enrollment. `class` may be a lesson; the sync ignores classes that are no Klasse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub user: String,
    pub class: String,
    pub kind: MembershipKind,
    /// Whether the membership holds after the change: false for `tobedeleted`, and for a
    /// teacher enrollment that is no longer `primary`.
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipKind {
    Student,
    ClassTeacher,
}

/// A `dateLastModified` as a point in time: RFC 3339, or without offset (taken as UTC).
fn parse_modified(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// The later of two `dateLastModified` values; text order when one does not parse.
pub(crate) fn later_watermark(a: Option<String>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (None, None) => None,
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(b.to_string()),
        (Some(a), Some(b)) => {
            let b_later = match (parse_modified(&a), parse_modified(b)) {
                (Some(ta), Some(tb)) => tb > ta,
                _ => b > a.as_str(),
            };
            Some(if b_later { b.to_string() } else { a })
        }
    }
}

/// The `filter` of an incremental list: everything modified after `since` less the overlap.
fn changed_since_filter(since: &str) -> String {
    let bound = match parse_modified(since) {
        Some(t) => (t - WATERMARK_OVERLAP)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        // Not a time we understand: hand the server its own text back, minus quotes that
        // would end the filter's string literal.
        None => since.replace('\'', ""),
    };
    format!("dateLastModified>'{bound}'")
}

/// Every record of a list endpoint, page by page, until a page has fewer items than the
/// limit. Records are deduplicated by `sourcedId` (a record inserted between pages shifts the
/// next page by one). Also returns the latest `dateLastModified` seen.
pub(super) async fn fetch_all(
    client: &UntisClient,
    resource: &str,
    envelope: &str,
    filter: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), UntisError> {
    let limit = client.page_limit();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut watermark = None;
    let mut offset = 0usize;
    loop {
        let mut query = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
        if let Some(f) = filter {
            query.push(("filter", f.to_string()));
        }
        let path = format!("{ONEROSTER_PATH}{resource}");
        let doc = client.get_json(resource, &path, &query).await?;
        // An answer without the list is not an empty list: read as one, a full sync would
        // clear the stored roster because of an error page that happened to be JSON.
        let items = match doc.get(envelope) {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(UntisError::Parse(format!(
                    "{resource}: `{envelope}` is not a list"
                )));
            }
            None => {
                return Err(UntisError::Parse(format!(
                    "{resource}: the answer has no `{envelope}` list"
                )));
            }
        };
        let n = items.len();
        for item in items {
            watermark = later_watermark(watermark, str_field(&item, "dateLastModified"));
            match str_field(&item, "sourcedId") {
                Some(id) if !seen.insert(id.to_string()) => {}
                _ => out.push(item),
            }
        }
        if n < limit {
            return Ok((out, watermark));
        }
        offset += limit;
    }
}

pub(super) async fn school_year(
    client: &UntisClient,
    today: NaiveDate,
) -> Result<SchoolYear, UntisError> {
    let (sessions, _) = fetch_all(client, "academicSessions", "academicSessions", None).await?;
    pick_school_year(&sessions, today).ok_or_else(|| {
        UntisError::Parse(format!(
            "academicSessions lists no school year for {today}; is the new school year set up in WebUntis?"
        ))
    })
}

fn pick_school_year(sessions: &[Value], today: NaiveDate) -> Option<SchoolYear> {
    let years: Vec<(SchoolYear, bool)> = sessions
        .iter()
        .filter(|s| str_field(s, "type") == Some("schoolYear"))
        .filter(|s| str_field(s, "status") != Some("tobedeleted"))
        .filter_map(|s| {
            let start = parse_date(str_field(s, "startDate")?)?;
            let end = parse_date(str_field(s, "endDate")?)?;
            (start <= end).then_some((
                SchoolYear { start, end },
                str_field(s, "status") == Some("active"),
            ))
        })
        .collect();
    years
        .iter()
        .find(|(y, _)| y.contains(today))
        .or_else(|| {
            years
                .iter()
                .filter(|(_, active)| *active)
                .max_by_key(|(y, _)| y.start)
        })
        .map(|(y, _)| *y)
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // Dates may come as `2025-08-01` or with a time part.
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

pub(super) async fn roster(client: &UntisClient) -> Result<RosterFetch, UntisError> {
    let (classes, w1) = fetch_all(client, "classes", "classes", None).await?;
    let (students, w2) = fetch_all(client, "users", "users", Some("role='student'")).await?;
    let (teachers, w3) = fetch_all(client, "users", "users", Some("role='teacher'")).await?;
    let (enrollments, w4) = fetch_all(client, "enrollments", "enrollments", None).await?;
    let watermark = [w2, w3, w4]
        .into_iter()
        .fold(w1, |acc, w| later_watermark(acc, w.as_deref()));
    let (roster, missing_members) = build_roster(&classes, &students, &teachers, &enrollments);
    Ok(RosterFetch {
        roster,
        watermark,
        missing_members,
    })
}

/// The changes after `since`: classes, users (all roles in one list, so one request covers
/// students and teachers) and enrollments, each filtered by `dateLastModified`.
pub(super) async fn roster_changes(
    client: &UntisClient,
    since: &str,
) -> Result<RosterDelta, UntisError> {
    let filter = changed_since_filter(since);
    let (classes, w1) = fetch_all(client, "classes", "classes", Some(&filter)).await?;
    let (users, w2) = fetch_all(client, "users", "users", Some(&filter)).await?;
    let (enrollments, w3) = fetch_all(client, "enrollments", "enrollments", Some(&filter)).await?;
    let mut delta = RosterDelta {
        records: classes.len() + users.len() + enrollments.len(),
        watermark: [w2, w3]
            .into_iter()
            .fold(w1, |acc, w| later_watermark(acc, w.as_deref())),
        ..RosterDelta::default()
    };
    for c in &classes {
        match (active(c), parse_klasse(c)) {
            (true, Some(k)) => delta.klassen.push(k),
            _ => {
                if let Some(id) = str_field(c, "sourcedId") {
                    delta.removed_klassen.push(id.to_string());
                }
            }
        }
    }
    for u in &users {
        let Some(id) = str_field(u, "sourcedId") else {
            warn_skip("user", u, "no sourcedId");
            continue;
        };
        match (str_field(u, "role"), active(u)) {
            (Some("student"), true) => delta.students.extend(parse_student(u)),
            (Some("student"), false) => delta.removed_students.push(id.to_string()),
            (Some("teacher"), true) => delta.teachers.extend(parse_teacher(u)),
            (Some("teacher"), false) => delta.removed_teachers.push(id.to_string()),
            // Parents, administrators and the like are not kept.
            _ => {}
        }
    }
    for e in &enrollments {
        let (Some(user), Some(class)) = (ref_id(e, "user"), ref_id(e, "class")) else {
            warn_skip("enrollment", e, "no user or class reference");
            continue;
        };
        let kind = match str_field(e, "role") {
            Some("student") => MembershipKind::Student,
            Some("teacher") => MembershipKind::ClassTeacher,
            _ => continue,
        };
        let holds =
            active(e) && (kind == MembershipKind::Student || lenient_bool(e.get("primary")));
        delta.memberships.push(Membership {
            user: user.to_string(),
            class: class.to_string(),
            kind,
            active: holds,
        });
    }
    Ok(delta)
}

fn active(v: &Value) -> bool {
    str_field(v, "status") != Some("tobedeleted")
}

/// Skips (with a warning naming the record id, never the person) what does not parse.
fn warn_skip(kind: &str, v: &Value, why: &str) {
    let id = str_field(v, "sourcedId").unwrap_or("<no sourcedId>");
    log::warn!("skipping {kind} record {id}: {why}");
}

fn user_id_of_type<'a>(user: &'a Value, kind: &str) -> Option<&'a str> {
    user.get("userIds")?
        .as_array()?
        .iter()
        .find(|u| str_field(u, "type") == Some(kind))
        .and_then(|u| str_field(u, "identifier"))
}

fn ref_id<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|r| str_field(r, "sourcedId"))
}

/// A homeroom class as Klasse (no class teachers yet); `None` for lessons and broken records.
fn parse_klasse(c: &Value) -> Option<Klasse> {
    if str_field(c, "classType") != Some("homeroom") {
        return None;
    }
    match (str_field(c, "sourcedId"), str_field(c, "title")) {
        (Some(id), Some(title)) if !title.trim().is_empty() => Some(Klasse {
            id: id.to_string(),
            name: title.trim().to_string(),
            class_teacher_ids: Vec::new(),
        }),
        _ => {
            warn_skip("class", c, "no sourcedId or title");
            None
        }
    }
}

/// A student (no Klasse yet): ids and names only.
fn parse_student(s: &Value) -> Option<Student> {
    let Some(id) = str_field(s, "sourcedId") else {
        warn_skip("student", s, "no sourcedId");
        return None;
    };
    let untis_id = user_id_of_type(s, "person-id").and_then(|x| x.trim().parse::<i64>().ok());
    Some(Student {
        id: StudentId(id.to_string()),
        given_name: str_field(s, "givenName").unwrap_or("").trim().to_string(),
        family_name: str_field(s, "familyName").unwrap_or("").trim().to_string(),
        klasse_id: None,
        untis_id,
        extern_key: user_id_of_type(s, "external-person-id").map(str::to_string),
    })
}

/// A teacher: names and the e-mail address the digest goes to.
fn parse_teacher(t: &Value) -> Option<Teacher> {
    let Some(id) = str_field(t, "sourcedId") else {
        warn_skip("teacher", t, "no sourcedId");
        return None;
    };
    let email = str_field(t, "email")
        .map(str::trim)
        .filter(|e| e.contains('@'))
        .map(str::to_string);
    Some(Teacher {
        id: id.to_string(),
        given_name: str_field(t, "givenName").unwrap_or("").trim().to_string(),
        family_name: str_field(t, "familyName").unwrap_or("").trim().to_string(),
        email,
    })
}

pub(super) fn build_roster(
    classes: &[Value],
    students: &[Value],
    teachers: &[Value],
    enrollments: &[Value],
) -> (Roster, Vec<Membership>) {
    let mut klassen: BTreeMap<String, Klasse> = BTreeMap::new();
    for c in classes.iter().filter(|c| active(c)) {
        if let Some(k) = parse_klasse(c) {
            klassen.insert(k.id.clone(), k);
        }
    }

    let mut student_list: BTreeMap<String, Student> = BTreeMap::new();
    for s in students.iter().filter(|s| active(s)) {
        if str_field(s, "role").is_some_and(|r| r != "student") {
            continue;
        }
        if let Some(st) = parse_student(s) {
            student_list.insert(st.id.0.clone(), st);
        }
    }

    let mut teacher_list: BTreeMap<String, Teacher> = BTreeMap::new();
    for t in teachers.iter().filter(|t| active(t)) {
        if str_field(t, "role").is_some_and(|r| r != "teacher") {
            continue;
        }
        if let Some(te) = parse_teacher(t) {
            teacher_list.insert(te.id.clone(), te);
        }
    }

    // Users the lists named at all, `tobedeleted` ones included: only a user no list named
    // can have been skipped by a shifted page.
    let named: HashSet<&str> = students
        .iter()
        .chain(teachers)
        .filter_map(|u| str_field(u, "sourcedId"))
        .collect();
    let mut missing = Vec::new();
    for e in enrollments.iter().filter(|e| active(e)) {
        let (Some(user), Some(class)) = (ref_id(e, "user"), ref_id(e, "class")) else {
            warn_skip("enrollment", e, "no user or class reference");
            continue;
        };
        let Some(klasse) = klassen.get_mut(class) else {
            continue; // a scheduled class (lesson), not a Klasse
        };
        let membership = |kind| Membership {
            user: user.to_string(),
            class: class.to_string(),
            kind,
            active: true,
        };
        match str_field(e, "role") {
            Some("student") => match student_list.get_mut(user) {
                Some(s) => s.klasse_id = Some(klasse.id.clone()),
                None if !named.contains(user) => {
                    missing.push(membership(MembershipKind::Student));
                }
                None => {}
            },
            Some("teacher") if lenient_bool(e.get("primary")) => {
                if !teacher_list.contains_key(user) {
                    if !named.contains(user) {
                        missing.push(membership(MembershipKind::ClassTeacher));
                    }
                } else if !klasse.class_teacher_ids.iter().any(|t| t == user) {
                    klasse.class_teacher_ids.push(user.to_string());
                }
            }
            _ => {}
        }
    }

    (
        Roster {
            klassen: klassen.into_values().collect(),
            students: student_list.into_values().collect(),
            teachers: teacher_list.into_values().collect(),
        },
        missing,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_homerooms_primary_teachers_and_drops_extra_fields() {
        let classes = vec![
            json!({"sourcedId":"k1","title":"7b","classType":"homeroom","status":"active"}),
            json!({"sourcedId":"c9","title":"BIO 7b","classType":"scheduled"}),
            json!({"sourcedId":"k2","title":"8a","classType":"homeroom","status":"tobedeleted"}),
        ];
        let students = vec![
            json!({"sourcedId":"s1","givenName":"Lena","familyName":"Müller","role":"student",
            "phone":"0123","userIds":[{"type":"person-id","identifier":"4711"},{"type":"external-person-id","identifier":"S-1"}]}),
        ];
        let teachers = vec![
            json!({"sourcedId":"t1","givenName":"Eva","familyName":"Schmidt","role":"teacher","email":"e.schmidt@schule.example"}),
            json!({"sourcedId":"t2","givenName":"Max","familyName":"Roth","role":"teacher","email":""}),
        ];
        let enrollments = vec![
            json!({"sourcedId":"e1","user":{"sourcedId":"s1"},"class":{"sourcedId":"k1"},"role":"student"}),
            json!({"sourcedId":"e2","user":{"sourcedId":"t1"},"class":{"sourcedId":"k1"},"role":"teacher","primary":"true"}),
            json!({"sourcedId":"e3","user":{"sourcedId":"t2"},"class":{"sourcedId":"k1"},"role":"teacher","primary":false}),
            json!({"sourcedId":"e4","user":{"sourcedId":"t2"},"class":{"sourcedId":"c9"},"role":"teacher","primary":true}),
            json!({"sourcedId":"e5"}),
        ];
        let (r, missing) = build_roster(&classes, &students, &teachers, &enrollments);
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(r.klassen.len(), 1);
        assert_eq!(r.klassen[0].name, "7b");
        assert_eq!(r.klassen[0].class_teacher_ids, vec!["t1".to_string()]);
        assert_eq!(r.students[0].klasse_id.as_deref(), Some("k1"));
        assert_eq!(r.students[0].untis_id, Some(4711));
        assert_eq!(r.students[0].extern_key.as_deref(), Some("S-1"));
        assert_eq!(
            r.teachers.iter().find(|t| t.id == "t2").unwrap().email,
            None
        );
    }

    #[test]
    fn picks_the_school_year_containing_today() {
        let sessions = vec![
            json!({"sourcedId":"a","type":"schoolYear","startDate":"2024-08-01","endDate":"2025-07-31","status":"inactive"}),
            json!({"sourcedId":"b","type":"schoolYear","startDate":"2025-08-01","endDate":"2026-07-31","status":"active"}),
            json!({"sourcedId":"c","type":"term","startDate":"2025-08-01","endDate":"2026-01-31"}),
        ];
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            pick_school_year(&sessions, d("2025-03-01")).unwrap().start,
            d("2024-08-01")
        );
        assert_eq!(
            pick_school_year(&sessions, d("2026-03-01")).unwrap().start,
            d("2025-08-01")
        );
        // In the summer gap the active one is used.
        assert_eq!(
            pick_school_year(&sessions, d("2026-08-10")).unwrap().start,
            d("2025-08-01")
        );
    }
}
