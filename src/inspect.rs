//! Read-only views for operators: the current findings (`evaluate`) and the digest a
//! recipient would get now (`digest --preview`). They run wherever the database is open: in the
//! daemon for a request on the admin socket, or in the CLI when no daemon runs.

use crate::admin::Output;
use crate::config::Config;
use crate::pipeline;
use crate::store::Store;
use chrono::{NaiveDate, Utc};

/// One finding as `evaluate --json` prints it (SPEC §7).
#[derive(serde::Serialize)]
struct FindingJson<'a> {
    school: &'a str,
    student: StudentJson,
    rule: &'a str,
    severity: &'a str,
    period: &'a str,
    value: u32,
    evidence: &'a [String],
    /// Muted by a silence: found, but no mail names it.
    silenced: bool,
}

#[derive(serde::Serialize)]
struct StudentJson {
    id: String,
    name: String,
    klasse: Option<String>,
}

/// `evaluate`: the current findings as a table or (`json`) the JSON array of SPEC §7.
pub async fn evaluate(
    config: &Config,
    store: &Store,
    school: Option<&str>,
    json: bool,
    at: Option<NaiveDate>,
) -> Result<Output, String> {
    let schools = crate::admin::selected(config, school)?;
    let mut output = Output::default();
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for s in schools {
        let id = s.id.to_string();
        let (snapshot, silences) = store
            .blocking(move |st| Ok((st.load_school(&id)?, st.silences(&id)?)))
            .await
            .map_err(|e| e.to_string())?;
        let today = at.unwrap_or_else(|| Utc::now().with_timezone(&s.timezone).date_naive());
        let (findings, _) =
            crate::alerts::inhibit(&s.id, pipeline::evaluate_school(&snapshot, s, today));
        rows.push((s, snapshot, silences, today, findings));
    }
    for (s, snapshot, silences, today, findings) in &rows {
        let dir = crate::alerts::Directory::new(&snapshot.roster);
        let active = crate::alerts::ActiveSilences::new(&s.id, silences, *today);
        for f in findings {
            all.push(FindingJson {
                school: s.id.as_str(),
                student: StudentJson {
                    id: f.student.0.clone(),
                    name: dir.name(&f.student),
                    klasse: dir.klasse_name(&f.student),
                },
                rule: &f.rule,
                severity: f.severity.as_str(),
                period: &f.period,
                value: f.value,
                evidence: &f.evidence,
                silenced: active.mutes(&crate::alerts::key_of(&s.id, f)),
            });
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        output.out.extend(text.lines().map(str::to_string));
    } else if all.is_empty() {
        output.out.push("no findings".to_string());
    } else {
        for f in &all {
            let name = if f.student.name.is_empty() {
                format!("({})", f.student.id)
            } else {
                f.student.name.clone()
            };
            output.out.push(format!(
                "{:<8}{} {:<20} {:<5} {:<28} {:<20} {:>4}  {}",
                f.severity,
                if f.silenced { " (muted)" } else { "" },
                f.rule,
                f.student.klasse.as_deref().unwrap_or("-"),
                name,
                f.period,
                f.value,
                f.evidence.join(" ")
            ));
        }
    }
    Ok(output)
}

/// `digest --preview`: the digest `to` would get now, as its text part (subject first) or, with
/// `html`, its HTML part; nothing is stored or sent.
pub async fn digest_preview(
    config: &Config,
    store: &Store,
    school: Option<&str>,
    to: &str,
    at: Option<NaiveDate>,
    html: bool,
) -> Result<Output, String> {
    let schools = crate::admin::selected(config, school)?;
    let [s] = schools.as_slice() else {
        return Err(format!(
            "several schools are configured; choose one with --school ({})",
            crate::admin::school_ids(config)
        ));
    };
    let now = match at {
        Some(day) => crate::demo::local_time(s.timezone, day, 7, 0),
        None => Utc::now(),
    };
    let rendered = pipeline::preview_digest(store, config, s, to, now)
        .await
        .map_err(|e| e.to_string())?;
    let Some(mail) = rendered else {
        return Err(format!(
            "{to} gets no digest now: not a class teacher of a Klasse of {}, or no alerts for their Klassen",
            s.id
        ));
    };
    let text = if html {
        mail.html
    } else {
        format!("Subject: {}\n\n{}", mail.subject, mail.text)
    };
    Ok(Output {
        out: text.lines().map(str::to_string).collect(),
        err: Vec::new(),
    })
}
