//! Every configuration key the settings type has is named in `--help`, in
//! `docs/configuration.md` and in `config.toml`: an operator who reads any
//! of the three sees every key, and a new key cannot be added to one alone.

use std::collections::BTreeSet;

use boxoffice::config::{Settings, HELP};

/// `section.key` for every leaf of the settings, as serde names them.
fn keys() -> BTreeSet<String> {
    let value = serde_json::to_value(Settings::default()).expect("settings serialise");
    let mut keys = BTreeSet::new();
    for (section, table) in value.as_object().expect("sections") {
        for key in table.as_object().expect("keys").keys() {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

/// `section.key` for every `key = ...` line (commented out or not) under a
/// `[section]` header of a TOML file.
fn toml_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(header) = line.strip_prefix('[') {
            section = header.split(']').next().unwrap_or_default().to_string();
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !section.is_empty() && !key.is_empty() && !key.contains(' ') {
                keys.insert(format!("{section}.{key}"));
            }
        }
    }
    keys
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_key_is_in_help_the_configuration_page_and_config_toml() {
    let keys = keys();
    assert!(keys.len() > 30, "found only {keys:?}");
    let page = read("docs/configuration.md");
    let file = toml_keys(&read("config.toml"));
    let mut missing = Vec::new();
    for key in &keys {
        if !HELP.contains(key.as_str()) {
            missing.push(format!("{key} is not in --help"));
        }
        if !page.contains(&format!("`{key}`")) {
            missing.push(format!("{key} is not in docs/configuration.md"));
        }
        if !file.contains(key) {
            missing.push(format!("{key} is not in config.toml"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    // And config.toml names nothing the settings do not have.
    let extra: Vec<_> = file.difference(&keys).collect();
    assert!(extra.is_empty(), "config.toml has unknown keys {extra:?}");
}

#[test]
fn config_toml_is_the_defaults() {
    let path = format!("{}/config.toml", env!("CARGO_MANIFEST_DIR"));
    let settings = Settings::load(Some(std::path::Path::new(&path))).expect("config.toml loads");
    assert_eq!(settings, Settings::default());
}
