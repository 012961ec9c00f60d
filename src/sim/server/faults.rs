//! Switchable misbehaviour of the simulator: what a school's network and the Untis platform do
//! to a client (429 with `Retry-After`, 5xx, slow or cut-off answers, dropped connections,
//! tokens revoked or expired mid-pagination) and data that changes while a sync runs (records
//! inserted between pages, hard deletes, moves, excuses decided later).
//!
//! Everything is deterministic: requests are numbered from 1 in the order they arrive after
//! [`super::SimHandle::set_faults`], and rules count the requests they match.

use crate::model::{Absence, ExcuseStatus};
use std::time::Duration;

/// Which requests a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    Any,
    /// The token endpoint.
    Token,
    /// Every route but the token endpoint.
    Data,
    /// One OneRoster collection by its path segment, e.g. `users` or `enrollments`.
    OneRoster(String),
    AbsenceTimes,
}

/// Which of the matching requests a rule applies to (1-based, counted per rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Matching requests `first ..= first + count - 1`.
    Range {
        first: u64,
        count: u64,
    },
    /// The `n`-th matching request and every later one.
    From(u64),
    /// Every `n`-th matching request (n, 2n, 3n, …).
    Every(u64),
}

impl When {
    /// Only the `n`-th matching request.
    pub fn nth(n: u64) -> When {
        When::Range { first: n, count: 1 }
    }

    pub(super) fn applies(self, hit: u64) -> bool {
        match self {
            When::Always => true,
            When::Range { first, count } => hit >= first && hit < first.saturating_add(count),
            When::From(n) => hit >= n,
            When::Every(n) => n > 0 && hit.is_multiple_of(n),
        }
    }
}

/// A `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    /// An HTTP date this far in the future (wall clock, rounded up to whole seconds).
    DateIn(Duration),
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status (and an Untis error body) instead of serving the request.
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    /// Serve the request normally after this pause.
    Delay(Duration),
    /// Serve the request, but cut the body off after half of it (a 200 with invalid JSON).
    Truncate,
    /// Close the connection without an answer.
    Close,
}

impl FaultAction {
    pub fn status(status: u16) -> FaultAction {
        FaultAction::Status {
            status,
            retry_after: None,
        }
    }

    pub(super) fn label(&self) -> String {
        match self {
            FaultAction::Status { status, .. } => format!("status {status}"),
            FaultAction::Delay(d) => format!("delay {} ms", d.as_millis()),
            FaultAction::Truncate => "truncate".to_string(),
            FaultAction::Close => "close".to_string(),
        }
    }
}

/// One rule: requests on `route`, selected by `when`, get `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub route: RouteMatch,
    pub when: When,
    pub action: FaultAction,
}

/// When a data change happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Right after the request with this number (since `set_faults`) was answered.
    AfterRequest(u64),
    /// Right after the first page (offset 0) of this OneRoster collection was answered, so
    /// the next page is computed on the changed data.
    AfterFirstPage(String),
}

/// A change of the simulated school's data. Records that change get a `dateLastModified`
/// later than every other record, as on a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataChange {
    /// A new student (with an account, no absences) in the Klasse of this name, listed first
    /// in `users` and `enrollments`, so later pages shift by one.
    InsertStudent { klasse: String },
    /// A hard delete without `tobedeleted`: a user (with their enrollments and register
    /// entries), a class or an enrollment just disappears.
    Vanish { sourced_id: String },
    /// The student's Klasse enrollment now names another Klasse; their register entries move.
    MoveStudent {
        sourced_id: String,
        to_klasse: String,
    },
    /// The record stays listed with `status = "tobedeleted"`.
    MarkToBeDeleted { sourced_id: String },
    /// A Klasse gets a new title; the register lists its students under the new name.
    RenameKlasse { sourced_id: String, title: String },
    /// Every register entry of the student (by WebUntis person id) gets this excuse status.
    SetExcuse { untis_id: i64, status: ExcuseStatus },
    /// A register entry for the student (by WebUntis person id); `absence.student` is ignored.
    AddAbsence { untis_id: i64, absence: Absence },
}

/// Switchable misbehaviour of the simulator. With the default every request is served normally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// The first rule that matches a request decides what happens to it.
    pub rules: Vec<FaultRule>,
    /// Every issued token is revoked before the request with one of these numbers is served.
    pub revoke_tokens_at: Vec<u64>,
    /// The simulator's clock moves by the duration before the request with this number is
    /// served (tokens expire mid-sync without a sleep).
    pub advance_clock_at: Vec<(u64, Duration)>,
    /// Data changes and when they happen.
    pub changes: Vec<(Trigger, DataChange)>,
}

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Adds a rule.
    pub fn rule(mut self, route: RouteMatch, when: When, action: FaultAction) -> Faults {
        self.rules.push(FaultRule {
            route,
            when,
            action,
        });
        self
    }

    pub fn revoke_tokens_at(mut self, request: u64) -> Faults {
        self.revoke_tokens_at.push(request);
        self
    }

    pub fn advance_clock_at(mut self, request: u64, by: Duration) -> Faults {
        self.advance_clock_at.push((request, by));
        self
    }

    pub fn change(mut self, trigger: Trigger, change: DataChange) -> Faults {
        self.changes.push((trigger, change));
        self
    }
}

/// The faults in force and what they have counted so far.
#[derive(Debug, Default)]
pub(super) struct Runtime {
    pub faults: Faults,
    /// Requests received since the faults were set.
    pub seen: u64,
    /// Matching requests per rule.
    pub hits: Vec<u64>,
    /// Whether each change has happened.
    pub done: Vec<bool>,
}

/// What the fault layer decided for one request before it is served.
#[derive(Debug, Default)]
pub(super) struct Decision {
    pub number: u64,
    pub action: Option<FaultAction>,
    pub revoke: bool,
    pub advance: Duration,
}

impl Decision {
    /// What the fault layer did, for the request log (`None`: nothing).
    pub fn label(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.revoke {
            parts.push("tokens revoked".to_string());
        }
        if !self.advance.is_zero() {
            parts.push(format!("clock +{} s", self.advance.as_secs()));
        }
        if let Some(a) = &self.action {
            parts.push(a.label());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

impl Runtime {
    pub fn new(faults: Faults) -> Runtime {
        Runtime {
            hits: vec![0; faults.rules.len()],
            done: vec![false; faults.changes.len()],
            faults,
            seen: 0,
        }
    }

    /// Numbers the request and picks its fault. Every rule that matches the route counts the
    /// request, so `When` refers to that rule's own matches.
    pub fn decide(&mut self, route: &RouteKind) -> Decision {
        self.seen += 1;
        let number = self.seen;
        let mut action = None;
        for (rule, hits) in self.faults.rules.iter().zip(self.hits.iter_mut()) {
            if !route.matches(&rule.route) {
                continue;
            }
            *hits += 1;
            if action.is_none() && rule.when.applies(*hits) {
                action = Some(rule.action.clone());
            }
        }
        Decision {
            number,
            action,
            revoke: self.faults.revoke_tokens_at.contains(&number),
            advance: self
                .faults
                .advance_clock_at
                .iter()
                .filter(|(n, _)| *n == number)
                .map(|(_, d)| *d)
                .sum(),
        }
    }

    /// The changes due after request `number` (a first page of `first_page`, if any) was
    /// answered; each happens once.
    pub fn due_changes(&mut self, number: u64, first_page: Option<&str>) -> Vec<DataChange> {
        let mut out = Vec::new();
        for ((trigger, change), done) in self.faults.changes.iter().zip(self.done.iter_mut()) {
            let due = match trigger {
                Trigger::AfterRequest(n) => *n == number,
                Trigger::AfterFirstPage(c) => first_page == Some(c.as_str()),
            };
            if due && !*done {
                *done = true;
                out.push(change.clone());
            }
        }
        out
    }
}

/// The route of a request as the fault rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RouteKind {
    Token,
    OneRoster(String),
    AbsenceTimes,
    Other,
}

impl RouteKind {
    fn matches(&self, m: &RouteMatch) -> bool {
        match m {
            RouteMatch::Any => true,
            RouteMatch::Token => *self == RouteKind::Token,
            RouteMatch::Data => *self != RouteKind::Token,
            RouteMatch::OneRoster(c) => matches!(self, RouteKind::OneRoster(x) if x == c),
            RouteMatch::AbsenceTimes => *self == RouteKind::AbsenceTimes,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_their_own_matches() {
        let faults = Faults::none()
            .rule(
                RouteMatch::OneRoster("users".into()),
                When::nth(2),
                FaultAction::status(503),
            )
            .rule(RouteMatch::Data, When::Every(3), FaultAction::status(429))
            .revoke_tokens_at(4);
        let mut rt = Runtime::new(faults);
        let users = RouteKind::OneRoster("users".into());
        let classes = RouteKind::OneRoster("classes".into());
        let got: Vec<(u64, Option<String>, bool)> = [
            &RouteKind::Token,
            &users,
            &classes,
            &users,
            &users,
            &RouteKind::AbsenceTimes,
            &RouteKind::AbsenceTimes,
        ]
        .into_iter()
        .map(|r| {
            let d = rt.decide(r);
            (d.number, d.action.map(|a| a.label()), d.revoke)
        })
        .collect();
        assert_eq!(
            got,
            vec![
                (1, None, false),
                (2, None, false),
                (3, None, false),
                (4, Some("status 503".into()), true),
                (5, None, false),
                (6, None, false),
                (7, Some("status 429".into()), false),
            ]
        );
    }

    #[test]
    fn changes_happen_once() {
        let mut rt = Runtime::new(
            Faults::none()
                .change(
                    Trigger::AfterFirstPage("users".into()),
                    DataChange::InsertStudent {
                        klasse: "5a".into(),
                    },
                )
                .change(
                    Trigger::AfterRequest(3),
                    DataChange::Vanish {
                        sourced_id: "x".into(),
                    },
                ),
        );
        assert!(rt.due_changes(1, Some("classes")).is_empty());
        assert_eq!(rt.due_changes(2, Some("users")).len(), 1);
        assert!(rt.due_changes(2, Some("users")).is_empty());
        assert_eq!(rt.due_changes(3, None).len(), 1);
        assert!(rt.due_changes(3, None).is_empty());
    }
}
