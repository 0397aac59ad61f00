//! argon2id hashing, off the async threads: one hash costs tens of milliseconds of CPU
//! and, with OWASP's parameters (argon2's defaults: m = 19 MiB, t = 2, p = 1; OWASP
//! Password Storage Cheat Sheet), 19 MiB of memory while it runs. So few run at once.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The most threads computing hashes: more than the cores would not finish sooner.
const MAX_HASHERS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` (one hash or check) on one of a few dedicated threads, in turn. Not on
/// tokio's blocking pool: it spreads work over many threads, each with its own allocator
/// arena that keeps the 19 MiB once touched; twenty concurrent logins took a service to
/// 420 MiB that way.
async fn on_a_hasher<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    static JOBS: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        for n in 0..threads.clamp(1, MAX_HASHERS) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || run_jobs(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Mutex::new(tx)
    });
    let (done, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    jobs.lock()
        .map_err(|_| anyhow::anyhow!("the password hashers are gone"))?
        .send(job)
        .map_err(|_| anyhow::anyhow!("the password hashers are gone"))?;
    answer.await.map_err(|_| anyhow::anyhow!("a password hash was dropped"))?
}

fn run_jobs(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

thread_local! {
    /// This hasher thread's argon2 working memory (19 MiB), allocated once and reused:
    /// allocating it for each hash left the allocator holding a new 19 MiB after most of
    /// them, as small allocations took the freed space.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// `argon2` over `password` and `salt`, `len` bytes, in this thread's reused memory.
fn compute(argon2: &Argon2, password: &[u8], salt: &Salt, len: usize) -> anyhow::Result<Output> {
    let mut salt_buffer = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buffer).map_err(|e| anyhow::anyhow!("bad salt: {e}"))?;
    BLOCKS.with_borrow_mut(|blocks| {
        let need = argon2.params().block_count();
        if blocks.len() != need {
            *blocks = vec![Block::default(); need];
        }
        Output::init_with(len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..])?)
        })
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a new salt.
pub(crate) async fn hash(password: String) -> anyhow::Result<String> {
    on_a_hasher(move || hash_now(password.as_bytes())).await
}

fn hash_now(password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let argon2 = Argon2::default();
    let len = argon2.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = compute(&argon2, password, &salt.as_salt(), len)?;
    let phc = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon2.params())
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string. With `None` (no such user) it checks
/// against a fixed dummy hash, so an unknown email costs as much time as a wrong password.
pub(crate) async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    on_a_hasher(move || {
        let known = stored.is_some();
        let phc = match stored {
            Some(s) => s,
            None => dummy_hash()?.to_owned(),
        };
        let corrupt = |e: &dyn std::fmt::Display| anyhow::anyhow!("stored hash is corrupt: {e}");
        let parsed = PasswordHash::new(&phc).map_err(|e| corrupt(&e))?;
        let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
            return Err(corrupt(&"no salt or no hash"));
        };
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| corrupt(&e))?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| corrupt(&e))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(|e| corrupt(&e))?;
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = compute(&argon2, password.as_bytes(), &salt, expected.len())?;
        // `Output`'s equality takes the same time wherever the bytes differ.
        Ok(computed == expected && known)
    })
    .await
}

fn dummy_hash() -> anyhow::Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_now(b"no user has this password")?;
    Ok(DUMMY.get_or_init(|| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown email costs what a wrong password costs: the dummy hash it is checked
    /// against has the algorithm, version, parameters and output length of a real one, and
    /// argon2's work depends on nothing else. (A stopwatch would only measure the machine.)
    #[tokio::test]
    async fn an_unknown_email_is_checked_against_a_hash_of_the_same_cost() {
        let real = hash("correct horse".into()).await.unwrap();
        let dummy = dummy_hash().unwrap();
        let (r, d) = (PasswordHash::new(&real).unwrap(), PasswordHash::new(dummy).unwrap());
        assert_eq!((r.algorithm, r.version), (d.algorithm, d.version));
        assert_eq!(r.params, d.params, "m, t and p");
        assert_eq!(r.hash.map(|h| h.len()), d.hash.map(|h| h.len()));
    }

    /// Hashes stored before (made by argon2's own `hash_password`) still verify, and
    /// ours verify with argon2's own `verify_password`: the same PHC strings.
    #[tokio::test]
    async fn hashes_are_argon2s_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default().hash_password(b"correct horse", &salt).unwrap();
        assert!(verify("correct horse".into(), Some(theirs.to_string())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(theirs.to_string())).await.unwrap());
        let ours = hash("correct horse".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!verify("no user has this password".into(), None).await.unwrap());
    }
}
