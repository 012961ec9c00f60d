//! A deterministic, seeded school: roster, timetable, calendar and a school year of absences
//! with planted patterns and their ground truth.
//!
//! The same seed, student count and day give a byte-identical scenario, so a demo, a test and
//! a bug report all talk about the same students. Randomness comes from ChaCha8 streams derived
//! from the seed, one per concern (roster, timetable, planting), so that changing the planting
//! does not rename every student.

mod config;
mod names;
mod plant;
mod quality;
mod school;

pub use plant::{Category, Need, PlantedCase, SkippedPlant, plant_keys};
pub use quality::{RuleQuality, rule_quality};
pub use school::{LESSON_MINUTES, STATE, bell_schedule, nw_holidays, school_year_containing};

use crate::calendar::Calendar;
use crate::config::{Holiday, Period};
use crate::model::{Absence, Klasse, Roster, SchoolYear, Student, StudentId, Teacher};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// School days the reference day's school year must have behind it; fewer and the scenario
/// moves to the end of the previous school year, so a demo always has history. Not more: while
/// the school year has at most 40 school days, `early_year` is evaluated, and only then can it
/// be planted (see [`Need::EarlyYear`]).
pub const MIN_SCHOOL_DAYS: usize = 30;
/// School days the reference day's half-year must have behind it, so that half-year rules
/// (21 absence days for critical) can be planted; fewer and the scenario moves to the last
/// school day of the first half-year.
pub const MIN_HALF_YEAR_SCHOOL_DAYS: usize = 30;
/// Students per Klasse when the school is laid out.
pub const STUDENTS_PER_KLASSE: usize = 25;

/// RNG streams, one per concern.
const STREAM_ROSTER: u64 = 1;
const STREAM_TIMETABLE: u64 = 2;
const STREAM_PLANT: u64 = 3;

/// One generated school with everything the simulator serves and the rules should find.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    /// The reference day: all data lies on or before it; rules are evaluated as of this day.
    pub today: NaiveDate,
    pub school_name: String,
    /// Bundesland, for public holidays.
    pub state: String,
    pub school_year: SchoolYear,
    /// School holidays (Ferien) of the school year, summer holidays included.
    pub holidays: Vec<Holiday>,
    /// Empty: the half-years start with the school year and on 1 February (the default).
    pub half_year_starts: Vec<NaiveDate>,
    /// The bell schedule: 8 periods of 45 minutes.
    pub periods: Vec<Period>,
    /// OneRoster `sourcedId` of the school (org).
    pub org_id: String,
    pub klassen: Vec<SimKlasse>,
    pub teachers: Vec<SimTeacher>,
    pub students: Vec<SimStudent>,
    /// Lessons (OneRoster `scheduled` classes) that a client must not mistake for Klassen.
    pub courses: Vec<SimCourse>,
    /// Class-register entries of all students, sorted by student (Klasse order) and start.
    pub absences: Vec<Absence>,
    /// Ground truth, one entry per student.
    pub planted: Vec<PlantedCase>,
    /// Table rows the reference day cannot show (e.g. `early_year` late in the school year),
    /// with the reason; no student has them.
    pub skipped: Vec<SkippedPlant>,
}

/// A Klasse (homeroom class) with its weekly timetable.
#[derive(Debug, Clone)]
pub struct SimKlasse {
    /// OneRoster `sourcedId`.
    pub id: String,
    /// "7b".
    pub name: String,
    pub grade: u8,
    /// Teacher id of the class teacher (primary enrollment).
    pub class_teacher: String,
    /// Teacher id of a deputy (non-primary enrollment), for some Klassen.
    pub deputy_teacher: Option<String>,
    /// Subjects per lesson, Monday (index 0) to Friday; 6 or 8 lessons a day.
    pub timetable: Vec<Vec<&'static str>>,
    /// `dateLastModified` (UTC).
    pub modified: NaiveDateTime,
}

impl SimKlasse {
    /// The lessons (subject short names) on `day`; empty on weekends.
    pub fn lessons_on(&self, day: NaiveDate) -> &[&'static str] {
        let idx = day.weekday().num_days_from_monday() as usize;
        self.timetable
            .get(idx)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct SimTeacher {
    /// OneRoster `sourcedId`.
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    /// At the reserved domain `schule.example`.
    pub email: String,
    /// WebUntis person id.
    pub untis_id: i64,
    /// Kürzel, e.g. "MUEL".
    pub short_name: String,
    pub username: String,
    pub modified: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct SimStudent {
    /// The id fehlzeiten will know the student by: the OneRoster `sourcedId`, or
    /// `untis:<untis_id>` for a student without a WebUntis account.
    pub id: StudentId,
    /// OneRoster `sourcedId` (WebUntis has one even when OneRoster does not list the student).
    pub sourced_id: String,
    pub given_name: String,
    pub family_name: String,
    /// Index into [`Scenario::klassen`].
    pub klasse: usize,
    /// WebUntis person id = the absences' `studentId`.
    pub untis_id: i64,
    /// External person id = the absences' `studentExternKey`, e.g. "S-2021-042".
    pub extern_key: String,
    pub username: String,
    /// Without a WebUntis account the student is missing from OneRoster but not from absences.
    pub has_account: bool,
    pub modified: NaiveDateTime,
}

/// A lesson (OneRoster `scheduled` class): one subject of one Klasse with its teacher.
#[derive(Debug, Clone)]
pub struct SimCourse {
    pub id: String,
    /// "M 7b".
    pub title: String,
    /// Index into [`Scenario::klassen`].
    pub klasse: usize,
    pub teacher: String,
    pub subject: &'static str,
    pub modified: NaiveDateTime,
}

impl Scenario {
    /// The day the scenario is set on, for a wall-clock `today`: `today` itself when its school
    /// year has at least [`MIN_SCHOOL_DAYS`] school days up to it and its half-year at least
    /// [`MIN_HALF_YEAR_SCHOOL_DAYS`]; early in the second half-year the last school day of the
    /// first; otherwise the last school day of the previous school year.
    pub fn reference_day(today: NaiveDate) -> NaiveDate {
        let year = school_year_containing(today);
        let cal = school::calendar(year);
        let days = cal.school_days(year.start, today);
        if days.len() >= MIN_SCHOOL_DAYS {
            let half_start = cal.half_year(today).map_or(year.start, |h| h.start);
            let in_half = days.iter().filter(|d| **d >= half_start).count();
            if in_half >= MIN_HALF_YEAR_SCHOOL_DAYS {
                return today;
            }
            let before_half = days.iter().filter(|d| **d < half_start).count();
            if before_half >= MIN_SCHOOL_DAYS
                && let Some(last) = cal.prev_school_day(half_start)
            {
                return last;
            }
        }
        let previous = school_year_containing(year.start.pred_opt().unwrap_or(year.start));
        let cal = school::calendar(previous);
        cal.school_days(previous.start, previous.end)
            .last()
            .copied()
            .unwrap_or(previous.end)
    }

    /// Generates the school for `students` students (40 to a few thousand) as of
    /// `reference_day(today)`.
    pub fn generate(seed: u64, students: usize, today: NaiveDate) -> Scenario {
        let today = Scenario::reference_day(today);
        let school_year = school_year_containing(today);
        let holidays = nw_holidays(school_year);
        let periods = bell_schedule();
        let calendar = Calendar::new(school_year, STATE, &holidays, &[], &periods);

        let mut roster_rng = stream(seed, STREAM_ROSTER);
        let mut timetable_rng = stream(seed, STREAM_TIMETABLE);
        let org_id = uuid(&mut roster_rng);
        let mut roster = school::GeneratedRoster::generate(
            &mut roster_rng,
            &mut timetable_rng,
            students,
            school_year,
            today,
        );

        let mut plant_rng = stream(seed, STREAM_PLANT);
        let planting = plant::plant_school(
            &mut plant_rng,
            &calendar,
            today,
            &roster.klassen,
            &mut roster.students,
        );

        Scenario {
            seed,
            today,
            school_name: "Gesamtschule Am Simulantenweg".to_string(),
            state: STATE.to_string(),
            school_year,
            holidays,
            half_year_starts: Vec::new(),
            periods,
            org_id,
            klassen: roster.klassen,
            teachers: roster.teachers,
            students: roster.students,
            courses: roster.courses,
            absences: planting.absences,
            planted: planting.cases,
            skipped: planting.skipped,
        }
    }

    /// The school calendar the scenario was planned with (what a correct config yields).
    pub fn calendar(&self) -> Calendar {
        Calendar::new(
            self.school_year,
            &self.state,
            &self.holidays,
            &self.half_year_starts,
            &self.periods,
        )
    }

    /// The student with this id.
    pub fn student(&self, id: &StudentId) -> Option<&SimStudent> {
        self.students.iter().find(|s| &s.id == id)
    }

    /// The ground truth for this student.
    pub fn case(&self, id: &StudentId) -> Option<&PlantedCase> {
        self.planted.iter().find(|c| &c.student == id)
    }

    /// What a correct roster sync of this school yields: Klassen with their class teachers,
    /// the students with a WebUntis account, all teachers.
    pub fn expected_roster(&self) -> Roster {
        Roster {
            klassen: self
                .klassen
                .iter()
                .map(|k| Klasse {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    class_teacher_ids: vec![k.class_teacher.clone()],
                })
                .collect(),
            students: self
                .students
                .iter()
                .filter(|s| s.has_account)
                .map(|s| Student {
                    id: s.id.clone(),
                    given_name: s.given_name.clone(),
                    family_name: s.family_name.clone(),
                    klasse_id: self.klassen.get(s.klasse).map(|k| k.id.clone()),
                    untis_id: Some(s.untis_id),
                    extern_key: Some(s.extern_key.clone()),
                })
                .collect(),
            teachers: self
                .teachers
                .iter()
                .map(|t| Teacher {
                    id: t.id.clone(),
                    given_name: t.given_name.clone(),
                    family_name: t.family_name.clone(),
                    email: Some(t.email.clone()),
                })
                .collect(),
        }
    }
}

/// A ChaCha8 stream of the seed.
fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A random (version 4 shaped) UUID string, as OneRoster `sourcedId`s are.
fn uuid(rng: &mut ChaCha8Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
