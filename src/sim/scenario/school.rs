//! The school itself: calendar facts (NW-like holidays, bell schedule), Klassen with timetables,
//! teachers, students and lessons.

use super::names::{FAMILY, STUDENT_GIVEN, TEACHER_GIVEN, ascii_slug};
use super::{STUDENTS_PER_KLASSE, SimCourse, SimKlasse, SimStudent, SimTeacher, uuid};
use crate::calendar::{Calendar, easter_sunday};
use crate::config::{Holiday, Period};
use crate::model::{SchoolYear, StudentId};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// The simulated school lies in North Rhine-Westphalia.
pub const STATE: &str = "NW";
/// Every period of the bell schedule is 45 minutes long.
pub const LESSON_MINUTES: u32 = 45;

/// The bell schedule: 8 periods with the usual NW breaks after periods 2, 4 and 6.
pub fn bell_schedule() -> Vec<Period> {
    const TIMES: [(u32, u32, u32, u32); 8] = [
        (7, 45, 8, 30),
        (8, 30, 9, 15),
        (9, 35, 10, 20),
        (10, 20, 11, 5),
        (11, 25, 12, 10),
        (12, 10, 12, 55),
        (13, 30, 14, 15),
        (14, 15, 15, 0),
    ];
    TIMES
        .iter()
        .zip(1u32..)
        .filter_map(|(&(sh, sm, eh, em), number)| {
            Some(Period {
                number,
                start: NaiveTime::from_hms_opt(sh, sm, 0)?,
                end: NaiveTime::from_hms_opt(eh, em, 0)?,
            })
        })
        .collect()
}

/// The school year (1 August to 31 July) that contains `day`.
pub fn school_year_containing(day: NaiveDate) -> SchoolYear {
    let first = if day.month() >= 8 {
        day.year()
    } else {
        day.year() - 1
    };
    SchoolYear {
        start: NaiveDate::from_ymd_opt(first, 8, 1).unwrap_or(day),
        end: NaiveDate::from_ymd_opt(first + 1, 7, 31).unwrap_or(day),
    }
}

/// The calendar of a generated school for `year`.
pub(super) fn calendar(year: SchoolYear) -> Calendar {
    Calendar::new(year, STATE, &nw_holidays(year), &[], &bell_schedule())
}

/// The first `weekday` on or after `day`.
fn on_or_after(day: NaiveDate, weekday: Weekday) -> NaiveDate {
    let ahead = (7 + weekday.num_days_from_monday() - day.weekday().num_days_from_monday()) % 7;
    day + Duration::days(i64::from(ahead))
}

/// NW-like summer holidays of a calendar year: six weeks and a day from a Monday in July,
/// rotating over three years like the states' schedule does.
fn summer_holidays(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    let july1 = NaiveDate::from_ymd_opt(year, 7, 1)?;
    let start = on_or_after(july1, Weekday::Mon) + Duration::weeks(i64::from(year.rem_euclid(3)));
    Some((start, start + Duration::days(43)))
}

/// NW-like school holidays (Ferien) of a school year: the end of the summer holidays, two weeks
/// in October, Christmas to Epiphany, the two weeks around Easter, the Tuesday after Whit
/// Monday and the start of the next summer holidays.
pub fn nw_holidays(year: SchoolYear) -> Vec<Holiday> {
    let first = year.start.year();
    let second = year.end.year();
    let mut out = Vec::new();
    let mut add = |from: Option<NaiveDate>, to: Option<NaiveDate>, name: &str| {
        if let (Some(from), Some(to)) = (from, to) {
            let (from, to) = (from.max(year.start), to.min(year.end));
            if from <= to {
                out.push(Holiday {
                    from,
                    to,
                    name: name.to_string(),
                });
            }
        }
    };
    if let Some((_, end)) = summer_holidays(first) {
        add(Some(year.start), Some(end), "Sommerferien");
    }
    let autumn = NaiveDate::from_ymd_opt(first, 10, 6)
        .map(|d| on_or_after(d, Weekday::Mon) + Duration::weeks(i64::from(first.rem_euclid(2))));
    add(
        autumn,
        autumn.map(|d| d + Duration::days(12)),
        "Herbstferien",
    );
    add(
        NaiveDate::from_ymd_opt(first, 12, 22),
        NaiveDate::from_ymd_opt(second, 1, 6),
        "Weihnachtsferien",
    );
    let easter = easter_sunday(second);
    add(
        easter.map(|e| e - Duration::days(6)),
        easter.map(|e| e + Duration::days(6)),
        "Osterferien",
    );
    let whit_tuesday = easter.map(|e| e + Duration::days(51));
    add(whit_tuesday, whit_tuesday, "Pfingstferien");
    if let Some((start, _)) = summer_holidays(second) {
        add(Some(start), Some(year.end), "Sommerferien");
    }
    out
}

/// Subjects with their weekly weight, and the grade from which they are taught.
const SUBJECTS: &[(&str, u32, u8)] = &[
    ("D", 4, 5),
    ("M", 4, 5),
    ("E", 4, 5),
    ("F", 3, 7),
    ("L", 3, 7),
    ("BIO", 2, 5),
    ("PH", 2, 7),
    ("CH", 2, 8),
    ("EK", 1, 5),
    ("GE", 2, 6),
    ("PK", 1, 5),
    ("SP", 3, 5),
    ("KU", 2, 5),
    ("MU", 2, 5),
    ("KR", 1, 5),
    ("ER", 1, 5),
    ("IF", 1, 5),
];

/// A Klasse's week: 6 lessons a day, one long day (8 lessons) from grade 7, two from grade 9.
/// Lessons come in blocks of two (the bell schedule's pairs); a block is a double period of one
/// subject or two single lessons, and a subject appears at most once a day otherwise.
fn timetable(rng: &mut ChaCha8Rng, grade: u8) -> Vec<Vec<&'static str>> {
    let pool: Vec<&'static str> = SUBJECTS
        .iter()
        .filter(|(_, _, from)| grade >= *from)
        // One second foreign language per Klasse: French or Latin, chosen by grade parity.
        .filter(|(s, _, _)| match *s {
            "F" => !grade.is_multiple_of(2),
            "L" => grade.is_multiple_of(2),
            _ => true,
        })
        .flat_map(|(s, w, _)| std::iter::repeat_n(*s, *w as usize))
        .collect();
    let long_days = match grade {
        0..=6 => 0,
        7 | 8 => 1,
        _ => 2,
    };
    let mut weekdays: Vec<usize> = (0..4).collect();
    weekdays.shuffle(rng);
    let long: BTreeSet<usize> = weekdays.into_iter().take(long_days).collect();
    (0..5)
        .map(|day| {
            let lessons = if long.contains(&day) { 8 } else { 6 };
            let mut today: Vec<&'static str> = Vec::with_capacity(lessons);
            let draw = |rng: &mut ChaCha8Rng, today: &[&'static str]| {
                for _ in 0..32 {
                    if let Some(s) = pool.choose(rng)
                        && !today.contains(s)
                    {
                        return *s;
                    }
                }
                pool.iter()
                    .find(|s| !today.contains(s))
                    .copied()
                    .unwrap_or("D")
            };
            for _ in 0..lessons / 2 {
                let first = draw(rng, &today);
                today.push(first);
                if rng.random_bool(0.35) {
                    today.push(first);
                } else {
                    let second = draw(rng, &today);
                    today.push(second);
                }
            }
            today
        })
        .collect()
}

/// Klassen names for `count` Klassen: grades 5 to 10 (to 13 for very large schools), parallel
/// classes a, b, c, … in grade order ("5a", "5b", "6a", …).
fn klassen_names(count: usize) -> Vec<(u8, String)> {
    let grades: Vec<u8> = if count > 6 * 8 {
        (5..=13).collect()
    } else {
        (5..=10).collect()
    };
    let parallel = count.div_ceil(grades.len()).max(1);
    let mut out = Vec::with_capacity(count);
    for grade in grades {
        for letter in (b'a'..=b'z').take(parallel) {
            out.push((grade, format!("{grade}{}", char::from(letter))));
        }
    }
    if parallel == 1 {
        // Few Klassen: one per grade, lowest grades first.
        out.truncate(count);
    } else {
        // Keep whole grades where possible: drop the last parallel classes of every grade first.
        while out.len() > count {
            let max_letter = out.iter().map(|(_, n)| n.chars().last()).max().flatten();
            if let Some(pos) = out
                .iter()
                .rposition(|(_, n)| n.chars().last() == max_letter)
            {
                out.remove(pos);
            } else {
                break;
            }
        }
    }
    out
}

/// A unique name from `base`: `base`, `base2`, `base3`, …
fn unique(used: &mut BTreeSet<String>, base: String) -> String {
    let mut candidate = base.clone();
    let mut n = 2;
    while used.contains(&candidate) {
        candidate = format!("{base}{n}");
        n += 1;
    }
    used.insert(candidate.clone());
    candidate
}

/// A `dateLastModified`: most records date from the import after the summer holidays, some were
/// changed later (up to the reference day).
fn modified(rng: &mut ChaCha8Rng, year: SchoolYear, today: NaiveDate) -> NaiveDateTime {
    let import_day = (year.start + Duration::days(18)).min(today);
    let day = if rng.random_bool(0.15) {
        let span = (today - import_day).num_days().max(0);
        import_day + Duration::days(rng.random_range(0..=span))
    } else {
        import_day
    };
    let seconds = rng.random_range(5 * 3600..18 * 3600);
    day.and_time(NaiveTime::MIN) + Duration::seconds(seconds)
}

/// Klassen, teachers, students and lessons, before any absence is planted.
pub(super) struct GeneratedRoster {
    pub klassen: Vec<SimKlasse>,
    pub teachers: Vec<SimTeacher>,
    pub students: Vec<SimStudent>,
    pub courses: Vec<SimCourse>,
}

impl GeneratedRoster {
    pub fn generate(
        rng: &mut ChaCha8Rng,
        timetable_rng: &mut ChaCha8Rng,
        student_count: usize,
        year: SchoolYear,
        today: NaiveDate,
    ) -> GeneratedRoster {
        let klassen_count = student_count.div_ceil(STUDENTS_PER_KLASSE).max(1);
        let extra_teachers = (klassen_count / 2).max(3);

        let mut used_mail = BTreeSet::new();
        let mut used_short = BTreeSet::new();
        let mut untis_id: i64 = 100 + rng.random_range(0..200);
        let mut teachers = Vec::with_capacity(klassen_count + extra_teachers);
        let mut teacher_subjects: Vec<Vec<&'static str>> = Vec::new();
        for _ in 0..klassen_count + extra_teachers {
            let given = TEACHER_GIVEN.choose(rng).copied().unwrap_or("Andrea");
            let family = FAMILY.choose(rng).copied().unwrap_or("Müller");
            let local = unique(
                &mut used_mail,
                format!("{}.{}", ascii_slug(given), ascii_slug(family)),
            );
            let short_base: String = ascii_slug(family).to_uppercase().chars().take(4).collect();
            untis_id += rng.random_range(1..=9);
            let subjects: Vec<&'static str> = SUBJECTS
                .choose_multiple(rng, 2)
                .map(|(s, _, _)| *s)
                .collect();
            teacher_subjects.push(subjects);
            teachers.push(SimTeacher {
                id: uuid(rng),
                given_name: given.to_string(),
                family_name: family.to_string(),
                email: format!("{local}@schule.example"),
                untis_id,
                short_name: unique(&mut used_short, short_base),
                username: local,
                modified: modified(rng, year, today),
            });
        }

        let names = klassen_names(klassen_count);
        let mut klassen = Vec::with_capacity(names.len());
        for (i, (grade, name)) in names.into_iter().enumerate() {
            let class_teacher = teachers.get(i).map(|t| t.id.clone()).unwrap_or_default();
            let deputy = if rng.random_bool(0.3) {
                teachers
                    .get(klassen_count + rng.random_range(0..extra_teachers))
                    .map(|t| t.id.clone())
            } else {
                None
            };
            klassen.push(SimKlasse {
                id: uuid(rng),
                name,
                grade,
                class_teacher,
                deputy_teacher: deputy,
                timetable: timetable(timetable_rng, grade),
                modified: modified(rng, year, today),
            });
        }

        let mut courses = Vec::new();
        for (k, klasse) in klassen.iter().enumerate() {
            let subjects: BTreeSet<&'static str> =
                klasse.timetable.iter().flatten().copied().collect();
            for subject in subjects {
                let class_teacher_idx = k;
                let teacher_idx = if teacher_subjects
                    .get(class_teacher_idx)
                    .is_some_and(|s| s.contains(&subject))
                {
                    class_teacher_idx
                } else {
                    let able: Vec<usize> = (0..teachers.len())
                        .filter(|t| {
                            teacher_subjects
                                .get(*t)
                                .is_some_and(|s| s.contains(&subject))
                        })
                        .collect();
                    able.choose(rng)
                        .copied()
                        .unwrap_or_else(|| rng.random_range(0..teachers.len()))
                };
                let teacher = teachers
                    .get(teacher_idx)
                    .map(|t| t.id.clone())
                    .unwrap_or_default();
                courses.push(SimCourse {
                    id: uuid(rng),
                    title: format!("{subject} {}", klasse.name),
                    klasse: k,
                    teacher,
                    subject,
                    modified: modified(rng, year, today),
                });
            }
        }

        let mut students = Vec::with_capacity(student_count);
        let mut used_user = BTreeSet::new();
        let mut untis_id: i64 = 3000 + rng.random_range(0..700);
        let mut extern_seq: std::collections::BTreeMap<i32, u32> = Default::default();
        for i in 0..student_count {
            let k = i % klassen.len().max(1);
            let grade = klassen.get(k).map_or(5, |kl| kl.grade);
            let given = STUDENT_GIVEN.choose(rng).copied().unwrap_or("Lena");
            let family = FAMILY.choose(rng).copied().unwrap_or("Müller");
            untis_id += rng.random_range(1..=5);
            let entry_year = year.start.year() - i32::from(grade.saturating_sub(5));
            let seq = extern_seq
                .entry(entry_year)
                .or_insert_with(|| rng.random_range(0..20));
            *seq += 1;
            let sourced_id = uuid(rng);
            students.push(SimStudent {
                id: StudentId(sourced_id.clone()),
                sourced_id,
                given_name: given.to_string(),
                family_name: family.to_string(),
                klasse: k,
                untis_id,
                extern_key: format!("S-{entry_year}-{seq:03}"),
                username: unique(
                    &mut used_user,
                    format!("{}.{}", ascii_slug(given), ascii_slug(family)),
                ),
                has_account: true,
                modified: modified(rng, year, today),
            });
        }
        // Klasse by Klasse, as a register lists them.
        students.sort_by_key(|s| (s.klasse, s.untis_id));

        GeneratedRoster {
            klassen,
            teachers,
            students,
            courses,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn holidays_look_like_nw() {
        let year = school_year_containing(d("2026-03-01"));
        assert_eq!(year.start, d("2025-08-01"));
        let h = nw_holidays(year);
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Sommerferien",
                "Herbstferien",
                "Weihnachtsferien",
                "Osterferien",
                "Pfingstferien",
                "Sommerferien"
            ]
        );
        let easter = h.iter().find(|h| h.name == "Osterferien").unwrap();
        assert_eq!((easter.from, easter.to), (d("2026-03-30"), d("2026-04-11")));
        let autumn = h.iter().find(|h| h.name == "Herbstferien").unwrap();
        assert_eq!((autumn.from, autumn.to), (d("2025-10-13"), d("2025-10-25")));
        let cal = calendar(year);
        assert!(!cal.is_school_day(d("2025-08-12")), "summer holidays");
        assert!(cal.is_school_day(d("2025-09-01")));
        assert!(!cal.is_school_day(d("2026-05-26")), "Pfingstferien");
    }

    #[test]
    fn bell_schedule_has_eight_periods() {
        let p = bell_schedule();
        assert_eq!(p.len(), 8);
        assert_eq!(p[2].start, NaiveTime::from_hms_opt(9, 35, 0).unwrap());
        assert_eq!(p[7].end, NaiveTime::from_hms_opt(15, 0, 0).unwrap());
    }

    #[test]
    fn klassen_names_fill_grades() {
        let n: Vec<String> = klassen_names(5).into_iter().map(|(_, n)| n).collect();
        assert_eq!(n, ["5a", "6a", "7a", "8a", "9a"]);
        let n = klassen_names(18);
        assert_eq!(n.len(), 18);
        assert!(n.iter().any(|(_, n)| n == "10c"));
        assert_eq!(klassen_names(80).len(), 80);
    }
}
