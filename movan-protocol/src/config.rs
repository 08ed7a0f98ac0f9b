//! Loading one section of the shared `config/config.toml`, with errors that name the file and the key.
//!
//! Every service reads the sections it needs and accepts the other services' sections ([`SECTIONS`]), so one file
//! configures the whole deployment. A section no service reads, a key outside any section and an unknown key inside
//! a section are errors: a typo must not silently fall back to a default.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Every section of the shared config file, in the order `config/config.toml` has them: `[token]` (account and
/// sync server), `[account]`, `[rpc]` (both) and `[sync]`.
pub const SECTIONS: &[&str] = &["token", "account", "rpc", "sync"];

/// A configuration file that cannot be used; its message (one line) names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {error}{}", file.display(), read_hint(error))]
    Read {
        /// The config file.
        file: PathBuf,
        /// The I/O failure (in the message, so not repeated as a source).
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}: not valid TOML: {message}", file.display())]
    Syntax {
        /// The config file.
        file: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A section or key is unknown, has a wrong type, or has an invalid value.
    #[error("{}: {key}: {message}", file.display())]
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
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { file: path.to_owned(), error })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let table = text.parse::<toml::Table>().map_err(|e| ConfigError::Syntax {
            file: path.to_owned(),
            // toml's message spans several lines (the offending line, a caret); one line reads better in a log.
            message: e.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
        })?;
        Ok(Self { path: path.to_owned(), table })
    }

    /// The file this configuration came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a key outside any section and a section not in `known` (the services call it with [`SECTIONS`]),
    /// naming it and the closest known section.
    pub fn check_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        let list = known.iter().map(|s| format!("[{s}]")).collect::<Vec<_>>().join(", ");
        for (name, value) in &self.table {
            if !value.is_table() {
                return Err(self.invalid(name, format!("a key outside any section (the sections are {list})")));
            }
            if !known.contains(&name.as_str()) {
                let hint = match closest(name, known) {
                    Some(near) => format!("; did you mean [{near}]?"),
                    None => String::new(),
                };
                return Err(self.invalid(name, format!("unknown section{hint} (the sections are {list})")));
            }
        }
        Ok(())
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

/// What to do about a config file that cannot be read.
fn read_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => " (pass another file with --config PATH or MOVAN_CONFIG)",
        _ => "",
    }
}

/// The name in `known` at most two edits away from `name` (ignoring case), if any.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    known.iter().map(|k| (edit_distance(&name, k), *k)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `error` and its sources on one line, `: `-separated, skipping a source whose text the line already holds (many
/// errors repeat their source's message in their own). For the binaries' single start-up error line.
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = e.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
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
    fn unknown_sections_and_loose_keys_are_named() {
        let check = |text: &str| ConfigFile::parse(Path::new("c.toml"), text).unwrap().check_sections(SECTIONS);
        let shipped = include_str!("../../config/config.toml");
        check(shipped).unwrap();
        let e = check("[sync]\n[synk]\ntick_interval_ms = 5\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "c.toml: synk: unknown section; did you mean [sync]? (the sections are [token], [account], [rpc], [sync])"
        );
        let e = check("[token]\n[tokens]\nissuer = \"x\"\n").unwrap_err().to_string();
        assert!(e.starts_with("c.toml: tokens: unknown section; did you mean [token]? "), "{e}");
        let e = check("[game]\n").unwrap_err().to_string();
        assert!(e.starts_with("c.toml: game: unknown section (the sections are "), "{e}");
        let e = check("tick_interval_ms = 5\n[sync]\n").unwrap_err().to_string();
        assert!(e.starts_with("c.toml: tick_interval_ms: a key outside any section"), "{e}");
        let e = ConfigFile::parse(Path::new("c.toml"), "[token]\n[token]\n").unwrap_err().to_string();
        assert!(e.starts_with("c.toml: not valid TOML: ") && !e.contains('\n'), "a repeated section: {e}");
    }

    #[test]
    fn a_missing_file_is_one_line_saying_so_once() {
        let e = ConfigFile::read(Path::new("/nonexistent/movan.toml")).unwrap_err();
        let line = error_line(&e);
        assert!(line.starts_with("/nonexistent/movan.toml: cannot read: No such file or directory"), "{line}");
        assert_eq!(line.matches("No such file").count(), 1, "{line}");
        assert!(line.contains("--config"), "{line}");
    }

    #[test]
    fn error_line_skips_repeated_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Outer(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper")]
        struct Wrapper(#[source] Outer);
        let e = Wrapper(Outer(std::io::Error::other("inner\ntext")));
        assert_eq!(error_line(&e), "wrapper: outer: inner text");
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
