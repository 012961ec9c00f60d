//! A small iCalendar (RFC 5545) reader for `holidays_file`: the school holidays (Ferien) that
//! ministries and sites like schulferien.org publish as `.ics`.
//!
//! Only what Ferien calendars use is read: `VEVENT`s with all-day `DTSTART;VALUE=DATE`, an
//! optional `DTEND` (exclusive, as RFC 5545 says) and `SUMMARY`. Anything that would need
//! interpretation we do not do (times of day, recurrence) is reported instead of guessed.

use super::Holiday;
use chrono::NaiveDate;

/// A problem in an `.ics` file, with the 1-based line where the event or property starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcsError {
    pub line: usize,
    pub message: String,
}

/// One unfolded content line (`NAME;PARAM=X:value`) and the physical line it starts on.
struct ContentLine {
    line: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

/// Parses the Ferien of an `.ics` file. Every bad event is reported (not only the first);
/// events after a bad one are still read.
pub fn parse_holidays(text: &str) -> Result<Vec<Holiday>, Vec<IcsError>> {
    let mut holidays = Vec::new();
    let mut errors = Vec::new();
    let mut saw_calendar = false;

    // The event being read, and how deep we are in components nested inside it (VALARM).
    let mut event: Option<EventBuilder> = None;
    let mut nested = 0usize;

    for cl in unfold(text) {
        match (cl.name.as_str(), cl.value.to_ascii_uppercase().as_str()) {
            ("BEGIN", "VCALENDAR") => saw_calendar = true,
            ("BEGIN", "VEVENT") if event.is_none() => {
                event = Some(EventBuilder::new(cl.line));
                nested = 0;
            }
            ("BEGIN", _) if event.is_some() => nested += 1,
            ("END", "VEVENT") if event.is_some() && nested == 0 => {
                if let Some(ev) = event.take() {
                    match ev.finish() {
                        Ok(h) => holidays.push(h),
                        Err(e) => errors.push(e),
                    }
                }
            }
            ("END", _) if event.is_some() && nested > 0 => nested -= 1,
            _ => {
                if let (Some(ev), 0) = (event.as_mut(), nested) {
                    ev.property(cl);
                }
            }
        }
    }
    if let Some(ev) = event {
        errors.push(IcsError {
            line: ev.line,
            message: "the event has no END:VEVENT; the file looks cut off, export it again".into(),
        });
    }
    if !saw_calendar {
        errors.push(IcsError {
            line: 1,
            message:
                "this is not an iCalendar file (no BEGIN:VCALENDAR); export the Ferien as .ics"
                    .into(),
        });
    } else if holidays.is_empty() && errors.is_empty() {
        errors.push(IcsError {
            line: 1,
            message: "the calendar contains no events; export the Ferien of the school year".into(),
        });
    }
    if errors.is_empty() {
        holidays.sort_by_key(|h| (h.from, h.to));
        Ok(holidays)
    } else {
        Err(errors)
    }
}

struct EventBuilder {
    line: usize,
    start: Option<ContentLine>,
    end: Option<ContentLine>,
    summary: Option<String>,
    recurring: bool,
}

impl EventBuilder {
    fn new(line: usize) -> Self {
        EventBuilder {
            line,
            start: None,
            end: None,
            summary: None,
            recurring: false,
        }
    }

    fn property(&mut self, cl: ContentLine) {
        match cl.name.as_str() {
            "DTSTART" => self.start = Some(cl),
            "DTEND" => self.end = Some(cl),
            "SUMMARY" => self.summary = Some(unescape_text(&cl.value)),
            "RRULE" | "RDATE" => self.recurring = true,
            _ => {}
        }
    }

    fn finish(self) -> Result<Holiday, IcsError> {
        let name = self.summary.unwrap_or_default().trim().to_string();
        let label = if name.is_empty() {
            "the event".to_string()
        } else {
            format!("event `{name}`")
        };
        let err = |line: usize, message: String| IcsError { line, message };
        if self.recurring {
            return Err(err(
                self.line,
                format!(
                    "{label} repeats (RRULE/RDATE), which is not supported; export every Ferien period as its own event"
                ),
            ));
        }
        let Some(start) = self.start else {
            return Err(err(
                self.line,
                format!("{label} has no DTSTART; give it a start date"),
            ));
        };
        let from = all_day_date(&start).map_err(|m| err(start.line, format!("{label}: {m}")))?;
        // Without DTEND an all-day event lasts one day (RFC 5545 §3.6.1).
        let to = match &self.end {
            None => from,
            Some(end) => {
                let exclusive =
                    all_day_date(end).map_err(|m| err(end.line, format!("{label}: {m}")))?;
                if exclusive <= from {
                    return Err(err(
                        end.line,
                        format!(
                            "{label} ends ({exclusive}) before it starts ({from}); DTEND is the day after the last holiday"
                        ),
                    ));
                }
                exclusive.pred_opt().unwrap_or(from)
            }
        };
        Ok(Holiday {
            from,
            to,
            name: if name.is_empty() {
                "Ferien".into()
            } else {
                name
            },
        })
    }
}

/// The date of an all-day `DTSTART`/`DTEND`. `VALUE=DATE` is what RFC 5545 demands; a bare
/// 8-digit value without it is accepted too, because some exporters omit the parameter.
fn all_day_date(cl: &ContentLine) -> Result<NaiveDate, String> {
    let value_param = cl
        .params
        .iter()
        .find(|(k, _)| k == "VALUE")
        .map(|(_, v)| v.to_ascii_uppercase());
    let v = cl.value.trim();
    let is_date_form = v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit());
    if value_param.as_deref() == Some("DATE-TIME") || (!is_date_form && v.contains('T')) {
        return Err(format!(
            "{} `{v}` is a time, not an all-day date; export the Ferien as all-day events ({};VALUE=DATE:YYYYMMDD)",
            cl.name, cl.name
        ));
    }
    if !is_date_form {
        return Err(format!(
            "{} `{v}` is not a date; write it as {};VALUE=DATE:YYYYMMDD",
            cl.name, cl.name
        ));
    }
    NaiveDate::parse_from_str(v, "%Y%m%d").map_err(|_| {
        format!(
            "{} `{v}` is not a valid date; check the calendar export",
            cl.name
        )
    })
}

/// Undoes RFC 5545 line folding (a line starting with a space or tab continues the previous
/// one) and splits each content line into name, parameters and value.
fn unfold(text: &str) -> Vec<ContentLine> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = raw.strip_prefix([' ', '\t'])
            && let Some((_, last)) = logical.last_mut()
        {
            last.push_str(cont);
            continue;
        }
        if !raw.trim().is_empty() {
            logical.push((idx + 1, raw.to_string()));
        }
    }
    logical
        .into_iter()
        .filter_map(|(line, text)| split_content_line(line, &text))
        .collect()
}

fn split_content_line(line: usize, text: &str) -> Option<ContentLine> {
    // The value starts at the first ':' outside a quoted parameter value.
    let mut in_quotes = false;
    let colon = text.char_indices().find_map(|(i, c)| {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => return Some(i),
            _ => {}
        }
        None
    })?;
    let (head, value) = (&text[..colon], &text[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect();
    Some(ContentLine {
        line,
        name,
        params,
        value: value.to_string(),
    })
}

/// Undoes TEXT escaping: `\,` `\;` `\\` `\n`.
fn unescape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const FERIEN: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Test//Ferien//DE\r\n\
BEGIN:VEVENT\r\n\
UID:1@example\r\n\
DTSTART;VALUE=DATE:20251013\r\n\
DTEND;VALUE=DATE:20251026\r\n\
SUMMARY:Herbstferien Nordrhein-\r\n Westfalen 2025\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
DTSTART:19700101T000000\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20251222\r\n\
DTEND;VALUE=DATE:20260107\r\n\
SUMMARY:Weihnachtsferien\\, NRW\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20260213\r\n\
SUMMARY:Beweglicher Ferientag\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn reads_all_day_events_with_exclusive_end() {
        let h = parse_holidays(FERIEN).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!((h[0].from, h[0].to), (d("2025-10-13"), d("2025-10-25")));
        assert_eq!(h[0].name, "Herbstferien Nordrhein-Westfalen 2025");
        assert_eq!((h[1].from, h[1].to), (d("2025-12-22"), d("2026-01-06")));
        assert_eq!(h[1].name, "Weihnachtsferien, NRW");
        // No DTEND: one day.
        assert_eq!((h[2].from, h[2].to), (d("2026-02-13"), d("2026-02-13")));
    }

    #[test]
    fn accepts_lf_line_ends_and_dates_without_value_param() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20260330\nDTEND:20260411\nSUMMARY:Osterferien\nEND:VEVENT\nEND:VCALENDAR\n";
        let h = parse_holidays(text).unwrap();
        assert_eq!((h[0].from, h[0].to), (d("2026-03-30"), d("2026-04-10")));
    }

    #[test]
    fn reports_every_bad_event_with_its_line() {
        let text = "BEGIN:VCALENDAR\n\
BEGIN:VEVENT\n\
SUMMARY:Timed\n\
DTSTART:20251013T080000Z\n\
END:VEVENT\n\
BEGIN:VEVENT\n\
SUMMARY:Backwards\n\
DTSTART;VALUE=DATE:20251013\n\
DTEND;VALUE=DATE:20251013\n\
END:VEVENT\n\
BEGIN:VEVENT\n\
SUMMARY:No start\n\
END:VEVENT\n\
BEGIN:VEVENT\n\
DTSTART;VALUE=DATE:20251013\n\
RRULE:FREQ=YEARLY\n\
END:VEVENT\n\
BEGIN:VEVENT\n\
DTSTART;VALUE=DATE:20251399\n\
END:VEVENT\n\
END:VCALENDAR\n";
        let errors = parse_holidays(text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 9, 11, 14, 19], "{errors:?}");
        assert!(errors[0].message.contains("all-day"), "{errors:?}");
        assert!(errors[1].message.contains("before it starts"));
        assert!(errors[2].message.contains("no DTSTART"));
        assert!(errors[3].message.contains("repeats"));
        assert!(errors[4].message.contains("not a valid date"));
        assert!(
            errors.iter().all(|e| e.message.contains("; ")),
            "{errors:?}"
        );
    }

    #[test]
    fn refuses_files_that_are_not_calendars_or_are_cut_off() {
        assert!(parse_holidays("Klasse;E-Mail\n7b;a@b.de\n").is_err());
        assert!(parse_holidays("BEGIN:VCALENDAR\nEND:VCALENDAR\n").is_err());
        let cut = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20251013\n";
        let errors = parse_holidays(cut).unwrap_err();
        assert!(errors[0].message.contains("cut off"));
    }
}
