//! The README's settings table stays true: every upstream setting is documented with its flag,
//! env var and default.
use vault_injector::settings::SETTINGS;

#[test]
fn readme_documents_every_setting_with_its_default() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for s in SETTINGS {
        let row = readme
            .lines()
            .find(|l| l.starts_with("| ") && l.contains(&format!("`{}`", s.env)))
            .unwrap_or_else(|| panic!("README has no row for {}", s.env));
        if let Some(flag) = s.flag {
            assert!(
                row.contains(&format!("`-{flag}`")),
                "{}: flag -{flag} missing",
                s.env
            );
        }
        if !s.default.is_empty() {
            assert!(
                row.contains(&format!("`{}`", s.default)),
                "{}: default {:?} missing",
                s.env,
                s.default
            );
        }
    }
}
