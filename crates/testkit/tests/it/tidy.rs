//! The module dependency rule, checked on every `cargo test`: a module's code may use other
//! modules only through their `-api` crates. Only the composition crates name
//! implementation crates.

use std::collections::BTreeSet;
use std::path::Path;

/// Crates that wire implementations together and so may depend on them.
const COMPOSITION: &[&str] = &["runtime", "microlith", "testkit"];
/// The modules: each an implementation crate beside its `-api` contract crate.
const MODULES: &[&str] =
    &["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"];
/// The crates below the modules, which ARCHITECTURE.md says know no module.
const FOUNDATION: &[&str] =
    &["kernel", "store", "rpc", "resilience", "telemetry", "trace-store", "bus", "function-host"];

/// The dependency names of a manifest, across normal, dev and build dependencies.
fn dependencies(manifest: &toml::Table) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
            out.extend(deps.keys().cloned());
        }
    }
    // Target-specific sections: [target.'cfg(..)'.dependencies]
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for t in targets.values() {
            if let Some(t) = t.as_table() {
                out.extend(dependencies(t));
            }
        }
    }
    out
}

/// Violations of the rule among `crates` = (name, manifest); implementation crates are
/// those with a `<name>-api` sibling.
fn violations(crates: &[(String, toml::Table)]) -> Vec<String> {
    let names: BTreeSet<&str> = crates.iter().map(|(n, _)| n.as_str()).collect();
    let implementations: BTreeSet<&str> =
        names.iter().copied().filter(|n| names.contains(format!("{n}-api").as_str())).collect();
    let mut out = Vec::new();
    for (name, manifest) in crates {
        if COMPOSITION.contains(&name.as_str()) {
            continue;
        }
        for dep in dependencies(manifest) {
            if implementations.contains(dep.as_str()) && dep != *name {
                out.push(format!(
                    "{name} depends on the implementation crate {dep}; use {dep}-api"
                ));
            }
        }
    }
    out
}

fn workspace_crates() -> Vec<(String, toml::Table)> {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(crates_dir).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let table: toml::Table = std::fs::read_to_string(&manifest).unwrap().parse().unwrap();
        let name = table["package"]["name"].as_str().unwrap().to_owned();
        assert_eq!(dir.file_name().unwrap().to_str().unwrap(), name, "folder name = crate name");
        out.push((name, table));
    }
    out
}

#[test]
fn modules_depend_only_on_other_modules_contracts() {
    let crates = workspace_crates();
    for m in MODULES {
        assert!(crates.iter().any(|(n, _)| n == m), "module crate {m} is missing");
    }
    let found = violations(&crates);
    assert!(found.is_empty(), "dependency rule broken:\n{}", found.join("\n"));
}

#[test]
fn the_check_catches_a_violation() {
    let manifest =
        |deps: &str| -> toml::Table { format!("[dependencies]\n{deps}").parse().unwrap() };
    let crates = vec![
        ("catalog".to_owned(), manifest("kernel = \"*\"")),
        ("catalog-api".to_owned(), manifest("")),
        ("cart".to_owned(), manifest("catalog = { path = \"../catalog\" }")),
        ("cart-api".to_owned(), manifest("")),
        ("gateway".to_owned(), "[dev-dependencies]\ncart = \"*\"".parse().unwrap()),
        ("runtime".to_owned(), manifest("cart = \"*\"\ncatalog = \"*\"")),
    ];
    let found = violations(&crates);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("cart depends on the implementation crate catalog"));
    assert!(found[1].starts_with("gateway depends on the implementation crate cart"));
}

/// `kernel`, `store`, `rpc`, `resilience`, `telemetry`, `trace-store`, `bus` and
/// `function-host` know no module: none of them depends
/// on a module's implementation or contract crate (tests included).
#[test]
fn the_foundation_knows_no_module() {
    let crates = workspace_crates();
    let mut found = Vec::new();
    for (name, manifest) in crates.iter().filter(|(n, _)| FOUNDATION.contains(&n.as_str())) {
        for dep in dependencies(manifest) {
            let module = dep.strip_suffix("-api").unwrap_or(&dep);
            if MODULES.contains(&module) {
                found.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    for f in FOUNDATION {
        assert!(crates.iter().any(|(n, _)| n == f), "crate {f} is missing");
    }
}

/// `resilience` knows no transport: an edge wraps any call, local or remote, so it compiles
/// no HTTP stack, database or broker.
#[test]
fn resilience_knows_no_transport() {
    let crates = workspace_crates();
    let compiled = compiled("resilience", &crates);
    let transports = ["rpc", "axum", "hyper", "reqwest", "sqlx", "async-nats", "store", "bus"];
    let found: Vec<&str> = transports.into_iter().filter(|t| compiled.contains(*t)).collect();
    assert!(found.is_empty(), "resilience compiles {found:?}");
    assert!(compiled.contains("kernel"), "the check reads resilience's dependencies");
}

/// Implementation crates read no files and no environment: everything they need is handed
/// to them by the composition crates (their database, configuration and clients).
#[test]
fn modules_read_no_files_and_no_environment() {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut found = Vec::new();
    let mut read = 0;
    for m in MODULES {
        let mut dirs = vec![crates_dir.join(m).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                read += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if ["std::env", "std::fs", "env::var", "fs::read", "fs::write", "File::open"]
                        .iter()
                        .any(|needle| code.contains(needle))
                    {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(read >= MODULES.len(), "the module sources were found ({read} files)");
    assert!(found.is_empty(), "a module reads files or the environment:\n{}", found.join("\n"));
}

/// What a crate compiles, as far as the workspace's manifests say: its normal dependencies,
/// and theirs for the workspace's own crates.
fn compiled(name: &str, crates: &[(String, toml::Table)]) -> BTreeSet<String> {
    let normal = |n: &str| -> BTreeSet<String> {
        crates
            .iter()
            .find(|(c, _)| c == n)
            .and_then(|(_, m)| m.get("dependencies").and_then(|d| d.as_table()))
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(n) = todo.pop() {
        for dep in normal(&n) {
            if seen.insert(dep.clone()) {
                todo.push(dep);
            }
        }
    }
    seen
}

/// The broker and the databases are the implementations' business: a contract crate (and
/// so every crate that only reads a contract) compiles no SQL driver, no NATS client, and
/// neither `store` nor `bus`.
#[test]
fn contract_crates_compile_no_database_or_broker() {
    let crates = workspace_crates();
    let forbidden = ["sqlx", "async-nats", "store", "bus"];
    let mut found = Vec::new();
    for m in MODULES {
        let contract = format!("{m}-api");
        assert!(crates.iter().any(|(n, _)| *n == contract), "{contract} is missing");
        let deps = compiled(&contract, &crates);
        assert!(deps.contains("kernel"), "the closure is computed: {deps:?}");
        for f in forbidden.iter().filter(|f| deps.contains(**f)) {
            found.push(format!("{contract} compiles {f}"));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The check sees through the workspace's own crates.
    assert!(compiled("runtime", &crates).contains("sqlx"), "runtime compiles sqlx via store");
}

/// Implementation crates share one layout: `service.rs` implements the contract, and a
/// module that consumes events declares its consumer in `handlers.rs` and nowhere else.
#[test]
fn modules_share_one_layout() {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut found = Vec::new();
    for m in MODULES {
        let src = crates_dir.join(m).join("src");
        if !src.join("service.rs").is_file() {
            found.push(format!("{m}: no service.rs"));
        }
        if src.join("store.rs").exists() {
            found.push(format!("{m}: store.rs (the `store` crate's name; shared SQL is rows.rs)"));
        }
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let declares = text.contains("bus::subscribes!") || text.contains("impl Handler for");
            if declares && path.file_name().is_some_and(|n| n != "handlers.rs") {
                found.push(format!("{}: a bus consumer outside handlers.rs", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
