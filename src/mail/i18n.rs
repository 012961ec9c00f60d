//! User-facing mail texts in German and English.
//!
//! Sentences live here rather than in the templates because they need numbers, plurals,
//! weekdays and date formats; the templates only lay them out.

use super::render::{DayMark, ItemStatus};
use crate::config::Language;
use crate::model::Severity;
use chrono::{NaiveDate, Weekday};

pub(crate) fn severity_label(lang: Language, s: Severity) -> &'static str {
    match (lang, s) {
        (Language::De, Severity::Watch) => "Beobachten",
        (Language::De, Severity::Warning) => "Warnung",
        (Language::De, Severity::Critical) => "Kritisch",
        (Language::En, Severity::Watch) => "watch",
        (Language::En, Severity::Warning) => "warning",
        (Language::En, Severity::Critical) => "critical",
    }
}

pub(crate) fn status_label(lang: Language, s: ItemStatus) -> &'static str {
    match (lang, s) {
        (Language::De, ItemStatus::New) => "neu",
        (Language::De, ItemStatus::Escalated) => "erneut höher eingestuft",
        (Language::De, ItemStatus::Ongoing) => "weiterhin",
        (Language::De, ItemStatus::Resolved) => "erledigt",
        (Language::En, ItemStatus::New) => "new",
        (Language::En, ItemStatus::Escalated) => "escalated",
        (Language::En, ItemStatus::Ongoing) => "ongoing",
        (Language::En, ItemStatus::Resolved) => "resolved",
    }
}

/// A date as people write it: 02.03.2026 in German, 2026-03-02 in English.
pub(crate) fn date(lang: Language, d: NaiveDate) -> String {
    match lang {
        Language::De => d.format("%d.%m.%Y").to_string(),
        Language::En => d.format("%Y-%m-%d").to_string(),
    }
}

/// An evidence string from a rule: an ISO date, maybe followed by tokens (`L1-2,5` lessons,
/// `+12min` minutes late, a subject short name). The date is reformatted for the reader and the
/// tokens are spelled out: "02.03.2026 (1.–2., 5. Std., M)". Anything else is kept as it is.
pub(crate) fn evidence(lang: Language, raw: &str) -> String {
    let Some((d, rest)) = leading_date(raw) else {
        return raw.to_string();
    };
    let parts: Vec<String> = rest
        .split_whitespace()
        .map(|t| evidence_token(lang, t))
        .collect();
    if parts.is_empty() {
        date(lang, d)
    } else {
        format!("{} ({})", date(lang, d), parts.join(", "))
    }
}

fn evidence_token(lang: Language, token: &str) -> String {
    if let Some(lessons) = lessons_of(token) {
        let ranges: Vec<String> = lessons
            .split(',')
            .map(|r| match (r.split_once('-'), lang) {
                (Some((a, b)), Language::De) => format!("{a}.–{b}."),
                (Some((a, b)), Language::En) => format!("{a}–{b}"),
                (None, Language::De) => format!("{r}."),
                (None, Language::En) => r.to_string(),
            })
            .collect();
        return match lang {
            Language::De => format!("{} Std.", ranges.join(", ")),
            Language::En if ranges.len() == 1 && !lessons.contains('-') => {
                format!("lesson {}", ranges.join(", "))
            }
            Language::En => format!("lessons {}", ranges.join(", ")),
        };
    }
    if let Some(minutes) = token.strip_prefix('+').and_then(|m| m.strip_suffix("min")) {
        return match lang {
            Language::De => format!("{minutes} Min. zu spät"),
            Language::En => format!("{minutes} min late"),
        };
    }
    token.to_string()
}

/// `L1-2,5`: a lessons token of an evidence entry.
fn lessons_of(token: &str) -> Option<&str> {
    token
        .strip_prefix('L')
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
}

/// The subject named in evidence entries (the token that is neither lessons nor minutes).
fn evidence_subject(evidence: &[String]) -> Option<&str> {
    evidence.iter().find_map(|e| {
        e.split_whitespace()
            .skip(1)
            .find(|t| lessons_of(t).is_none() && !t.starts_with('+'))
    })
}

/// The entry standing for evidence left out of a mail: "… 14 frühere".
pub(crate) fn earlier_evidence(lang: Language, n: usize) -> String {
    match lang {
        Language::De => format!("… {n} frühere"),
        Language::En => format!("… {n} earlier"),
    }
}

pub(crate) fn leading_date(raw: &str) -> Option<(NaiveDate, &str)> {
    let head = raw.get(..10)?;
    let d = NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()?;
    Some((d, &raw[10..]))
}

fn weekday_plural_de(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Montagen",
        Weekday::Tue => "Dienstagen",
        Weekday::Wed => "Mittwochen",
        Weekday::Thu => "Donnerstagen",
        Weekday::Fri => "Freitagen",
        Weekday::Sat => "Samstagen",
        Weekday::Sun => "Sonntagen",
    }
}

fn weekday_plural_en(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Mondays",
        Weekday::Tue => "Tuesdays",
        Weekday::Wed => "Wednesdays",
        Weekday::Thu => "Thursdays",
        Weekday::Fri => "Fridays",
        Weekday::Sat => "Saturdays",
        Weekday::Sun => "Sundays",
    }
}

pub(crate) fn weekday_short(lang: Language, w: Weekday) -> &'static str {
    match (lang, w) {
        (Language::De, Weekday::Mon) => "Mo",
        (Language::De, Weekday::Tue) => "Di",
        (Language::De, Weekday::Wed) => "Mi",
        (Language::De, Weekday::Thu) => "Do",
        (Language::De, Weekday::Fri) => "Fr",
        (Language::De, Weekday::Sat) => "Sa",
        (Language::De, Weekday::Sun) => "So",
        (Language::En, Weekday::Mon) => "Mo",
        (Language::En, Weekday::Tue) => "Tu",
        (Language::En, Weekday::Wed) => "We",
        (Language::En, Weekday::Thu) => "Th",
        (Language::En, Weekday::Fri) => "Fr",
        (Language::En, Weekday::Sat) => "Sa",
        (Language::En, Weekday::Sun) => "Su",
    }
}

/// One plain-language sentence for an alert of `rule` with `value`.
pub(crate) fn rule_sentence(lang: Language, rule: &str, value: u32, evidence: &[String]) -> String {
    let first_weekday = evidence
        .iter()
        .find_map(|e| leading_date(e))
        .map(|(d, _)| chrono::Datelike::weekday(&d));
    match lang {
        Language::De => match rule {
            "consecutive_days" => {
                format!("Fehlte an {value} aufeinanderfolgenden Schultagen.")
            }
            "absence_rate" => {
                format!("Fehlte an {value} % der Schultage seit Schuljahresbeginn.")
            }
            "days_per_half_year" => format!("{value} Fehltage in diesem Halbjahr."),
            "unexcused" => {
                let extra = evidence.len().saturating_sub(value as usize);
                if extra > 0 {
                    format!(
                        "{value} unentschuldigte Fehltage in diesem Halbjahr, dazu an {extra} weiteren Tagen unentschuldigte Einzelstunden."
                    )
                } else {
                    format!("{value} unentschuldigte Fehltage in diesem Halbjahr.")
                }
            }
            "same_weekday" => match first_weekday {
                Some(w) => format!(
                    "Fehlte an {value} aufeinanderfolgenden {}, war am Tag davor und danach aber da.",
                    weekday_plural_de(w)
                ),
                None => format!("Fehlte {value} Wochen in Folge am selben Wochentag."),
            },
            "pending_excuse" => format!(
                "{} Fehlzeiten sind noch ohne Entschuldigung oder Entscheidung, die älteste seit {value} Schultagen.",
                evidence.len()
            ),
            "around_weekend_holiday" => format!(
                "{value} Fehltage direkt vor oder nach Wochenenden oder Ferien in den letzten Wochen, die meisten seiner/ihrer Fehltage."
            ),
            "edge_lessons" => format!(
                "Fehlte in den letzten Wochen {value}-mal in den ersten oder letzten Stunden, war an diesen Tagen aber in der Schule."
            ),
            "subject_avoidance" => match evidence_subject(evidence) {
                Some(subject) => format!(
                    "Fehlte in den letzten Wochen {value}-mal im Fach {subject}, war an diesen Tagen aber in der Schule."
                ),
                None => format!(
                    "Fehlte in den letzten Wochen {value}-mal im selben Fach, war an diesen Tagen aber in der Schule."
                ),
            },
            "lateness" => format!("Kam in den letzten Wochen {value}-mal zu spät."),
            "early_year" => format!("{value} Fehltage in den ersten Schulwochen des Schuljahres."),
            "rising_trend" => format!(
                "Die Fehlquote der letzten Wochen ist auf {value} % gestiegen, mindestens doppelt so hoch wie in den Wochen davor."
            ),
            other => format!("Auffälligkeit „{other}“ (Wert {value})."),
        },
        Language::En => match rule {
            "consecutive_days" => format!("Was absent on {value} consecutive school days."),
            "absence_rate" => {
                format!("Was absent on {value}% of school days since the start of the school year.")
            }
            "days_per_half_year" => format!("{value} days absent this half-year."),
            "unexcused" => {
                let extra = evidence.len().saturating_sub(value as usize);
                if extra > 0 {
                    format!(
                        "{value} unexcused days absent this half-year, plus unexcused single lessons on {extra} more days."
                    )
                } else {
                    format!("{value} unexcused days absent this half-year.")
                }
            }
            "same_weekday" => match first_weekday {
                Some(w) => format!(
                    "Was absent on {value} consecutive {}, while present the day before and after.",
                    weekday_plural_en(w)
                ),
                None => format!("Was absent on the same weekday {value} weeks in a row."),
            },
            "pending_excuse" => format!(
                "{} absences still have no excuse decision, the oldest for {value} school days.",
                evidence.len()
            ),
            "around_weekend_holiday" => format!(
                "{value} days absent right before or after weekends or holidays in recent weeks, most of their absences."
            ),
            "edge_lessons" => format!(
                "Missed the first or last lessons {value} times in recent weeks while at school that day."
            ),
            "subject_avoidance" => match evidence_subject(evidence) {
                Some(subject) => format!(
                    "Missed {subject} {value} times in recent weeks while at school that day."
                ),
                None => format!(
                    "Missed the same subject {value} times in recent weeks while at school that day."
                ),
            },
            "lateness" => format!("Was late {value} times in recent weeks."),
            "early_year" => format!("{value} days absent in the first weeks of the school year."),
            "rising_trend" => format!(
                "The absence rate of recent weeks rose to {value}%, at least twice the rate of the weeks before."
            ),
            other => format!("Finding “{other}” (value {value})."),
        },
    }
}

pub(crate) fn unknown_student(lang: Language, id: &str) -> String {
    match lang {
        Language::De => format!("Schüler/in (ID {id})"),
        Language::En => format!("Student (ID {id})"),
    }
}

pub(crate) fn students_count(lang: Language, n: usize) -> String {
    match (lang, n) {
        (Language::De, 1) => "1 Schüler/in".to_string(),
        (Language::De, n) => format!("{n} Schüler/innen"),
        (Language::En, 1) => "1 student".to_string(),
        (Language::En, n) => format!("{n} students"),
    }
}

/// The ISO week number of "2026-W10", or the string itself if it has another form.
pub(crate) fn week_label(lang: Language, week: &str) -> String {
    let number = week
        .split_once("-W")
        .and_then(|(_, w)| w.parse::<u32>().ok());
    match (lang, number) {
        (Language::De, Some(n)) => format!("KW {n}"),
        (Language::En, Some(n)) => format!("week {n}"),
        (_, None) => week.to_string(),
    }
}

/// Letter and colours of a calendar cell; the letter keeps the strip readable without colour.
pub(crate) fn day_mark(lang: Language, m: DayMark) -> (&'static str, &'static str, &'static str) {
    // (letter, background, text colour)
    match (lang, m) {
        (_, DayMark::NoSchool) => ("–", "#f3f4f6", "#9ca3af"),
        (_, DayMark::Present) => ("·", "#ecfdf5", "#047857"),
        (Language::De, DayMark::Late) => ("V", "#fef3c7", "#92400e"),
        (Language::En, DayMark::Late) => ("L", "#fef3c7", "#92400e"),
        (Language::De, DayMark::Partial) => ("T", "#ffedd5", "#9a3412"),
        (Language::En, DayMark::Partial) => ("P", "#ffedd5", "#9a3412"),
        (_, DayMark::Excused) => ("E", "#dbeafe", "#1e40af"),
        (Language::De, DayMark::Absent) => ("F", "#fee2e2", "#991b1b"),
        (Language::En, DayMark::Absent) => ("A", "#fee2e2", "#991b1b"),
    }
}

pub(crate) fn calendar_legend(lang: Language) -> &'static str {
    match lang {
        Language::De => {
            "F = gefehlt (unentschuldigt oder offen), E = entschuldigt, T = teilweise gefehlt, V = verspätet, · = anwesend, – = kein Schultag"
        }
        Language::En => {
            "A = absent (unexcused or pending), E = excused, P = partly absent, L = late, · = present, – = no school"
        }
    }
}

/// Fixed phrases of the mails.
pub(crate) struct Phrases {
    pub dates: &'static str,
    pub klasse: &'static str,
    pub as_of: &'static str,
    pub check_register: &'static str,
    pub privacy: &'static str,
    pub automatic: &'static str,
    pub calendar: &'static str,
}

pub(crate) fn phrases(lang: Language) -> Phrases {
    match lang {
        Language::De => Phrases {
            dates: "Tage",
            klasse: "Klasse",
            as_of: "Stand",
            check_register: "Bitte prüfen Sie die Angaben im digitalen Klassenbuch (WebUntis); dort sind sie maßgeblich.",
            privacy: "Diese Nachricht enthält personenbezogene Daten von Schülerinnen und Schülern. Bitte vertraulich behandeln, nicht weiterleiten und löschen, sobald sie nicht mehr benötigt wird.",
            automatic: "Automatisch erstellt vom Fehlzeiten-Frühwarnsystem der Schule.",
            calendar: "Letzte Wochen",
        },
        Language::En => Phrases {
            dates: "Dates",
            klasse: "Class",
            as_of: "As of",
            check_register: "Please check the details in the digital class register (WebUntis), which is authoritative.",
            privacy: "This message contains personal data of students. Treat it as confidential, do not forward it, and delete it when it is no longer needed.",
            automatic: "Sent automatically by the school's absence early-warning system.",
            calendar: "Last weeks",
        },
    }
}

/// Who to ask, from the contact (or the reply-to address).
pub(crate) fn contact_line(lang: Language, contact: Option<&str>) -> String {
    match (lang, contact) {
        (Language::De, Some(c)) => format!("Fragen dazu beantwortet: {c}"),
        (Language::De, None) => {
            "Fragen dazu beantworten die Schulleitung und die Schulsozialarbeit.".to_string()
        }
        (Language::En, Some(c)) => format!("Questions: please contact {c}"),
        (Language::En, None) => {
            "Questions: please contact the school management or the school social workers."
                .to_string()
        }
    }
}
