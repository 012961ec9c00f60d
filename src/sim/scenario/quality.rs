//! How well the rules find what the scenario planted: per-rule recall and precision against the
//! ground truth, for reports and tests.

use super::{Category, Scenario};
use crate::model::{Absence, Finding, Severity, StudentId};
use crate::rules::{self, RULE_IDS, RuleParams};
use std::collections::BTreeMap;

/// One rule's score on one scenario.
///
/// Definitions (per rule R; "warning+" means severity warning or critical):
/// - `planted`: students whose ground truth expects R (at any severity, watch included).
/// - `found_planted`: of them, those with a finding of R at exactly the expected severity (what
///   the ground-truth tests demand; a planted warning found as critical is not found).
/// - `true_positives`: warning+ findings of R on students planted for R at warning+.
/// - `false_positives`: warning+ findings of R on any other student who is not `incidental`:
///   near misses, ill and clean students, and students planted for R only at watch (R
///   overshooting its own pattern).
/// - `incidental`: warning+ findings of R on students planted for other rules only. A planted
///   pattern may legitimately trip a second rule (a long streak is a high absence rate too), so
///   these are neither true nor false positives.
/// - `precision` = TP / (TP + FP), `None` without any such finding; `recall` = `found_planted`
///   / `planted`, `None` when nothing was planted for R (e.g. `early_year` late in the year, see
///   [`Scenario::skipped`]).
///
/// Findings are counted one by one (`subject_avoidance` reports one per subject), students
/// once per rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleQuality {
    pub rule: &'static str,
    pub planted: usize,
    pub found_planted: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub incidental: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// Scores every rule of SPEC §4 (in [`RULE_IDS`] order) on `findings`, which are the findings of
/// the whole school as of [`Scenario::today`] (e.g. from [`Scenario::findings`]).
pub fn rule_quality(scenario: &Scenario, findings: &[Finding]) -> Vec<RuleQuality> {
    // Expected severity per (student, rule), and which students are planted at all.
    let mut expected: BTreeMap<(&StudentId, &str), Severity> = BTreeMap::new();
    let mut planted_students: BTreeMap<&StudentId, bool> = BTreeMap::new();
    for case in &scenario.planted {
        planted_students.insert(&case.student, case.category == Category::Planted);
        if case.category == Category::Planted {
            for (rule, severity) in &case.expected {
                expected.insert((&case.student, rule.as_str()), *severity);
            }
        }
    }
    RULE_IDS
        .iter()
        .map(|&rule| {
            let of_rule: Vec<&Finding> = findings.iter().filter(|f| f.rule == rule).collect();
            let planted: Vec<(&StudentId, Severity)> = expected
                .iter()
                .filter(|((_, r), _)| *r == rule)
                .map(|((s, _), sev)| (*s, *sev))
                .collect();
            let found_planted = planted
                .iter()
                .filter(|(s, sev)| {
                    of_rule
                        .iter()
                        .any(|f| &f.student == *s && f.severity == *sev)
                })
                .count();
            let (mut tp, mut fp, mut incidental) = (0, 0, 0);
            for f in of_rule.iter().filter(|f| f.severity >= Severity::Warning) {
                match expected.get(&(&f.student, rule)) {
                    Some(sev) if *sev >= Severity::Warning => tp += 1,
                    Some(_) => fp += 1,
                    None if planted_students.get(&f.student) == Some(&true) => incidental += 1,
                    None => fp += 1,
                }
            }
            RuleQuality {
                rule,
                planted: planted.len(),
                found_planted,
                true_positives: tp,
                false_positives: fp,
                incidental,
                precision: (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64),
                recall: (!planted.is_empty()).then(|| found_planted as f64 / planted.len() as f64),
            }
        })
        .collect()
}

impl Scenario {
    /// Every student's findings under `params` as of the reference day, evaluated directly on
    /// the scenario's register (no sync, no store).
    pub fn findings(&self, params: &RuleParams) -> Vec<Finding> {
        let calendar = self.calendar();
        let mut by_student: BTreeMap<&StudentId, Vec<Absence>> = BTreeMap::new();
        for a in &self.absences {
            by_student.entry(&a.student).or_default().push(a.clone());
        }
        self.students
            .iter()
            .flat_map(|s| {
                let absences = by_student.get(&s.id).map(Vec::as_slice).unwrap_or_default();
                rules::evaluate_student(&s.id, absences, &calendar, params, self.today)
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// Recall 1 for every rule of a 400-student school, no false positives, and nobody who is
    /// not planted has a finding at warning or above. Two reference days, because `early_year`
    /// can only be planted early in the school year and `rising_trend` only later.
    #[test]
    fn rules_find_every_planted_pattern_and_nothing_else() {
        let mut recalled: BTreeMap<&str, usize> = BTreeMap::new();
        for day in ["2026-03-16", "2025-10-08"] {
            let sc = Scenario::generate(21, 400, d(day));
            assert_eq!(sc.today, d(day), "the reference day is the day itself");
            let findings = sc.findings(&RuleParams::default());
            let quality = rule_quality(&sc, &findings);
            assert_eq!(
                quality.iter().map(|q| q.rule).collect::<Vec<_>>(),
                RULE_IDS.to_vec()
            );
            for q in &quality {
                if q.planted > 0 {
                    assert_eq!(q.recall, Some(1.0), "{day}: {q:?}");
                    *recalled.entry(q.rule).or_default() += 1;
                }
                assert_eq!(q.false_positives, 0, "{day}: {q:?}");
                assert_eq!(q.true_positives > 0, q.precision.is_some(), "{q:?}");
            }
            for case in sc
                .planted
                .iter()
                .filter(|c| c.category != Category::Planted)
            {
                let loud: Vec<&Finding> = findings
                    .iter()
                    .filter(|f| f.student == case.student && f.severity >= Severity::Warning)
                    .collect();
                assert!(loud.is_empty(), "{day}: {case:?} has {loud:?}");
            }
        }
        assert_eq!(
            recalled.keys().copied().collect::<Vec<_>>().len(),
            RULE_IDS.len(),
            "every rule was planted on one of the days: {recalled:?}"
        );
    }

    /// The counting definitions, on findings made up for known students.
    #[test]
    fn counts_follow_the_definitions() {
        let sc = Scenario::generate(4, 150, d("2026-03-16"));
        let student = |plant: &str| {
            sc.planted
                .iter()
                .find(|c| c.plant == plant)
                .map(|c| c.student.clone())
                .unwrap()
        };
        let clean = sc
            .planted
            .iter()
            .find(|c| c.category == Category::Clean)
            .map(|c| c.student.clone())
            .unwrap();
        let finding = |s: &StudentId, severity| Finding {
            student: s.clone(),
            rule: "lateness".to_string(),
            severity,
            period: "x".to_string(),
            value: 0,
            evidence: Vec::new(),
        };
        let findings = vec![
            // Planted lateness/warning found at warning: found and a true positive.
            finding(&student("lateness/warning"), Severity::Warning),
            // Planted lateness/critical found only at warning: a true positive, not found.
            finding(&student("lateness/critical"), Severity::Warning),
            // A student planted for another rule: incidental.
            finding(&student("consecutive_days/critical"), Severity::Critical),
            // A near miss and a clean student: false positives; a watch counts for nothing.
            finding(&student("lateness/near-miss"), Severity::Warning),
            finding(&clean, Severity::Critical),
            finding(&clean, Severity::Watch),
        ];
        let q = rule_quality(&sc, &findings);
        let late = q.iter().find(|q| q.rule == "lateness").unwrap();
        assert_eq!(
            (
                late.planted,
                late.found_planted,
                late.true_positives,
                late.false_positives,
                late.incidental
            ),
            (2, 1, 2, 2, 1)
        );
        assert_eq!(late.precision, Some(0.5));
        assert_eq!(late.recall, Some(0.5));
        let rate = q.iter().find(|q| q.rule == "absence_rate").unwrap();
        assert_eq!(
            (rate.planted, rate.precision, rate.recall),
            (3, None, Some(0.0))
        );
    }
}
