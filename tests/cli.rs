//! The operator commands as school IT runs them: `sync`, `evaluate`, `digest --preview` against
//! the simulator, and their failures (one line, exit 1, no data lost).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::NaiveDate;
use common::{text, write_secret};
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{self, Scenario, SimConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_fehlzeiten");

/// A config for one simulated school with the file transport; returns its path.
fn write_config(dir: &Path, scenario: &Scenario, api_base: &str, password: &str) -> PathBuf {
    write_secret(&dir.join("untis.secret"), password);
    let school = SnippetSchool {
        id: "gym-cli".into(),
        name: "Gymnasium CLI".into(),
        password_file: "untis.secret".into(),
        social_workers: vec!["sozial@schule.example".into()],
    };
    let text = format!(
        "[daemon]\ndata_dir = \"state\"\n\n[mail]\nfrom = \"fehlzeiten@schule.example\"\n\
         transport = \"file\"\nfile_dir = \"mails\"\n\n{}",
        config_snippet(scenario, api_base, &SimConfig::default(), &school)
    );
    let path = dir.join("fehlzeiten.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the binary on the blocking pool, so the in-process simulator keeps serving.
async fn run_async(config: &Path, args: &'static [&'static str]) -> Output {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || run(&config, args))
        .await
        .unwrap()
}

fn evaluate_json(config: &Path, at: &str) -> String {
    text(&run(config, &["evaluate", "--json", "--at", at]).stdout)
}

fn scenario() -> Arc<Scenario> {
    let today = Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap());
    Arc::new(Scenario::generate(3, 60, today))
}

/// A simulated school served on loopback and a config in a temp dir that syncs it.
struct School {
    scenario: Arc<Scenario>,
    sim: sim::SimHandle,
    dir: tempfile::TempDir,
    config: PathBuf,
    /// The scenario's reference day, for `--at`.
    at: String,
}

async fn school() -> School {
    let scenario = scenario();
    let sim = common::start_sim(scenario.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &scenario, &sim.base_url(), "sim-password");
    let at = scenario.today.to_string();
    School {
        scenario,
        sim,
        dir,
        config,
        at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_evaluate_and_preview_against_the_simulator() {
    let School {
        scenario,
        sim,
        dir,
        config,
        at,
    } = school().await;

    // Before any sync there is nothing to evaluate.
    let out = run(&config, &["evaluate", "--at", &at]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no findings"));

    let out = run_async(&config, &["sync"]).await;
    assert!(out.status.success(), "sync: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("gym-cli: ok: "), "{stdout}");
    assert!(
        stdout.contains(&format!("{} Klassen", scenario.klassen.len())),
        "{stdout}"
    );

    let out = run(&config, &["evaluate", "--json", "--at", &at]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!findings.is_empty());

    // A closed pipe (`evaluate | head`) ends the command quietly, not with an internal error.
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["evaluate", "--at", &at])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    // A silence shows in evaluate as muted, for that student only.
    let muted = findings[0]["student"]["id"].as_str().unwrap().to_string();
    let out = run(
        &config,
        &[
            "silence",
            "add",
            "--school",
            "gym-cli",
            "--student",
            &muted,
            "--until",
            "2099-01-01",
            "--reason",
            "Hilfeplan läuft",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&config, &["evaluate", "--json", "--at", &at]);
    let after: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(after.len(), findings.len());
    for f in &after {
        let is_muted = f["student"]["id"] == muted.as_str();
        assert_eq!(f["silenced"], is_muted, "{f}");
    }

    // The digest preview for a class teacher with findings in their Klasse.
    let klasse = findings[0]["student"]["klasse"].as_str().unwrap();
    let k = scenario.klassen.iter().find(|k| k.name == klasse).unwrap();
    let teacher = scenario
        .teachers
        .iter()
        .find(|t| t.id == k.class_teacher)
        .unwrap();
    let out = run(
        &config,
        &["digest", "--preview", "--to", &teacher.email, "--at", &at],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let preview = text(&out.stdout);
    assert!(preview.starts_with("Subject: "), "{preview}");
    assert!(preview.contains(klasse), "{preview}");
    let html = dir.path().join("preview.html");
    let out = run(
        &config,
        &[
            "digest",
            "--preview",
            "--to",
            &teacher.email,
            "--at",
            &at,
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read_to_string(&html).unwrap().contains("<html"));
    // A preview sends nothing and records nothing: the next real digest is unaffected.
    let out = run(
        &config,
        &["digest", "--preview", "--to", &teacher.email, "--at", &at],
    );
    assert_eq!(text(&out.stdout), preview);

    let out = run(
        &config,
        &["digest", "--preview", "--to", "nobody@schule.example"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );

    let out = run(&config, &["evaluate", "--school", "no-such-school"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no school `no-such-school`"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sync_names_the_school_and_keeps_the_data() {
    let School {
        scenario: _,
        sim,
        dir,
        config,
        at,
    } = school().await;
    let out = run_async(&config, &["sync"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = evaluate_json(&config, &at);

    // Wrong password: a clear message, exit 1, nothing deleted.
    write_secret(&dir.path().join("untis.secret"), "the-oidc-secret");
    let out = run_async(&config, &["sync"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("gym-cli: failed:") && err.contains("wrong password"),
        "{err}"
    );
    assert!(!err.contains("the-oidc-secret"), "the secret leaked: {err}");
    assert_eq!(evaluate_json(&config, &at), before);

    // The server is gone: the same.
    write_secret(&dir.path().join("untis.secret"), "sim-password");
    sim.shutdown().await;
    let out = run_async(&config, &["sync"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("gym-cli: failed:") && err.contains("cannot reach WebUntis"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(evaluate_json(&config, &at), before);
}

#[test]
fn a_missing_or_broken_config_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    for args in [
        &["sync"][..],
        &["evaluate"],
        &["send-test-mail", "--to", "a@b.example"],
    ] {
        let out = run(&missing, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("nope.toml"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}
