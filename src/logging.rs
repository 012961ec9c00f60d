//! Logging through the `log` facade: to journald when systemd runs us, else to stderr.
//! Dependencies that log through `tracing` (hyper-util) reach it too (tracing's `log` feature
//! turns their events into log records). Dependencies' chatter is capped at `warn`. Log lines
//! carry ids only, never names or addresses. The level can change at run time (SIGHUP).

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Targets that log too much at info level.
const NOISY: [&str; 9] = [
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "rustls_platform_verifier",
    "h2",
    "redb",
    "lettre",
    "tracing",
];

/// Whether a log target belongs to one of the [`NOISY`] crates (the crate or a module of it).
fn is_noisy(target: &str) -> bool {
    NOISY.iter().any(|n| {
        target
            .strip_prefix(n)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

struct Logger {
    /// The [`LevelFilter`] as a number (`LevelFilter as usize`), changed by [`init`].
    level: AtomicUsize,
    journal: Option<systemd_journal_logger::JournalLog>,
}

const LEVELS: [LevelFilter; 6] = [
    LevelFilter::Off,
    LevelFilter::Error,
    LevelFilter::Warn,
    LevelFilter::Info,
    LevelFilter::Debug,
    LevelFilter::Trace,
];

impl Logger {
    fn level(&self) -> LevelFilter {
        LEVELS
            .get(self.level.load(Ordering::Relaxed))
            .copied()
            .unwrap_or(LevelFilter::Info)
    }

    fn allowed(&self, meta: &Metadata) -> bool {
        let level = if is_noisy(meta.target()) {
            self.level().min(LevelFilter::Warn)
        } else {
            self.level()
        };
        meta.level() <= level
    }
}

impl Log for Logger {
    fn enabled(&self, meta: &Metadata) -> bool {
        self.allowed(meta)
    }

    fn log(&self, record: &Record) {
        if !self.allowed(record.metadata()) {
            return;
        }
        match &self.journal {
            Some(j) => j.log(record),
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{:<5} {}", record.level(), record.args());
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger once; later calls change the level (the daemon's SIGHUP reload).
pub fn init(level: LevelFilter) {
    let logger = LOGGER.get_or_init(|| {
        let journal = if systemd_journal_logger::connected_to_journal() {
            systemd_journal_logger::JournalLog::new()
                .ok()
                .map(|j| j.with_syslog_identifier("fehlzeiten".to_string()))
        } else {
            None
        };
        Logger {
            level: AtomicUsize::new(level as usize),
            journal,
        }
    });
    let _ = log::set_logger(logger);
    logger.level.store(level as usize, Ordering::Relaxed);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::is_noisy;

    #[test]
    fn noisy_targets_are_crates_and_their_modules() {
        assert!(is_noisy("hyper"));
        assert!(is_noisy("hyper_util::client::legacy"));
        assert!(is_noisy("rustls::conn"));
        assert!(!is_noisy("hyperion"));
        assert!(!is_noisy("fehlzeiten::sync"));
    }

    #[test]
    fn levels_index_by_their_number() {
        for (i, l) in super::LEVELS.iter().enumerate() {
            assert_eq!(*l as usize, i);
        }
    }
}
