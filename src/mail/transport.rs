//! Transports: SMTP through lettre (STARTTLS, implicit TLS, or plain to a loopback relay), or
//! `.eml` files in a directory (demo, testing).
//!
//! Failures come back as [`SendError`]: transient ones are retried by the outbox, permanent ones
//! are not, and both carry one line that tells an admin what to change.

use super::MailError;
use crate::config::{MailConfig, Security, SmtpConfig, TransportConfig};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, Error as SmtpError};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Why a delivery failed, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Connection refused, timeout, network trouble, a 4xx reply, TLS trouble: retried.
    #[error("{diagnosis}")]
    Transient { diagnosis: String },
    /// A 5xx reply or failed authentication: retrying the same mail will not help.
    #[error("{diagnosis}")]
    Permanent { diagnosis: String },
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }

    /// One line for humans (and the status endpoint): what happened and what to change.
    pub fn diagnosis(&self) -> &str {
        match self {
            SendError::Transient { diagnosis } | SendError::Permanent { diagnosis } => diagnosis,
        }
    }

    fn transient(diagnosis: impl Into<String>) -> Self {
        SendError::Transient {
            diagnosis: diagnosis.into(),
        }
    }

    fn permanent(diagnosis: impl Into<String>) -> Self {
        SendError::Permanent {
            diagnosis: diagnosis.into(),
        }
    }
}

/// Where mails go.
pub enum Transport {
    Smtp(Box<SmtpTransport>),
    /// Writes `<id>.eml` into the directory.
    File(PathBuf),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Smtp(s) => write!(f, "Transport::Smtp({})", s.describe()),
            Transport::File(dir) => write!(f, "Transport::File({})", dir.display()),
        }
    }
}

/// An SMTP relay. The lettre transport (and its connection pool, which spawns a task) is built
/// on first use, so `from_config` works outside a tokio runtime.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    /// Limit for one whole delivery: connect, TLS, AUTH and the SMTP transaction.
    timeout: Duration,
    builder: AsyncSmtpTransportBuilder,
    inner: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl SmtpTransport {
    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "SMTP {} ({})",
            self.endpoint(),
            security_name(self.security)
        )
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.inner.get_or_init(|| self.builder.clone().build())
    }
}

fn security_name(s: Security) -> &'static str {
    match s {
        Security::StartTls => "STARTTLS",
        Security::Tls => "TLS",
        Security::None => "unencrypted",
    }
}

/// How mail is sent, for the test mail and messages ("SMTP mail.example:587 (STARTTLS)").
pub fn describe(config: &MailConfig) -> String {
    match &config.transport {
        TransportConfig::Smtp(c) => {
            format!("SMTP {}:{} ({})", c.host, c.port, security_name(c.security))
        }
        TransportConfig::File { dir } => format!("files in {}", dir.display()),
    }
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls_parameters(c: &SmtpConfig) -> Result<TlsParameters, MailError> {
    let mut params = TlsParameters::builder(c.host.clone());
    if let Some(path) = &c.ca_file {
        let pem = std::fs::read(path).map_err(|e| MailError::CaFile {
            path: path.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(MailError::CaFile {
                path: path.clone(),
                reason: "contains no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            });
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| MailError::CaFile {
            path: path.clone(),
            reason: format!("not a valid PEM certificate: {e}"),
        })?;
        // Added to the platform's trusted roots (rustls-platform-verifier's extra roots), not
        // instead of them.
        params = params.add_root_certificate(cert);
    }
    params.build().map_err(|e| MailError::Smtp {
        host: c.host.clone(),
        reason: format!("TLS setup failed: {e}"),
    })
}

impl Transport {
    pub fn from_config(config: &MailConfig) -> Result<Transport, MailError> {
        let c = match &config.transport {
            TransportConfig::File { dir } => return Ok(Transport::File(dir.clone())),
            TransportConfig::Smtp(c) => c,
        };
        let tls = match c.security {
            Security::StartTls => Tls::Required(tls_parameters(c)?),
            Security::Tls => Tls::Wrapper(tls_parameters(c)?),
            Security::None => {
                // Validation enforces this too; a plain connection must never leave the machine.
                if !is_loopback_host(&c.host) {
                    return Err(MailError::Smtp {
                        host: c.host.clone(),
                        reason: "security = \"none\" is only allowed for a loopback host; use \"starttls\" (587) or \"tls\" (465)".into(),
                    });
                }
                Tls::None
            }
        };
        let port = match (c.port, c.security) {
            // 0 = not set: the standard port of the security mode.
            (0, Security::StartTls) => 587,
            (0, Security::Tls) => 465,
            (0, Security::None) => 25,
            (p, _) => p,
        };
        // A zero timeout would fail every delivery at once; treat it as "not set".
        let timeout = if c.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            c.timeout
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone())
            .port(port)
            .timeout(Some(timeout))
            .tls(tls);
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            let password = password.expose().map_err(|why| MailError::Smtp {
                host: c.host.clone(),
                reason: why.to_string(),
            })?;
            builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        Ok(Transport::Smtp(Box::new(SmtpTransport {
            host: c.host.clone(),
            port,
            security: c.security,
            timeout,
            builder,
            inner: OnceLock::new(),
        })))
    }

    /// Sends one complete RFC 5322 message to `to`, with `from` as the envelope sender.
    /// `id` names the `.eml` file of the file transport.
    pub async fn send(
        &self,
        from: &str,
        to: &[String],
        message: &[u8],
        id: &str,
    ) -> Result<(), SendError> {
        match self {
            Transport::File(dir) => write_eml(dir, id, message).await,
            Transport::Smtp(smtp) => {
                let envelope = envelope(from, to)?;
                // lettre's async transport applies its timeout to the TCP connect only; a server
                // that accepts and then stays silent (an implicit-TLS port waiting for our
                // ClientHello, a hung relay) would block delivery for ever. So the whole
                // transaction gets the configured timeout.
                match tokio::time::timeout(
                    smtp.timeout,
                    smtp.transport().send_raw(&envelope, message),
                )
                .await
                {
                    Ok(result) => result.map(|_| ()).map_err(|e| classify(smtp, &e)),
                    Err(_) => Err(SendError::transient(no_answer(smtp))),
                }
            }
        }
    }
}

fn envelope(from: &str, to: &[String]) -> Result<Envelope, SendError> {
    let from: Address = from.trim().parse().map_err(|_| {
        SendError::permanent("mail.from is not a valid e-mail address; fix it in the config")
    })?;
    let to = to
        .iter()
        .map(|a| a.trim().parse::<Address>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SendError::permanent("a recipient address is not valid e-mail address"))?;
    Envelope::new(Some(from), to).map_err(|_| SendError::permanent("the mail has no recipient"))
}

async fn write_eml(dir: &Path, id: &str, message: &[u8]) -> Result<(), SendError> {
    if id.is_empty() || id.starts_with('.') || id.contains(['/', '\\', '\0']) {
        return Err(SendError::permanent(format!(
            "mail id {id:?} cannot be used as a file name"
        )));
    }
    let dir = dir.to_path_buf();
    let id = id.to_string();
    let message = message.to_vec();
    let result = tokio::task::spawn_blocking(move || write_atomically(&dir, &id, &message))
        .await
        .map_err(|e| SendError::transient(format!("file transport task failed: {e}")))?;
    result.map_err(|(path, e)| {
        let diagnosis = format!("cannot write {}: {e}", path.display());
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            SendError::permanent(format!("{diagnosis}; check the owner of mail.file_dir"))
        } else {
            SendError::transient(diagnosis)
        }
    })
}

/// Writes `<dir>/<id>.eml` so a reader never sees half a file: temporary file, fsync, rename.
fn write_atomically(dir: &Path, id: &str, message: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let target = dir.join(format!("{id}.eml"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(message)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    std::fs::rename(&tmp, &target).map_err(|e| (target, e))?;
    // The rename is durable only once the directory entry is on disk.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Server replies can name addresses (`550 <x@y>: unknown user`); those are personal data and
/// the diagnosis ends up in logs and `/status`, so they are masked.
fn mask_addresses(text: &str) -> String {
    text.split_whitespace()
        .map(|w| if w.contains('@') { "<address>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The innermost cause of a lettre error: the server's reply text or the I/O or TLS error.
/// lettre's own Display repeats its kind ("Connection error: Connection error: …").
fn root_cause(e: &SmtpError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    mask_addresses(&text)
}

fn io_kind(e: &SmtpError) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

fn no_answer(smtp: &SmtpTransport) -> String {
    format!(
        "no answer from {} within {}s: check mail.host and mail.port (is a firewall in the way?); {TLS_HINT}",
        smtp.endpoint(),
        smtp.timeout.as_secs()
    )
}

const TLS_HINT: &str = "try security = \"tls\" with port 465, or \"starttls\" with 587";

/// Turns a lettre error into transient/permanent plus one line that says what to change.
fn classify(smtp: &SmtpTransport, e: &SmtpError) -> SendError {
    let endpoint = smtp.endpoint();
    let detail = root_cause(e);
    let lower = format!("{e} {detail}").to_ascii_lowercase();
    // For a negative reply the root cause is the server's own words ("5.7.8 …").
    let reply = || detail.clone();
    if let Some(code) = e.status() {
        let code_text = code.to_string();
        if e.is_permanent() {
            return SendError::permanent(match code_text.as_str() {
                "535" | "534" => format!(
                    "authentication failed ({code_text} {}): check mail.username and the password file",
                    reply()
                ),
                "530" => format!(
                    "the server requires authentication or STARTTLS ({code_text} {}): set mail.username and mail.password_file, or use security = \"starttls\"",
                    reply()
                ),
                "550" | "551" | "553" | "501" => format!(
                    "the server rejected the sender or a recipient ({code_text} {}): check mail.from and the recipient addresses",
                    reply()
                ),
                "552" => format!(
                    "the server refused the mail as too large ({code_text} {})",
                    reply()
                ),
                _ => format!("the server refused the mail ({code_text} {})", reply()),
            });
        }
        return SendError::transient(format!(
            "the server {endpoint} asked to try again later ({code_text} {}); will retry",
            reply()
        ));
    }
    if e.is_timeout() || io_kind(e) == Some(std::io::ErrorKind::TimedOut) {
        return SendError::transient(no_answer(smtp));
    }
    if io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused) {
        return SendError::transient(format!(
            "connection refused by {endpoint}: is the mail server running and mail.port right?"
        ));
    }
    if lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
        || lower.contains("temporary failure in name resolution")
    {
        return SendError::transient(format!(
            "cannot resolve {}: check mail.host and the server's DNS",
            smtp.host
        ));
    }
    if e.is_tls()
        || lower.contains("certificate")
        || lower.contains("handshake")
        // rustls' words for "the peer did not speak TLS" (plain SMTP banner on a TLS socket).
        || lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
    {
        if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
            return SendError::transient(format!(
                "the TLS certificate of {endpoint} is not trusted (unknown issuer): set mail.ca_file to the CA that signed it (PEM), or install that CA with update-ca-certificates"
            ));
        }
        if lower.contains("notvalidforname") || lower.contains("not valid for name") {
            return SendError::transient(format!(
                "the TLS certificate of {endpoint} is not valid for the name {}: set mail.host to a name the certificate lists",
                smtp.host
            ));
        }
        if lower.contains("expired") {
            return SendError::transient(format!(
                "the TLS certificate of {endpoint} has expired: ask the mail server's admin to renew it"
            ));
        }
        return SendError::transient(format!(
            "TLS handshake with {endpoint} failed — {TLS_HINT} ({detail})"
        ));
    }
    if lower.contains("starttls is not supported") {
        return SendError::transient(format!("{endpoint} does not offer STARTTLS — {TLS_HINT}"));
    }
    if e.is_response() {
        return SendError::transient(format!(
            "unexpected answer from {endpoint}, is it an SMTP server? — {TLS_HINT} ({detail})"
        ));
    }
    if lower.contains("no compatible authentication mechanism") || lower.contains("authentication")
    {
        return SendError::permanent(format!(
            "authentication with {endpoint} is not possible ({detail}): check mail.username and the password file, and use TLS"
        ));
    }
    SendError::transient(format!("sending through {endpoint} failed: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses_in_server_replies() {
        assert_eq!(
            mask_addresses("5.1.1 <lena@schule.example>: Recipient address rejected"),
            "5.1.1 <address> Recipient address rejected"
        );
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        let config = |host: &str| MailConfig {
            from: "a@b.example".into(),
            reply_to: None,
            transport: TransportConfig::Smtp(SmtpConfig {
                host: host.into(),
                port: 25,
                security: Security::None,
                username: None,
                password: None,
                ca_file: None,
                timeout: Duration::from_secs(5),
            }),
        };
        assert!(Transport::from_config(&config("127.0.0.1")).is_ok());
        assert!(Transport::from_config(&config("localhost")).is_ok());
        assert!(Transport::from_config(&config("::1")).is_ok());
        let err = Transport::from_config(&config("mail.example")).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let config = MailConfig {
            from: "a@b.example".into(),
            reply_to: None,
            transport: TransportConfig::Smtp(SmtpConfig {
                host: "mail.example".into(),
                port: 587,
                security: Security::StartTls,
                username: None,
                password: None,
                ca_file: Some(ca),
                timeout: Duration::from_secs(5),
            }),
        };
        let err = Transport::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[tokio::test]
    async fn file_transport_writes_eml_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/sub");
        let t = Transport::File(out.clone());
        t.send(
            "a@b.example",
            &["c@d.example".into()],
            b"Subject: x\r\n\r\nhi\r\n",
            "digest-1",
        )
        .await
        .unwrap();
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["digest-1.eml".to_string()]);
        assert_eq!(
            std::fs::read(out.join("digest-1.eml")).unwrap(),
            b"Subject: x\r\n\r\nhi\r\n"
        );
        let err = t
            .send("a@b.example", &["c@d.example".into()], b"x", "../evil")
            .await
            .unwrap_err();
        assert!(!err.is_transient());
    }
}
