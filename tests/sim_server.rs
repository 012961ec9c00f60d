//! The WebUntis simulator speaks SPEC §3's contract: token flow, Bearer checks, OneRoster
//! paging and filters, absencetimes validation and data, request log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use fehlzeiten::sim::scenario::Scenario;
use fehlzeiten::sim::server::{SimConfig, SimHandle, start};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 16).unwrap()
}

async fn sim_with(config: SimConfig) -> SimHandle {
    let scenario = Arc::new(Scenario::generate(1, 120, today()));
    start(scenario, config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn sim() -> SimHandle {
    sim_with(SimConfig::default()).await
}

fn token_url(sim: &SimHandle, tenant: &str) -> String {
    format!("{}/WebUntis/api/sso/v3/{tenant}/token", sim.base_url())
}

async fn token(sim: &SimHandle) -> String {
    let cfg = SimConfig::default();
    let resp = reqwest::Client::new()
        .post(token_url(sim, &cfg.tenant_id))
        .basic_auth(&cfg.client_id, Some(&cfg.password))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn get(
    sim: &SimHandle,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .unwrap()
}

const ABSENCES: &str = "/WebUntis/api/rest/extern/v1/classreg/students/absencetimes";

#[tokio::test]
async fn token_flow_and_credential_errors() {
    let sim = sim().await;
    let cfg = SimConfig::default();
    let client = reqwest::Client::new();

    let ok = client
        .post(token_url(&sim, "1234567"))
        .basic_auth("fehlzeiten", Some("sim-password"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 180);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);
    assert_eq!(sim.token_count(), 1);

    let second = token(&sim).await;
    assert_ne!(
        second,
        body["access_token"].as_str().unwrap(),
        "tokens are random"
    );
    assert_eq!(sim.token_count(), 2);

    // (tenant, client id, password, grant_type, status, OAuth error)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        StatusCode,
        &'a str,
    );
    let cases: [Case; 5] = [
        (
            "1234567",
            "fehlzeiten",
            "wrong",
            Some("client_credentials"),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "999",
            "fehlzeiten",
            "sim-password",
            Some("client_credentials"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "1234567",
            "someone",
            "sim-password",
            Some("client_credentials"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "1234567",
            "fehlzeiten",
            "sim-password",
            None,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "1234567",
            "fehlzeiten",
            "sim-password",
            Some("password"),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
    ];
    for (tenant, client_id, password, grant, status, error) in cases {
        let mut req = client
            .post(token_url(&sim, tenant))
            .basic_auth(client_id, Some(password));
        req = match grant {
            Some(g) => req.form(&[("grant_type", g)]),
            None => req.form(&[("scope", "x")]),
        };
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.status(),
            status,
            "{tenant} {client_id} {password} {grant:?}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error);
    }

    // No client authentication at all, and a broken Basic header.
    let resp = client
        .post(token_url(&sim, &cfg.tenant_id))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .post(token_url(&sim, &cfg.tenant_id))
        .header("Authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .get(token_url(&sim, &cfg.tenant_id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(sim.token_count(), 2, "failed requests issue no token");

    let log = sim.requests();
    assert_eq!(log.len(), 10);
    assert!(log.iter().all(|r| r.token_request));
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/WebUntis/api/sso/v3/1234567/token");
    assert_eq!(log[2].status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn data_routes_need_a_valid_token() {
    let sim = sim().await;
    let client = reqwest::Client::new();
    for path in ["/ims/oneroster/v1p1/users", ABSENCES] {
        let url = format!("{}{path}", sim.base_url());
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["errorCode"], "UNAUTHORIZED");
        assert!(body["requestId"].is_string());

        let resp = client
            .get(&url)
            .bearer_auth("made-up")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = client
            .get(&url)
            .header(
                "Authorization",
                HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let log = sim.requests();
    assert!(log.iter().all(|r| r.status == 401 && !r.token_request));
}

#[tokio::test]
async fn tokens_expire_on_the_simulator_clock() {
    let sim = sim_with(SimConfig {
        token_lifetime: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    let t = token(&sim).await;
    let path = "/ims/oneroster/v1p1/academicSessions";
    assert_eq!(get(&sim, &t, path, &[]).await.status(), StatusCode::OK);
    sim.advance_clock(Duration::from_secs(59));
    assert_eq!(get(&sim, &t, path, &[]).await.status(), StatusCode::OK);
    sim.advance_clock(Duration::from_secs(2));
    let expired = get(&sim, &t, path, &[]).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let fresh = token(&sim).await;
    assert_eq!(get(&sim, &fresh, path, &[]).await.status(), StatusCode::OK);
    assert_eq!(sim.token_count(), 2);
}

#[tokio::test]
async fn oneroster_pages_students_with_total_count() {
    let sim = sim().await;
    let t = token(&sim).await;
    let expected: BTreeSet<String> = sim
        .scenario()
        .expected_roster()
        .students
        .iter()
        .map(|s| s.id.0.clone())
        .collect();
    let mut seen = BTreeSet::new();
    let mut offset = 0;
    let limit = 17;
    loop {
        let resp = get(
            &sim,
            &t,
            "/ims/oneroster/v1p1/users",
            &[
                ("filter", "role='student'"),
                ("limit", &limit.to_string()),
                ("offset", &offset.to_string()),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let total: usize = resp.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(total, expected.len());
        let body: Value = resp.json().await.unwrap();
        let page = body["users"].as_array().unwrap();
        for u in page {
            assert_eq!(u["role"], "student");
            let ids = u["userIds"].as_array().unwrap();
            assert!(ids.iter().any(|i| i["type"] == "person-id"));
            assert!(ids.iter().any(|i| i["type"] == "external-person-id"));
            assert!(
                u.get("username").is_some() && u.get("metadata").is_some(),
                "extra fields to drop"
            );
            assert!(
                seen.insert(u["sourcedId"].as_str().unwrap().to_string()),
                "no duplicates"
            );
        }
        offset += limit;
        if page.len() < limit {
            assert_eq!(page.len(), expected.len() % limit, "short last page");
            break;
        }
    }
    assert_eq!(seen, expected);
    let unlisted = sim
        .scenario()
        .students
        .iter()
        .filter(|s| !s.has_account)
        .count();
    assert!(unlisted >= 1);
    assert_eq!(expected.len() + unlisted, sim.scenario().students.len());
}

#[tokio::test]
async fn oneroster_roles_classes_enrollments_and_sessions() {
    let sim = sim().await;
    let t = token(&sim).await;
    let sc = sim.scenario().clone();

    let resp = get(
        &sim,
        &t,
        "/ims/oneroster/v1p1/users",
        &[("filter", "role='teacher'"), ("limit", "1000")],
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    let teachers = body["users"].as_array().unwrap();
    assert_eq!(teachers.len(), sc.teachers.len());
    assert!(teachers.iter().all(
        |u| u["role"] == "teacher" && u["email"].as_str().unwrap().ends_with("@schule.example")
    ));

    let resp = get(&sim, &t, "/ims/oneroster/v1p1/teachers", &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["users"].as_array().unwrap().len(),
        sc.teachers.len().min(100)
    );

    let body: Value = get(
        &sim,
        &t,
        "/ims/oneroster/v1p1/classes",
        &[("limit", "1000")],
    )
    .await
    .json()
    .await
    .unwrap();
    let classes = body["classes"].as_array().unwrap();
    let homerooms: Vec<&Value> = classes
        .iter()
        .filter(|c| c["classType"] == "homeroom")
        .collect();
    assert_eq!(homerooms.len(), sc.klassen.len());
    assert!(classes.iter().any(|c| c["classType"] == "scheduled"));
    let titles: BTreeSet<&str> = homerooms
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains("7a"));

    let body: Value = get(
        &sim,
        &t,
        "/ims/oneroster/v1p1/enrollments",
        &[("limit", "100000")],
    )
    .await
    .json()
    .await
    .unwrap();
    let enrollments = body["enrollments"].as_array().unwrap();
    for k in &sc.klassen {
        let primary: Vec<&Value> = enrollments
            .iter()
            .filter(|e| e["class"]["sourcedId"] == k.id.as_str() && e["role"] == "teacher")
            .filter(|e| e["primary"] == true || e["primary"] == "true")
            .collect();
        assert_eq!(primary.len(), 1, "{}", k.name);
        assert_eq!(primary[0]["user"]["sourcedId"], k.class_teacher.as_str());
    }
    assert!(
        enrollments.iter().any(|e| e["primary"] == "true"),
        "lenient booleans exercised"
    );

    let body: Value = get(&sim, &t, "/ims/oneroster/v1p1/academicSessions", &[])
        .await
        .json()
        .await
        .unwrap();
    let active: Vec<&Value> = body["academicSessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "active" && s["type"] == "schoolYear")
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["startDate"], "2025-08-01");
    assert_eq!(active[0]["endDate"], "2026-07-31");
    assert_eq!(active[0]["title"], "2025-2026");

    let id = sc.teachers[0].id.clone();
    let one: Value = get(&sim, &t, &format!("/ims/oneroster/v1p1/users/{id}"), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["user"]["sourcedId"], id.as_str());
    let missing = get(&sim, &t, "/ims/oneroster/v1p1/users/nobody", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oneroster_filters_and_bad_parameters() {
    let sim = sim().await;
    let t = token(&sim).await;
    let users = "/ims/oneroster/v1p1/users";
    let all: usize = get(&sim, &t, users, &[]).await.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let since = "2025-08-19T23:59:59Z";
    let resp = get(
        &sim,
        &t,
        users,
        &[
            ("filter", &format!("dateLastModified>'{since}'")),
            ("limit", "1000"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let changed = body["users"].as_array().unwrap();
    assert!(
        !changed.is_empty() && changed.len() < all,
        "{} of {all}",
        changed.len()
    );
    assert!(
        changed
            .iter()
            .all(|u| u["dateLastModified"].as_str().unwrap() > since)
    );

    let combined = get(
        &sim,
        &t,
        users,
        &[(
            "filter",
            &format!("role='student' AND dateLastModified>'{since}'"),
        )],
    )
    .await;
    assert_eq!(combined.status(), StatusCode::OK);

    for (query, minor) in [
        (vec![("limit", "0")], "invaliddata"),
        (vec![("limit", "-5")], "invaliddata"),
        (vec![("limit", "many")], "invaliddata"),
        (vec![("offset", "-1")], "invaliddata"),
        (vec![("filter", "shoeSize='42'")], "invalid_filter_field"),
        (vec![("filter", "role=student")], "invaliddata"),
        (vec![("sort", "shoeSize")], "invalid_sort_field"),
    ] {
        let resp = get(&sim, &t, users, &query).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["imsx_codeMajor"], "failure");
        assert_eq!(
            body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"],
            minor
        );
    }

    let sorted: Value = get(
        &sim,
        &t,
        users,
        &[
            ("filter", "role='teacher'"),
            ("sort", "familyName"),
            ("orderBy", "desc"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let names: Vec<&str> = sorted["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["familyName"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]), "{names:?}");
}

#[tokio::test]
async fn absencetimes_serves_a_klasse() {
    let sim = sim().await;
    let t = token(&sim).await;
    let sc = sim.scenario().clone();
    let (start, end) = ("2025-08-01T00:00:00", "2026-03-16T23:59:59");
    let mut total_records = 0;
    for k in &sc.klassen {
        let resp = get(
            &sim,
            &t,
            ABSENCES,
            &[("start", start), ("end", end), ("className", &k.name)],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        for s in body["students"].as_array().unwrap() {
            let untis_id = s["studentId"].as_i64().unwrap();
            let student = sc.students.iter().find(|x| x.untis_id == untis_id).unwrap();
            assert_eq!(sc.klassen[student.klasse].name, k.name);
            assert_eq!(s["studentExternKey"], student.extern_key.as_str());
            assert!(
                s["totals"].is_object()
                    && s["excusedTotals"].is_object()
                    && s["unexcusedTotals"].is_object()
            );
            let times = s["absenceTimes"].as_array().unwrap();
            let expected = sc
                .absences
                .iter()
                .filter(|a| a.student == student.id)
                .count();
            assert_eq!(times.len(), expected);
            for a in times {
                assert!(
                    ["EXCUSED", "UNEXCUSED", "PENDING"].contains(&a["status"].as_str().unwrap())
                );
                assert!(["ABSENCE", "DELAY"].contains(&a["type"].as_str().unwrap()));
                assert!(a["minutes"].as_u64().unwrap() > 0);
                assert_eq!(a["start"].as_str().unwrap().len(), 19);
            }
            total_records += times.len();
        }
    }
    assert_eq!(
        total_records,
        sc.absences.len(),
        "every record served, unlisted students included"
    );

    // A narrow window: only that day's records.
    let a = &sc.absences[0];
    let student = sc.students.iter().find(|s| s.id == a.student).unwrap();
    let day = a.date().format("%Y-%m-%d").to_string();
    let resp = get(
        &sim,
        &t,
        ABSENCES,
        &[
            ("start", &format!("{day}T00:00:00")),
            ("end", &format!("{day}T23:59:59")),
            ("studentExternKey", &student.extern_key),
        ],
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    let students = body["students"].as_array().unwrap();
    assert_eq!(students.len(), 1);
    assert!(
        students[0]["absenceTimes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["start"].as_str().unwrap().starts_with(&day))
    );

    let resp = get(
        &sim,
        &t,
        ABSENCES,
        &[("start", start), ("end", end), ("className", "13z")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        serde_json::json!({"students": []})
    );
    // Invalid UTF-8 in a class name is just an unknown class.
    let resp = reqwest::Client::new()
        .get(format!(
            "{}{ABSENCES}?start={start}&end={end}&className=%FF%FE",
            sim.base_url()
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn absencetimes_validates_its_parameters() {
    let sim = sim().await;
    let t = token(&sim).await;
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("end", "2026-03-16T23:59:59"), ("className", "5a")],
            "start",
        ),
        (
            &[("start", "2026-03-01T00:00:00"), ("className", "5a")],
            "end",
        ),
        (
            &[
                ("start", "yesterday"),
                ("end", "2026-03-16T23:59:59"),
                ("className", "5a"),
            ],
            "start",
        ),
        (
            &[
                ("start", "2026-03-16T00:00:00"),
                ("end", "2026-03-01T00:00:00"),
                ("className", "5a"),
            ],
            "start",
        ),
        (
            &[
                ("start", "2025-07-01T00:00:00"),
                ("end", "2025-09-01T00:00:00"),
                ("className", "5a"),
            ],
            "end",
        ),
        (
            &[
                ("start", "2026-03-01T00:00:00"),
                ("end", "2026-03-16T23:59:59"),
            ],
            "className",
        ),
        (
            &[
                ("start", "%FF"),
                ("end", "2026-03-16T23:59:59"),
                ("className", "5a"),
            ],
            "start",
        ),
    ];
    for (query, path) in cases {
        let resp = get(&sim, &t, ABSENCES, query).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query:?}");
        let body: Value = resp.json().await.unwrap();
        let errors = body["validationErrors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["path"] == path),
            "{query:?}: {body}"
        );
        assert!(body["errorCode"].is_string() && body["requestId"].is_string());
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_the_log_sees_everything() {
    let sim = sim().await;
    let t = token(&sim).await;
    for path in [
        "/",
        "/WebUntis/api/rest/extern/v1/lessons",
        "/ims/oneroster/v1p1/gradebook",
        "/favicon.ico",
    ] {
        let resp = get(&sim, &t, path, &[]).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/ims/oneroster/v1p1/users", sim.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let log = sim.requests();
    assert_eq!(log.len(), 6);
    assert!(log[0].token_request && log[0].status == 200);
    assert_eq!(log[1].path, "/");
    assert_eq!(log[5].method, "POST");
    assert!(log[1..].iter().all(|r| !r.token_request));

    let q = get(&sim, &t, "/ims/oneroster/v1p1/users", &[("limit", "5")]).await;
    assert_eq!(q.status(), StatusCode::OK);
    assert_eq!(
        sim.requests().last().unwrap().query.as_deref(),
        Some("limit=5")
    );

    let addr = sim.addr();
    sim.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped"
    );
}
