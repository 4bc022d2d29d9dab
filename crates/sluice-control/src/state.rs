//! The state file (`sluice run --state PATH`): the running configuration,
//! saved whole after every accepted change, so a restarted Sluice comes
//! back exactly as it was.
//!
//! A save never leaves a torn file behind: the text goes to a temporary
//! file in the same directory, is flushed to disk, renamed over the old
//! file (atomic within a file system), and the directory itself is
//! flushed so the rename survives a power cut. A reader sees the old
//! configuration or the new one, never half of either.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is there but is not a configuration Sluice accepts.
    #[error("state file {path} is corrupt: {error} (fix or remove it)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        error: ConfigError,
    },
    /// Reading, writing, flushing or renaming failed.
    #[error("state file {path}: cannot {doing}: {source}")]
    Io {
        /// The file (or its temporary sibling).
        path: PathBuf,
        /// What was being done.
        doing: &'static str,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// Where the running configuration is kept.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file at `path` (nothing is touched yet).
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration saved there; `None` when there is no file yet.
    pub fn load(&self) -> Result<Option<Config>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    doing: "read it",
                    source,
                });
            }
        };
        Config::parse(&text)
            .map(Some)
            .map_err(|error| StateError::Corrupt {
                path: self.path.clone(),
                error,
            })
    }

    /// Replaces the file with `text`, atomically and durably.
    pub fn save(&self, text: &str) -> Result<(), StateError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = self
            .path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{file_name}.tmp"));
        let io = |path: &Path, doing| {
            let path = path.to_path_buf();
            move |source| StateError::Io {
                path,
                doing,
                source,
            }
        };
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                // The configuration may hold memif secrets: owner only.
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp, "create a temporary file"))?;
            f.write_all(text.as_bytes())
                .map_err(io(&tmp, "write a temporary file"))?;
            f.sync_all().map_err(io(&tmp, "flush a temporary file"))?;
            std::fs::rename(&tmp, &self.path).map_err(io(&self.path, "rename onto it"))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir, "flush its directory"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const CONFIG: &str = "[[interface]]\nname = \"s0\"\ndriver = \"sink\"\n";

    #[test]
    fn saved_text_loads_back_and_replaces_the_old() {
        let d = dir("save");
        let f = StateFile::new(d.join("state.toml"));
        assert!(f.load().unwrap().is_none(), "no file yet");
        f.save("# old\n").unwrap();
        f.save(CONFIG).unwrap();
        let c = f.load().unwrap().unwrap();
        assert_eq!(c.interfaces[0].name, "s0");
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_corrupt_file_is_refused_with_its_name_and_line() {
        let d = dir("corrupt");
        let path = d.join("state.toml");
        std::fs::write(&path, format!("{CONFIG}mtu = \"big\"\n")).unwrap();
        let e = StateFile::new(&path).load().unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("line 4"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_save_leaves_the_old_file_whole() {
        let d = dir("fail");
        let f = StateFile::new(d.join("state.toml"));
        f.save(CONFIG).unwrap();
        // A directory where the temporary file would go: creating it fails.
        std::fs::create_dir(d.join(".state.toml.tmp")).unwrap();
        let e = f.save("garbage").unwrap_err().to_string();
        assert!(e.contains("cannot create a temporary file"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.join("state.toml")).unwrap(),
            CONFIG
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
