//! OneRoster 1.1 (read-only) over the scenario: records as Untis would send them, with the
//! extra fields a client must drop, paging, sorting and the filter grammar.

use super::{Resp, State, json, query_pairs, query_value};
use crate::sim::scenario::{Scenario, school_year_containing};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use hyper::StatusCode;
use hyper::header::HeaderValue;
use serde_json::{Value, json};
use std::cmp::Ordering;

/// Page size when the request names none (IMS default).
const DEFAULT_LIMIT: usize = 100;

/// The collections of the scenario as JSON records, plus what the data changes of
/// [`super::faults::DataChange`] need to add records like the scenario's.
pub(super) struct Dataset {
    orgs: Vec<Value>,
    sessions: Vec<Value>,
    classes: Vec<Value>,
    users: Vec<Value>,
    enrollments: Vec<Value>,
    root: String,
    org_ref: Value,
    year: crate::model::SchoolYear,
    /// The latest `dateLastModified` handed out; every change gets a later one.
    clock: NaiveDateTime,
    /// Students added by changes so far.
    inserted: u32,
}

fn timestamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl Dataset {
    pub fn build(sc: &Scenario, base_url: &str) -> Dataset {
        let root = format!("{base_url}/ims/oneroster/v1p1");
        let guid = |kind: &str, path: &str, id: &str| json!({"href": format!("{root}/{path}/{id}"), "sourcedId": id, "type": kind});
        let org_ref = guid("org", "orgs", &sc.org_id);
        let imported = timestamp(sc.school_year.start.and_time(chrono::NaiveTime::MIN));

        let orgs = vec![json!({
            "sourcedId": sc.org_id, "status": "active", "dateLastModified": imported,
            "name": sc.school_name, "type": "school", "identifier": "sim-school",
            "parent": null, "children": [],
        })];

        let year = sc.school_year;
        let previous = school_year_containing(year.start.pred_opt().unwrap_or(year.start));
        let session_id = |y: crate::model::SchoolYear| format!("as-{}", y.label());
        let sessions = vec![
            json!({
                "sourcedId": session_id(year), "status": "active", "dateLastModified": imported,
                "title": year.label(), "type": "schoolYear",
                "startDate": day(year.start), "endDate": day(year.end),
                "schoolYear": chrono::Datelike::year(&year.end).to_string(), "parent": null, "children": [],
            }),
            json!({
                "sourcedId": session_id(previous), "status": "tobedeleted", "dateLastModified": imported,
                "title": previous.label(), "type": "schoolYear",
                "startDate": day(previous.start), "endDate": day(previous.end),
                "schoolYear": chrono::Datelike::year(&previous.end).to_string(), "parent": null, "children": [],
            }),
        ];
        let term_ref = guid("academicSession", "academicSessions", &session_id(year));

        let mut classes = Vec::new();
        for (i, k) in sc.klassen.iter().enumerate() {
            classes.push(json!({
                "sourcedId": k.id, "status": "active", "dateLastModified": timestamp(k.modified),
                "title": k.name, "classCode": k.name, "classType": "homeroom",
                "location": format!("Raum {}.{:02}", 1 + i % 3, 1 + i),
                "grades": [format!("{:02}", k.grade)], "subjects": [],
                "course": null, "school": org_ref, "terms": [term_ref], "periods": [],
                "metadata": {"untis.classId": 1000 + i, "untis.longName": format!("Klasse {}", k.name)},
            }));
        }
        for c in &sc.courses {
            let grade = sc.klassen.get(c.klasse).map_or(0, |k| k.grade);
            classes.push(json!({
                "sourcedId": c.id, "status": "active", "dateLastModified": timestamp(c.modified),
                "title": c.title, "classCode": c.title.replace(' ', "_"), "classType": "scheduled",
                "location": null, "grades": [format!("{grade:02}")], "subjects": [c.subject],
                "subjectCodes": [c.subject], "course": null, "school": org_ref, "terms": [term_ref],
                "periods": [],
                "metadata": {"untis.lessonName": c.subject,
                             "untis.classNames": [sc.klassen.get(c.klasse).map(|k| k.name.clone())]},
            }));
        }

        let mut users = Vec::new();
        for t in &sc.teachers {
            users.push(json!({
                "sourcedId": t.id, "status": "active", "dateLastModified": timestamp(t.modified),
                "username": t.username, "enabledUser": true, "givenName": t.given_name,
                "familyName": t.family_name, "middleName": "", "role": "teacher",
                "identifier": t.short_name, "email": t.email, "sms": "", "phone": "+49 5251 000000",
                "userIds": [
                    {"type": "uuid", "identifier": t.id},
                    {"type": "person-id", "identifier": t.untis_id.to_string()},
                    {"type": "external-person-id", "identifier": format!("L-{}", t.short_name)},
                    {"type": "short-name", "identifier": t.short_name},
                ],
                "orgs": [org_ref], "agents": [], "grades": [],
                "metadata": {"untis.title": "StR", "untis.subjects": "see timetable"},
            }));
        }
        for (n, s) in sc.students.iter().filter(|s| s.has_account).enumerate() {
            let grade = sc.klassen.get(s.klasse).map_or(0, |k| k.grade);
            // Some servers send booleans as strings; clients must accept both.
            let enabled = if n % 7 == 3 {
                json!("true")
            } else {
                json!(true)
            };
            users.push(json!({
                "sourcedId": s.sourced_id, "status": "active", "dateLastModified": timestamp(s.modified),
                "username": s.username, "enabledUser": enabled, "givenName": s.given_name,
                "familyName": s.family_name, "middleName": "", "role": "student",
                "identifier": s.extern_key, "email": "", "sms": "", "phone": "",
                "userIds": [
                    {"type": "uuid", "identifier": s.sourced_id},
                    {"type": "person-id", "identifier": s.untis_id.to_string()},
                    {"type": "external-person-id", "identifier": s.extern_key},
                ],
                "orgs": [org_ref], "agents": [], "grades": [format!("{grade:02}")],
                "metadata": {"untis.birthDate": format!("{}-0{}-1{}", 2026 - i32::from(grade) - 5, 1 + n % 9, n % 10),
                             "untis.gender": "n/a"},
            }));
        }

        let mut enrollments = Vec::new();
        let mut enroll =
            |user: &str, class: &str, role: &str, primary: Value, modified: NaiveDateTime| {
                let id = format!("enr-{:05}", enrollments.len() + 1);
                enrollments.push(json!({
                    "sourcedId": id, "status": "active", "dateLastModified": timestamp(modified),
                    "user": guid("user", "users", user), "class": guid("class", "classes", class),
                    "school": org_ref, "role": role, "primary": primary,
                    "beginDate": day(year.start), "endDate": day(year.end),
                }));
            };
        for (i, k) in sc.klassen.iter().enumerate() {
            // Every other class teacher's `primary` arrives as a string, as some servers send it.
            let primary = if i % 2 == 1 {
                json!("true")
            } else {
                json!(true)
            };
            enroll(&k.class_teacher, &k.id, "teacher", primary, k.modified);
            if let Some(deputy) = &k.deputy_teacher {
                let primary = if i % 2 == 1 {
                    json!("false")
                } else {
                    json!(false)
                };
                enroll(deputy, &k.id, "teacher", primary, k.modified);
            }
        }
        for s in sc.students.iter().filter(|s| s.has_account) {
            if let Some(k) = sc.klassen.get(s.klasse) {
                enroll(&s.sourced_id, &k.id, "student", json!(false), s.modified);
            }
        }
        for c in &sc.courses {
            // The teacher of a lesson is its primary teacher; a client must still not make them
            // a class teacher, because the class is a lesson, not a Klasse.
            enroll(&c.teacher, &c.id, "teacher", json!(true), c.modified);
        }

        let clock = [&orgs, &sessions, &classes, &users, &enrollments]
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("dateLastModified").and_then(Value::as_str))
            .filter_map(parse_time)
            .max()
            .unwrap_or_else(|| year.start.and_time(chrono::NaiveTime::MIN));
        Dataset {
            orgs,
            sessions,
            classes,
            users,
            enrollments,
            root,
            org_ref,
            year,
            clock,
            inserted: 0,
        }
    }

    /// A `dateLastModified` later than every record's so far.
    fn touch(&mut self) -> String {
        self.clock += chrono::Duration::seconds(1);
        timestamp(self.clock)
    }

    fn guid(&self, kind: &str, path: &str, id: &str) -> Value {
        json!({"href": format!("{}/{path}/{id}", self.root), "sourcedId": id, "type": kind})
    }

    fn homeroom_named(&self, name: &str) -> Option<String> {
        self.classes
            .iter()
            .find(|c| {
                c.get("classType").and_then(Value::as_str) == Some("homeroom")
                    && c.get("title").and_then(Value::as_str) == Some(name)
            })
            .and_then(|c| c.get("sourcedId").and_then(Value::as_str))
            .map(str::to_string)
    }

    fn is_homeroom(&self, id: &str) -> bool {
        self.classes.iter().any(|c| {
            c.get("sourcedId").and_then(Value::as_str) == Some(id)
                && c.get("classType").and_then(Value::as_str) == Some("homeroom")
        })
    }

    /// A new student in the Klasse `klasse`, listed first in `users` and `enrollments`.
    /// Returns their WebUntis person id and external key.
    pub fn insert_student(&mut self, klasse: &str) -> Option<(i64, String)> {
        let class_id = self.homeroom_named(klasse)?;
        self.inserted += 1;
        let n = self.inserted;
        let id = format!("sim-new-student-{n:04}");
        let untis_id = 900_000 + i64::from(n);
        let extern_key = format!("S-NEW-{n:04}");
        let modified = self.touch();
        let user = json!({
            "sourcedId": id, "status": "active", "dateLastModified": modified,
            "username": format!("neu.{n}"), "enabledUser": true, "givenName": "Neu",
            "familyName": format!("Zugang{n}"), "middleName": "", "role": "student",
            "identifier": extern_key, "email": "", "sms": "", "phone": "",
            "userIds": [
                {"type": "uuid", "identifier": id},
                {"type": "person-id", "identifier": untis_id.to_string()},
                {"type": "external-person-id", "identifier": extern_key},
            ],
            "orgs": [self.org_ref], "agents": [], "grades": [], "metadata": {},
        });
        let enrollment = json!({
            "sourcedId": format!("enr-new-{n:04}"), "status": "active", "dateLastModified": modified,
            "user": self.guid("user", "users", &id), "class": self.guid("class", "classes", &class_id),
            "school": self.org_ref, "role": "student", "primary": false,
            "beginDate": day(self.year.start), "endDate": day(self.year.end),
        });
        self.users.insert(0, user);
        self.enrollments.insert(0, enrollment);
        Some((untis_id, extern_key))
    }

    /// Removes the record with this id from every collection, and a user's enrollments with
    /// it, without a trace. Returns a removed user's WebUntis person id.
    pub fn vanish(&mut self, id: &str) -> Option<i64> {
        let is = |r: &Value| r.get("sourcedId").and_then(Value::as_str) == Some(id);
        let untis_id = self.users.iter().find(|r| is(r)).and_then(person_id);
        self.users.retain(|r| !is(r));
        self.classes.retain(|r| !is(r));
        self.enrollments.retain(|r| {
            !is(r)
                && field(r, "user.sourcedId").and_then(Value::as_str) != Some(id)
                && field(r, "class.sourcedId").and_then(Value::as_str) != Some(id)
        });
        untis_id
    }

    /// Moves a student's Klasse enrollment to the Klasse named `to`. Returns their WebUntis
    /// person id.
    pub fn move_student(&mut self, id: &str, to: &str) -> Option<i64> {
        let class_id = self.homeroom_named(to)?;
        let class_ref = self.guid("class", "classes", &class_id);
        let index = self.enrollments.iter().position(|e| {
            field(e, "user.sourcedId").and_then(Value::as_str) == Some(id)
                && field(e, "class.sourcedId")
                    .and_then(Value::as_str)
                    .is_some_and(|c| self.is_homeroom(c))
        })?;
        let modified = self.touch();
        if let Some(e) = self
            .enrollments
            .get_mut(index)
            .and_then(Value::as_object_mut)
        {
            e.insert("class".into(), class_ref);
            e.insert("dateLastModified".into(), Value::String(modified));
        }
        self.users
            .iter()
            .find(|u| u.get("sourcedId").and_then(Value::as_str) == Some(id))
            .and_then(person_id)
    }

    /// Sets `status = "tobedeleted"` on the record with this id.
    pub fn mark_tobedeleted(&mut self, id: &str) {
        let modified = self.touch();
        for r in self
            .users
            .iter_mut()
            .chain(self.classes.iter_mut())
            .chain(self.enrollments.iter_mut())
        {
            if r.get("sourcedId").and_then(Value::as_str) == Some(id)
                && let Some(o) = r.as_object_mut()
            {
                o.insert("status".into(), json!("tobedeleted"));
                o.insert("dateLastModified".into(), Value::String(modified.clone()));
            }
        }
    }

    /// Gives a class a new title. Returns the old one.
    pub fn rename_class(&mut self, id: &str, title: &str) -> Option<String> {
        let modified = self.touch();
        let class = self
            .classes
            .iter_mut()
            .find(|c| c.get("sourcedId").and_then(Value::as_str) == Some(id))?
            .as_object_mut()?;
        let old = class
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string);
        class.insert("title".into(), json!(title));
        class.insert("dateLastModified".into(), Value::String(modified));
        old
    }
}

fn person_id(user: &Value) -> Option<i64> {
    user.get("userIds")?
        .as_array()?
        .iter()
        .find(|u| u.get("type").and_then(Value::as_str) == Some("person-id"))?
        .get("identifier")?
        .as_str()?
        .parse()
        .ok()
}

/// A OneRoster collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Orgs,
    AcademicSessions,
    Classes,
    Users,
    Enrollments,
}

impl Collection {
    fn envelope(self, single: bool) -> &'static str {
        match (self, single) {
            (Collection::Orgs, false) => "orgs",
            (Collection::Orgs, true) => "org",
            (Collection::AcademicSessions, false) => "academicSessions",
            (Collection::AcademicSessions, true) => "academicSession",
            (Collection::Classes, false) => "classes",
            (Collection::Classes, true) => "class",
            (Collection::Users, false) => "users",
            (Collection::Users, true) => "user",
            (Collection::Enrollments, false) => "enrollments",
            (Collection::Enrollments, true) => "enrollment",
        }
    }

    /// Fields that `filter` and `sort` may name.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Collection::Orgs => &[
                "sourcedId",
                "status",
                "dateLastModified",
                "name",
                "type",
                "identifier",
            ],
            Collection::AcademicSessions => &[
                "sourcedId",
                "status",
                "dateLastModified",
                "title",
                "type",
                "startDate",
                "endDate",
                "schoolYear",
            ],
            Collection::Classes => &[
                "sourcedId",
                "status",
                "dateLastModified",
                "title",
                "classCode",
                "classType",
                "location",
                "school.sourcedId",
            ],
            Collection::Users => &[
                "sourcedId",
                "status",
                "dateLastModified",
                "username",
                "enabledUser",
                "givenName",
                "familyName",
                "role",
                "identifier",
                "email",
            ],
            Collection::Enrollments => &[
                "sourcedId",
                "status",
                "dateLastModified",
                "role",
                "primary",
                "beginDate",
                "endDate",
                "user.sourcedId",
                "class.sourcedId",
                "school.sourcedId",
            ],
        }
    }

    fn records(self, data: &Dataset) -> &[Value] {
        match self {
            Collection::Orgs => &data.orgs,
            Collection::AcademicSessions => &data.sessions,
            Collection::Classes => &data.classes,
            Collection::Users => &data.users,
            Collection::Enrollments => &data.enrollments,
        }
    }
}

/// The IMS 1.1 error payload.
fn ims_error(status: StatusCode, minor: &str, description: &str) -> Resp {
    json(
        status,
        &json!({
            "imsx_codeMajor": "failure",
            "imsx_severity": "error",
            "imsx_description": description,
            "imsx_CodeMinor": {"imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}
            ]},
        }),
    )
}

fn not_found() -> Resp {
    ims_error(
        StatusCode::NOT_FOUND,
        "unknownobject",
        "no such OneRoster resource",
    )
}

/// `GET /ims/oneroster/v1p1/{rest}`.
pub(super) fn handle(state: &State, rest: &[String], query: Option<&str>) -> Resp {
    let segments: Vec<&str> = rest.iter().map(String::as_str).collect();
    let (collection, role, id) = match segments.as_slice() {
        ["orgs" | "schools"] => (Collection::Orgs, None, None),
        ["orgs" | "schools", id] => (Collection::Orgs, None, Some(*id)),
        ["academicSessions"] => (Collection::AcademicSessions, None, None),
        ["academicSessions", id] => (Collection::AcademicSessions, None, Some(*id)),
        ["classes"] => (Collection::Classes, None, None),
        ["classes", id] => (Collection::Classes, None, Some(*id)),
        ["users"] => (Collection::Users, None, None),
        ["users", id] => (Collection::Users, None, Some(*id)),
        ["students"] => (Collection::Users, Some("student"), None),
        ["students", id] => (Collection::Users, Some("student"), Some(*id)),
        ["teachers"] => (Collection::Users, Some("teacher"), None),
        ["teachers", id] => (Collection::Users, Some("teacher"), Some(*id)),
        ["enrollments"] => (Collection::Enrollments, None, None),
        ["enrollments", id] => (Collection::Enrollments, None, Some(*id)),
        _ => return not_found(),
    };
    let data = super::lock(&state.roster);
    let records = collection.records(&data);
    let role_ok =
        |r: &Value| role.is_none_or(|role| r.get("role").and_then(Value::as_str) == Some(role));
    if let Some(id) = id {
        return match records
            .iter()
            .find(|r| r.get("sourcedId").and_then(Value::as_str) == Some(id) && role_ok(r))
        {
            Some(r) => json(StatusCode::OK, &json!({ collection.envelope(true): r })),
            None => not_found(),
        };
    }
    match list(
        collection,
        records.iter().filter(|r| role_ok(r)).collect(),
        query,
    ) {
        Ok((page, total)) => {
            let mut resp = json(StatusCode::OK, &json!({ collection.envelope(false): page }));
            resp.headers_mut()
                .insert("X-Total-Count", HeaderValue::from(total as u64));
            resp
        }
        Err((minor, message)) => ims_error(StatusCode::BAD_REQUEST, minor, &message),
    }
}

/// Filters, sorts and pages; returns the page and the number of matching records.
fn list(
    collection: Collection,
    mut records: Vec<&Value>,
    query: Option<&str>,
) -> Result<(Vec<Value>, usize), FilterError> {
    let pairs = query_pairs(query);
    let bad = |minor: &'static str, msg: String| (minor, msg);
    let limit = match query_value(&pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(bad(
                    "invaliddata",
                    format!("limit must be a whole number of at least 1, got '{v}'"),
                ));
            }
        },
    };
    let offset = match query_value(&pairs, "offset") {
        None => 0,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return Err(bad(
                    "invaliddata",
                    format!("offset must be a whole number of at least 0, got '{v}'"),
                ));
            }
        },
    };
    if let Some(expr) = query_value(&pairs, "filter") {
        let filter = Filter::parse(expr, collection.fields())?;
        records.retain(|r| filter.matches(r));
    }
    if let Some(field) = query_value(&pairs, "sort") {
        if !collection.fields().contains(&field) {
            return Err(bad(
                "invalid_sort_field",
                format!("cannot sort by '{field}'"),
            ));
        }
        let descending = match query_value(&pairs, "orderBy") {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(bad(
                    "invaliddata",
                    format!("orderBy must be asc or desc, got '{other}'"),
                ));
            }
        };
        records.sort_by(|a, b| {
            let o = field_text(a, field).cmp(&field_text(b, field));
            if descending { o.reverse() } else { o }
        });
    }
    let total = records.len();
    let page = records
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    Ok((page, total))
}

/// A field by dotted path.
fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(record, |v, key| v.get(key))
}

/// A field as text for comparisons: strings as they are, booleans and numbers spelled out.
fn field_text(record: &Value, path: &str) -> Option<String> {
    match field(record, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Fields compared as points in time.
const TIME_FIELDS: [&str; 5] = [
    "dateLastModified",
    "startDate",
    "endDate",
    "beginDate",
    "birthDate",
];

fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
}

#[derive(Debug, Clone)]
struct Predicate {
    field: String,
    op: Op,
    value: String,
    time: Option<NaiveDateTime>,
}

impl Predicate {
    fn matches(&self, record: &Value) -> bool {
        let Some(actual) = field_text(record, &self.field) else {
            return self.op == Op::Ne;
        };
        let ordering = match self.time {
            Some(wanted) => match parse_time(&actual) {
                Some(t) => t.cmp(&wanted),
                None => return self.op == Op::Ne,
            },
            None => actual.as_str().cmp(self.value.as_str()),
        };
        match self.op {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Contains => actual.to_lowercase().contains(&self.value.to_lowercase()),
        }
    }
}

/// The IMS filter grammar: `field op 'value'`, at most two predicates joined by AND or OR.
#[derive(Debug, Clone)]
struct Filter {
    first: Predicate,
    rest: Option<(bool, Predicate)>,
}

type FilterError = (&'static str, String);

impl Filter {
    fn parse(expr: &str, fields: &[&str]) -> Result<Filter, FilterError> {
        let mut parts = Vec::new();
        let mut joins = Vec::new();
        let mut in_quote = false;
        let mut last = 0;
        let bytes = expr.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes.get(i) == Some(&b'\'') {
                in_quote = !in_quote;
            } else if !in_quote {
                let tail = expr.get(i..).unwrap_or_default();
                for (join, is_and) in [(" AND ", true), (" OR ", false)] {
                    if tail
                        .get(..join.len())
                        .is_some_and(|t| t.eq_ignore_ascii_case(join))
                    {
                        parts.push(expr.get(last..i).unwrap_or_default());
                        joins.push(is_and);
                        i += join.len() - 1;
                        last = i + 1;
                        break;
                    }
                }
            }
            i += 1;
        }
        parts.push(expr.get(last..).unwrap_or_default());
        if parts.len() > 2 {
            return Err((
                "invaliddata",
                "a filter may join at most two predicates".to_string(),
            ));
        }
        let mut predicates = parts
            .into_iter()
            .map(|p| Self::predicate(p, fields))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        let first = predicates
            .next()
            .ok_or_else(|| ("invaliddata", "empty filter".to_string()))?;
        let rest = predicates
            .next()
            .zip(joins.first().copied())
            .map(|(p, and)| (and, p));
        Ok(Filter { first, rest })
    }

    fn predicate(text: &str, fields: &[&str]) -> Result<Predicate, FilterError> {
        let text = text.trim();
        let invalid = || {
            (
                "invaliddata",
                format!("cannot read the filter predicate \"{text}\"; expected field op 'value'"),
            )
        };
        let op_at = text.find(['=', '!', '<', '>', '~']).ok_or_else(invalid)?;
        let field = text.get(..op_at).unwrap_or_default().trim();
        let after = text.get(op_at..).unwrap_or_default();
        let (op, len) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("~", Op::Contains),
        ]
        .into_iter()
        .find(|(sym, _)| after.starts_with(sym))
        .map(|(sym, op)| (op, sym.len()))
        .ok_or_else(invalid)?;
        let raw = after.get(len..).unwrap_or_default().trim();
        let value = raw
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(invalid)?;
        if !fields.contains(&field) {
            return Err((
                "invalid_filter_field",
                format!("cannot filter by '{field}'"),
            ));
        }
        let time = if TIME_FIELDS.contains(&field) {
            Some(parse_time(value).ok_or_else(|| {
                (
                    "invaliddata",
                    format!("'{value}' is not a date or date-time"),
                )
            })?)
        } else {
            None
        };
        Ok(Predicate {
            field: field.to_string(),
            op,
            value: value.to_string(),
            time,
        })
    }

    fn matches(&self, record: &Value) -> bool {
        let first = self.first.matches(record);
        match &self.rest {
            None => first,
            Some((true, p)) => first && p.matches(record),
            Some((false, p)) => first || p.matches(record),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const USER_FIELDS: &[&str] = &["role", "dateLastModified", "familyName"];

    #[test]
    fn same_seed_same_records() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        let dump = |seed| {
            let d = Dataset::build(&Scenario::generate(seed, 60, today), "http://127.0.0.1:1");
            serde_json::to_string(&[d.orgs, d.sessions, d.classes, d.users, d.enrollments]).unwrap()
        };
        assert_eq!(dump(9), dump(9));
        assert_ne!(dump(9), dump(10));
    }

    #[test]
    fn filter_grammar() {
        let u = json!({"role": "student", "familyName": "Müller", "dateLastModified": "2026-01-10T05:00:00.000Z"});
        let ok = |e: &str| Filter::parse(e, USER_FIELDS).unwrap().matches(&u);
        assert!(ok("role='student'"));
        assert!(!ok("role='teacher'"));
        assert!(ok("role!='teacher'"));
        assert!(ok("dateLastModified>'2026-01-01T00:00:00Z'"));
        assert!(!ok("dateLastModified>'2026-01-10T05:00:00.000Z'"));
        assert!(ok("dateLastModified>='2026-01-10'"));
        assert!(ok("familyName~'mül'"));
        assert!(ok("role='student' AND familyName='Müller'"));
        assert!(ok("role='teacher' OR familyName='Müller'"));
        assert!(!ok("role='teacher' and familyName='Müller'"));
        assert!(ok("familyName='A AND B' OR role='student'"));
        assert_eq!(
            Filter::parse("grade='7'", USER_FIELDS).unwrap_err().0,
            "invalid_filter_field"
        );
        assert_eq!(
            Filter::parse("role=student", USER_FIELDS).unwrap_err().0,
            "invaliddata"
        );
        assert_eq!(
            Filter::parse("role", USER_FIELDS).unwrap_err().0,
            "invaliddata"
        );
        assert_eq!(
            Filter::parse("dateLastModified>'soon'", USER_FIELDS)
                .unwrap_err()
                .0,
            "invaliddata"
        );
        assert!(Filter::parse("role='a' AND role='b' AND role='c'", USER_FIELDS).is_err());
        assert!(Filter::parse("", USER_FIELDS).is_err());
        assert!(Filter::parse("'''", USER_FIELDS).is_err());
    }
}
