use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use identity::{KeyRing, KeyStore, RetiredKey, SigningKey};

/// The shop's token signing keys in its data directory (`keys/`):
/// - `token-signing-ed25519.pem`: the key that signs (PKCS#8, 0600), created on first use;
/// - `token-signing-retired.json`: the public halves of keys rotated out, each with the
///   instant it stops verifying;
/// - `token-signing.jwks.json`: the JWK Set (RFC 7517, section 5) of every key that
///   verifies now, what [`known_token_keys`] gives the gateway (which never reads a private
///   key).
///
/// Read again whenever a file changed, so a rotation by another process (an identity
/// replica, `microlith keys rotate`) is used by the next token this one signs.
pub struct FileKeys {
    dir: PathBuf,
    cached: Mutex<Option<(FilesSeen, Arc<KeyRing>)>>,
}

/// Which versions of the key files a ring was read from: each write replaces a file by a
/// rename, so a new inode or modification time means new contents.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FilesSeen(Vec<Option<(u64, std::time::SystemTime)>>);

impl FileKeys {
    /// The keys of the data directory `dir`, the signing key created if there is none.
    pub fn open(dir: &Path) -> anyhow::Result<Arc<FileKeys>> {
        let keys = FileKeys { dir: dir.to_owned(), cached: Mutex::new(None) };
        keys.current()?;
        Ok(Arc::new(keys))
    }

    fn seen(&self) -> FilesSeen {
        let version = |p: PathBuf| {
            let m = std::fs::metadata(p).ok()?;
            #[cfg(unix)]
            let ino = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let ino = m.len();
            Some((ino, m.modified().ok()?))
        };
        FilesSeen(vec![version(signing_key_path(&self.dir)), version(retired_keys_path(&self.dir))])
    }

    fn read(&self) -> anyhow::Result<KeyRing> {
        let active = load_or_create_signing_key(&signing_key_path(&self.dir))?;
        let path = retired_keys_path(&self.dir);
        let retired: Vec<RetiredKey> = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("the retired keys in {} do not read", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(KeyRing { active, retired })
    }

    /// Writes what verifies: the retired keys still verifying, then the public JWK Set.
    fn write_public(&self, ring: &KeyRing, now_ms: i64) -> anyhow::Result<()> {
        let path = retired_keys_path(&self.dir);
        let text = serde_json::to_string_pretty(&ring.still_verifying(now_ms))?;
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            replace_private(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let path = public_keys_path(&self.dir);
        let text = serde_json::to_string_pretty(&ring.jwks(now_ms).0)?;
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            replace_private(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Holds the directory's key lock (shared by every process of the shop) while `f` runs.
    fn locked<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        crate::create_private_dir(&self.dir.join("keys"))?;
        let path = self.dir.join("keys").join("token-signing.lock");
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file =
            options.open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        f()
    }
}

impl KeyStore for FileKeys {
    fn current(&self) -> anyhow::Result<Arc<KeyRing>> {
        let seen = self.seen();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let now = kernel::now_ms();
        if let Some((at, ring)) = cached.as_ref()
            && *at == seen
            && !ring.has_expired(now)
        {
            return Ok(ring.clone());
        }
        // The versions are noted under the lock, with the files as read: a rotation right
        // after cannot be taken for what was read.
        let (ring, seen) = self.locked(|| {
            let ring = self.read()?;
            // Keys that stopped verifying leave the published files.
            self.write_public(&ring, now)?;
            Ok((KeyRing { retired: ring.still_verifying(now), ..ring }, self.seen()))
        })?;
        let ring = Arc::new(ring);
        *cached = Some((seen, ring.clone()));
        Ok(ring)
    }

    fn rotate(&self, keep_for: Duration) -> anyhow::Result<Arc<KeyRing>> {
        let (ring, seen) = self.locked(|| {
            let now = kernel::now_ms();
            let ring = self.read()?.rotate(SigningKey::generate()?, now, keep_for);
            // The public files first: a verifier knows the new key before any token it
            // signs exists, and a crash here leaves the old key signing, nothing lost.
            self.write_public(&ring, now)?;
            let path = signing_key_path(&self.dir);
            replace_private(&path, ring.active.to_pem())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(kid = ring.active.kid(), "rotated the token signing key");
            Ok((ring, self.seen()))
        })?;
        let ring = Arc::new(ring);
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((seen, ring.clone()));
        Ok(ring)
    }
}

fn signing_key_path(dir: &Path) -> PathBuf {
    dir.join("keys").join("token-signing-ed25519.pem")
}

fn retired_keys_path(dir: &Path) -> PathBuf {
    dir.join("keys").join("token-signing-retired.json")
}

fn public_keys_path(dir: &Path) -> PathBuf {
    dir.join("keys").join("token-signing.jwks.json")
}

/// The public halves of the shop's token keys, if its data directory `dir` holds them
/// already (written beside the keys by [`FileKeys`]; the gateway never reads a private
/// key). Without them, the gateway asks identity for its keys.
pub(crate) fn known_token_keys(dir: &Path) -> Option<identity_api::Jwks> {
    let path = public_keys_path(dir);
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(&text) {
        Ok(jwks) if !jwks.keys.is_empty() => Some(identity_api::Jwks(jwks)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e,
                "the token keys file does not read; asking identity for its keys");
            None
        }
    }
}

/// Loads the token signing key from `path`, or creates one there (mode 0600) on first start,
/// so tokens stay valid across restarts.
pub fn load_or_create_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::from_pem(&pem)
            .with_context(|| format!("the signing key in {} is not usable", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate()?;
            if let Some(dir) = path.parent() {
                crate::create_private_dir(dir)?;
            }
            match create_private(path, key.to_pem()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), kid = key.kid(), "created token signing key");
                    Ok(key)
                }
                // Another process of the shop created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pem = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    SigningKey::from_pem(&pem).with_context(|| {
                        format!("the signing key in {} is not usable", path.display())
                    })
                }
                Err(e) => Err(e)
                    .with_context(|| format!("cannot write the signing key to {}", path.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a new file readable by its owner only (0600 from the first byte); fails with
/// `AlreadyExists` rather than overwrite one that appeared meanwhile.
#[cfg(unix)]
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // create_new: never overwrite a key that appeared meanwhile; 0600 from the first byte.
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Creates `path` (0600) holding `contents` in one step: a concurrent reader sees no file
/// or the whole file, never a half-written one. Fails with `AlreadyExists` rather than
/// overwrite a file that appeared meanwhile.
pub(crate) fn create_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    write_private(&tmp, contents)?;
    // link(2) fails when the target exists, where rename(2) would replace it.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Writes `contents` to `path` (0600) in one step: readers see the old file or the new one.
pub fn replace_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    write_private(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's copy of the token keys is the public half alone, written beside the
    /// key, and names the key that signs.
    #[test]
    fn the_public_token_keys_are_written_beside_the_key() {
        let dir = tempfile::tempdir().unwrap();
        assert!(known_token_keys(dir.path()).is_none(), "no key yet: ask identity");
        let keys = FileKeys::open(dir.path()).unwrap();
        let key = keys.current().unwrap().active.clone();
        let known = known_token_keys(dir.path()).expect("written beside the key");
        assert_eq!(known.0.keys.len(), 1);
        assert_eq!(known.0.keys[0].common.key_id.as_deref(), Some(key.kid()));
        let text = std::fs::read_to_string(public_keys_path(dir.path())).unwrap();
        assert!(!text.contains("PRIVATE"), "{text}");
    }

    #[test]
    fn key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("token-signing.pem");
        let a = load_or_create_signing_key(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = load_or_create_signing_key(&path).unwrap();
        assert_eq!(a.kid(), b.kid());
        std::fs::write(&path, "garbage").unwrap();
        assert!(load_or_create_signing_key(&path).is_err());
    }

    #[test]
    fn concurrent_creators_agree_on_one_whole_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-signing.pem");
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_signing_key(&path).unwrap().kid().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "one key for all: {kids:?}");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    fn kids(dir: &Path) -> Vec<String> {
        let known = known_token_keys(dir).expect("the public keys");
        known.0.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
    }

    /// A rotation by one process (here a second `FileKeys`, as `microlith keys rotate`
    /// or another replica would be) is what the next token of every other one is signed
    /// with; the old key stays published until its time, then leaves every file.
    #[test]
    fn a_rotation_is_seen_by_every_process_and_the_old_key_leaves_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let identity = FileKeys::open(dir.path()).unwrap();
        let old = identity.current().unwrap().active.kid().to_owned();
        let cli = FileKeys::open(dir.path()).unwrap();
        let rotated = cli.rotate(Duration::from_millis(300)).unwrap();
        let new = rotated.active.kid().to_owned();
        assert_ne!(old, new);
        assert_eq!(identity.current().unwrap().active.kid(), new, "seen at once");
        assert_eq!(kids(dir.path()), [new.clone(), old.clone()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for file in [signing_key_path(dir.path()), retired_keys_path(dir.path())] {
                let mode = std::fs::metadata(&file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", file.display());
            }
        }
        let pem = std::fs::read_to_string(signing_key_path(dir.path())).unwrap();
        assert!(!std::fs::read_to_string(retired_keys_path(dir.path())).unwrap().contains(&pem));
        std::thread::sleep(Duration::from_millis(350));
        let ring = identity.current().unwrap();
        assert!(ring.retired.is_empty(), "{:?}", ring.retired);
        assert_eq!(kids(dir.path()), [new], "gone from the published keys");
    }
}
