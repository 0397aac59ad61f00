//! The data directory and the databases in it: created private to the shop's user, each
//! module's database opened as the topology says.

use std::path::Path;

use anyhow::Context as _;
use store::Db;

use crate::Database;

/// Opens the database `name` (a module's, or one of [`crate::plan::Process::databases`]) as
/// the topology says: `<dir>/<name>.db` on SQLite, schema `<name>` on PostgreSQL.
pub async fn open_db(database: &Database, dir: &Path, module: &str) -> anyhow::Result<Db> {
    match database {
        Database::Sqlite => Db::open_sqlite(&dir.join(format!("{module}.db")))
            .await
            .with_context(|| format!("cannot open the {module} database")),
        Database::Postgres(url) => Db::open_postgres(url, module)
            .await
            .with_context(|| format!("cannot open the {module} schema")),
    }
}

/// Creates the data directory readable by its owner only (0700). An existing directory
/// whose mode lets others in is fixed, with a warning, and so are the shop's files in it
/// (databases, keys, run files): they hold password hashes and signing keys.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        tighten(dir)?;
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Takes group and other permissions off `dir` and off the shop's files in it.
#[cfg(unix)]
fn tighten(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let is_ours = |name: &str| {
        [".db", ".db-wal", ".db-shm", ".migrate-lock", ".json", ".key", ".pub", ".pem", "-secret"]
            .iter()
            .any(|ext| name.ends_with(ext))
    };
    let mut fixed = Vec::new();
    let mut fix = |path: &Path| -> std::io::Result<()> {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            fixed.push(path.display().to_string());
        }
        Ok(())
    };
    fix(dir).with_context(|| format!("cannot make {} private", dir.display()))?;
    for sub in [dir.to_path_buf(), dir.join("keys"), dir.join("keys/services"), dir.join("run")] {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        if sub != dir {
            fix(&sub)?;
        }
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_file()) && is_ours(&name) {
                fix(&entry.path())?;
            }
        }
    }
    if !fixed.is_empty() {
        tracing::warn!(
            dir = %dir.display(),
            fixed = ?fixed,
            "the data directory was readable by other users: made private (0700, files 0600)"
        );
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod private_dir_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_existing_directory_open_to_others_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        let set =
            |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        set(&dir, 0o755).unwrap();
        set(&dir.join("keys"), 0o755).unwrap();
        for f in ["identity.db", "identity.db-wal", "keys/token-signing-ed25519.pem"] {
            std::fs::write(dir.join(f), "x").unwrap();
            set(&dir.join(f), 0o644).unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "the operator's").unwrap();
        set(&dir.join("notes.txt"), 0o644).unwrap();

        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("keys")), 0o700);
        for f in ["identity.db", "identity.db-wal", "keys/token-signing-ed25519.pem"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&dir.join("notes.txt")), 0o644, "not the shop's file: left alone");
    }
}
