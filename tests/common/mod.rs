//! Shared helpers of the integration tests: a test PKI and a real SMTP capture server
//! (aiosmtpd, `tests/peers/smtp_capture.py`).
//!
//! Peers are real programs started as child processes on 127.0.0.1 and killed on `Drop`.
//! A missing peer fails the test with a message that says how to install it: a test that skips
//! silently would pass on a machine that tests nothing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A test CA and a leaf certificate for `localhost` / `127.0.0.1` signed by it.
///
/// rustls rejects a bare self-signed certificate used as its own CA (`basicConstraints CA:TRUE`
/// on a server certificate), so this is a real two-level chain, as a school's internal CA is.
pub struct TestPki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (openssl missing? run scripts/test, which installs it)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestPki {
    pub fn create() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = |name: &str| d.join(name);
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem"))
            .args([
                "-days",
                "2",
                "-subj",
                "/CN=fehlzeiten test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]));
        run(Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes"])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr"))
            .args(["-subj", "/CN=localhost"]));
        std::fs::write(
            p("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-CAcreateserial")
            .arg("-out")
            .arg(p("server.pem"))
            .args(["-days", "2"])
            .arg("-extfile")
            .arg(p("leaf.ext")));
        TestPki {
            ca: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
            _dir: dir,
        }
    }
}

/// A port that was free a moment ago (bind to port 0, read it, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Python that runs the peers: `$FEHLZEITEN_TEST_PYTHON` (set by scripts/test) or `python3`.
pub fn python() -> String {
    std::env::var("FEHLZEITEN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A started capture server: process, its directory, and the STARTTLS, SMTPS and plain ports.
type Spawned = (Child, tempfile::TempDir, (u16, u16, u16));

/// The aiosmtpd capture server: STARTTLS port, implicit-TLS port and a plain port, AUTH with
/// `user`/`password`, messages in a Maildir.
pub struct SmtpServer {
    child: Child,
    dir: tempfile::TempDir,
    pub pki: TestPki,
    pub starttls_port: u16,
    pub smtps_port: u16,
    pub plain_port: u16,
    pub user: String,
    pub password: String,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let py = python();
        let probe = Command::new(&py)
            .args(["-c", "import aiosmtpd"])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {py}: {e}; run scripts/test, which installs python3 and aiosmtpd"
                )
            });
        assert!(
            probe.status.success(),
            "aiosmtpd missing: run scripts/test, which installs it ({py}: {})",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        let pki = TestPki::create();
        // A free port can be taken between our probe and the server's bind: try again then.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::spawn(&py, &pki) {
                Ok((child, dir, ports)) => {
                    return SmtpServer {
                        child,
                        dir,
                        pki,
                        starttls_port: ports.0,
                        smtps_port: ports.1,
                        plain_port: ports.2,
                        user: "testuser".into(),
                        password: "testpass".into(),
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("the SMTP capture server did not start: {last_error}");
    }

    fn spawn(py: &str, pki: &TestPki) -> Result<Spawned, String> {
        let dir = tempfile::tempdir().unwrap();
        let ports = (free_port(), free_port(), free_port());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smtp_capture.py");
        let mut child = Command::new(py)
            .arg(&script)
            .arg("--cert")
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .arg("--maildir")
            .arg(dir.path().join("maildir"))
            .args(["--starttls-port", &ports.0.to_string()])
            .args(["--smtps-port", &ports.1.to_string()])
            .args(["--plain-port", &ports.2.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {py}: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("READY") {
                    let _ = tx.send(line);
                    break;
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(_) => Ok((child, dir, ports)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut err);
                }
                Err(format!("no READY within 30 s; stderr: {}", err.trim()))
            }
        }
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Captured messages, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            match std::fs::read_dir(self.maildir().join("new")) {
                Ok(rd) => rd
                    .map(|e| e.unwrap())
                    .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                    .collect(),
                Err(_) => Vec::new(),
            };
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| std::fs::read(p).unwrap())
            .collect()
    }

    /// One JSON object per accepted message: port, mail_from, rcpt_tos, auth_user, tls_cipher.
    pub fn log(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.maildir().join("log.jsonl")) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until at least `n` messages were captured.
    pub fn wait_for_messages(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output bytes of a child process as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes a secret file the way an admin must: the value and a newline, mode 0600.
pub fn write_secret(path: &Path, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The stdout of a command that must have succeeded; fails with its output otherwise.
pub fn stdout_of_success(what: &[&str], out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{what:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The simulator on a free loopback port with the default credentials.
pub async fn start_sim(
    scenario: std::sync::Arc<fehlzeiten::sim::Scenario>,
) -> fehlzeiten::sim::server::SimHandle {
    fehlzeiten::sim::start(
        scenario,
        fehlzeiten::sim::SimConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Stops a child process (the daemon) if the test fails half-way, so none outlives it.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Sends `signal` ("TERM", "HUP", …) to a child.
pub fn kill(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{signal} failed");
}

/// Waits up to `limit` for a child to exit; returns its status, how long it took, and its
/// stderr (when piped).
pub async fn wait_exit(
    child: &mut Child,
    limit: Duration,
) -> (std::process::ExitStatus, Duration, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = start.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).unwrap();
    }
    (status, took, stderr)
}

/// The one stderr line of a command that must fail with exit 1, printing nothing on stdout.
pub fn one_line_failure(what: &[&str], out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what:?}: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{what:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{what:?} printed: {}",
        text(&out.stdout)
    );
    err
}

/// Runs the daemon in-process on a virtual clock from `from` until `to`, then stops it.
pub async fn run_daemon_virtual(
    config: &fehlzeiten::config::Config,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) {
    let store = fehlzeiten::store::Store::open(&config.daemon.data_dir).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let clock = std::sync::Arc::new(fehlzeiten::daemon::VirtualClock::new(
        from,
        to,
        stop.clone(),
    ));
    fehlzeiten::daemon::run(config.clone(), store, clock, stop)
        .await
        .unwrap();
}
