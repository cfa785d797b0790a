//! The agent's `telemetry` stanza: the `agent-telemetry-*` annotations typed by upstream's
//! schema and written in its member order.

use super::*;

/// The type of one telemetry field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldKind {
    Str,
    Int,
    Bool,
    List,
}

/// Upstream's telemetry schema, in member order.
pub(super) const TELEMETRY_SCHEMA: &[(&str, FieldKind)] = {
    use FieldKind::{Bool, Int, List, Str};
    &[
        ("usage_gauge_period", Str),
        ("maximum_gauge_cardinality", Int),
        ("disable_hostname", Bool),
        ("enable_hostname_label", Bool),
        ("lease_metrics_epsilon", Str),
        ("num_lease_metrics_buckets", Int),
        ("add_lease_metrics_namespace_labels", Bool),
        ("filter_default", Bool),
        ("prefix_filter", List),
        ("statsite_address", Str),
        ("statsd_address", Str),
        ("circonus_api_token", Str),
        ("circonus_api_app", Str),
        ("circonus_api_url", Str),
        ("circonus_submission_interval", Str),
        ("circonus_submission_url", Str),
        ("circonus_check_id", Str),
        ("circonus_check_force_metric_activation", Bool),
        ("circonus_check_instance_id", Str),
        ("circonus_check_search_tag", Str),
        ("circonus_check_display_name", Str),
        ("circonus_check_tags", Str),
        ("circonus_broker_id", Str),
        ("circonus_broker_select_tag", Str),
        ("dogstatsd_addr", Str),
        ("dogstatsd_tags", List),
        ("prometheus_retention_time", Str),
        ("stackdriver_project_id", Str),
        ("stackdriver_location", Str),
        ("stackdriver_namespace", Str),
        ("stackdriver_debug_logs", Bool),
    ]
};

/// `telemetry`: the non-zero fields of upstream's fixed schema, in schema order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry(Vec<(&'static str, Value)>);

impl Telemetry {
    /// Decodes the annotation map as Go's `json.Unmarshal` into upstream's struct would: names
    /// match case-insensitively (the last match in key order wins), unknown names are dropped,
    /// `null` leaves a field unset, and a value of the wrong type drops the whole stanza (`None`).
    pub fn decode(entries: &BTreeMap<String, Value>) -> Option<Self> {
        let mut fields: Vec<Option<Value>> = vec![None; TELEMETRY_SCHEMA.len()];
        for (name, value) in entries {
            let lower = name.to_lowercase();
            let Some(index) = TELEMETRY_SCHEMA
                .iter()
                .position(|(field, _)| *field == lower)
            else {
                continue;
            };
            if value.is_null() {
                continue;
            }
            fields[index] = Some(match TELEMETRY_SCHEMA[index].1 {
                FieldKind::Str => Value::String(value.as_str()?.to_owned()),
                FieldKind::Bool => Value::Bool(value.as_bool()?),
                FieldKind::Int => Value::from(go_int(value)?),
                FieldKind::List => Value::from(string_list(value)?),
            });
        }
        let present = TELEMETRY_SCHEMA
            .iter()
            .zip(fields)
            .filter_map(|((name, _), value)| value.filter(|v| !is_zero(v)).map(|v| (*name, v)))
            .collect();
        Some(Self(present))
    }
}

impl Serialize for Telemetry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Go's `omitempty`: false, 0, "" and empty lists are left out.
pub(super) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Upstream round-trips the values through `interface{}`, so numbers are float64 by the time
/// they reach an `int` field: integral values below 1e21 decode, anything else fails.
pub(super) fn go_int(v: &Value) -> Option<i64> {
    let f = v.as_f64()?;
    if f.fract() != 0.0 || f.abs() >= 1e21 || f < i64::MIN as f64 || f >= i64::MAX as f64 {
        return None;
    }
    Some(f as i64)
}

pub(super) fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|item| match item {
            Value::Null => Some(String::new()),
            other => other.as_str().map(str::to_owned),
        })
        .collect()
}
