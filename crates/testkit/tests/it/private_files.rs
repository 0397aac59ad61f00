//! The data directory holds password hashes, signing keys and everyone's orders: nothing
//! in it is readable by another local user.

use std::path::Path;

#[cfg(unix)]
fn loose(dir: &Path, found: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let Ok(meta) = entry.metadata() else { continue }; // gone meanwhile (a temp file)
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push(format!("{} {mode:o}", entry.path().display()));
        }
        if meta.is_dir() {
            loose(&entry.path(), found);
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn every_file_in_a_fresh_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = crate::spawn().await;
    let (user, _) = app.shopper(5, 1).await;
    let order = app.checkout(&user, "tok_visa").await;
    app.await_order(&user, &order).await;
    app.await_settled().await;
    let dir = app.data_dir();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "the data directory itself: {mode:o}");
    let mut found = Vec::new();
    loose(&dir, &mut found);
    assert!(found.is_empty(), "readable by others: {found:#?}");
}
