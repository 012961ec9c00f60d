//! Validation of the config file into [`super::Config`], collecting every problem.

use super::Config;
use std::path::{Path, PathBuf};

/// One problem in the config: `file: key.path: problem; how to fix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![Problem { file: path.to_path_buf(), key: "-".into(), message: e.to_string() }],
    })?;
    load_from_str(path, &text)
}

pub fn load_from_str(path: &Path, _text: &str) -> Result<Config, ConfigError> {
    Err(ConfigError { problems: vec![Problem { file: path.to_path_buf(), key: "-".into(), message: "not yet".into() }] })
}
