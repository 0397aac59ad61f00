use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use identity::SigningKey;

/// The shop's token signing key, in its data directory `dir` (created on first use), with
/// its public half beside it as a JWK Set (RFC 7517, section 5) for [`known_token_keys`].
pub(crate) fn token_signing_key(dir: &Path) -> anyhow::Result<SigningKey> {
    let key = load_or_create_signing_key(&signing_key_path(dir))?;
    let public = public_keys_path(dir);
    let text = serde_json::to_string_pretty(&key.public_jwks().0)?;
    if std::fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
        replace_private(&public, &text)
            .with_context(|| format!("cannot write {}", public.display()))?;
    }
    Ok(key)
}

fn signing_key_path(dir: &Path) -> std::path::PathBuf {
    dir.join("keys").join("token-signing-ed25519.pem")
}

fn public_keys_path(dir: &Path) -> std::path::PathBuf {
    dir.join("keys").join("token-signing.jwks.json")
}

/// The public half of the shop's token signing key, if its data directory `dir` holds it
/// already (written beside the key by [`token_signing_key`]; the gateway never reads the
/// private key). Without it, the gateway asks identity for its keys.
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
        let key = token_signing_key(dir.path()).unwrap();
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
}
