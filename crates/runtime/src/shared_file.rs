//! Small JSON files the local processes of a topology share through the data directory
//! (the registry, the injected faults): written atomically, watched by polling.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

/// Writes `value` atomically (a temporary file renamed over the old one), so a reader
/// never sees half of it.
pub(crate) fn write<T: Serialize + ?Sized>(path: &Path, value: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        crate::create_private_dir(dir)?;
    }
    // A name of its own per write: two processes writing at once must not share one.
    let tmp = path.with_extension(format!("json.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written =
        crate::keys::write_private(&tmp, &String::from_utf8(serde_json::to_vec_pretty(value)?)?);
    if let Err(e) =
        written.map_err(anyhow::Error::from).and_then(|()| Ok(std::fs::rename(&tmp, path)?))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Calls `changed` with the file's content now and whenever it changes, until `cancel`.
pub(crate) fn watch<T, F>(
    path: PathBuf,
    every: Duration,
    cancel: CancellationToken,
    changed: F,
) -> JoinHandle<()>
where
    T: DeserializeOwned,
    F: Fn(T) + Send + 'static,
{
    tokio::spawn(async move {
        let mut seen: Option<SystemTime> = None;
        loop {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if modified.is_some() && modified != seen {
                match read(&path) {
                    Ok(value) => {
                        changed(value);
                        seen = modified;
                    }
                    Err(e) => {
                        tracing::debug!(path = %path.display(), error = %e, "not readable yet")
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    })
}
