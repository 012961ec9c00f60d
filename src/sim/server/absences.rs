//! The class-register absences endpoint (`absencetimes`). Its response shape is partly inferred
//! (notes/webuntis-api.md §7), so it lives here alone, easy to change.

use super::{Resp, State, json, query_pairs, query_value};
use crate::model::{Absence, AbsenceKind, ExcuseStatus};
use crate::sim::scenario::{Scenario, school_year_containing};
use chrono::NaiveDateTime;
use hyper::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One student's register entries.
struct StudentEntries {
    untis_id: i64,
    extern_key: String,
    /// The name of the Klasse the register lists the student in.
    klasse: String,
    entries: Vec<Absence>,
}

/// The scenario's absences (all students, with or without account), with the changes of
/// [`super::faults::DataChange`] applied.
pub(super) struct Index {
    /// Sorted by WebUntis person id.
    students: Vec<StudentEntries>,
}

impl Index {
    pub fn build(sc: &Scenario) -> Index {
        let mut by_student: BTreeMap<&crate::model::StudentId, Vec<Absence>> = BTreeMap::new();
        for a in &sc.absences {
            by_student.entry(&a.student).or_default().push(a.clone());
        }
        let mut students = Vec::new();
        for s in &sc.students {
            let Some(k) = sc.klassen.get(s.klasse) else {
                continue;
            };
            let mut entries = by_student.remove(&s.id).unwrap_or_default();
            entries.sort_by_key(|a| (a.start, a.end));
            students.push(StudentEntries {
                untis_id: s.untis_id,
                extern_key: s.extern_key.clone(),
                klasse: k.name.clone(),
                entries,
            });
        }
        students.sort_by_key(|s| s.untis_id);
        Index { students }
    }

    fn student_mut(&mut self, untis_id: i64) -> Option<&mut StudentEntries> {
        self.students.iter_mut().find(|s| s.untis_id == untis_id)
    }

    /// A student without entries (a new account).
    pub fn add_student(&mut self, untis_id: i64, extern_key: String, klasse: &str) {
        self.students.push(StudentEntries {
            untis_id,
            extern_key,
            klasse: klasse.to_string(),
            entries: Vec::new(),
        });
        self.students.sort_by_key(|s| s.untis_id);
    }

    pub fn remove_student(&mut self, untis_id: i64) {
        self.students.retain(|s| s.untis_id != untis_id);
    }

    pub fn move_student(&mut self, untis_id: i64, klasse: &str) {
        if let Some(s) = self.student_mut(untis_id) {
            s.klasse = klasse.to_string();
        }
    }

    pub fn rename_klasse(&mut self, old: &str, new: &str) {
        for s in self.students.iter_mut().filter(|s| s.klasse == old) {
            s.klasse = new.to_string();
        }
    }

    pub fn set_excuse(&mut self, untis_id: i64, status: ExcuseStatus) {
        if let Some(s) = self.student_mut(untis_id) {
            for a in &mut s.entries {
                a.status = status;
            }
        }
    }

    pub fn add_absence(&mut self, untis_id: i64, absence: Absence) {
        if let Some(s) = self.student_mut(untis_id) {
            s.entries.push(absence);
            s.entries.sort_by_key(|a| (a.start, a.end));
        }
    }
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

fn status_text(s: ExcuseStatus) -> &'static str {
    match s {
        ExcuseStatus::Excused => "EXCUSED",
        ExcuseStatus::Unexcused => "UNEXCUSED",
        ExcuseStatus::Pending => "PENDING",
    }
}

fn totals<'a>(entries: impl Iterator<Item = &'a Absence>) -> Value {
    let (mut absences, mut delays, mut minutes) = (0u32, 0u32, 0u32);
    for a in entries {
        match a.kind {
            AbsenceKind::Absence => absences += 1,
            AbsenceKind::Delay => delays += 1,
        }
        minutes += a.minutes;
    }
    json!({"absences": absences, "delays": delays, "minutes": minutes})
}

/// `GET …/classreg/students/absencetimes?start=…&end=…&className=…|studentExternKey=…`.
pub(super) fn handle(state: &State, query: Option<&str>) -> Resp {
    let pairs = query_pairs(query);
    let mut errors = Vec::new();
    let mut time = |key: &str| match query_value(&pairs, key) {
        None | Some("") => {
            errors.push((key.to_string(), format!("{key} is required")));
            None
        }
        Some(v) => {
            let parsed = parse_local(v);
            if parsed.is_none() {
                errors.push((
                    key.to_string(),
                    format!("{key} must be a local date-time like 2026-03-02T00:00:00"),
                ));
            }
            parsed
        }
    };
    let (start, end) = (time("start"), time("end"));
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            errors.push(("start".into(), "start must not be after end".into()));
        } else if school_year_containing(s.date()) != school_year_containing(e.date()) {
            errors.push((
                "end".into(),
                "start and end must lie in the same school year".into(),
            ));
        }
    }
    let class_name = query_value(&pairs, "className").filter(|v| !v.is_empty());
    let extern_key = query_value(&pairs, "studentExternKey").filter(|v| !v.is_empty());
    match (class_name, extern_key) {
        (None, None) => errors.push((
            "className".into(),
            "either className or studentExternKey must be provided".into(),
        )),
        (Some(_), Some(_)) => errors.push((
            "className".into(),
            "give className or studentExternKey, not both".into(),
        )),
        _ => {}
    }
    let (Some(start), Some(end), true) = (start, end, errors.is_empty()) else {
        let id = state.next_request_id();
        let validation: Vec<Value> = errors
            .into_iter()
            .map(|(path, message)| json!({"path": path, "errorMessage": message}))
            .collect();
        return json(
            StatusCode::BAD_REQUEST,
            &json!({
                "errorCode": "VALIDATION_ERROR",
                "errorMessage": "The request parameters are invalid.",
                "requestId": id,
                "traceId": format!("trace-{id}"),
                "validationErrors": validation,
            }),
        );
    };

    let index = super::lock(&state.absences);
    let candidates: Vec<&StudentEntries> = index
        .students
        .iter()
        .filter(|s| match (class_name, extern_key) {
            (Some(name), _) => s.klasse == name,
            (_, Some(key)) => s.extern_key == key,
            (None, None) => false,
        })
        .collect();
    let students: Vec<Value> = candidates
        .into_iter()
        .filter_map(|s| {
            let hits: Vec<&Absence> = s
                .entries
                .iter()
                .filter(|a| a.start <= end && a.end >= start)
                .collect();
            if hits.is_empty() {
                return None;
            }
            let times: Vec<Value> = hits
                .iter()
                .map(|a| {
                    json!({
                        "start": a.start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                        "end": a.end.format("%Y-%m-%dT%H:%M:%S").to_string(),
                        "minutes": a.minutes,
                        "subjectName": a.subject,
                        "status": status_text(a.status),
                        "type": match a.kind {
                            AbsenceKind::Absence => "ABSENCE",
                            AbsenceKind::Delay => "DELAY",
                        },
                    })
                })
                .collect();
            Some(json!({
                "studentId": s.untis_id,
                "studentExternKey": s.extern_key,
                "totals": totals(hits.iter().copied()),
                "excusedTotals": totals(hits.iter().copied().filter(|a| a.status == ExcuseStatus::Excused)),
                "unexcusedTotals": totals(hits.iter().copied().filter(|a| a.status == ExcuseStatus::Unexcused)),
                "absenceTimes": times,
            }))
        })
        .collect();
    json(StatusCode::OK, &json!({ "students": students }))
}
