//! The README's settings and annotation tables are generated from the declarations
//! (`settings::markdown_table`, `annotations::keys::markdown_table`): each sits after a marker
//! comment and runs to the next blank line, and this test fails when one differs from what the
//! declarations give. `UPDATE_README=1 cargo test --test readme` rewrites them.
#![allow(clippy::unwrap_used)]

use vault_injector::annotations::keys;
use vault_injector::settings;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const SETTINGS_MARKER: &str = "<!-- settings table: generated from crates/core/src/settings/table.rs, checked by tests/readme.rs -->";
const ANNOTATIONS_MARKER: &str = "<!-- annotation table: generated from crates/core/src/annotations/keys/table.rs, checked by tests/readme.rs -->";

/// The README with the table after `marker` replaced by `table`.
fn with_table(readme: &str, marker: &str, table: &str) -> String {
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no marker {marker}"))
        + marker.len()
        + 1;
    let end = readme[start..]
        .find("\n\n")
        .map_or(readme.len(), |i| start + i + 1);
    format!("{}{table}{}", &readme[..start], &readme[end..])
}

#[test]
fn readme_tables_are_the_declarations() {
    let readme = std::fs::read_to_string(README).unwrap();
    let expected = with_table(&readme, SETTINGS_MARKER, &settings::markdown_table());
    let expected = with_table(&expected, ANNOTATIONS_MARKER, &keys::markdown_table());
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(README, &expected).unwrap();
        return;
    }
    assert!(
        readme == expected,
        "README tables differ from the declarations; run UPDATE_README=1 cargo test --test readme"
    );
}
