//! `simulate-untis`: the simulator on its own, with a config snippet that syncs it.

use super::{SimConfig, start};
use crate::sim::scenario::Scenario;
use chrono::NaiveDate;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the snippet tells the admin to put the simulator's password.
const SECRET_PATH: &str = "/etc/fehlzeiten/sim.untis.secret";

/// A `[[school]]` section (SPEC §2) that makes fehlzeiten sync the simulator at `api_base`.
pub fn config_snippet(
    scenario: &Scenario,
    api_base: &str,
    config: &SimConfig,
    school: &SnippetSchool,
) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(s, "[[school]]");
    let _ = writeln!(s, "id = \"{}\"", school.id);
    let _ = writeln!(s, "name = \"{}\"", school.name);
    let _ = writeln!(s, "timezone = \"Europe/Berlin\"");
    let _ = writeln!(s, "state = \"{}\"", scenario.state);
    let _ = writeln!(s, "holidays = [");
    for h in &scenario.holidays {
        let _ = writeln!(
            s,
            "  {{ from = \"{}\", to = \"{}\", name = \"{}\" }},",
            h.from, h.to, h.name
        );
    }
    let _ = writeln!(s, "]");
    if scenario.half_year_starts.is_empty() {
        let _ = writeln!(
            s,
            "# half_year_starts: not set, so the school year start and 1 February"
        );
    } else {
        let starts: Vec<String> = scenario
            .half_year_starts
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect();
        let _ = writeln!(s, "half_year_starts = [{}]", starts.join(", "));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "[school.untis]");
    let _ = writeln!(s, "api_base = \"{api_base}\"");
    let _ = writeln!(s, "tenant_id = \"{}\"", config.tenant_id);
    let _ = writeln!(s, "client_id = \"{}\"", config.client_id);
    let _ = writeln!(
        s,
        "password_file = \"{}\"   # contains: {}",
        school.password_file, config.password
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "[school.periods]");
    for p in &scenario.periods {
        let _ = writeln!(
            s,
            "{} = \"{}-{}\"",
            p.number,
            p.start.format("%H:%M"),
            p.end.format("%H:%M")
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "[school.recipients]");
    let list: Vec<String> = school
        .social_workers
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let _ = writeln!(s, "social_workers = [{}]", list.join(", "));
    s
}

/// The names a [`config_snippet`] gives its school.
pub struct SnippetSchool {
    pub id: String,
    pub name: String,
    /// Where the config expects the simulator's password.
    pub password_file: String,
    pub social_workers: Vec<String>,
}

impl SnippetSchool {
    /// What `simulate-untis` suggests.
    pub fn standalone(scenario: &Scenario) -> SnippetSchool {
        SnippetSchool {
            id: "sim-school".to_string(),
            name: format!("{} (Simulator)", scenario.school_name),
            password_file: SECRET_PATH.to_string(),
            social_workers: vec!["sozialarbeit@schule.example".to_string()],
        }
    }
}

/// What `simulate-untis` prints: where the simulator listens, its credentials, the scenario
/// and the config snippet.
fn banner(scenario: &Scenario, base_url: &str, config: &SimConfig) -> String {
    let planted = scenario
        .planted
        .iter()
        .filter(|c| c.category == crate::sim::scenario::Category::Planted)
        .count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "WebUntis-Simulator läuft / WebUntis simulator listening on {base_url}"
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Test credentials (not secrets): tenant {}, client {}, password {}",
        config.tenant_id, config.client_id, config.password
    );
    let _ = writeln!(
        s,
        "Scenario: seed {}, {} students in {} Klassen, school year {}, reference day {}, {} planted cases",
        scenario.seed,
        scenario.students.len(),
        scenario.klassen.len(),
        scenario.school_year.label(),
        scenario.today,
        planted
    );
    let _ = writeln!(
        s,
        "Note: all data lies on or before {}; absences after it do not exist.",
        scenario.today
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Write the password into {SECRET_PATH} (mode 0600, owned by the fehlzeiten user) and add:"
    );
    let _ = writeln!(s);
    s.push_str(&config_snippet(
        scenario,
        base_url,
        config,
        &SnippetSchool::standalone(scenario),
    ));
    let _ = writeln!(s);
    let _ = writeln!(s, "Stop with Ctrl-C.");
    s
}

/// Runs the simulator on `listen` until `shutdown` completes, printing the URL, the
/// credentials and a `[[school]]` config snippet to stdout.
pub async fn run_standalone(
    listen: SocketAddr,
    students: usize,
    seed: u64,
    today: NaiveDate,
    shutdown: impl Future,
) -> Result<(), String> {
    let scenario = Arc::new(Scenario::generate(seed, students, today));
    let config = SimConfig::default();
    let handle = start(Arc::clone(&scenario), config.clone(), listen)
        .await
        .map_err(|e| {
            format!("cannot listen on {listen}: {e}; choose another address with --listen")
        })?;
    print!("{}", banner(&scenario, &handle.base_url(), &config));
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    #[tokio::test]
    async fn standalone_serves_until_shutdown() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        let listen = "127.0.0.1:0".parse().unwrap();
        run_standalone(listen, 40, 1, today, async {})
            .await
            .unwrap();
        // A port that is taken is a clear error, not a panic.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = run_standalone(taken.local_addr().unwrap(), 40, 1, today, async {})
            .await
            .unwrap_err();
        assert!(err.contains("cannot listen"), "{err}");
    }

    #[test]
    fn snippet_is_a_valid_school_section() {
        let sc = Scenario::generate(5, 40, NaiveDate::from_ymd_opt(2026, 3, 16).unwrap());
        let snippet = config_snippet(
            &sc,
            "http://127.0.0.1:8080",
            &SimConfig::default(),
            &SnippetSchool::standalone(&sc),
        );
        let file = format!(
            "[mail]\nfrom = \"x@schule.example\"\ntransport = \"file\"\nfile_dir = \"out\"\n\n{snippet}"
        );
        let parsed: ConfigFile = toml::from_str(&file).unwrap_or_else(|e| panic!("{e}\n{file}"));
        let school = &parsed.school[0];
        assert_eq!(school.state, "NW");
        assert_eq!(school.holidays.len(), sc.holidays.len());
        assert_eq!(school.periods.len(), 8);
        assert_eq!(school.periods["3"], "09:35-10:20");
        assert_eq!(school.untis.api_base, "http://127.0.0.1:8080");
        assert_eq!(school.untis.tenant_id, "1234567");
        let text = banner(&sc, "http://127.0.0.1:8080", &SimConfig::default());
        assert!(text.contains("sim-password") && text.contains("http://127.0.0.1:8080"));
    }
}
