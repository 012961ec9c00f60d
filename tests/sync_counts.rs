//! As few requests as possible, for a school of 1,000 students: a full sync makes no more
//! requests than the paging lower bound, an incremental one without changes at most one per
//! Klasse plus five.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sync_common;

use fehlzeiten::sim::SimConfig;
use fehlzeiten::sync::{SyncKind, sync_school};
use std::time::Instant;
use sync_common::*;

/// Records a OneRoster list holds, from its `X-Total-Count` (asked with a token of our own;
/// the client under test never relies on the header).
async fn total(school: &SimSchool, token: &str, resource: &str, filter: Option<&str>) -> u64 {
    let mut query = vec![("limit", "1".to_string())];
    if let Some(f) = filter {
        query.push(("filter", f.to_string()));
    }
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/ims/oneroster/v1p1/{resource}",
            school.sim.base_url()
        ))
        .bearer_auth(token)
        .query(&query)
        .send()
        .await
        .unwrap();
    resp.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn token(school: &SimSchool) -> String {
    let cfg = &school.sim_config;
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/WebUntis/api/sso/v3/{}/token",
            school.sim.base_url(),
            cfg.tenant_id
        ))
        .basic_auth(&cfg.client_id, Some(&cfg.password))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Pages a list of `n` records takes: full pages, then the short one that ends it (an empty
/// page when `n` is a multiple of the limit; `X-Total-Count` is not relied on).
fn pages(n: u64, limit: u64) -> u64 {
    n / limit + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_for_a_1000_student_school() {
    let school = sim_school("gym-gross", 21, 1000, SimConfig::default()).await;
    let klassen = school.scenario.klassen.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&school]);
    let sc = &config.schools[0];
    let (t1, t2) = morning(sc);

    let own = token(&school).await;
    let lists = [
        ("academicSessions", None),
        ("classes", None),
        ("users", Some("role='student'")),
        ("users", Some("role='teacher'")),
        ("enrollments", None),
    ];
    let mut sizes = Vec::new();
    for (resource, filter) in lists {
        sizes.push((
            resource,
            filter,
            total(&school, &own, resource, filter).await,
        ));
    }

    for limit in [fehlzeiten::untis::PAGE_LIMIT as u64, 100] {
        let store = open_store(&dir.path().join(format!("state-{limit}")));
        let c = client(sc, limit as usize);
        let log_before = school.sim.requests().len();
        let started = Instant::now();
        let full = sync_school(&store, sc, &c, t1).await.unwrap();
        let took = started.elapsed();
        assert_eq!(full.kind, SyncKind::Full);
        assert_eq!(full.klassen as u64, klassen);

        let list_pages: u64 = sizes.iter().map(|(_, _, n)| pages(*n, limit)).sum();
        let tokens = took.as_secs().div_ceil(180).max(1);
        let bound = list_pages + klassen + tokens;
        let made = u64::from(full.data_requests + full.token_requests);
        let served = (school.sim.requests().len() - log_before) as u64;
        eprintln!(
            "1,000 students, page limit {limit}: full sync {made} requests ({} token) in {took:?}; \
             lower bound {bound} = list pages {list_pages} ({}) + {klassen} Klassen + {tokens} token",
            full.token_requests,
            sizes
                .iter()
                .map(|(r, f, n)| format!(
                    "{r}{}: {n} records = {} pages",
                    f.map(|f| format!("[{f}]")).unwrap_or_default(),
                    pages(*n, limit)
                ))
                .collect::<Vec<_>>()
                .join(", "),
        );
        assert_eq!(made, served, "the client's count matches the server's log");
        assert!(
            made <= bound,
            "full sync: {made} requests, lower bound {bound}"
        );
        assert_eq!(
            made, bound,
            "nothing below the lower bound is possible either"
        );

        let log_before = school.sim.requests().len();
        let incremental = sync_school(&store, sc, &c, t2).await.unwrap();
        assert_eq!(incremental.kind, SyncKind::Incremental);
        let made = u64::from(incremental.data_requests + incremental.token_requests);
        let served = (school.sim.requests().len() - log_before) as u64;
        eprintln!(
            "1,000 students, page limit {limit}: incremental sync without changes {made} requests \
             ({} token, {} roster records re-read in the overlap); allowed {klassen} Klassen + 5 = {}",
            incremental.token_requests,
            incremental.roster_changes,
            klassen + 5
        );
        assert_eq!(made, served);
        assert!(made <= klassen + 5, "incremental: {made} requests");
        assert_eq!(
            made,
            klassen + 3,
            "classes, users and enrollments one page each, one absences request per Klasse, \
             the token still cached"
        );

        // The same from a fresh client (a `fehlzeiten sync` run): one token more.
        let fresh = client(sc, limit as usize);
        let again = sync_school(&store, sc, &fresh, t2 + chrono::Duration::minutes(15))
            .await
            .unwrap();
        let made = u64::from(again.data_requests + again.token_requests);
        eprintln!(
            "1,000 students, page limit {limit}: incremental sync from a fresh client {made} requests"
        );
        assert_eq!(made, klassen + 4);
    }
}
