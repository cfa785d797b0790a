//! The AdmissionReview envelope: the request's parts read from a decoded review, and the reply
//! written for a decision (as a value, and straight to bytes).

use super::*;

/// The request fields the injector reads.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParts {
    /// `apiVersion` of the review (v1 when absent or unknown).
    pub api_version: String,
    /// `request.uid`.
    pub uid: String,
    /// `request.namespace`.
    pub namespace: String,
    /// `request.object`.
    pub object: Value,
}

pub(super) const V1: &str = "admission.k8s.io/v1";
pub(super) const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// Reads an AdmissionReview body leniently: only `request.uid`, `request.namespace` and
/// `request.object` matter, and a wrongly typed one is a decode error.
pub fn read_review(review: &Value) -> Result<RequestParts, ReviewError> {
    let obj = review.as_object().ok_or_else(|| {
        ReviewError::Decode(format!("expected a JSON object, found {}", kind_of(review)))
    })?;
    let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
        Some(V1BETA1) => V1BETA1,
        _ => V1,
    }
    .to_owned();
    let request = match obj.get("request") {
        None | Some(Value::Null) => return Err(ReviewError::NoRequest),
        Some(Value::Object(r)) => r,
        Some(other) => {
            return Err(ReviewError::Decode(format!(
                "request: expected an object, found {}",
                kind_of(other)
            )));
        }
    };
    let string = |field: &str| -> Result<String, ReviewError> {
        match request.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ReviewError::Decode(format!(
                "request.{field}: expected a string, found {}",
                kind_of(other)
            ))),
        }
    };
    Ok(RequestParts {
        api_version,
        uid: string("uid")?,
        namespace: string("namespace")?,
        object: request.get("object").cloned().unwrap_or(Value::Null),
    })
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The response object for a request and its decision, in upstream's shape.
pub fn response_review(parts: &RequestParts, decision: &Result<Mutation, Refusal>) -> Value {
    let mut response = Map::new();
    response.insert("uid".to_owned(), Value::String(parts.uid.clone()));
    match decision {
        Ok(Mutation::Skip(_)) => {
            response.insert("allowed".to_owned(), Value::Bool(true));
        }
        Ok(Mutation::Inject { ops, warnings, .. }) => {
            response.insert("allowed".to_owned(), Value::Bool(true));
            let bytes = patch::to_bytes(ops);
            response.insert("patch".to_owned(), Value::String(STANDARD.encode(bytes)));
            response.insert(
                "patchType".to_owned(),
                Value::String("JSONPatch".to_owned()),
            );
            if !warnings.is_empty() {
                response.insert(
                    "warnings".to_owned(),
                    Value::Array(warnings.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        Err(refusal) => {
            response.insert("allowed".to_owned(), Value::Bool(false));
            response.insert(
                "status".to_owned(),
                json!({"metadata": {}, "message": refusal.to_string()}),
            );
        }
    }
    // Built by hand: `json!` would serialise `response` (and its patch) into a copy.
    let mut review = Map::with_capacity(3);
    review.insert(
        "kind".to_owned(),
        Value::String("AdmissionReview".to_owned()),
    );
    review.insert(
        "apiVersion".to_owned(),
        Value::String(parts.api_version.clone()),
    );
    review.insert("response".to_owned(), Value::Object(response));
    Value::Object(review)
}

/// [`response_review`] written straight to bytes, identical to serialising it: the reply is
/// mostly the base64 patch, which needs no escaping, so it is not scanned for any. Building the
/// [`Value`] and serialising it instead costs about 30% (h1) and 40% (h2) of the injector's
/// throughput per core on `benches/run.sh`.
pub(super) fn reply_bytes(parts: &RequestParts, decision: &Result<Mutation, Refusal>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
    // Sized once: growing a ~12 KB reply by doubling copied it several times.
    let patch = decision
        .as_ref()
        .ok()
        .and_then(Mutation::patch_json)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(512 + patch.len().div_ceil(3) * 4);
    out.extend_from_slice(br#"{"kind":"AdmissionReview","apiVersion":"#);
    string(&mut out, &parts.api_version);
    out.extend_from_slice(br#","response":{"uid":"#);
    string(&mut out, &parts.uid);
    match decision {
        Ok(Mutation::Skip(_)) => out.extend_from_slice(br#","allowed":true"#),
        Ok(Mutation::Inject { warnings, .. }) => {
            out.extend_from_slice(br#","allowed":true,"patch":""#);
            // Encoded straight into the reply, which was sized for it.
            let start = out.len();
            out.resize(start + patch.len().div_ceil(3) * 4, 0);
            let written = STANDARD
                .encode_slice(&patch, &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
            out.extend_from_slice(br#"","patchType":"JSONPatch""#);
            if !warnings.is_empty() {
                out.extend_from_slice(br#","warnings":"#);
                let _ = serde_json::to_writer(&mut out, warnings);
            }
        }
        Err(refusal) => {
            out.extend_from_slice(br#","allowed":false,"status":{"metadata":{},"message":"#);
            string(&mut out, &refusal.to_string());
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"}}");
    out
}
