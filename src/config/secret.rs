//! Secrets: read only from files (or systemd credentials) that nobody but the owner can read,
//! and never printed.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A secret value. `Debug` and `Display` print `***`, so it cannot leak into logs or errors.
///
/// A systemd credential is only readable by the service; an operator command run by hand
/// (`fehlzeiten status`, `sync` through the daemon) loads the same config without it. There
/// the secret is *unavailable*: the config is valid, and only a command that really needs the
/// password fails, saying why.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Result<String, String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Ok(value.into()))
    }

    /// A secret this process cannot read; `why` says so in one line.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Secret(Err(why.into()))
    }

    /// The value, for the one place that must send it (HTTP Basic auth, SMTP AUTH), or why
    /// this process does not have it.
    pub fn expose(&self) -> Result<&str, &str> {
        match &self.0 {
            Ok(v) => Ok(v),
            Err(why) => Err(why),
        }
    }

    /// Why the value is not available here, if it is not.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.0.as_ref().err().map(String::as_str)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret file {} does not exist; create it with mode 0600, owned by the user the service runs as", .0.display())]
    Missing(PathBuf),
    #[error("secret file {} cannot be read: {}; check its owner and mode", .0.display(), .1)]
    Unreadable(PathBuf, std::io::Error),
    #[error("secret file {} is readable by others (mode {:04o}); run: chmod 0600 {}", .0.display(), .1, .0.display())]
    WorldReadable(PathBuf, u32),
    #[error("secret file {} is readable by its group (mode {:04o}); run: chmod 0600 {}", .0.display(), .1, .0.display())]
    GroupReadable(PathBuf, u32),
    #[error("secret file {} is empty; write the password into it", .0.display())]
    Empty(PathBuf),
}

/// Reads a secret file, refusing group- or world-readable files. A trailing newline is dropped
/// (`echo secret > file` is the usual way to write one).
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(SecretError::Unreadable(path.to_path_buf(), e)),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(SecretError::WorldReadable(path.to_path_buf(), mode));
    }
    if mode & 0o070 != 0 {
        return Err(SecretError::GroupReadable(path.to_path_buf(), mode));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SecretError::Unreadable(path.to_path_buf(), e))?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(SecretError::Empty(path.to_path_buf()));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), Ok("hunter2"));
        let u = Secret::unavailable("only the service has it");
        assert_eq!(format!("{u:?} {u}"), "*** ***");
        assert_eq!(u.expose(), Err("only the service has it"));
    }

    #[test]
    fn refuses_group_and_world_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "pw\n").unwrap();
        for (mode, ok) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read_secret_file(&p).is_ok(), ok, "mode {mode:o}");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&p).unwrap().expose(), Ok("pw"));
        assert!(matches!(
            read_secret_file(&dir.path().join("nope")),
            Err(SecretError::Missing(_))
        ));
    }
}
