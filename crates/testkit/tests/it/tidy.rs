//! The module dependency rule, checked on every `cargo test`: a module's code may use other
//! modules only through their `-api` crates. Only the composition crates name
//! implementation crates.

use std::collections::BTreeSet;
use std::path::Path;

/// Crates that wire implementations together and so may depend on them.
const COMPOSITION: &[&str] = &["runtime", "microlith", "testkit"];

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
    let modules = ["identity", "catalog", "inventory", "cart"];
    for m in modules {
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
