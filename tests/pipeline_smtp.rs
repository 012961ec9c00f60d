//! The main job end to end: the simulator → sync → store → rules → alerts → a real SMTP server
//! (aiosmtpd with STARTTLS, AUTH and a test CA), configured through a real config file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use fehlzeiten::config;
use fehlzeiten::mail::Transport;
use fehlzeiten::pipeline::{self, RunOptions};
use fehlzeiten::sim::server::{SnippetSchool, config_snippet};
use fehlzeiten::sim::{self, Category, Scenario, SimConfig};
use fehlzeiten::store::Store;
use fehlzeiten::untis::UntisClient;
use mail_parser::MessageParser;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const SOCIAL_WORKERS: [&str; 2] = ["sozial.eins@schule.example", "sozial.zwei@schule.example"];

struct Captured {
    to: Vec<String>,
    subject: String,
    text: String,
    message_id: String,
}

fn parse(raw: &[u8]) -> Captured {
    let m = MessageParser::default().parse(raw).unwrap();
    let to = m
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Captured {
        to,
        subject: m.subject().unwrap_or_default().to_string(),
        text: m.body_text(0).unwrap_or_default().to_string(),
        message_id: m.message_id().unwrap_or_default().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_delivers_through_real_smtp_with_the_content_boundary() {
    let smtp = common::SmtpServer::start();
    let today = Scenario::reference_day(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap());
    let scenario = Arc::new(Scenario::generate(11, 150, today));
    let sim_config = SimConfig::default();
    let sim = sim::start(
        scenario.clone(),
        sim_config.clone(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();

    // A real config file, validated by the real loader.
    let dir = tempfile::tempdir().unwrap();
    common::write_secret(&dir.path().join("smtp.secret"), &smtp.password);
    common::write_secret(&dir.path().join("untis.secret"), &sim_config.password);
    let school = SnippetSchool {
        id: "gym-test".into(),
        name: "Gymnasium Teststadt".into(),
        password_file: "untis.secret".into(),
        social_workers: SOCIAL_WORKERS.iter().map(|s| s.to_string()).collect(),
    };
    let text = format!(
        "[daemon]\ndata_dir = \"state\"\n\n\
         [mail]\nfrom = \"Fehlzeiten <fehlzeiten@schule.example>\"\ntransport = \"smtp\"\n\
         host = \"localhost\"\nport = {port}\nsecurity = \"starttls\"\nusername = \"{user}\"\n\
         password_file = \"smtp.secret\"\nca_file = \"{ca}\"\n\n{snippet}",
        port = smtp.starttls_port,
        user = smtp.user,
        ca = smtp.pki.ca.display(),
        snippet = config_snippet(&scenario, &sim.base_url(), &sim_config, &school),
    );
    let path = dir.path().join("fehlzeiten.toml");
    std::fs::write(&path, text).unwrap();
    let config = config::load(&path).unwrap_or_else(|e| panic!("{:?}", e.problems));
    let school = &config.schools[0];

    let store = Store::open(&config.daemon.data_dir).unwrap();
    let transport = Transport::from_config(&config.mail).unwrap();
    let client = UntisClient::new(&school.untis).unwrap();
    let at_seven = school
        .timezone
        .from_local_datetime(&today.and_hms_opt(7, 15, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    let options = RunOptions {
        digests: true,
        school_digest: false,
        deliver: true,
    };
    let first = pipeline::run_school(
        &store,
        &config,
        school,
        Some(&client),
        &transport,
        at_seven,
        options,
    )
    .await
    .unwrap();
    assert!(first.immediate_mails == SOCIAL_WORKERS.len(), "{first:?}");
    assert!(first.digest_mails >= 2, "{first:?}");
    let expected = first.immediate_mails + first.digest_mails;
    assert_eq!(
        first.delivery.sent as usize, expected,
        "{:?}",
        first.delivery
    );
    let raw = smtp.wait_for_messages(expected);
    assert_eq!(raw.len(), expected);

    // Every mail went over STARTTLS with AUTH.
    for entry in smtp.log() {
        assert_eq!(entry["auth_user"], smtp.user.as_str(), "{entry}");
        assert!(entry["tls_cipher"].is_string(), "not over TLS: {entry}");
    }

    // Who is who in the scenario.
    let klasse_of: BTreeMap<String, usize> = scenario
        .students
        .iter()
        .map(|s| (s.id.0.clone(), s.klasse))
        .collect();
    let teacher_klassen: BTreeMap<String, BTreeSet<usize>> = scenario
        .klassen
        .iter()
        .enumerate()
        .fold(BTreeMap::new(), |mut m, (i, k)| {
            let t = scenario
                .teachers
                .iter()
                .find(|t| t.id == k.class_teacher)
                .unwrap();
            m.entry(t.email.clone()).or_default().insert(i);
            m
        });
    let full_name = |s: &sim::scenario::SimStudent| format!("{} {}", s.given_name, s.family_name);
    let critical: BTreeSet<String> = scenario
        .planted
        .iter()
        .filter(|c| c.category == Category::Planted)
        .filter(|c| {
            c.expected
                .iter()
                .any(|(_, s)| *s == fehlzeiten::model::Severity::Critical)
        })
        .map(|c| c.student.0.clone())
        .collect();

    let mails: Vec<Captured> = raw.iter().map(|r| parse(r)).collect();
    let mut alert_recipients = BTreeSet::new();
    let mut digest_recipients = BTreeSet::new();
    for m in &mails {
        assert_eq!(m.to.len(), 1, "one recipient per mail: {:?}", m.to);
        let to = m.to[0].clone();
        assert!(
            m.text.contains("personenbezogene Daten"),
            "footer missing in {}",
            m.subject
        );
        if SOCIAL_WORKERS.contains(&to.as_str()) {
            alert_recipients.insert(to);
            // The alert names every planted critical student who has a name in the roster.
            for s in scenario
                .students
                .iter()
                .filter(|s| critical.contains(&s.id.0) && s.has_account)
            {
                assert!(
                    m.text.contains(&full_name(s)),
                    "alert lacks {} ({})",
                    full_name(s),
                    s.id
                );
            }
        } else {
            let klassen = teacher_klassen.get(&to).unwrap_or_else(|| {
                panic!("mail to {to}, who is neither social worker nor class teacher")
            });
            digest_recipients.insert(to.clone());
            // The content boundary: no student of another Klasse is named.
            let mut named = 0;
            for s in scenario.students.iter().filter(|s| s.has_account) {
                let in_text = m.text.contains(&full_name(s));
                if klassen.contains(&klasse_of[&s.id.0]) {
                    named += usize::from(in_text);
                } else {
                    assert!(
                        !in_text,
                        "digest to {to} names {} of another Klasse",
                        full_name(s)
                    );
                }
            }
            assert!(named > 0, "digest to {to} names none of its students");
        }
    }
    assert_eq!(alert_recipients.len(), SOCIAL_WORKERS.len());
    assert!(!digest_recipients.is_empty());

    // A second evaluation an hour later sends nothing new.
    let second = pipeline::run_school(
        &store,
        &config,
        school,
        Some(&client),
        &transport,
        at_seven + Duration::hours(1),
        options,
    )
    .await
    .unwrap();
    assert_eq!(second.immediate_mails, 0, "{second:?}");
    assert_eq!(second.digest_mails, 0, "{second:?}");
    assert_eq!(second.delivery.sent, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(smtp.messages().len(), expected, "the second run sent mail");

    // Message-IDs are unique per logical mail.
    let ids: BTreeSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), mails.len());
    sim.shutdown().await;
}
