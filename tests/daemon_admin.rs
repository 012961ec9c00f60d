//! The admin socket (SPEC §8): while `fehlzeiten run` holds the database, `sync`,
//! `silence add|list|remove`, `export`, `erase`, `audit`, `evaluate` and `digest --preview` go
//! through its Unix socket; the socket is mode 0660, answers
//! garbage with an error line, and is removed on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::NaiveDate;
use common::{free_port, stdout_of_success, text};
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{Scenario, SimConfig};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fehlzeiten");

fn config_text(scenario: &Scenario, api_base: &str, port: u16, socket: &str) -> String {
    let school = SnippetSchool {
        id: "gym-admin".into(),
        name: "Gymnasium Admin".into(),
        password_file: "untis.secret".into(),
        social_workers: vec!["sozial@schule.example".into()],
    };
    format!(
        "[daemon]\ndata_dir = \"state\"\nstatus_listen = \"127.0.0.1:{port}\"\nadmin_socket = \"{socket}\"\n\n[mail]\n\
         from = \"fehlzeiten@schule.example\"\ntransport = \"file\"\nfile_dir = \"mails\"\n\n{}",
        config_snippet(scenario, api_base, &SimConfig::default(), &school)
    )
}

fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("FEHLZEITEN_CONFIG")
        .output()
        .unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    stdout_of_success(args, &cli(config, args))
}

/// Sends raw bytes to the socket and reads one answer line.
fn raw(socket: &Path, bytes: &[u8]) -> serde_json::Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert!(line.ends_with('\n'), "{line:?}");
    serde_json::from_str(line.trim()).unwrap()
}

fn assert_error_line(reply: &serde_json::Value) {
    assert_eq!(reply["ok"], false, "{reply}");
    let e = reply["error"].as_str().unwrap();
    assert!(!e.is_empty() && !e.contains('\n'), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_goes_through_the_admin_socket() {
    let today = Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap());
    let scenario = Arc::new(Scenario::generate(7, 60, today));
    let sim = common::start_sim(scenario.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("untis.secret");
    std::fs::write(&secret, format!("{}\n", SimConfig::default().password)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    // A relative socket path, in a directory the daemon has to create.
    let config: PathBuf = dir.path().join("fehlzeiten.toml");
    std::fs::write(
        &config,
        config_text(&scenario, &sim.base_url(), port, "run/admin.sock"),
    )
    .unwrap();
    let socket = dir.path().join("run/admin.sock");
    // The same database, but a socket nobody listens on.
    let lost = dir.path().join("lost.toml");
    std::fs::write(
        &lost,
        config_text(&scenario, &sim.base_url(), port, "nowhere/admin.sock"),
    )
    .unwrap();

    // A stale socket file from a crashed daemon is replaced.
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = common::KillOnDrop(child.id());

    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "no admin socket within 30 s");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    let cfg = config.clone();
    tokio::task::spawn_blocking(move || {
        // The daemon holds the database: these only work through the socket.
        let synced = ok(&cfg, &["sync"]);
        assert!(synced.starts_with("gym-admin: ok: 60 students"), "{synced}");

        let bad = cli(&cfg, &["sync", "--school", "nope"]);
        assert_eq!(bad.status.code(), Some(1));
        let err = text(&bad.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("no school `nope`"), "{err}");

        let student = scenario.students[0].id.0.clone();
        let added = ok(
            &cfg,
            &[
                "silence",
                "add",
                "--school",
                "gym-admin",
                "--student",
                &student,
                "--until",
                "2099-12-31",
                "--reason",
                "known case, help plan running",
            ],
        );
        let id = added.split(':').next().unwrap().to_string();
        assert!(id.starts_with("sil-"), "{added}");
        let listed = ok(&cfg, &["silence", "list"]);
        assert!(
            listed.contains(&id) && listed.contains("known case"),
            "{listed}"
        );
        let removed = ok(&cfg, &["silence", "remove", &id]);
        assert!(removed.starts_with(&format!("removed {id}")), "{removed}");
        assert!(ok(&cfg, &["silence", "list"]).contains("no silences in force"));
        let missing = cli(&cfg, &["silence", "remove", &id]);
        assert_eq!(missing.status.code(), Some(1));
        assert_eq!(text(&missing.stderr).lines().count(), 1);

        // Read-only views too: the findings, and the digest a class teacher would get.
        let findings: Vec<serde_json::Value> =
            serde_json::from_str(&ok(&cfg, &["evaluate", "--json"])).unwrap();
        let first = findings.first().expect("no findings to preview");
        let klasse = scenario
            .klassen
            .iter()
            .find(|k| first["student"]["klasse"] == k.name.as_str())
            .unwrap();
        let teacher = scenario
            .teachers
            .iter()
            .find(|t| t.id == klasse.class_teacher)
            .unwrap();
        let preview = ok(&cfg, &["digest", "--preview", "--to", &teacher.email]);
        assert!(preview.starts_with("Subject: "), "{preview}");
        let html_file = cfg.parent().unwrap().join("preview.html");
        let wrote = ok(
            &cfg,
            &[
                "digest",
                "--preview",
                "--to",
                &teacher.email,
                "--out",
                html_file.to_str().unwrap(),
            ],
        );
        assert!(wrote.starts_with("wrote "), "{wrote}");
        let html = std::fs::read_to_string(&html_file).unwrap();
        assert!(
            html.contains("<html") && html.contains(&klasse.name),
            "{html}"
        );
        let nobody = cli(
            &cfg,
            &["digest", "--preview", "--to", "nobody@schule.example"],
        );
        assert_eq!(nobody.status.code(), Some(1));
        assert_eq!(text(&nobody.stderr).lines().count(), 1);

        // GDPR commands reach the database through the daemon as well.
        let export: serde_json::Value = serde_json::from_str(&ok(
            &cfg,
            &["export", "--school", "gym-admin", "--student", &student],
        ))
        .unwrap();
        assert_eq!(export["student"]["id"], student.as_str(), "{export}");
        let erased = ok(
            &cfg,
            &["erase", "--school", "gym-admin", "--student", &student],
        );
        assert!(erased.starts_with("erased student"), "{erased}");
        assert!(ok(&cfg, &["erase", "--list"]).contains(&student));
        let audit = ok(&cfg, &["audit", "--school", "gym-admin"]);
        assert!(
            audit.contains("  export  ") && audit.contains("  erase  "),
            "{audit}"
        );
        let undone = ok(
            &cfg,
            &[
                "erase",
                "--undo",
                "--school",
                "gym-admin",
                "--student",
                &student,
            ],
        );
        assert!(undone.contains("undone"), "{undone}");

        // The database is locked and this config's socket is not there: one line says so.
        let out = cli(&lost, &["silence", "list"]);
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("admin socket is unreachable"), "{err}");
    })
    .await
    .unwrap();

    // Garbage gets an error line, and the connection and daemon stay usable.
    assert_error_line(&raw(&socket, b"this is not json\n"));
    assert_error_line(&raw(&socket, b"{\"cmd\":\"format_disk\"}\n"));
    assert_error_line(&raw(&socket, b"{\"cmd\":\"silence_remove\"}\n"));
    assert_error_line(&raw(&socket, b"\xff\xfe\n"));
    assert_error_line(&raw(&socket, &vec![b'x'; 70_000]));
    let status = raw(&socket, b"{\"cmd\":\"status\"}\n");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["status"]["schools"][0]["id"], "gym-admin");
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"nonsense\n{\"cmd\":\"silence_list\",\"all\":true}\n")
        .unwrap();
    let mut reader = BufReader::new(&stream);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_error_line(&serde_json::from_str(first.trim()).unwrap());
    let mut second = String::new();
    reader.read_line(&mut second).unwrap();
    let second: serde_json::Value = serde_json::from_str(second.trim()).unwrap();
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(second["out"][0], "no silences");
    drop(reader);
    drop(stream);

    // SIGTERM: exit 0 and the socket file is gone.
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let stop = Instant::now();
    let exit = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(stop.elapsed() < Duration::from_secs(20), "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "exit {exit:?}: {stderr}");
    assert!(!socket.exists(), "the socket outlived the daemon");
    assert!(!stderr.contains('@'), "an address in the log: {stderr}");

    // Without a daemon the CLI opens the database itself.
    let cfg = config.clone();
    let listed = tokio::task::spawn_blocking(move || ok(&cfg, &["silence", "list", "--all"]))
        .await
        .unwrap();
    assert!(listed.contains("no silences"), "{listed}");
}
