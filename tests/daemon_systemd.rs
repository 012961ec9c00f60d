//! `fehlzeiten run` as systemd runs it: READY=1 on a fake `NOTIFY_SOCKET`, the status endpoint,
//! SIGUSR1 (sync now), SIGHUP with a broken config (keep running), SIGTERM (STOPPING=1, exit 0
//! within 20 s).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::NaiveDate;
use common::free_port;
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{Scenario, SimConfig};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fehlzeiten");

fn write_config(dir: &Path, scenario: &Scenario, api_base: &str, port: u16) -> PathBuf {
    common::write_secret(&dir.join("untis.secret"), &SimConfig::default().password);
    let school = SnippetSchool {
        id: "gym-daemon".into(),
        name: "Gymnasium Daemon".into(),
        password_file: "untis.secret".into(),
        social_workers: vec!["sozial@schule.example".into()],
    };
    let text = format!(
        "[daemon]\ndata_dir = \"state\"\nstatus_listen = \"127.0.0.1:{port}\"\nadmin_socket = \"admin.sock\"\nlog_level = \"debug\"\n\n[mail]\n\
         from = \"fehlzeiten@schule.example\"\ntransport = \"file\"\nfile_dir = \"mails\"\n\n{}",
        config_snippet(scenario, api_base, &SimConfig::default(), &school)
    );
    let path = dir.join("fehlzeiten.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits for a datagram on the fake notify socket that contains `what`.
fn wait_notify(sock: &UnixDatagram, what: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == what) {
                return msg;
            }
        }
    }
    panic!("no {what} on NOTIFY_SOCKET within {within:?}");
}

async fn get(port: u16, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn status(port: u16) -> serde_json::Value {
    let (code, body) = get(port, "/status").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `/status` until the school's last sync started at something other than `before`
/// and finished.
async fn wait_sync_after(port: u16, before: &serde_json::Value) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let s = status(port).await;
        let last = &s["schools"][0]["last_sync"];
        if last["started"] != *before && last["ok"] == serde_json::Value::Bool(true) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no new sync within 60 s");
}

fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_speaks_the_systemd_contract() {
    let today = Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap());
    let scenario = Arc::new(Scenario::generate(5, 120, today));
    let sim = common::start_sim(scenario.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &scenario, &sim.base_url(), port);
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("NOTIFY_SOCKET", &notify_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = common::KillOnDrop(pid);

    // READY=1 with a STATUS line, before the first sync has to finish.
    let ready =
        tokio::task::block_in_place(|| wait_notify(&sock, "READY=1", Duration::from_secs(10)));
    let to_ready = started.elapsed();
    assert!(ready.lines().any(|l| l.starts_with("STATUS=")), "{ready}");

    let (code, body) = get(port, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    // The first sync runs right after start.
    let s = wait_sync_after(port, &serde_json::Value::Null).await;
    for key in ["version", "uptime_s", "schools", "outbox"] {
        assert!(s.get(key).is_some(), "no {key} in {s}");
    }
    let school = &s["schools"][0];
    for key in [
        "id",
        "students",
        "klassen",
        "absences",
        "unmapped_klassen",
        "last_sync",
        "next_sync",
        "next_digest",
        "alerts",
    ] {
        assert!(school.get(key).is_some(), "no {key} in {school}");
    }
    for key in ["started", "finished", "ok", "error"] {
        assert!(school["last_sync"].get(key).is_some(), "{school}");
    }
    for key in ["watch", "warning", "critical"] {
        assert!(school["alerts"].get(key).is_some(), "{school}");
    }
    for key in ["pending", "failed", "last_error"] {
        assert!(s["outbox"].get(key).is_some(), "{s}");
    }
    assert_eq!(school["id"], "gym-daemon");
    assert_eq!(school["students"], scenario.students.len() as u64);
    assert_eq!(
        school["klassen"],
        scenario.expected_roster().klassen.len() as u64
    );
    // No personal data: none of the scenario's names or addresses on the endpoint.
    let all = format!("{s}{}", get(port, "/metrics").await.1);
    for st in &scenario.students {
        assert!(!all.contains(&st.family_name), "a name on /status");
    }
    let (code, metrics) = get(port, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("fehlzeiten_students{school=\"gym-daemon\"}"),
        "{metrics}"
    );
    let idle_rss = rss_kib(pid);

    // SIGHUP with a broken config: the daemon keeps running on the old one.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}\nthis is not toml = = =\n")).unwrap();
    common::kill(&child, "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.try_wait().unwrap().is_none(), "exited after SIGHUP");
    assert_eq!(get(port, "/healthz").await.0, 200);
    assert_eq!(status(port).await["schools"][0]["id"], "gym-daemon");

    // SIGUSR1: a sync now, visible in /status.
    let before = status(port).await["schools"][0]["last_sync"]["started"].clone();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    common::kill(&child, "USR1");
    let after = wait_sync_after(port, &before).await;
    assert_ne!(after["schools"][0]["last_sync"]["started"], before);

    // SIGHUP with a valid config applies it, its log level too: after a reload to "warn" the
    // next sync logs no INFO lines.
    std::fs::write(
        &config,
        good.replace("log_level = \"debug\"", "log_level = \"warn\""),
    )
    .unwrap();
    common::kill(&child, "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = after["schools"][0]["last_sync"]["started"].clone();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    common::kill(&child, "USR1");
    wait_sync_after(port, &before).await;

    // SIGTERM: STOPPING=1 and exit 0 within 20 s.
    let stop = Instant::now();
    common::kill(&child, "TERM");
    tokio::task::block_in_place(|| wait_notify(&sock, "STOPPING=1", Duration::from_secs(20)));
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(stop.elapsed() < Duration::from_secs(20), "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(
        stderr.contains("SIGHUP: keeping the running config"),
        "{stderr}"
    );
    let (before_reload, after_reload) = stderr
        .split_once("SIGHUP: reloaded")
        .unwrap_or_else(|| panic!("no reload in the log: {stderr}"));
    assert!(
        before_reload.contains("DEBUG"),
        "log_level = debug logged no DEBUG line"
    );
    let after_reload: Vec<&str> = after_reload.lines().skip(1).collect();
    assert!(
        after_reload
            .iter()
            .all(|l| l.starts_with("WARN") || l.starts_with("ERROR")),
        "INFO after the reload to warn: {after_reload:?}"
    );
    // Logs carry ids only, even at debug level: no student's or teacher's name, no address.
    assert!(
        stderr.lines().count() > 3,
        "too little logged to judge: {stderr}"
    );
    for st in &scenario.students {
        let full = format!("{} {}", st.given_name, st.family_name);
        assert!(!stderr.contains(&full), "a student's name in the log");
        assert!(
            !stderr.contains(&st.family_name),
            "a student's name in the log"
        );
        assert!(
            !stderr.contains(&st.username),
            "a student's username in the log"
        );
    }
    for t in &scenario.teachers {
        assert!(
            !stderr.contains(&t.family_name),
            "a teacher's name in the log"
        );
        assert!(!stderr.contains(&t.email), "a teacher's address in the log");
    }
    assert!(!stderr.contains('@'), "an address in the log: {stderr}");
    eprintln!(
        "start to READY: {to_ready:?}; idle RSS: {idle_rss:?} KiB; stop took {:?}",
        stop.elapsed()
    );
}
