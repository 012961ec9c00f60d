//! OneRoster 1.1 rosters: paging and the mapping to Klassen, students and teachers.
//!
//! SPEC §3 assumption, kept in this one place: a Klasse is a `homeroom` class named by its
//! `title`; a teacher's `primary` enrollment in it makes them class teacher. Only the fields the
//! mails need are kept; everything else in a record is dropped here.

use super::{ONEROSTER_PATH, PAGE_LIMIT, UntisClient, UntisError, lenient_bool, str_field};
use crate::model::{Klasse, Roster, SchoolYear, Student, StudentId, Teacher};
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Fetches every record of a list endpoint, page by page, until a page has fewer items than
/// the limit. Records are deduplicated by `sourcedId` (a record inserted between pages shifts
/// the next page by one).
pub(super) async fn fetch_all(
    client: &UntisClient,
    resource: &str,
    envelope: &str,
    filter: Option<&str>,
) -> Result<Vec<Value>, UntisError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut offset = 0usize;
    loop {
        let mut query = vec![
            ("limit", PAGE_LIMIT.to_string()),
            ("offset", offset.to_string()),
        ];
        if let Some(f) = filter {
            query.push(("filter", f.to_string()));
        }
        let path = format!("{ONEROSTER_PATH}{resource}");
        let doc = client.get_json(resource, &path, &query).await?;
        let items = match doc.get(envelope) {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(UntisError::Parse(format!(
                    "{resource}: `{envelope}` is not a list"
                )));
            }
        };
        let n = items.len();
        for item in items {
            match str_field(&item, "sourcedId") {
                Some(id) if !seen.insert(id.to_string()) => {}
                _ => out.push(item),
            }
        }
        if n < PAGE_LIMIT {
            return Ok(out);
        }
        offset += PAGE_LIMIT;
    }
}

pub(super) async fn school_year(
    client: &UntisClient,
    today: NaiveDate,
) -> Result<SchoolYear, UntisError> {
    let sessions = fetch_all(client, "academicSessions", "academicSessions", None).await?;
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

pub(super) async fn roster(client: &UntisClient) -> Result<Roster, UntisError> {
    let classes = fetch_all(client, "classes", "classes", None).await?;
    let students = fetch_all(client, "users", "users", Some("role='student'")).await?;
    let teachers = fetch_all(client, "users", "users", Some("role='teacher'")).await?;
    let enrollments = fetch_all(client, "enrollments", "enrollments", None).await?;
    Ok(build_roster(&classes, &students, &teachers, &enrollments))
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

pub(super) fn build_roster(
    classes: &[Value],
    students: &[Value],
    teachers: &[Value],
    enrollments: &[Value],
) -> Roster {
    let mut klassen: BTreeMap<String, Klasse> = BTreeMap::new();
    for c in classes.iter().filter(|c| active(c)) {
        if str_field(c, "classType") != Some("homeroom") {
            continue;
        }
        match (str_field(c, "sourcedId"), str_field(c, "title")) {
            (Some(id), Some(title)) if !title.trim().is_empty() => {
                klassen.insert(
                    id.to_string(),
                    Klasse {
                        id: id.to_string(),
                        name: title.trim().to_string(),
                        class_teacher_ids: Vec::new(),
                    },
                );
            }
            _ => warn_skip("class", c, "no sourcedId or title"),
        }
    }

    let mut student_list: BTreeMap<String, Student> = BTreeMap::new();
    for s in students.iter().filter(|s| active(s)) {
        if str_field(s, "role").is_some_and(|r| r != "student") {
            continue;
        }
        let Some(id) = str_field(s, "sourcedId") else {
            warn_skip("student", s, "no sourcedId");
            continue;
        };
        let untis_id = user_id_of_type(s, "person-id").and_then(|x| x.trim().parse::<i64>().ok());
        student_list.insert(
            id.to_string(),
            Student {
                id: StudentId(id.to_string()),
                given_name: str_field(s, "givenName").unwrap_or("").trim().to_string(),
                family_name: str_field(s, "familyName").unwrap_or("").trim().to_string(),
                klasse_id: None,
                untis_id,
                extern_key: user_id_of_type(s, "external-person-id").map(str::to_string),
            },
        );
    }

    let mut teacher_list: BTreeMap<String, Teacher> = BTreeMap::new();
    for t in teachers.iter().filter(|t| active(t)) {
        if str_field(t, "role").is_some_and(|r| r != "teacher") {
            continue;
        }
        let Some(id) = str_field(t, "sourcedId") else {
            warn_skip("teacher", t, "no sourcedId");
            continue;
        };
        let email = str_field(t, "email")
            .map(str::trim)
            .filter(|e| e.contains('@'))
            .map(str::to_string);
        teacher_list.insert(
            id.to_string(),
            Teacher {
                id: id.to_string(),
                given_name: str_field(t, "givenName").unwrap_or("").trim().to_string(),
                family_name: str_field(t, "familyName").unwrap_or("").trim().to_string(),
                email,
            },
        );
    }

    for e in enrollments.iter().filter(|e| active(e)) {
        let (Some(user), Some(class)) = (ref_id(e, "user"), ref_id(e, "class")) else {
            warn_skip("enrollment", e, "no user or class reference");
            continue;
        };
        let Some(klasse) = klassen.get_mut(class) else {
            continue; // a scheduled class (lesson), not a Klasse
        };
        match str_field(e, "role") {
            Some("student") => {
                if let Some(s) = student_list.get_mut(user) {
                    s.klasse_id = Some(klasse.id.clone());
                }
            }
            Some("teacher")
                if lenient_bool(e.get("primary"))
                    && teacher_list.contains_key(user)
                    && !klasse.class_teacher_ids.iter().any(|t| t == user) =>
            {
                klasse.class_teacher_ids.push(user.to_string());
            }
            _ => {}
        }
    }

    Roster {
        klassen: klassen.into_values().collect(),
        students: student_list.into_values().collect(),
        teachers: teacher_list.into_values().collect(),
    }
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
        let r = build_roster(&classes, &students, &teachers, &enrollments);
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
