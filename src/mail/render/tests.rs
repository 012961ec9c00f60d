use super::*;
use chrono::TimeZone;
use mail_parser::{MessageParser, MimeHeaders};

fn ctx(language: Language) -> MailContext {
    MailContext {
        school_id: "gym-musterstadt".into(),
        school_name: "Gymnasium Musterstadt".into(),
        language,
        from: "Fehlzeiten-Frühwarnsystem <fehlzeiten@schule.example>".into(),
        reply_to: Some("sozialarbeit@schule.example".into()),
        contact: Some("sozialarbeit@schule.example".into()),
    }
}

fn berlin(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Tz> {
    chrono_tz::Europe::Berlin
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
}

fn item(
    id: &str,
    rule: &str,
    severity: Severity,
    status: ItemStatus,
    value: u32,
    evidence: &[&str],
) -> AlertItem {
    AlertItem {
        alert_id: id.into(),
        rule: rule.into(),
        severity,
        status,
        value,
        period: "2025-2026/2".into(),
        evidence: evidence.iter().map(|s| s.to_string()).collect(),
    }
}

fn students() -> Vec<StudentAlerts> {
    vec![
        StudentAlerts {
            student_id: "s-warn".into(),
            name: "Max Mustermann".into(),
            klasse: Some("7c".into()),
            alerts: vec![
                item(
                    "a3",
                    "same_weekday",
                    Severity::Warning,
                    ItemStatus::Ongoing,
                    3,
                    &["2026-02-16", "2026-02-23", "2026-03-02"],
                ),
                item(
                    "a4",
                    "days_per_half_year",
                    Severity::Watch,
                    ItemStatus::Resolved,
                    6,
                    &[],
                ),
            ],
            calendar: vec![
                CalendarDay {
                    date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
                    mark: DayMark::Absent,
                },
                CalendarDay {
                    date: NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(),
                    mark: DayMark::Present,
                },
                CalendarDay {
                    date: NaiveDate::from_ymd_opt(2026, 3, 4).unwrap(),
                    mark: DayMark::Late,
                },
                CalendarDay {
                    date: NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(),
                    mark: DayMark::Excused,
                },
                CalendarDay {
                    date: NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
                    mark: DayMark::NoSchool,
                },
            ],
        },
        StudentAlerts {
            student_id: "s-crit".into(),
            name: "<script>alert(1)</script>".into(),
            klasse: Some("7b".into()),
            alerts: vec![item(
                "a1",
                "consecutive_days",
                Severity::Critical,
                ItemStatus::New,
                5,
                &[
                    "2026-03-02",
                    "2026-03-03",
                    "2026-03-04",
                    "2026-03-05",
                    "2026-03-06 L3-4 M",
                ],
            )],
            calendar: vec![],
        },
        StudentAlerts {
            student_id: "untis:4711".into(),
            name: String::new(),
            klasse: None,
            alerts: vec![item(
                "a2",
                "mystery_rule",
                Severity::Warning,
                ItemStatus::Escalated,
                7,
                &["not a date"],
            )],
            calendar: vec![],
        },
    ]
}

fn alert_mail() -> AlertMail {
    AlertMail {
        recipient: "sozialarbeit@schule.example".into(),
        run_at: berlin(2026, 3, 6, 7, 15),
        students: students(),
    }
}

fn digest_mail() -> DigestMail {
    DigestMail {
        recipient: "klassenleitung.7b@schule.example".into(),
        teacher_name: "Frau Schmidt".into(),
        klassen: vec!["7b".into(), "7c".into()],
        week: "2026-W10".into(),
        sent_at: berlin(2026, 3, 9, 7, 0),
        students: students(),
    }
}

fn date() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 9, 6, 0, 0).single().unwrap()
}

#[test]
fn renders_alert_and_digest_in_both_languages() {
    for lang in [Language::De, Language::En] {
        let c = ctx(lang);
        let alert = render_alert(&c, &alert_mail()).unwrap();
        let digest = render_digest(&c, &digest_mail()).unwrap();
        for m in [&alert, &digest] {
            assert!(m.html.contains("max-width:640px"));
            assert!(!m.html.contains("<img"), "no images");
            assert!(!m.html.contains("src="), "no external resources");
            assert!(!m.html.contains("http"), "no links or tracking");
            assert!(!m.html.contains("{{") && !m.text.contains("{{"));
            assert_eq!(m.student_ids, ["s-warn", "s-crit", "untis:4711"]);
            assert_eq!(m.alert_ids, ["a3", "a4", "a1", "a2"]);
            assert!(
                m.text.contains("sozialarbeit@schule.example"),
                "contact in the footer"
            );
        }
        match lang {
            Language::De => {
                assert_eq!(
                    alert.subject,
                    "Sofortmeldung: 3 Schüler/innen mit kritischen Fehlzeiten – Gymnasium Musterstadt"
                );
                assert_eq!(digest.subject, "Fehlzeiten-Wochenübersicht 7b, 7c – KW 10");
                for m in [&alert, &digest] {
                    assert!(
                        m.text
                            .contains("Fehlte an 5 aufeinanderfolgenden Schultagen.")
                    );
                    assert!(m.text.contains("02.03.2026, 03.03.2026"), "{}", m.text);
                    assert!(m.text.contains("06.03.2026 (3.–4. Std., M)"), "{}", m.text);
                    assert!(m.text.contains("Fehlte an 3 aufeinanderfolgenden Montagen"));
                    assert!(m.text.contains("Schüler/in (ID untis:4711)"));
                    assert!(m.text.contains("Auffälligkeit „mystery_rule“ (Wert 7)."));
                    assert!(m.text.contains("not a date"));
                    assert!(m.text.contains("[Kritisch, neu]"));
                    assert!(m.text.contains("[Warnung, erneut höher eingestuft]"));
                    assert!(m.text.contains("[Warnung, weiterhin]"));
                    assert!(m.text.contains("[Beobachten, erledigt]"));
                    assert!(m.text.contains("personenbezogene Daten"));
                    assert!(m.text.contains("nicht weiterleiten"));
                    assert!(m.html.contains("#dc2626"), "critical colour");
                }
                assert!(
                    alert
                        .text
                        .contains("als Schulsozialarbeit der Schule Gymnasium Musterstadt")
                );
                assert!(
                    digest
                        .text
                        .contains("als Klassenleitung der Klassen 7b, 7c")
                );
                assert!(digest.text.contains("Guten Tag Frau Schmidt,"));
                assert!(
                    digest
                        .text
                        .contains("KW 10: Mo F | Di · | Mi V | Do E | Fr\n"),
                    "{}",
                    digest.text
                );
            }
            Language::En => {
                assert_eq!(
                    alert.subject,
                    "Immediate alert: 3 students with critical absences – Gymnasium Musterstadt"
                );
                assert_eq!(digest.subject, "Weekly absence summary 7b, 7c – week 10");
                for m in [&alert, &digest] {
                    assert!(m.text.contains("Was absent on 5 consecutive school days."));
                    assert!(m.text.contains("2026-03-02, 2026-03-03"));
                    assert!(m.text.contains("Was absent on 3 consecutive Mondays"));
                    assert!(m.text.contains("Student (ID untis:4711)"));
                    assert!(m.text.contains("[critical, new]"));
                    assert!(m.text.contains("[watch, resolved]"));
                    assert!(m.text.contains("personal data of students"));
                }
                assert!(digest.text.contains("class teacher of 7b, 7c"));
            }
        }
        // Most severe first: the critical student, then the escalated warning, then the
        // ongoing one (whose resolved item does not count).
        let crit = alert.text.find("alert(1)").unwrap();
        let unknown = alert.text.find("4711").unwrap();
        let warn = alert.text.find("Max Mustermann").unwrap();
        assert!(crit < unknown && unknown < warn, "{}", alert.text);
    }
}

#[test]
fn html_escapes_names_and_evidence() {
    let mut mail = alert_mail();
    mail.students[0].alerts[0]
        .evidence
        .push("2026-03-02 <b>x</b>".into());
    let r = render_alert(&ctx(Language::De), &mail).unwrap();
    assert!(!r.html.contains("<script>"), "raw script tag in HTML");
    assert!(r.html.contains("&lt;script&gt;alert(1)&lt;"), "{}", r.html);
    assert!(r.html.contains("02.03.2026 (&lt;b&gt;x&lt;"), "{}", r.html);
    // The text part is plain text: shown as written.
    assert!(r.text.contains("<script>alert(1)</script>"));
}

#[test]
fn ids_are_stable_per_logical_mail() {
    let c = ctx(Language::De);
    let a1 = render_alert(&c, &alert_mail()).unwrap();
    let mut reordered = alert_mail();
    reordered.students.reverse();
    reordered.run_at = berlin(2026, 3, 6, 9, 0);
    let a2 = render_alert(&c, &reordered).unwrap();
    assert_eq!(a1.id, a2.id, "same alerts and severities: same mail");
    assert_eq!(a1.message_id, a2.message_id);
    assert!(a1.message_id.starts_with("<alert-") && a1.message_id.ends_with("@schule.example>"));

    let mut escalated = alert_mail();
    escalated.students[0].alerts[0].severity = Severity::Critical;
    assert_ne!(render_alert(&c, &escalated).unwrap().id, a1.id);

    let d1 = render_digest(&c, &digest_mail()).unwrap();
    let mut later = digest_mail();
    later.students.truncate(1);
    assert_eq!(
        render_digest(&c, &later).unwrap().id,
        d1.id,
        "digest key: school, recipient, week"
    );
    let mut next_week = digest_mail();
    next_week.week = "2026-W11".into();
    assert_ne!(render_digest(&c, &next_week).unwrap().id, d1.id);
    let mut school_wide = digest_mail();
    school_wide.klassen.clear();
    assert_ne!(render_digest(&c, &school_wide).unwrap().id, d1.id);
    assert_ne!(d1.id, a1.id);
}

#[test]
fn quiet_digest_and_school_wide_digest() {
    let mut quiet = digest_mail();
    quiet.students.clear();
    quiet.klassen = vec!["7b".into()];
    let r = render_digest(&ctx(Language::De), &quiet).unwrap();
    assert_eq!(
        r.subject,
        "Fehlzeiten-Wochenübersicht 7b – KW 10 (keine Hinweise)"
    );
    assert!(
        r.text
            .contains("Für Ihre Klasse 7b gibt es in dieser Woche keine Fehlzeiten-Hinweise.")
    );
    assert!(r.html.contains("keine Fehlzeiten-Hinweise"));
    assert!(r.text.contains("als Klassenleitung der Klasse 7b"));
    assert!(r.student_ids.is_empty());

    let mut sw = digest_mail();
    sw.klassen.clear();
    sw.teacher_name.clear();
    let r = render_digest(&ctx(Language::En), &sw).unwrap();
    assert_eq!(
        r.subject,
        "Weekly absence summary Gymnasium Musterstadt – week 10"
    );
    assert!(
        r.text
            .contains("as a school social worker at Gymnasium Musterstadt")
    );
    assert!(r.text.starts_with("Hello,"));
}

#[test]
fn message_parses_back_with_both_alternatives() {
    for lang in [Language::De, Language::En] {
        let c = ctx(lang);
        let rendered = render_digest(&c, &digest_mail()).unwrap();
        let text = to_message(&c, &rendered, date()).unwrap();
        assert!(text.is_ascii(), "headers and bodies are transfer-encoded");
        let msg = MessageParser::default().parse(text.as_bytes()).unwrap();
        assert_eq!(msg.subject(), Some(rendered.subject.as_str()));
        assert_eq!(
            msg.message_id(),
            Some(rendered.message_id.trim_matches(['<', '>']))
        );
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("fehlzeiten@schule.example"));
        assert_eq!(from.name(), Some("Fehlzeiten-Frühwarnsystem"));
        assert_eq!(
            msg.to().unwrap().first().unwrap().address(),
            Some("klassenleitung.7b@schule.example")
        );
        assert_eq!(
            msg.reply_to().unwrap().first().unwrap().address(),
            Some("sozialarbeit@schule.example")
        );
        assert_eq!(msg.date().unwrap().to_timestamp(), date().timestamp());
        assert_eq!(
            msg.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert!(
            msg.content_type()
                .is_some_and(|ct| ct.c_type == "multipart" && ct.subtype() == Some("alternative"))
        );
        assert_eq!(msg.text_body_count(), 1);
        assert_eq!(msg.html_body_count(), 1);
        let body_text = msg.body_text(0).unwrap();
        let body_html = msg.body_html(0).unwrap();
        assert_eq!(
            body_text.replace("\r\n", "\n").trim_end(),
            rendered.text.trim_end()
        );
        assert!(body_html.contains("&lt;script&gt;"));
        assert!(body_html.contains(rendered.subject.as_str()));
    }
}

#[test]
fn test_mail_names_no_student() {
    let c = ctx(Language::De);
    let mail = TestMail {
        recipient: "it@schule.example".into(),
        sent_at: date(),
        transport: "SMTP mail.schule.example:587 (STARTTLS)".into(),
    };
    let r = render_test(&c, &mail).unwrap();
    assert_eq!(r.subject, "Fehlzeiten-Frühwarnsystem: Testnachricht");
    assert!(
        r.text
            .contains("Versandweg: SMTP mail.schule.example:587 (STARTTLS)")
    );
    assert!(r.student_ids.is_empty());
    let later = TestMail {
        sent_at: date() + chrono::TimeDelta::seconds(1),
        ..mail
    };
    assert_ne!(
        render_test(&c, &later).unwrap().id,
        r.id,
        "every test mail is a new mail"
    );
}

#[test]
fn bad_from_address_is_reported_without_repeating_it() {
    let mut c = ctx(Language::De);
    c.from = "not an address".into();
    let err = render_alert(&c, &alert_mail()).unwrap_err();
    assert!(err.to_string().contains("mail.from"), "{err}");
    assert!(!err.to_string().contains("not an address"));
}

#[test]
fn long_evidence_keeps_the_most_recent_entries() {
    let ev: Vec<String> = (1..=24).map(|d| format!("2026-03-{d:02}")).collect();
    let short = super::short_evidence(Language::De, &ev);
    assert_eq!(short.len(), super::MAX_EVIDENCE + 1);
    assert_eq!(short[0], "… 14 frühere");
    assert_eq!(short[1], "15.03.2026");
    assert_eq!(short.last().unwrap(), "24.03.2026");
    let few = super::short_evidence(Language::En, &ev[..3]);
    assert_eq!(few, vec!["2026-03-01", "2026-03-02", "2026-03-03"]);
}
