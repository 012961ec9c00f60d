//! The class-register absences API (`absencetimes`). The response shape is partly inferred
//! (webuntis-api notes §7), so all knowledge of it sits here. Totals are dropped: fehlzeiten
//! counts from the entries itself.

use super::{ABSENCES_PATH, UntisClient, UntisError, str_field};
use crate::model::{AbsenceKind, ExcuseStatus};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;

/// One register entry before it is joined to a student of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAbsence {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub minutes: u32,
    pub subject: Option<String>,
    pub status: ExcuseStatus,
    pub kind: AbsenceKind,
}

/// The entries of one student as the API lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentAbsences {
    pub untis_id: i64,
    pub extern_key: Option<String>,
    pub entries: Vec<RawAbsence>,
}

pub(super) async fn fetch(
    client: &UntisClient,
    klasse: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<StudentAbsences>, UntisError> {
    let query = [
        ("start", format!("{}T00:00:00", from.format("%Y-%m-%d"))),
        ("end", format!("{}T23:59:59", to.format("%Y-%m-%d"))),
        ("className", klasse.to_string()),
    ];
    let doc = client
        .get_json("absencetimes", ABSENCES_PATH, &query)
        .await?;
    parse(&doc)
}

fn parse(doc: &Value) -> Result<Vec<StudentAbsences>, UntisError> {
    let students = match doc.get("students") {
        Some(Value::Array(s)) => s,
        _ => {
            return Err(UntisError::Parse(
                "absencetimes: `students` is missing or not a list".into(),
            ));
        }
    };
    let mut out = Vec::new();
    for s in students {
        let Some(untis_id) = s.get("studentId").and_then(as_i64) else {
            log::warn!("skipping absences of a student record without a numeric studentId");
            continue;
        };
        let mut entries = Vec::new();
        for (i, a) in s
            .get("absenceTimes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match parse_entry(a) {
                Ok(e) => entries.push(e),
                Err(why) => {
                    log::warn!("skipping absence entry {i} of student {untis_id}: {why}")
                }
            }
        }
        out.push(StudentAbsences {
            untis_id,
            extern_key: str_field(s, "studentExternKey").map(str::to_string),
            entries,
        });
    }
    Ok(out)
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn parse_time(s: &str) -> Option<NaiveDateTime> {
    // School-local, without offset; tolerate seconds being absent.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

fn parse_entry(a: &Value) -> Result<RawAbsence, &'static str> {
    let start = str_field(a, "start")
        .and_then(parse_time)
        .ok_or("bad start")?;
    let end = str_field(a, "end").and_then(parse_time).ok_or("bad end")?;
    if end < start {
        return Err("end before start");
    }
    let minutes = match a.get("minutes").and_then(as_i64) {
        Some(m) if m >= 0 => u32::try_from(m).unwrap_or(u32::MAX),
        _ => u32::try_from((end - start).num_minutes()).unwrap_or(0),
    };
    let status = match str_field(a, "status")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("EXCUSED") => ExcuseStatus::Excused,
        Some("UNEXCUSED") => ExcuseStatus::Unexcused,
        Some("PENDING") | None => ExcuseStatus::Pending,
        Some(_) => return Err("unknown status"),
    };
    let kind = match str_field(a, "type").map(str::to_ascii_uppercase).as_deref() {
        Some("ABSENCE") | None => AbsenceKind::Absence,
        Some("DELAY") => AbsenceKind::Delay,
        Some(_) => return Err("unknown type"),
    };
    let subject = str_field(a, "subjectName")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(RawAbsence {
        start,
        end,
        minutes,
        subject,
        status,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_entries_and_skips_broken_ones() {
        let doc = json!({"students":[
            {"studentId":4711,"studentExternKey":"S-1","totals":{"x":1},"absenceTimes":[
                {"start":"2026-03-02T07:45:00","end":"2026-03-02T09:15:00","minutes":90,"subjectName":"M","status":"EXCUSED","type":"ABSENCE","text":"free text is dropped"},
                {"start":"2026-03-03T07:45:00","end":"2026-03-03T07:55:00","minutes":10,"status":"UNEXCUSED","type":"DELAY"},
                {"start":"garbage","end":"2026-03-03T07:55:00"},
                {"start":"2026-03-04T07:45:00","end":"2026-03-04T08:30:00","status":"WHATEVER"}
            ]},
            {"studentId":"4712","absenceTimes":[]},
            {"studentExternKey":"no-id"}
        ]});
        let parsed = parse(&doc).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].entries.len(), 2);
        assert_eq!(parsed[0].entries[0].subject.as_deref(), Some("M"));
        assert_eq!(parsed[0].entries[1].kind, AbsenceKind::Delay);
        assert_eq!(parsed[0].entries[1].status, ExcuseStatus::Unexcused);
        assert_eq!(parsed[1].untis_id, 4712);
        assert!(parse(&json!({"oops": 1})).is_err());
    }
}
