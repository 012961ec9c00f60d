//! Outbox delivery (SPEC §5): a mail is first stored, then sent; failures are retried with
//! exponential backoff for up to 48 hours, then the mail is marked failed.
//!
//! Delivery guarantee: a mail is marked sent only after the server accepted it (`250`). If the
//! process dies between that `250` and the store update, the entry is still pending and is sent
//! once more on the next run — with the same bytes, so with the same Message-ID, which lets
//! mail clients and servers recognise the duplicate. That window cannot be closed from the
//! client side of SMTP; it is the "at most twice" of the SPEC.
//!
//! On shutdown, [`deliver_due_until`] finishes the SMTP transaction in flight and starts no
//! other: each send is bounded by `mail.timeout`, and a send dropped after the server's `250`
//! is that same duplicate. What is left stays pending for the next start.
//!
//! One school's outbox must be delivered by one task at a time (the daemon's per-school
//! schedule guarantees that); otherwise both could send the same entry.

use super::render::RenderedMail;
use super::transport::Transport;
use crate::store::{AuditEvent, OutboxEntry, OutboxStatus, Store};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use lettre::message::Mailbox;
use tokio_util::sync::CancellationToken;

/// How long a mail is retried before it is marked failed.
pub const RETRY_PERIOD: TimeDelta = TimeDelta::hours(48);
/// First retry delay; doubled after every failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: TimeDelta = TimeDelta::minutes(1);
pub const MAX_BACKOFF: TimeDelta = TimeDelta::hours(1);

/// What one [`deliver_due`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u32,
    /// Failed transiently, will be tried again.
    pub retried: u32,
    /// Given up (permanent error or retry period over).
    pub failed: u32,
    /// The last diagnosis of this run, if anything failed.
    pub last_error: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The outbox entry for a rendered mail, pending and due at once. `message` is the complete
/// RFC 5322 text from [`super::to_message`]; `kind` is `alert`, `digest`,
/// `social_worker_digest` or `test`; `from` is the sender mailbox (its bare address becomes the
/// envelope sender).
pub fn enqueue_entry(
    rendered: &RenderedMail,
    message: String,
    kind: &str,
    from: &str,
    now: DateTime<Utc>,
) -> OutboxEntry {
    let envelope_from = from
        .parse::<Mailbox>()
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| from.trim().to_string());
    OutboxEntry {
        id: rendered.id.clone(),
        kind: kind.to_string(),
        from: envelope_from,
        to: rendered.to.clone(),
        message,
        student_ids: rendered.student_ids.clone(),
        alert_ids: rendered.alert_ids.clone(),
        status: OutboxStatus::Pending,
        attempts: 0,
        created: rfc3339(now),
        next_attempt: rfc3339(now),
        last_error: None,
        sent_at: None,
    }
}

/// The delay before the next attempt after `attempts` failed ones: 1, 2, 4, … minutes, at most
/// one hour.
pub fn backoff(attempts: u32) -> TimeDelta {
    let doublings = attempts.saturating_sub(1).min(10);
    let delay = FIRST_BACKOFF * (1i32 << doublings);
    delay.min(MAX_BACKOFF)
}

/// The Message-ID header of a stored message, for the audit log.
fn message_id_of(message: &str) -> Option<String> {
    message.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_string())
    })
}

fn sent_event(entry: &OutboxEntry, now: DateTime<Utc>) -> AuditEvent {
    let mut event = AuditEvent::new("mail_sent", now);
    event.message_id = message_id_of(&entry.message);
    event.recipients = entry.to.clone();
    event.student_ids = entry.student_ids.clone();
    event.alert_ids = entry.alert_ids.clone();
    event.detail = serde_json::json!({ "mail": entry.kind, "id": entry.id });
    event
}

/// Sends every due entry of `school`: success → sent + audit record; transient failure →
/// retried later with backoff; permanent failure or older than 48 h → failed.
pub async fn deliver_due(
    store: &Store,
    school: &str,
    transport: &Transport,
    now: DateTime<Utc>,
) -> DeliveryReport {
    deliver_due_until(store, school, transport, now, &CancellationToken::new()).await
}

/// [`deliver_due`] that starts no further mail once `stop` is cancelled; the one in flight is
/// finished and recorded (the daemon's shutdown, SPEC §6).
pub async fn deliver_due_until(
    store: &Store,
    school: &str,
    transport: &Transport,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    let owned_school = school.to_string();
    let now_text = rfc3339(now);
    let due = match store
        .blocking(move |s| s.outbox_due(&owned_school, &now_text))
        .await
    {
        Ok(due) => due,
        Err(e) => {
            log::error!("school {school}: cannot read the outbox: {e}");
            report.last_error = Some(format!("cannot read the outbox: {e}"));
            return report;
        }
    };
    for mut entry in due {
        if stop.is_cancelled() {
            log::info!("school {school}: stopping; the remaining mails stay in the outbox");
            break;
        }
        let result = transport
            .send(&entry.from, &entry.to, entry.message.as_bytes(), &entry.id)
            .await;
        entry.attempts = entry.attempts.saturating_add(1);
        let sent = result.is_ok();
        let audit = match result {
            Ok(()) => {
                entry.status = OutboxStatus::Sent;
                entry.sent_at = Some(rfc3339(now));
                entry.last_error = None;
                report.sent += 1;
                log::info!(
                    "school {school}: mail {} ({}) sent to {} recipient(s), attempt {}",
                    entry.id,
                    entry.kind,
                    entry.to.len(),
                    entry.attempts
                );
                Some(sent_event(&entry, now))
            }
            Err(e) => {
                let diagnosis = e.diagnosis().to_string();
                let expired = DateTime::parse_from_rfc3339(&entry.created)
                    .map(|created| now.signed_duration_since(created) >= RETRY_PERIOD)
                    // A damaged timestamp must not make a mail retry forever.
                    .unwrap_or(true);
                entry.last_error = Some(diagnosis.clone());
                if e.is_transient() && !expired {
                    entry.next_attempt = rfc3339(now + backoff(entry.attempts));
                    report.retried += 1;
                    log::warn!(
                        "school {school}: mail {} not sent (attempt {}), retrying at {}: {diagnosis}",
                        entry.id,
                        entry.attempts,
                        entry.next_attempt
                    );
                } else {
                    entry.status = OutboxStatus::Failed;
                    report.failed += 1;
                    log::error!(
                        "school {school}: mail {} failed for good after {} attempt(s): {diagnosis}",
                        entry.id,
                        entry.attempts
                    );
                }
                report.last_error = Some(diagnosis);
                None
            }
        };
        let owned_school = school.to_string();
        let id = entry.id.clone();
        let stored = store
            .blocking(move |s| match audit {
                Some(event) => s.outbox_mark_sent(&owned_school, &entry, &event),
                None => s.outbox_update(&owned_school, &entry),
            })
            .await;
        if let Err(e) = stored {
            // The entry stays pending in the store: a sent mail goes out once more (same
            // Message-ID), a failed one is simply tried again.
            log::error!("school {school}: cannot record the state of mail {id}: {e}");
            report.last_error = Some(format!("cannot record the state of mail {id}: {e}"));
            if sent {
                report.sent = report.sent.saturating_sub(1);
                report.retried += 1;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        let minutes: Vec<i64> = (1..=9).map(|a| backoff(a).num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0).num_minutes(), 1);
        assert_eq!(backoff(u32::MAX).num_minutes(), 60);
    }

    #[test]
    fn finds_the_message_id_header() {
        let m = "From: a@b\r\nMessage-ID: <x@b>\r\nSubject: s\r\n\r\nMessage-ID: <body@b>\r\n";
        assert_eq!(message_id_of(m).as_deref(), Some("<x@b>"));
        assert_eq!(message_id_of("Subject: s\r\n\r\nbody"), None);
    }
}
