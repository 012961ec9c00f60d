//! SIGTERM while an SMTP transaction is in flight (SPEC §6): the daemon finishes that
//! transaction, records the mail as sent (so it never goes out again), starts no other mail, and
//! exits 0 within 20 s. The SMTP server here is a slow one: it takes its time before the `250`
//! that accepts a message, and the test sends SIGTERM in that pause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{free_port, text, write_secret};
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{Scenario, SimConfig};
use fehlzeiten::store::{OutboxStatus, Store};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_fehlzeiten");
/// How long the server waits between the end of a message's data and its `250`.
const ACCEPT_DELAY: Duration = Duration::from_secs(3);

/// What the slow server saw: one entry per accepted message (its Message-ID line), and how many
/// transactions began (MAIL FROM).
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    transactions: usize,
}

/// A plain-text SMTP server on loopback that reports on `data_done` when a message's data has
/// arrived, then waits [`ACCEPT_DELAY`] before accepting it.
async fn slow_smtp(listener: TcpListener, seen: Arc<Mutex<Seen>>, data_done: mpsc::Sender<()>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (seen, data_done) = (seen.clone(), data_done.clone());
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 slow.test ESMTP\r\n").await;
            let mut in_data = false;
            let mut message_id = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if in_data {
                    if line == "." {
                        in_data = false;
                        let _ = data_done.send(()).await;
                        tokio::time::sleep(ACCEPT_DELAY).await;
                        seen.lock().unwrap().accepted.push(message_id.clone());
                        let _ = write.write_all(b"250 2.0.0 queued\r\n").await;
                    } else if line.to_ascii_lowercase().starts_with("message-id:") {
                        message_id = line;
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 slow.test\r\n",
                    "MAIL" => {
                        seen.lock().unwrap().transactions += 1;
                        b"250 2.1.0 ok\r\n"
                    }
                    "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"502 not implemented\r\n",
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_smtp_transaction_in_flight() {
    // The daemon runs on the real clock: the school's data must reach up to today, so the first
    // sync finds critical cases now.
    let today = Scenario::reference_day(chrono::Utc::now().date_naive());
    let scenario = Arc::new(Scenario::generate(3, 60, today));
    let sim = common::start_sim(scenario.clone()).await;
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_port = smtp.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (data_tx, mut data_rx) = mpsc::channel(8);
    tokio::spawn(slow_smtp(smtp, seen.clone(), data_tx));

    let dir = tempfile::tempdir().unwrap();
    write_secret(
        &dir.path().join("untis.secret"),
        &SimConfig::default().password,
    );
    // Two social workers: two alert mails, so there is a second one that must not start.
    let school = SnippetSchool {
        id: "gym-stop".into(),
        name: "Gymnasium Stop".into(),
        password_file: "untis.secret".into(),
        social_workers: vec![
            "sozial@schule.example".into(),
            "beratung@schule.example".into(),
        ],
    };
    let config = dir.path().join("fehlzeiten.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"state\"\nstatus_listen = \"127.0.0.1:{}\"\nadmin_socket = \"admin.sock\"\n\n\
             [mail]\nfrom = \"fehlzeiten@schule.example\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\n\
             port = {smtp_port}\nsecurity = \"none\"\ntimeout = \"10s\"\n\n{}\n\
             [school.notify]\nquiet_hours = \"\"\n",
            free_port(),
            config_snippet(&scenario, &sim.base_url(), &SimConfig::default(), &school)
        ),
    )
    .unwrap();

    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = common::KillOnDrop(child.id());
    // The first sync finds critical cases and starts the first alert mail.
    if tokio::time::timeout(Duration::from_secs(60), data_rx.recv())
        .await
        .is_err()
    {
        let _ = child.kill();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("no mail reached the SMTP server within 60 s: {stderr}");
    }
    common::kill(&child, "TERM");
    let (exit, stopped_after, stderr) =
        common::wait_exit(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "exit {exit:?}: {stderr}");
    // It waited for the server's answer rather than dropping the connection.
    assert!(
        stopped_after >= ACCEPT_DELAY - Duration::from_millis(500),
        "stopped after {stopped_after:?}, before the server accepted the mail: {stderr}"
    );

    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted.len(), 1, "{stderr}");
    assert_eq!(seen.transactions, 1, "a second mail was started: {stderr}");
    drop(seen);

    // The store says so: that mail is sent (never again), the other one waits for the next start.
    let store = Store::open(&dir.path().join("state")).unwrap();
    let outbox = store.outbox_entries("gym-stop").unwrap();
    let status = |s: OutboxStatus| outbox.iter().filter(|e| e.status == s).count();
    assert_eq!(status(OutboxStatus::Sent), 1, "{outbox:#?}");
    assert_eq!(status(OutboxStatus::Pending), 1, "{outbox:#?}");
    let audit = store.audit_list("gym-stop", None).unwrap();
    assert_eq!(audit.iter().filter(|e| e.kind == "mail_sent").count(), 1);
    assert!(
        text(stderr.as_bytes()).contains("remaining mails stay in the outbox"),
        "{stderr}"
    );
}
