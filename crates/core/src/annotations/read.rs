//! How a written annotation is read: the pod's own map (never a default written into it), and
//! upstream's lenient value syntax.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::error::Problem;
use crate::goparse::{parse_bool, parse_int64};

/// The annotations the pod wrote (after the `openbao.org/` keys and the Namespace's defaults
/// are folded in). Absent keys take their typed default in the parser.
///
/// Lookups go through a hash index: every key the parser looks up starts with the same 20
/// bytes (`vault.hashicorp.com/`), so in the ordered map each of the hundreds of lookups of a
/// pod with many secrets was several long `memcmp`s. The standard hasher is seeded per
/// process, so keys sent to collide cannot be chosen. Iteration uses the ordered map, so no output
/// depends on the hash order.
#[derive(Debug)]
pub(super) struct Written<'a> {
    map: &'a BTreeMap<String, String>,
    index: HashMap<&'a str, &'a str>,
}

/// What a pod without annotations has.
static NONE: BTreeMap<String, String> = BTreeMap::new();

impl<'a> Written<'a> {
    pub(super) fn new(annotations: Option<&'a BTreeMap<String, String>>) -> Self {
        let map = annotations.unwrap_or(&NONE);
        let mut index = HashMap::with_capacity(map.len());
        index.extend(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self { map, index }
    }

    /// The value as written, `None` when the key is absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        self.index.get(key).copied()
    }

    /// Whether the pod wrote the key (even empty).
    pub(super) fn has(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Every key and value.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `(suffix, value)` for every key `<prefix>-<suffix>`, in ascending key order.
    pub(super) fn suffixes(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        self.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, value)| {
                let suffix = key.strip_prefix(prefix)?.strip_prefix('-')?;
                Some((suffix, value.as_str()))
            })
            .collect()
    }

    /// `(param, value)` for keys `<prefix>-<param>`, with `-` in the param turned into `_`, in
    /// ascending key order. Two keys can name the same param (`a-b` and `a_b`); the one that
    /// sorts last wins in the callers' maps.
    pub(super) fn params(&self, prefix: &str) -> Vec<(String, &'a str)> {
        self.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, value)| {
                let param = key.strip_prefix(prefix)?.strip_prefix('-')?;
                Some((param.replace('-', "_"), value.as_str()))
            })
            .collect()
    }
}

/// go-secure-stdlib `parseutil.ParseBool`: the empty string is false, else Go's ParseBool.
pub(super) fn weak_bool(key: &str, raw: &str) -> Result<bool, Problem> {
    if raw.is_empty() {
        return Ok(false);
    }
    parse_bool(raw).map_err(|err| Problem::Bool {
        key: key.to_owned(),
        err,
    })
}

/// go-secure-stdlib `parseutil.ParseInt`: the empty string is 0.
pub(super) fn weak_int(key: &str, raw: &str) -> Result<i64, Problem> {
    if raw.is_empty() {
        return Ok(0);
    }
    parse_int64(raw).map_err(|err| Problem::Number {
        key: key.to_owned(),
        err,
    })
}

/// `<prefix>-<suffix>`, e.g. the key of a per-secret annotation.
pub(super) fn dashed_key(prefix: &str, suffix: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + 1 + suffix.len());
    write_dashed_key(&mut key, prefix, suffix);
    key
}

/// [`dashed_key`] into a reused buffer: per-secret keys are built ten times per secret.
pub(super) fn write_dashed_key(key: &mut String, prefix: &str, suffix: &str) {
    key.clear();
    key.push_str(prefix);
    key.push('-');
    key.push_str(suffix);
}
