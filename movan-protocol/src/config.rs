//! Loading one section of the shared `config/config.toml`, with errors that name the file and the key.
//!
//! Every service reads the sections it needs and ignores the others, so one file configures the whole deployment.
//! Unknown keys inside a section are errors (a typo must not silently fall back to a default).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration file that cannot be used; its message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The config file.
        file: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}: not valid TOML: {message}")]
    Syntax {
        /// The config file.
        file: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A key has a wrong type, is unknown, or has an invalid value.
    #[error("{file}: {key}: {message}")]
    Key {
        /// The config file.
        file: PathBuf,
        /// Dotted key path, e.g. `sync.tick_interval_ms`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A parsed configuration file from which sections are taken.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Syntax { file: path.to_owned(), message: e.to_string() })?;
        Ok(Self { path: path.to_owned(), table })
    }

    /// The file this configuration came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deserializes section `name`, or `T::default()` when the file has no such section.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        let Some(value) = self.table.get(name) else {
            return Ok(T::default());
        };
        serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let inner = e.path().to_string();
            let key = if inner == "." || inner.is_empty() { name.to_owned() } else { format!("{name}.{inner}") };
            ConfigError::Key { file: self.path.clone(), key, message: e.into_inner().to_string() }
        })
    }

    /// An error about `key` (a dotted path) in this file, for checks beyond types.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key { file: self.path.clone(), key: key.to_owned(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sync {
        tick_interval_ms: u64,
        name: String,
    }

    #[test]
    fn errors_name_file_and_key() {
        let f = ConfigFile::parse(Path::new("c.toml"), "[sync]\ntick_interval_ms = \"fast\"\n").unwrap();
        let e = f.section::<Sync>("sync").unwrap_err().to_string();
        assert!(e.starts_with("c.toml: sync.tick_interval_ms: "), "{e}");
        let f = ConfigFile::parse(Path::new("c.toml"), "[sync]\ntick_intervl_ms = 5\n").unwrap();
        let e = f.section::<Sync>("sync").unwrap_err().to_string();
        assert!(e.contains("c.toml: sync") && e.contains("tick_intervl_ms"), "{e}");
        let e = ConfigFile::parse(Path::new("c.toml"), "[sync\n").unwrap_err().to_string();
        assert!(e.starts_with("c.toml: not valid TOML"), "{e}");
    }

    #[test]
    fn missing_section_gives_defaults_and_others_are_ignored() {
        let f = ConfigFile::parse(Path::new("c.toml"), "[account]\nx = 1\n").unwrap();
        let s: Sync = f.section("sync").unwrap();
        assert_eq!(s.tick_interval_ms, 0);
        let f = ConfigFile::parse(Path::new("c.toml"), "[sync]\nname = \"a\"\n").unwrap();
        assert_eq!(f.section::<Sync>("sync").unwrap().name, "a");
    }
}
