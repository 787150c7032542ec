//! The README's configuration table is the operator's reference: it must list every setting the
//! code reads, and nothing the code does not read.

use std::collections::BTreeSet;

fn documented() -> BTreeSet<String> {
    let readme = include_str!("../../../README.md");
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `BROKER_"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| format!("BROKER_{name}"))
        .collect()
}

fn read_by_code() -> BTreeSet<String> {
    [
        broker_common::config::SETTINGS,
        broker_common::config::SERVICE_URL_SETTINGS,
        broker_token::config::SETTINGS,
        broker_filetransfer::SETTINGS,
        broker_events::SETTINGS,
        broker_gateway::SETTINGS,
    ]
    .into_iter()
    .flatten()
    .map(|setting| setting.name.to_owned())
    .collect()
}

#[test]
fn readme_documents_exactly_the_settings_the_code_reads() {
    let documented = documented();
    let read = read_by_code();
    let missing: Vec<_> = read.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "settings missing from the README table: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "README documents settings the code does not read: {stale:?}"
    );
}
