//! Real deliveries through a real SMTP server (aiosmtpd, see tests/common): STARTTLS + AUTH
//! with an extra CA, implicit TLS, plain loopback relay, failure diagnoses, the outbox and
//! `send-test-mail`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::SmtpServer;
use fehlzeiten::config::{
    Config, DaemonConfig, Language, MailConfig, Secret, Security, SmtpConfig, TransportConfig,
};
use fehlzeiten::mail::{
    self, AlertItem, DigestMail, ItemStatus, MailContext, SendError, StudentAlerts, Transport,
    deliver_due, enqueue_entry, render_digest, to_message,
};
use fehlzeiten::model::Severity;
use fehlzeiten::store::{OutboxStatus, Store};
use mail_parser::MessageParser;
use std::path::PathBuf;
use std::time::Duration;

const FROM: &str = "Fehlzeiten <fehlzeiten@schule.example>";

fn smtp_config(
    host: &str,
    port: u16,
    security: Security,
    auth: Option<(&str, &str)>,
    ca: Option<PathBuf>,
) -> MailConfig {
    MailConfig {
        from: FROM.into(),
        reply_to: Some("sozialarbeit@schule.example".into()),
        transport: TransportConfig::Smtp(SmtpConfig {
            host: host.into(),
            port,
            security,
            username: auth.map(|(u, _)| u.to_string()),
            password: auth.map(|(_, p)| Secret::new(p)),
            ca_file: ca,
            timeout: Duration::from_secs(10),
        }),
    }
}

fn starttls(server: &SmtpServer) -> MailConfig {
    smtp_config(
        "localhost",
        server.starttls_port,
        Security::StartTls,
        Some((&server.user, &server.password)),
        Some(server.pki.ca.clone()),
    )
}

fn ctx() -> MailContext {
    MailContext {
        school_id: "gym-musterstadt".into(),
        school_name: "Gymnasium Musterstadt".into(),
        language: Language::De,
        from: FROM.into(),
        reply_to: Some("sozialarbeit@schule.example".into()),
        contact: Some("sozialarbeit@schule.example".into()),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 9, 6, 0, 0).single().unwrap()
}

fn digest(recipient: &str) -> DigestMail {
    DigestMail {
        recipient: recipient.into(),
        teacher_name: "Frau Schmidt".into(),
        klassen: vec!["7b".into()],
        week: "2026-W11".into(),
        sent_at: now().with_timezone(&chrono_tz::Europe::Berlin),
        students: vec![StudentAlerts {
            student_id: "s-42".into(),
            name: "Lena Müller".into(),
            klasse: Some("7b".into()),
            alerts: vec![AlertItem {
                alert_id: "gym-musterstadt|s-42|consecutive_days|2026-03-02".into(),
                rule: "consecutive_days".into(),
                severity: Severity::Critical,
                status: ItemStatus::New,
                value: 5,
                period: "2026-03-02".into(),
                evidence: vec!["2026-03-02".into(), "2026-03-06".into()],
            }],
            calendar: vec![],
        }],
    }
}

/// A rendered digest and its RFC 5322 text.
fn message(recipient: &str) -> (mail::RenderedMail, String) {
    let rendered = render_digest(&ctx(), &digest(recipient)).unwrap();
    let text = to_message(&ctx(), &rendered, now()).unwrap();
    (rendered, text)
}

async fn send(config: &MailConfig, recipient: &str) -> Result<mail::RenderedMail, SendError> {
    let transport = Transport::from_config(config).unwrap();
    let (rendered, text) = message(recipient);
    transport
        .send(
            "fehlzeiten@schule.example",
            &rendered.to,
            text.as_bytes(),
            &rendered.id,
        )
        .await
        .map(|()| rendered)
}

#[tokio::test]
async fn starttls_with_auth_and_extra_ca_delivers() {
    let server = SmtpServer::start();
    let rendered = send(&starttls(&server), "klassenleitung@schule.example")
        .await
        .unwrap();
    let messages = server.wait_for_messages(1);
    assert_eq!(messages.len(), 1);
    let log = server.log();
    assert_eq!(log[0]["port"], server.starttls_port);
    assert_eq!(log[0]["auth_user"], "testuser");
    assert!(
        log[0]["tls_cipher"].is_string(),
        "delivered over TLS: {log:?}"
    );
    assert_eq!(log[0]["mail_from"], "fehlzeiten@schule.example");
    assert_eq!(log[0]["rcpt_tos"][0], "klassenleitung@schule.example");

    let parsed = MessageParser::default().parse(&messages[0]).unwrap();
    assert_eq!(
        parsed.message_id(),
        Some(rendered.message_id.trim_matches(['<', '>']))
    );
    assert_eq!(parsed.subject(), Some(rendered.subject.as_str()));
    assert!(parsed.body_text(0).unwrap().contains("Lena Müller"));
    assert!(parsed.body_html(0).unwrap().contains("Lena Müller"));
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let server = SmtpServer::start();
    let config = smtp_config(
        "127.0.0.1",
        server.smtps_port,
        Security::Tls,
        Some((&server.user, &server.password)),
        Some(server.pki.ca.clone()),
    );
    send(&config, "a@schule.example").await.unwrap();
    server.wait_for_messages(1);
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["port"], server.smtps_port);
    assert_eq!(log[0]["auth_user"], "testuser");
}

#[tokio::test]
async fn plain_loopback_relay_without_auth_delivers() {
    let server = SmtpServer::start();
    let config = smtp_config("127.0.0.1", server.plain_port, Security::None, None, None);
    send(&config, "a@schule.example").await.unwrap();
    server.wait_for_messages(1);
    assert_eq!(server.log()[0]["port"], server.plain_port);
}

#[tokio::test]
async fn wrong_password_is_a_permanent_authentication_error() {
    let server = SmtpServer::start();
    let config = smtp_config(
        "localhost",
        server.starttls_port,
        Security::StartTls,
        Some((&server.user, "wrong")),
        Some(server.pki.ca.clone()),
    );
    let err = send(&config, "a@schule.example").await.unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert!(
        err.diagnosis().contains("authentication failed (535"),
        "{err}"
    );
    assert!(err.diagnosis().contains("mail.username"), "{err}");
    assert!(
        !err.diagnosis().contains("wrong"),
        "never echo the password: {err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn unreachable_port_is_transient() {
    let port = common::free_port();
    let config = smtp_config("127.0.0.1", port, Security::StartTls, None, None);
    let err = send(&config, "a@schule.example").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.diagnosis(),
        format!(
            "connection refused by 127.0.0.1:{port}: is the mail server running and mail.port right?"
        )
    );
}

#[tokio::test]
async fn silent_server_times_out_transiently() {
    // Accepts the connection and never says a word, like an implicit-TLS port does to a
    // client that waits for the SMTP banner.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = smtp_config("127.0.0.1", port, Security::StartTls, None, None);
    if let TransportConfig::Smtp(c) = &mut config.transport {
        c.timeout = Duration::from_secs(1);
    }
    let started = std::time::Instant::now();
    let err = send(&config, "a@schule.example").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the timeout applies"
    );
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.diagnosis()
            .starts_with(&format!("no answer from 127.0.0.1:{port} within 1s")),
        "{err}"
    );
    hold.abort();
}

#[tokio::test]
async fn untrusted_certificate_gives_a_tls_diagnosis() {
    let server = SmtpServer::start();
    // No ca_file: the test CA is not among the platform's roots.
    let config = smtp_config(
        "localhost",
        server.starttls_port,
        Security::StartTls,
        Some((&server.user, &server.password)),
        None,
    );
    let err = send(&config, "a@schule.example").await.unwrap_err();
    assert!(
        err.diagnosis().contains("not trusted") && err.diagnosis().contains("mail.ca_file"),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn implicit_tls_against_a_starttls_port_suggests_the_right_mode() {
    let server = SmtpServer::start();
    let config = smtp_config(
        "localhost",
        server.starttls_port,
        Security::Tls,
        Some((&server.user, &server.password)),
        Some(server.pki.ca.clone()),
    );
    let err = send(&config, "a@schule.example").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.diagnosis()
            .contains("try security = \"tls\" with port 465, or \"starttls\" with 587"),
        "{err}"
    );
}

#[tokio::test]
async fn rejected_recipient_is_permanent_and_masks_the_address() {
    let server = SmtpServer::start();
    let err = send(&starttls(&server), "reject.me@schule.example")
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.diagnosis().contains("550"), "{err}");
    assert!(!err.diagnosis().contains("reject.me"), "{err}");
}

fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn enqueue(store: &Store, recipient: &str, created: DateTime<Utc>) -> String {
    let (rendered, text) = message(recipient);
    let entry = enqueue_entry(&rendered, text, "digest", FROM, created);
    assert_eq!(entry.from, "fehlzeiten@schule.example");
    assert!(store.outbox_enqueue("gym-musterstadt", &entry).unwrap());
    // The same logical mail again (a re-run after a crash) is not a second entry.
    assert!(!store.outbox_enqueue("gym-musterstadt", &entry).unwrap());
    rendered.id
}

#[tokio::test]
async fn outbox_delivers_due_entries_once_and_audits_them() {
    let server = SmtpServer::start();
    let (_dir, store) = open_store();
    let a = enqueue(&store, "kl-7a@schule.example", now());
    let b = enqueue(&store, "kl-7b@schule.example", now());
    let transport = Transport::from_config(&starttls(&server)).unwrap();

    let report = deliver_due(&store, "gym-musterstadt", &transport, now()).await;
    assert_eq!((report.sent, report.retried, report.failed), (2, 0, 0));
    assert_eq!(report.last_error, None);
    assert_eq!(server.wait_for_messages(2).len(), 2);

    let again = deliver_due(
        &store,
        "gym-musterstadt",
        &transport,
        now() + TimeDelta::minutes(5),
    )
    .await;
    assert_eq!((again.sent, again.retried, again.failed), (0, 0, 0));
    assert_eq!(server.messages().len(), 2);

    for id in [&a, &b] {
        let e = store.outbox_get("gym-musterstadt", id).unwrap().unwrap();
        assert_eq!(e.status, OutboxStatus::Sent);
        assert_eq!(e.attempts, 1);
        assert_eq!(e.sent_at.as_deref(), Some("2026-03-09T06:00:00Z"));
    }
    let audit = store.audit_list("gym-musterstadt", None).unwrap();
    assert_eq!(audit.len(), 2);
    for event in &audit {
        assert_eq!(event.kind, "mail_sent");
        assert_eq!(event.student_ids, ["s-42"]);
        assert_eq!(
            event.alert_ids,
            ["gym-musterstadt|s-42|consecutive_days|2026-03-02"]
        );
        assert!(
            event
                .message_id
                .as_deref()
                .is_some_and(|m| m.starts_with("<digest-"))
        );
        let json = serde_json::to_string(event).unwrap();
        assert!(!json.contains("Lena"), "no names in the audit log: {json}");
    }
    assert_eq!(store.outbox_summary("gym-musterstadt").unwrap().pending, 0);
}

#[tokio::test]
async fn transient_failure_stays_pending_with_backoff() {
    let server = SmtpServer::start();
    let (_dir, store) = open_store();
    let id = enqueue(&store, "tempfail@schule.example", now());
    let transport = Transport::from_config(&starttls(&server)).unwrap();

    let report = deliver_due(&store, "gym-musterstadt", &transport, now()).await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 1, 0));
    assert!(
        report.last_error.as_deref().unwrap().contains("451"),
        "{report:?}"
    );
    let e = store.outbox_get("gym-musterstadt", &id).unwrap().unwrap();
    assert_eq!(e.status, OutboxStatus::Pending);
    assert_eq!(e.attempts, 1);
    assert_eq!(e.next_attempt, "2026-03-09T06:01:00Z");
    assert!(e.last_error.as_deref().unwrap().contains("try again later"));

    // Not due yet: nothing happens.
    let early = deliver_due(
        &store,
        "gym-musterstadt",
        &transport,
        now() + TimeDelta::seconds(30),
    )
    .await;
    assert_eq!((early.sent, early.retried, early.failed), (0, 0, 0));
    // Due: the second failure doubles the delay.
    deliver_due(
        &store,
        "gym-musterstadt",
        &transport,
        now() + TimeDelta::minutes(1),
    )
    .await;
    let e = store.outbox_get("gym-musterstadt", &id).unwrap().unwrap();
    assert_eq!(e.attempts, 2);
    assert_eq!(e.next_attempt, "2026-03-09T06:03:00Z");
    let summary = store.outbox_summary("gym-musterstadt").unwrap();
    assert_eq!(summary.pending, 1);
    assert!(summary.last_error.is_some());
}

#[tokio::test]
async fn unreachable_server_and_an_old_entry_fails_for_good() {
    let (_dir, store) = open_store();
    let config = smtp_config(
        "127.0.0.1",
        common::free_port(),
        Security::StartTls,
        None,
        None,
    );
    let transport = Transport::from_config(&config).unwrap();
    let fresh = enqueue(&store, "a@schule.example", now());
    let old = enqueue(&store, "b@schule.example", now() - TimeDelta::hours(49));

    let report = deliver_due(&store, "gym-musterstadt", &transport, now()).await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 1, 1));
    assert!(report.last_error.unwrap().contains("connection refused"));
    let fresh = store
        .outbox_get("gym-musterstadt", &fresh)
        .unwrap()
        .unwrap();
    assert_eq!(fresh.status, OutboxStatus::Pending);
    assert_eq!(fresh.attempts, 1);
    assert!(fresh.next_attempt.as_str() > "2026-03-09T06:00:00Z");
    let old = store.outbox_get("gym-musterstadt", &old).unwrap().unwrap();
    assert_eq!(old.status, OutboxStatus::Failed);
    assert!(old.last_error.unwrap().contains("connection refused"));
    let summary = store.outbox_summary("gym-musterstadt").unwrap();
    assert_eq!((summary.pending, summary.failed), (1, 1));
}

#[tokio::test]
async fn permanent_failure_is_failed_at_once() {
    let server = SmtpServer::start();
    let (_dir, store) = open_store();
    let id = enqueue(&store, "reject@schule.example", now());
    let transport = Transport::from_config(&starttls(&server)).unwrap();
    let report = deliver_due(&store, "gym-musterstadt", &transport, now()).await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 1));
    let e = store.outbox_get("gym-musterstadt", &id).unwrap().unwrap();
    assert_eq!(e.status, OutboxStatus::Failed);
    assert!(
        store
            .audit_list("gym-musterstadt", None)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn file_transport_through_the_outbox() {
    let (dir, store) = open_store();
    let out = dir.path().join("outbox-files");
    let id = enqueue(&store, "a@schule.example", now());
    let transport = Transport::from_config(&MailConfig {
        from: FROM.into(),
        reply_to: None,
        transport: TransportConfig::File { dir: out.clone() },
    })
    .unwrap();
    let report = deliver_due(&store, "gym-musterstadt", &transport, now()).await;
    assert_eq!(report.sent, 1);
    let eml = std::fs::read(out.join(format!("{id}.eml"))).unwrap();
    let parsed = MessageParser::default().parse(&eml).unwrap();
    assert!(parsed.message_id().unwrap().starts_with(&id));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "no temporary files left"
    );
}

fn config_with(mail: MailConfig, data_dir: PathBuf, language: Language) -> Config {
    Config {
        path: PathBuf::new(),
        daemon: DaemonConfig {
            data_dir,
            status_listen: "127.0.0.1:0".parse().unwrap(),
            language,
            log_level: log::LevelFilter::Info,
            removed_school_retention_days: 30,
            admin_socket: None,
        },
        mail,
        schools: Vec::new(),
    }
}

#[tokio::test]
async fn send_test_mail_reports_success_and_diagnosis() {
    let server = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(starttls(&server), dir.path().into(), Language::En);
    let line = mail::send_test_mail(&config, "it@schule.example")
        .await
        .unwrap();
    assert!(
        line.contains(&format!("accepted by localhost:{}", server.starttls_port)),
        "{line}"
    );
    let messages = server.wait_for_messages(1);
    let parsed = MessageParser::default().parse(&messages[0]).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Absence early-warning system: test message")
    );

    let mut wrong = starttls(&server);
    if let TransportConfig::Smtp(c) = &mut wrong.transport {
        c.password = Some(Secret::new("nope"));
    }
    let config = config_with(wrong, dir.path().into(), Language::De);
    let err = mail::send_test_mail(&config, "it@schule.example")
        .await
        .unwrap_err();
    assert!(err.starts_with("authentication failed (535"), "{err}");

    let config = config_with(
        MailConfig {
            from: FROM.into(),
            reply_to: None,
            transport: TransportConfig::File {
                dir: dir.path().join("files"),
            },
        },
        dir.path().into(),
        Language::De,
    );
    let line = mail::send_test_mail(&config, "it@schule.example")
        .await
        .unwrap();
    assert!(line.starts_with("test mail written to "), "{line}");
}
