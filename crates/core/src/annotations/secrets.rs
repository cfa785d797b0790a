//! Secret discovery: every `agent-inject-secret-<name>`, `agent-inject-template-<name>` and
//! `agent-inject-template-file-<name>` declares the file `<name>`, and the per-secret keys
//! `<key>-<name>` are looked up with the name as written.

use std::collections::BTreeMap;

use super::error::Problem;
use super::keys;
use super::read::{Written, dashed_key, weak_bool, write_dashed_key};
use super::request::Secret;

/// Default mount path of the rendered secrets.
pub const DEFAULT_SECRET_VOLUME_PATH: &str = "/vault/secrets";

/// The pod's secrets, in ascending order of their names as written.
pub(super) fn discover(ann: &Written<'_>) -> Result<Vec<Secret>, Problem> {
    let prefixes = [keys::SECRET, keys::TEMPLATE_FILE, keys::TEMPLATE];
    let mut found: BTreeMap<&str, String> = BTreeMap::new();
    for (key, value) in ann.iter() {
        if value.trim().is_empty() {
            continue;
        }
        for prefix in prefixes {
            let Some(raw) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
                continue;
            };
            let name = file_name(ann, raw);
            if name.is_empty() {
                continue;
            }
            found.entry(raw).or_insert(name);
            break;
        }
    }
    let global_path = ann
        .get(keys::SECRET_VOLUME_PATH)
        .unwrap_or(DEFAULT_SECRET_VOLUME_PATH);
    let mut secrets = Vec::with_capacity(found.len());
    // One buffer for the ten per-secret keys of every secret.
    let mut key = String::new();
    for (raw, name) in found {
        let mut per = |prefix: &str| -> Option<&str> {
            write_dashed_key(&mut key, prefix, raw);
            ann.get(&key)
        };
        let owned = |v: Option<&str>| v.unwrap_or_default().to_owned();
        let template = owned(per(keys::TEMPLATE));
        let template_file = if template.is_empty() {
            owned(per(keys::TEMPLATE_FILE))
        } else {
            String::new()
        };
        let error_on_missing_key = match per(keys::ERROR_ON_MISSING_KEY) {
            None => false,
            Some(v) => weak_bool(&dashed_key(keys::ERROR_ON_MISSING_KEY, raw), v)?,
        };
        secrets.push(Secret {
            path: owned(per(keys::SECRET)),
            template,
            template_file,
            mount_path: per(keys::SECRET_VOLUME_PATH)
                .unwrap_or(global_path)
                .to_owned(),
            command: owned(per(keys::COMMAND)),
            left_delimiter: owned(per(keys::LEFT_DELIM)),
            right_delimiter: owned(per(keys::RIGHT_DELIM)),
            file: owned(per(keys::FILE)),
            perms: owned(per(keys::PERMS)),
            error_on_missing_key,
            name,
            raw_name: raw.to_owned(),
        });
    }
    Ok(secrets)
}

/// The secret's file name: lowercased, unless `preserve-secret-case-<raw>` (or else the global
/// `preserve-secret-case`) is true; a bad value counts as false, as upstream.
fn file_name(ann: &Written<'_>, raw: &str) -> String {
    let per_secret = dashed_key(keys::PRESERVE_SECRET_CASE, raw);
    let preserve = ann
        .get(&per_secret)
        .or_else(|| ann.get(keys::PRESERVE_SECRET_CASE))
        .is_some_and(|v| weak_bool("", v).unwrap_or(false));
    if preserve {
        raw.to_owned()
    } else {
        raw.to_lowercase()
    }
}
