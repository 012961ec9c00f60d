//! Shared setup of the sync tests: simulated schools, configs written and loaded like a real
//! one, clients with short backoffs, and store dumps to compare.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use fehlzeiten::config::{self, Config, SchoolConfig};
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{self, Scenario, SimConfig, SimHandle};
use fehlzeiten::store::{SchoolState, Store};
use fehlzeiten::untis::{ClientOptions, UntisClient};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

/// A simulated school: its scenario and the simulator serving it.
pub struct SimSchool {
    pub id: String,
    pub scenario: Arc<Scenario>,
    pub sim_config: SimConfig,
    pub sim: SimHandle,
}

/// The reference day every sync test is set on (a school day with history behind it).
pub fn reference_day() -> NaiveDate {
    Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap())
}

pub async fn sim_school(id: &str, seed: u64, students: usize, sim_config: SimConfig) -> SimSchool {
    let scenario = Arc::new(Scenario::generate(seed, students, reference_day()));
    let sim = sim::start(
        scenario.clone(),
        sim_config.clone(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    SimSchool {
        id: id.to_string(),
        scenario,
        sim_config,
        sim,
    }
}

/// A config with these schools (file transport), written to `dir` and loaded by the real
/// loader.
pub fn write_config(dir: &Path, schools: &[&SimSchool]) -> Config {
    let mut text =
        "[daemon]\ndata_dir = \"state\"\n\n[mail]\nfrom = \"fehlzeiten@schule.example\"\n\
                    transport = \"file\"\nfile_dir = \"mails\"\n\n"
            .to_string();
    for s in schools {
        let secret = format!("{}.untis.secret", s.id);
        let path = dir.join(&secret);
        std::fs::write(&path, format!("{}\n", s.sim_config.password)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let snippet = SnippetSchool {
            id: s.id.clone(),
            name: format!("Schule {}", s.id),
            password_file: secret,
            social_workers: vec![format!("sozial@{}.example", s.id)],
        };
        text.push_str(&config_snippet(
            &s.scenario,
            &s.sim.base_url(),
            &s.sim_config,
            &snippet,
        ));
        text.push('\n');
    }
    let path = dir.join("fehlzeiten.toml");
    std::fs::write(&path, &text).unwrap();
    config::load(&path).unwrap_or_else(|e| panic!("{:?}", e.problems))
}

/// Backoffs of milliseconds, a 1 s request timeout, and the given page size.
pub fn fast_options(page_limit: usize) -> ClientOptions {
    ClientOptions {
        page_limit,
        base_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_secs(3),
        ..ClientOptions::default()
    }
}

pub fn client(school: &SchoolConfig, page_limit: usize) -> UntisClient {
    let mut untis = school.untis.clone();
    untis.request_timeout = std::time::Duration::from_secs(1);
    UntisClient::with_options(&untis, fast_options(page_limit)).unwrap()
}

/// School-local `h:m` on `day`, as UTC.
pub fn at(school: &SchoolConfig, day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    school
        .timezone
        .from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// The morning sync of the reference day, and one a quarter of an hour later.
pub fn morning(school: &SchoolConfig) -> (DateTime<Utc>, DateTime<Utc>) {
    let t1 = at(school, reference_day(), 7, 15);
    (t1, t1 + Duration::minutes(15))
}

pub type Dump = Vec<(String, String, Vec<u8>)>;

/// Every stored row of the school except its sync state (which records each attempt).
pub fn data_dump(store: &Store, school: &str) -> Dump {
    store
        .dump_school(school)
        .unwrap()
        .into_iter()
        .filter(|(table, _, _)| table != "school_state")
        .collect()
}

/// The parts of the sync state that only a successful sync may change.
pub fn durable_state(store: &Store, school: &str) -> SchoolState {
    let mut s = store.school_state(school).unwrap();
    s.last_sync = None;
    s
}

/// A readable first difference of two dumps.
pub fn first_difference(a: &Dump, b: &Dump) -> Option<String> {
    let show = |r: &(String, String, Vec<u8>)| {
        format!("{}[{}] = {}", r.0, r.1, String::from_utf8_lossy(&r.2))
    };
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return Some(format!("{}\n  vs\n{}", show(x), show(y)));
        }
    }
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!("extra on the left: {}", show(&a[b.len()]))),
        std::cmp::Ordering::Less => Some(format!("extra on the right: {}", show(&b[a.len()]))),
    }
}

pub fn assert_same(a: &Dump, b: &Dump, what: &str) {
    if let Some(diff) = first_difference(a, b) {
        panic!(
            "{what}: stores differ ({} vs {} rows): {diff}",
            a.len(),
            b.len()
        );
    }
}

pub fn open_store(dir: &Path) -> Store {
    Store::open(dir).unwrap()
}
