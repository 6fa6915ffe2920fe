//! Where the database lives by default.

use std::path::PathBuf;

/// The default database directory: `tuning-db` in the user's data directory
/// (`$XDG_DATA_HOME/grim`, usually `~/.local/share/grim`, on Linux). `None` when the
/// system has no home directory; callers then require `--db`.
pub fn default_db_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "grim").map(|d| d.data_dir().join("tuning-db"))
}
