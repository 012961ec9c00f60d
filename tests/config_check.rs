//! `check-config` as an admin meets it: broken configs report every problem as one line
//! `file: key: problem; fix`, valid ones load, and the shipped example stays valid.
//!
//! Fixtures live in `tests/fixtures/config/{valid,invalid}`. Each invalid fixture names the
//! message fragments it must produce in `# expect: …` header lines (and `# env:
//! no-credentials-directory` when it must run without `$CREDENTIALS_DIRECTORY`). Git does not
//! keep file modes, so every test copies the fixtures into a temp dir and creates the secret
//! files there with the modes they are named after.

// Tests may unwrap: a panic is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fehlzeiten::config::{self, Config, Environment, Security, TransportConfig};
use fehlzeiten::rules::RuleParams;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/fehlzeiten.toml");

/// Secret values written into the sandbox; no problem line may ever contain one.
const SMTP_PASSWORD: &str = "smtp-pw-Geheim1";
const UNTIS_PASSWORD: &str = "untis-pw-Geheim2";
const CREDENTIAL_PASSWORD: &str = "cred-pw-Geheim3";

struct Sandbox {
    dir: TempDir,
    env: Environment,
}

impl Sandbox {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn write_with_mode(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A temp dir holding the files of `tests/fixtures/config/<kind>` plus the secret files the
/// fixtures refer to, and a systemd credentials directory.
fn sandbox(kind: &str) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(Path::new(FIXTURES).join(kind)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    write_with_mode(
        &dir.path().join("smtp.secret"),
        &format!("{SMTP_PASSWORD}\n"),
        0o600,
    );
    write_with_mode(
        &dir.path().join("untis.secret"),
        &format!("{UNTIS_PASSWORD}\n"),
        0o600,
    );
    write_with_mode(
        &dir.path().join("group-readable.secret"),
        UNTIS_PASSWORD,
        0o640,
    );
    write_with_mode(
        &dir.path().join("world-readable.secret"),
        UNTIS_PASSWORD,
        0o604,
    );
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    write_with_mode(&creds.join("untis-password"), CREDENTIAL_PASSWORD, 0o400);
    Sandbox {
        dir,
        env: Environment {
            credentials_dir: Some(creds),
            credentials_optional: false,
        },
    }
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn header_values<'a>(text: &'a str, directive: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(directive))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks the line format every problem must have; returns what is wrong, if anything.
fn format_errors(path: &Path, lines: &[String]) -> Vec<String> {
    let prefix = format!("{}: ", path.display());
    let mut errors = Vec::new();
    for line in lines {
        if !line.starts_with(&prefix) {
            errors.push(format!("does not start with the file path: {line}"));
        }
        if line.contains('\n') || line.contains('\r') {
            errors.push(format!("is not a single line: {line:?}"));
        }
        if !line.contains("; ") {
            errors.push(format!("has no `; how to fix` part: {line}"));
        }
        if line.contains("Error {") || line.contains("Some(") || line.contains("kind:") {
            errors.push(format!("shows Rust debug output: {line}"));
        }
        for secret in [SMTP_PASSWORD, UNTIS_PASSWORD, CREDENTIAL_PASSWORD] {
            if line.contains(secret) {
                errors.push(format!("reveals a secret: {line}"));
            }
        }
    }
    errors
}

#[test]
fn fixture_lists_are_not_empty() {
    let invalid = toml_files(&Path::new(FIXTURES).join("invalid"));
    let valid = toml_files(&Path::new(FIXTURES).join("valid"));
    assert!(
        invalid.len() >= 12,
        "only {} invalid fixtures",
        invalid.len()
    );
    assert!(valid.len() >= 3, "only {} valid fixtures", valid.len());
}

#[test]
fn every_invalid_fixture_reports_its_expected_problems() {
    let sb = sandbox("invalid");
    let files = toml_files(sb.dir.path());
    assert!(files.len() >= 12, "only {} invalid fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let mut expected: Vec<&str> = header_values(&text, "# expect:");
        if text.trim().is_empty() {
            // No room for a header in an empty file.
            expected.push("the config file is empty; start from the commented example");
        }
        if expected.is_empty() {
            failures.push(format!("{name}: has no `# expect:` header"));
            continue;
        }
        let env = if header_values(&text, "# env:").contains(&"no-credentials-directory") {
            Environment::default()
        } else {
            sb.env.clone()
        };
        let lines = config::check_config_with(path, &env);
        if lines.is_empty() {
            failures.push(format!("{name}: was accepted"));
            continue;
        }
        for fragment in &expected {
            if !lines.iter().any(|l| l.contains(fragment)) {
                failures.push(format!(
                    "{name}: no problem contains {fragment:?}; got:\n    {}",
                    lines.join("\n    ")
                ));
            }
        }
        failures.extend(
            format_errors(path, &lines)
                .into_iter()
                .map(|e| format!("{name}: {e}")),
        );
        // `load` and `check_config` must agree.
        let loaded = config::load_with(path, &env);
        match loaded {
            Ok(_) => failures.push(format!("{name}: load accepted what check_config refused")),
            Err(e) => {
                if e.lines() != lines {
                    failures.push(format!(
                        "{name}: load and check_config report different problems"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_load_without_problems() {
    let sb = sandbox("valid");
    let files = toml_files(sb.dir.path());
    assert!(files.len() >= 3);
    for path in &files {
        let lines = config::check_config_with(path, &sb.env);
        assert!(
            lines.is_empty(),
            "{}:\n{}",
            path.display(),
            lines.join("\n")
        );
        let config = config::load_with(path, &sb.env).unwrap();
        assert_eq!(config.path, *path);
        assert!(!config.schools.is_empty());
    }
}

#[test]
fn three_independent_mistakes_are_all_reported() {
    let sb = sandbox("valid");
    let path = sb.path("three.toml");
    let text = std::fs::read_to_string(sb.path("minimal.toml"))
        .unwrap()
        .replace(
            "from = \"fehlzeiten@schule.example\"",
            "from = \"fehlzeiten at schule\"",
        )
        .replace(
            "state = \"NW\"",
            "state = \"NW\"\ntimezone = \"Europe/Bonn\"",
        )
        + "\n[school.periods]\n1 = \"07:45-08:30\"\n2 = \"08:15-09:00\"\n";
    std::fs::write(&path, text).unwrap();
    let lines = config::check_config_with(&path, &sb.env);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains("mail.from: `fehlzeiten at schule` is not a valid e-mail address"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("school[gym-musterstadt].timezone: `Europe/Bonn`")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("school[gym-musterstadt].periods.2: lesson 2 starts at 08:15, before lesson 1 ends at 08:30")),
        "{lines:#?}"
    );
    assert!(format_errors(&path, &lines).is_empty());
}

#[test]
fn a_missing_config_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let lines = config::check_config_with(&path, &Environment::default());
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("the config file does not exist; create it from the commented example"),
        "{lines:?}"
    );
    assert!(format_errors(&path, &lines).is_empty(), "{lines:?}");
    let lines = config::check_config_with(dir.path(), &Environment::default());
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("directory"), "{lines:?}");
}

#[test]
fn the_full_fixture_is_read_into_the_typed_config() {
    let sb = sandbox("valid");
    let c: Config = config::load_with(&sb.path("full.toml"), &sb.env).unwrap();
    // Relative paths resolve against the config file's directory.
    assert_eq!(c.daemon.data_dir, sb.path("data"));
    assert_eq!(c.daemon.status_listen.to_string(), "[::1]:8787");
    assert_eq!(c.daemon.log_level, log::LevelFilter::Debug);
    let TransportConfig::Smtp(smtp) = &c.mail.transport else {
        panic!("smtp expected")
    };
    assert_eq!(
        (smtp.security, smtp.port),
        (Security::Tls, 465),
        "port defaults by security"
    );
    assert_eq!(smtp.password.as_ref().unwrap().expose(), Ok(SMTP_PASSWORD));
    assert_eq!(smtp.ca_file.as_deref(), Some(sb.path("ca.pem").as_path()));
    assert_eq!(smtp.timeout.as_secs(), 90);

    let gym = c.school("gym-musterstadt").unwrap();
    assert_eq!(gym.state, "NW");
    assert_eq!(gym.untis.password.expose(), Ok(CREDENTIAL_PASSWORD));
    assert_eq!(gym.untis.ca_file, None, "ca_file = \"\" means none");
    assert_eq!(gym.untis.sync_every.as_secs(), 5400);
    assert_eq!(gym.untis.window_days, 366);
    // Three Ferien from the .ics (DTEND exclusive) plus one from the list, sorted.
    let ferien: Vec<String> = gym
        .holidays
        .iter()
        .map(|h| format!("{} {} {}", h.from, h.to, h.name))
        .collect();
    assert_eq!(
        ferien,
        [
            "2025-10-13 2025-10-25 Herbstferien",
            "2025-12-22 2026-01-06 Weihnachtsferien",
            "2026-03-30 2026-04-11 Osterferien",
            "2026-05-26 2026-05-26 Ferien",
        ]
    );
    // TOML keys sort as text ("10" < "2"); the schedule is ordered by lesson number.
    let numbers: Vec<u32> = gym.periods.iter().map(|p| p.number).collect();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
    assert_eq!(gym.recipients.class_teachers_override["5a"].len(), 2);
    assert_eq!(gym.notify.digest.weekday, chrono::Weekday::Fri);
    assert_eq!(
        gym.notify.social_worker_digest.map(|s| s.weekday),
        Some(chrono::Weekday::Mon)
    );
    assert_eq!(gym.notify.quiet_hours, None);
    assert!(gym.notify.all_quiet_mail);

    // [rules] over the defaults, then [school.rules] over that.
    let d = RuleParams::default();
    assert_eq!(gym.rules.absence_day_min_lessons, 10);
    assert!(!gym.rules.absence_rate.enabled);
    assert_eq!(gym.rules.absence_rate_min_school_days, 30);
    assert_eq!(gym.rules.same_weekday.watch, Some(1.0));
    assert_eq!(gym.rules.consecutive_days.critical, Some(7.0));
    assert_eq!(
        gym.rules.consecutive_days.warning,
        d.consecutive_days.warning
    );
    assert_eq!(gym.rules.unexcused_lessons.warning, Some(10.0));
    assert_eq!(gym.rules.lateness.weeks, 2);
    assert_eq!(gym.rules.lateness.bands, d.lateness.bands);
    assert!(!gym.rules.rising_trend.enabled);
    assert_eq!(gym.rules.rising_trend.recent_weeks, 3);
    assert_eq!(gym.rules.rising_trend.ratio, d.rising_trend.ratio);
    assert_eq!(gym.rules.edge_lessons.bands.critical, Some(7.0));
    assert_eq!(gym.rules.around_weekend_holiday.min_share_percent, 75.0);

    let rs = c.school("rs-musterstadt").unwrap();
    assert_eq!(rs.state, "BY");
    assert_eq!(rs.untis.password.expose(), Ok(UNTIS_PASSWORD));
    assert_eq!(rs.rules.absence_day_min_lessons, 4);
    assert_eq!(rs.rules.consecutive_days, d.consecutive_days);
    assert_eq!(rs.rules.edge_lessons.bands.critical, Some(7.0));
    assert_eq!(rs.rules.edge_lessons.weeks, d.edge_lessons.weeks);
    assert_eq!(rs.rules.lateness, d.lateness);
    assert_eq!(rs.rules.rising_trend, d.rising_trend);
    assert!(!rs.recipients.social_workers_see_school);
    assert_eq!(rs.notify.digest.weekday, chrono::Weekday::Sun);
    assert_eq!(
        rs.notify.immediate_min_severity,
        fehlzeiten::model::Severity::Watch
    );

    // Secrets never show in debug output (logs, panics).
    let debug = format!("{c:?}");
    for secret in [SMTP_PASSWORD, UNTIS_PASSWORD, CREDENTIAL_PASSWORD] {
        assert!(!debug.contains(secret));
    }
}

#[test]
fn rule_overrides_per_school_land_in_rule_params() {
    let sb = sandbox("valid");
    let c = config::load_with(&sb.path("rules-per-school.toml"), &sb.env).unwrap();
    let d = RuleParams::default();

    // What [rules] sets for every school.
    let mut global = d.clone();
    global.around_weekend_holiday.bands.critical = Some(6.0);
    global.around_weekend_holiday.weeks = 10;
    global.edge_lessons.bands.warning = Some(4.0);
    global.lateness.weeks = 3;
    global.rising_trend.min_rate_percent = 15.0;

    let mut gym = global.clone();
    gym.edge_lessons.bands.critical = Some(8.0);
    gym.edge_lessons.weeks = 6;
    gym.pending_excuse.watch = Some(2.0);
    gym.pending_excuse.critical = Some(10.0);
    gym.around_weekend_holiday.min_share_percent = 50.0;
    gym.rising_trend.ratio = 1.5;
    gym.rising_trend.baseline_weeks = 20;
    assert_eq!(c.school("gym-musterstadt").unwrap().rules, gym);

    let mut rs = global;
    rs.subject_avoidance.bands.warning = Some(4.0);
    rs.lateness.bands.enabled = false;
    rs.early_year.school_days = 30;
    rs.early_year.bands.critical = Some(8.0);
    assert_eq!(c.school("rs-musterstadt").unwrap().rules, rs);
}

#[test]
fn a_school_override_is_checked_against_the_global_value_and_only_there() {
    let sb = sandbox("invalid");
    let path = sb.path("rules-school-over-global.toml");
    let lines = config::check_config_with(&path, &sb.env);
    // Not under [rules] (valid on its own), not for the school that only changes weeks.
    assert_eq!(
        lines,
        [format!(
            "{}: school[gym-musterstadt].rules.edge_lessons: thresholds must rise from watch to critical, but warning = 5 (from [rules]) is above critical = 4; raise critical or lower warning",
            path.display()
        )]
    );
}

#[test]
fn a_bad_global_value_is_reported_once_not_per_school() {
    let sb = sandbox("valid");
    let path = sb.path("bad-global.toml");
    let text = std::fs::read_to_string(sb.path("rules-per-school.toml"))
        .unwrap()
        .replace("[rules.lateness]\nweeks = 3", "[rules.lateness]\nweeks = 0");
    std::fs::write(&path, text).unwrap();
    let lines = config::check_config_with(&path, &sb.env);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(": rules.lateness.weeks: 0 weeks is no window at all;"),
        "{lines:#?}"
    );
}

/// Copies the shipped example into a temp dir next to the secret files it names.
fn example_sandbox() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fehlzeiten.toml");
    std::fs::copy(EXAMPLE, &path).unwrap();
    write_with_mode(&dir.path().join("smtp.secret"), SMTP_PASSWORD, 0o600);
    write_with_mode(
        &dir.path().join("gym-musterstadt.untis.secret"),
        UNTIS_PASSWORD,
        0o600,
    );
    (dir, path)
}

#[test]
fn the_shipped_example_is_valid() {
    let (_dir, path) = example_sandbox();
    let lines = config::check_config_with(&path, &Environment::default());
    assert!(lines.is_empty(), "{}", lines.join("\n"));
    let c = config::load_with(&path, &Environment::default()).unwrap();
    assert_eq!(c.schools.len(), 1);
    let school = &c.schools[0];
    // The example's [rules] spell out the built-in defaults, so they must equal them.
    assert_eq!(school.rules, RuleParams::default());
    assert_eq!(school.periods.len(), 8);
    assert_eq!(school.untis.password.expose(), Ok(UNTIS_PASSWORD));
    let TransportConfig::Smtp(smtp) = &c.mail.transport else {
        panic!("smtp expected")
    };
    assert_eq!((smtp.security, smtp.port), (Security::StartTls, 587));
    // Its Ferien cover the school year they are written for.
    let in_that_year = chrono::NaiveDate::from_ymd_opt(2025, 11, 3).unwrap();
    assert_eq!(
        config::config_warnings(&c, in_that_year),
        Vec::<String>::new()
    );
}

#[test]
fn a_school_wide_digest_nobody_may_read_is_a_warning() {
    let (_dir, path) = example_sandbox();
    let mut c = config::load_with(&path, &Environment::default()).unwrap();
    let in_that_year = chrono::NaiveDate::from_ymd_opt(2025, 11, 3).unwrap();
    let school = &mut c.schools[0];
    school.notify.social_worker_digest = Some(school.notify.digest);
    assert_eq!(
        config::config_warnings(&c, in_that_year),
        Vec::<String>::new()
    );
    c.schools[0].recipients.social_workers_see_school = false;
    let warnings = config::config_warnings(&c, in_that_year);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "school[gym-musterstadt].notify.social_worker_digest: warning: is set but social_workers_see = \"none\""
        ),
        "{warnings:?}"
    );
}

#[test]
fn the_shipped_example_fails_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fehlzeiten.toml");
    std::fs::copy(EXAMPLE, &path).unwrap();
    let lines = config::check_config_with(&path, &Environment::default());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("mail.password_file: secret file"));
    assert!(lines[1].contains("school[gym-musterstadt].untis.password_file: secret file"));
}

#[test]
fn the_shipped_example_explains_every_key() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let keys = [
        // [daemon]
        "data_dir",
        "status_listen",
        "language",
        "log_level",
        "removed_school_retention_days",
        "admin_socket",
        // [mail]
        "from",
        "reply_to",
        "transport",
        "host",
        "port",
        "security",
        "username",
        "password_file",
        "password_credential",
        "ca_file",
        "timeout",
        "file_dir",
        // [[school]]
        "id",
        "name",
        "timezone",
        "state",
        "holidays",
        "holidays_file",
        "half_year_starts",
        // [school.untis]
        "api_base",
        "tenant_id",
        "client_id",
        "sync_every",
        "sync_hours",
        "window_days",
        "full_reconcile_at",
        "request_timeout",
        // [school.recipients]
        "social_workers",
        "class_teachers_file",
        "social_workers_see",
        // [school.notify]
        "digest",
        "social_worker_digest",
        "immediate_min_severity",
        "quiet_hours",
        "all_quiet_mail",
        // [rules]
        "absence_day_min_lessons",
        "enabled",
        "watch",
        "warning",
        "critical",
        "warning_lessons",
        "critical_lessons",
        "min_school_days",
        "min_share",
        "weeks",
        "school_days",
        "ratio",
        "min_rate",
        "recent_weeks",
        "baseline_weeks",
    ];
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| {
            !text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{k} ="))
            })
        })
        .collect();
    assert!(missing.is_empty(), "the example does not show {missing:?}");
    // Every rule has its own table with `enabled`, under one comment line that says what it
    // finds and where its numbers come from.
    let raw: toml::Table = toml::from_str(&text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for rule in fehlzeiten::rules::RULE_IDS {
        let header = format!("[rules.{rule}]");
        let at = lines.iter().position(|l| *l == header);
        let Some(at) = at else {
            panic!("the example has no {header}")
        };
        assert!(
            at > 0 && lines[at - 1].starts_with("# ") && lines[at - 1].len() <= 100,
            "{header} has no comment line above it"
        );
        assert!(
            raw["rules"][rule].get("enabled").is_some(),
            "{header} does not show `enabled`"
        );
    }
    for section in [
        "[daemon]",
        "[mail]",
        "[[school]]",
        "[school.untis]",
        "[school.periods]",
        "[school.recipients]",
        "[school.notify]",
        "[school.rules]",
        "[rules]",
    ] {
        assert!(text.contains(section), "the example has no {section}");
    }
}

/// `fehlzeiten check-config` as the admin (and `ExecStartPre`) runs it: the same lines on
/// stderr, nothing else, exit 1; exit 0 and `ok` for a valid config.
#[test]
fn the_binary_prints_one_line_per_problem_and_exits_1() {
    let bin = env!("CARGO_BIN_EXE_fehlzeiten");
    let sb = sandbox("invalid");
    let mut checked = 0;
    for path in toml_files(sb.dir.path()) {
        let text = std::fs::read_to_string(&path).unwrap();
        if header_values(&text, "# env:").contains(&"no-credentials-directory")
            || text.contains("_credential")
        {
            continue; // needs $CREDENTIALS_DIRECTORY, covered through the library
        }
        let out = std::process::Command::new(bin)
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<String> = stderr.lines().map(str::to_string).collect();
        assert_eq!(lines, config::check_config_with(&path, &sb.env), "{name}");
        assert!(format_errors(&path, &lines).is_empty(), "{name}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{name}"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} fixtures checked through the binary"
    );

    let sb = sandbox("valid");
    let path = toml_files(sb.dir.path())
        .into_iter()
        .find(|p| !std::fs::read_to_string(p).unwrap().contains("_credential"))
        .unwrap();
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

/// A config that takes a password from a systemd credential, checked by hand (no
/// `$CREDENTIALS_DIRECTORY`: only the service gets it) is valid with a note; checked within the
/// service (`ExecStartPre=`, the unit sets `FEHLZEITEN_SERVICE=1`) a missing credential is a
/// problem; with the credentials there, nothing is said.
#[test]
fn credentials_are_checked_by_the_service_and_noted_by_hand() {
    let bin = env!("CARGO_BIN_EXE_fehlzeiten");
    let sb = sandbox("valid");
    let path = sb.dir.path().join("full.toml");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("password_credential")
    );
    let check = |envs: &[(&str, &std::ffi::OsStr)]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("--config")
            .arg(&path)
            .arg("check-config")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("FEHLZEITEN_SERVICE");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains(".untis.password_credential: note: not checked here: the systemd credential `untis-password` is only available to the service"),
        "{stderr}"
    );

    let (code, stderr) = check(&[("FEHLZEITEN_SERVICE", "1".as_ref())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("$CREDENTIALS_DIRECTORY is not set"),
        "{stderr}"
    );

    let creds = sb.env.credentials_dir.clone().unwrap();
    let (code, stderr) = check(&[
        ("FEHLZEITEN_SERVICE", "1".as_ref()),
        ("CREDENTIALS_DIRECTORY", creds.as_os_str()),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("note:"), "{stderr}");
}
