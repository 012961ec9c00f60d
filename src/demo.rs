//! `fehlzeiten demo`: the whole pipeline on an embedded default. It starts the built-in WebUntis
//! simulator on loopback with a generated school, syncs it, evaluates the rules and writes the
//! mails as `.eml` (plus their HTML) and an `index.html` overview. No config, network or root.
//!
//! The simulator is test tooling; this command is its one user outside tests, on purpose: a
//! school's IT can see what the teachers would get before connecting a real WebUntis.

use crate::config::{Config, DaemonConfig, Language, MailConfig, TimeRange, TransportConfig};
use crate::mail::{RenderedMail, Transport};
use crate::model::Severity;
use crate::pipeline::{self, RunOptions};
use crate::sim::scenario::{RuleQuality, rule_quality};
use crate::sim::server::{SnippetSchool, config_snippet};
use crate::sim::{self, Scenario, SimConfig};
use crate::store::Store;
use crate::untis::UntisClient;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Marks a directory as the demo's own, so a rerun may clean it.
const MARKER: &str = ".fehlzeiten-demo";
const SCHOOL_ID: &str = "demo-gymnasium";
const SCHOOL_NAME: &str = "Gymnasium Musterstadt (Demo)";
const FROM: &str = "Fehlzeiten-Frühwarnsystem <fehlzeiten@schule.example>";
const SOCIAL_WORKERS: [&str; 2] = [
    "sozialarbeit@schule.example",
    "schulsozialarbeit@schule.example",
];

pub struct DemoOptions {
    pub out: PathBuf,
    pub students: usize,
    pub seed: u64,
    pub today: Option<NaiveDate>,
}

/// A school-local wall-clock time as UTC (the earlier instant when a DST change repeats it).
pub fn local_time(tz: chrono_tz::Tz, day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN);
    tz.from_local_datetime(&day.and_time(t))
        .earliest()
        .map(|x| x.with_timezone(&Utc))
        .unwrap_or_else(|| day.and_time(t).and_utc())
}

/// Prepares the output directory: refuses a foreign non-empty directory, cleans our own.
fn prepare_out(out: &Path) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot prepare {}: {e}", out.display());
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(err)?;
        let ours = out.join(MARKER).exists();
        if !ours && entries.next().is_some() {
            return Err(format!(
                "{} exists and is not a demo directory; choose another --out",
                out.display()
            ));
        }
        if ours {
            std::fs::remove_dir_all(out).map_err(err)?;
        }
    }
    std::fs::create_dir_all(out.join("mails")).map_err(err)?;
    std::fs::write(
        out.join(MARKER),
        "written by `fehlzeiten demo`; safe to delete\n",
    )
    .map_err(err)?;
    Ok(())
}

fn demo_config(
    scenario: &Scenario,
    out: &Path,
    api_base: &str,
    sim: &SimConfig,
) -> Result<Config, String> {
    let mut school = scenario.school_config(
        SCHOOL_ID,
        SCHOOL_NAME,
        url::Url::parse(api_base).map_err(|e| e.to_string())?,
        sim,
        &SOCIAL_WORKERS,
    );
    // Quiet hours as SPEC §2's example has them; the demo runs at 07:15, outside them.
    let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
    school.notify.quiet_hours = Some(TimeRange {
        start: t(20, 0),
        end: t(6, 30),
    });
    // The optional school-wide digest to the social workers, at the class teachers' slot.
    school.notify.social_worker_digest = Some(school.notify.digest);
    Ok(Config {
        path: PathBuf::new(),
        daemon: DaemonConfig {
            data_dir: out.join("state"),
            status_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8787)),
            language: Language::De,
            log_level: log::LevelFilter::Warn,
            removed_school_retention_days: 30,
            admin_socket: None,
        },
        mail: MailConfig {
            from: FROM.to_string(),
            reply_to: Some(SOCIAL_WORKERS[0].to_string()),
            transport: TransportConfig::File {
                dir: out.join("mails"),
            },
        },
        schools: vec![school],
    })
}

/// The demo's config as a file, so `evaluate` and `digest --preview` can be tried on its data.
fn config_file_text(scenario: &Scenario, api_base: &str, sim: &SimConfig) -> String {
    let school = SnippetSchool {
        id: SCHOOL_ID.to_string(),
        name: SCHOOL_NAME.to_string(),
        password_file: "untis.secret".to_string(),
        social_workers: SOCIAL_WORKERS.iter().map(|s| s.to_string()).collect(),
    };
    format!(
        "# Written by `fehlzeiten demo`: the demo school's config. Try:\n\
         #   fehlzeiten --config fehlzeiten.toml evaluate --at {today}\n\
         # The simulator is gone when the demo ends; `sync` needs `fehlzeiten simulate-untis`.\n\n\
         [daemon]\ndata_dir = \"state\"\nlanguage = \"de\"\nlog_level = \"warn\"\n\n\
         [mail]\nfrom = \"{FROM}\"\nreply_to = \"{reply_to}\"\ntransport = \"file\"\nfile_dir = \"mails\"\n\n{snippet}",
        today = scenario.today,
        reply_to = SOCIAL_WORKERS[0],
        snippet = config_snippet(scenario, api_base, sim, &school),
    )
}

fn write_secret(path: &Path, value: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    writeln!(f, "{value}").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percent(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |v| format!("{:.0} %", v * 100.0))
}

fn index_html(
    mails: &[(String, RenderedMail)],
    quality: &[RuleQuality],
    summary: &str,
    today: NaiveDate,
) -> String {
    let mut rules = String::new();
    for q in quality {
        let _ = writeln!(
            rules,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            q.rule,
            q.planted,
            q.found_planted,
            q.false_positives,
            percent(q.recall),
            percent(q.precision)
        );
    }
    let mut rows = String::new();
    for (kind, m) in mails {
        let label = match kind.as_str() {
            "alert" => "Sofortmeldung",
            "social_worker_digest" => "Wochenübersicht Schule",
            _ => "Wochenübersicht Klassen",
        };
        let _ = writeln!(
            rows,
            "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"mails/{id}.html\">ansehen</a> · <a href=\"mails/{id}.eml\">.eml</a></td></tr>",
            html_escape(&m.to.join(", ")),
            html_escape(&m.subject),
            m.student_ids.len(),
            id = html_escape(&m.id),
        );
    }
    format!(
        r#"<!doctype html>
<html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>fehlzeiten – Demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}}
pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}</style></head>
<body><h1>fehlzeiten – Demo</h1>
<p>Simulierte Schule, Stichtag {today}. Alle Namen sind erfunden. Diese Mails hätte das System verschickt:</p>
<table><tr><th>Art</th><th>An</th><th>Betreff</th><th>Schüler/innen</th><th>Mail</th></tr>
{rows}</table>
<h2>Wie gut die Regeln treffen</h2>
<p>Der Simulator weiß, welche Muster er eingebaut hat. Gefunden = mit der erwarteten Stufe erkannt;
Fehlalarme = Warnung oder höher bei Schüler/innen ohne dieses Muster.</p>
<table><tr><th>Regel</th><th>eingebaut</th><th>gefunden</th><th>Fehlalarme</th><th>Recall</th><th>Präzision</th></tr>
{rules}</table>
<h2>Zusammenfassung</h2><pre>{}</pre>
</body></html>
"#,
        html_escape(summary)
    )
}

/// Runs the demo and returns the summary to print.
pub async fn run(opts: DemoOptions) -> Result<String, String> {
    if opts.students == 0 || opts.students > 5000 {
        return Err("--students must be between 1 and 5000".to_string());
    }
    let started = Instant::now();
    let real_today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let today = Scenario::reference_day(opts.today.unwrap_or(real_today));
    let scenario = Arc::new(Scenario::generate(opts.seed, opts.students, today));
    prepare_out(&opts.out)?;

    let sim_config = SimConfig::default();
    let sim = sim::start(
        scenario.clone(),
        sim_config.clone(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .map_err(|e| format!("cannot start the WebUntis simulator: {e}"))?;
    let config = demo_config(&scenario, &opts.out, &sim.base_url(), &sim_config)?;
    std::fs::write(
        opts.out.join("fehlzeiten.toml"),
        config_file_text(&scenario, &sim.base_url(), &sim_config),
    )
    .map_err(|e| format!("cannot write the demo config: {e}"))?;
    write_secret(&opts.out.join("untis.secret"), &sim_config.password)?;
    let skipped: Vec<serde_json::Value> = scenario
        .skipped
        .iter()
        .map(|k| serde_json::json!({"plant": k.plant, "reason": k.reason}))
        .collect();
    let ground_truth = serde_json::to_string_pretty(
        &serde_json::json!({"planted": scenario.planted, "skipped": skipped}),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(opts.out.join("ground-truth.json"), ground_truth)
        .map_err(|e| format!("cannot write ground-truth.json: {e}"))?;

    let school = &config.schools[0];
    let store = Store::open(&config.daemon.data_dir).map_err(|e| e.to_string())?;
    let transport = Transport::from_config(&config.mail).map_err(|e| e.to_string())?;
    let client = UntisClient::new(&school.untis).map_err(|e| e.to_string())?;
    // The run happens at the digest slot of the demo's day, so both kinds of mail are shown.
    let now = local_time(school.timezone, scenario.today, 7, 15);
    let sync_started = Instant::now();
    let report = pipeline::run_school(
        &store,
        &config,
        school,
        Some(&client),
        &transport,
        now,
        RunOptions {
            digests: true,
            school_digest: true,
            deliver: true,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let pipeline_time = sync_started.elapsed();
    sim.shutdown().await;

    // The scenario knows what it planted: score the rules against it.
    let snapshot = store.load_school(SCHOOL_ID).map_err(|e| e.to_string())?;
    let findings = pipeline::evaluate_school(&snapshot, school, scenario.today);
    let quality = rule_quality(&scenario, &findings);
    std::fs::write(
        opts.out.join("rule-quality.json"),
        serde_json::to_string_pretty(&quality).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("cannot write rule-quality.json: {e}"))?;

    for (_, m) in &report.mails {
        let path = opts.out.join("mails").join(format!("{}.html", m.id));
        std::fs::write(&path, &m.html)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let sync = report.sync.as_ref();
    let count = |s: Severity| report.by_severity.get(&s).copied().unwrap_or(0);
    let of_kind = |k: &str| report.mails.iter().filter(|(kind, _)| kind == k).count();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "fehlzeiten demo: {SCHOOL_NAME}, Stichtag {}",
        scenario.today
    );
    if let Some(s) = sync {
        let _ = writeln!(
            summary,
            "  sync:     {} students in {} Klassen, {} absence entries ({}..{}), {} requests ({} token)",
            s.students,
            s.klassen,
            s.absences,
            s.window.0,
            s.window.1,
            s.data_requests + s.token_requests,
            s.token_requests
        );
    }
    let _ = writeln!(
        summary,
        "  findings: {} critical, {} warning, {} watch",
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Watch)
    );
    let _ = writeln!(
        summary,
        "  mails:    {} immediate alerts and {} school-wide digests to social workers, {} weekly digests to class teachers (delivered {}, failed {})",
        report.immediate_mails,
        of_kind("social_worker_digest"),
        of_kind("digest"),
        report.delivery.sent,
        report.delivery.failed
    );
    let planted: usize = quality.iter().map(|q| q.planted).sum();
    let found: usize = quality.iter().map(|q| q.found_planted).sum();
    let false_positives: usize = quality.iter().map(|q| q.false_positives).sum();
    let _ = writeln!(
        summary,
        "  rules:    {found} of {planted} planted patterns found, {false_positives} false alarms at warning or above (per rule: rule-quality.json)"
    );
    let _ = writeln!(
        summary,
        "  time:     {:.2} s for sync, rules and mail ({:.2} s in all)",
        pipeline_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(
        opts.out.join("index.html"),
        index_html(&report.mails, &quality, &summary, scenario.today),
    )
    .map_err(|e| format!("cannot write index.html: {e}"))?;
    let _ = writeln!(
        summary,
        "  open:     {}",
        opts.out.join("index.html").display()
    );
    let _ = writeln!(
        summary,
        "  try:      fehlzeiten --config {} evaluate --at {}",
        opts.out.join("fehlzeiten.toml").display(),
        scenario.today
    );
    Ok(summary)
}
