//! Mail: rendering (`render`, templates in `templates/`, de + en), the durable outbox
//! (`outbox`), and the transports (`transport`: lettre SMTP or `.eml` files).
//!
//! The alert logic hands this module [`AlertMail`] and [`DigestMail`] values; it decides who is
//! at risk, this module only says it well and delivers it.

mod i18n;
pub mod outbox;
pub mod render;
pub mod transport;

pub use outbox::{DeliveryReport, deliver_due, deliver_due_until, enqueue_entry};
pub use render::{
    AlertItem, AlertMail, CalendarDay, DayMark, DigestMail, ItemStatus, MailContext, RenderedMail,
    StudentAlerts, TestMail, render_alert, render_digest, render_test, to_message,
};
pub use transport::{SendError, Transport};

use crate::config::Config;

/// Errors while rendering a mail or setting up a transport. Delivery failures are
/// [`SendError`]s.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Addresses are not repeated in the message: they are personal data and the message may
    /// end up in a log.
    #[error(
        "{field} is not a valid e-mail address; write it as `name@domain` or `Name <name@domain>`"
    )]
    InvalidAddress { field: String },
    #[error("mail template {name} failed: {reason}")]
    Template { name: String, reason: String },
    #[error("cannot build the mail message: {0}")]
    Message(String),
    #[error("mail.ca_file {}: {reason}", .path.display())]
    CaFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot set up the SMTP transport to {host}: {reason}")]
    Smtp { host: String, reason: String },
}

/// `send-test-mail --to ADDR`: renders a short test mail in the configured language and sends
/// it directly with the configured transport (not through the outbox, so the admin sees the
/// result at once). Returns a line for the admin either way.
pub async fn send_test_mail(config: &Config, to: &str) -> Result<String, String> {
    let ctx = MailContext {
        school_id: config
            .schools
            .first()
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
        school_name: config
            .schools
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        language: config.daemon.language,
        from: config.mail.from.clone(),
        reply_to: config.mail.reply_to.clone(),
        contact: config.mail.reply_to.clone(),
    };
    let now = chrono::Utc::now();
    let mail = TestMail {
        recipient: to.to_string(),
        sent_at: now,
        transport: transport::describe(&config.mail),
    };
    let rendered = render_test(&ctx, &mail).map_err(|e| e.to_string())?;
    let message = to_message(&ctx, &rendered, now).map_err(|e| e.to_string())?;
    let transport = Transport::from_config(&config.mail).map_err(|e| e.to_string())?;
    let envelope_from = render::envelope_address(&ctx.from).map_err(|e| e.to_string())?;
    transport
        .send(
            &envelope_from,
            &rendered.to,
            message.as_bytes(),
            &rendered.id,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(match &transport {
        Transport::File(dir) => format!(
            "test mail written to {}",
            dir.join(format!("{}.eml", rendered.id)).display()
        ),
        Transport::Smtp(smtp) => format!(
            "test mail accepted by {} (Message-ID {})",
            smtp.endpoint(),
            rendered.message_id
        ),
    })
}
