//! Secrets the daemon holds (API keys, bot tokens, webhook URLs): read once from an environment
//! variable or a private file, kept in a [`Secret`] that never prints, and scrubbed from any
//! error text, so none leaves the daemon through a log line, a reply or the database.

use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// A secret value. Its `Debug` prints a placeholder, so it cannot leak by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from somewhere private.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it (a header, a URL).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether there is no value at all (a local server that needs no key).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "[key]")
        }
    }

    /// Reads a secret from the daemon's environment variable `env`, else from `file`, which
    /// must be private (0600); with neither, an empty secret. `what` names the owner in errors
    /// (e.g. "provider `openai`"), which never contain the value.
    pub fn load(what: &str, env: Option<&str>, file: Option<&Path>) -> Result<Secret, String> {
        if let Some(var) = env {
            return std::env::var(var)
                .map(Secret)
                .map_err(|_| format!("{what}: the daemon's environment has no {var}"));
        }
        if let Some(path) = file {
            let meta = std::fs::metadata(path)
                .map_err(|err| format!("{what}: cannot read {}: {err}", path.display()))?;
            if meta.mode() & 0o077 != 0 {
                return Err(format!(
                    "{what}: {} must be private (chmod 600 {})",
                    path.display(),
                    path.display()
                ));
            }
            let value = std::fs::read_to_string(path)
                .map_err(|err| format!("{what}: cannot read {}: {err}", path.display()))?;
            return Ok(Secret(value.trim().to_string()));
        }
        Ok(Secret(String::new()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([key])")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_secret_never_prints_and_is_scrubbed() {
        let key = Secret::new("sk-very-secret".into());
        assert!(!format!("{key:?}").contains("very"));
        assert_eq!(key.scrub("bad key sk-very-secret!"), "bad key [key]!");
    }

    #[test]
    fn a_secret_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "t0ken\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Secret::load("sink", None, Some(&path)).unwrap_err();
        assert!(err.contains("must be private"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = Secret::load("sink", None, Some(&path)).unwrap();
        assert_eq!(secret.expose(), "t0ken");
        let err = Secret::load("sink", Some("REAGENT_TEST_SURELY_UNSET"), None).unwrap_err();
        assert_eq!(
            err,
            "sink: the daemon's environment has no REAGENT_TEST_SURELY_UNSET"
        );
    }
}
