//! The fast decode of the common review: the pod typed straight from the body's bytes, with
//! checks that make it accept exactly what the general path accepts.

use super::*;

/// The common case of [`review`], decoded without building a [`Value`] of the whole body: the
/// request's object goes straight from its bytes into the typed [`Pod`] (the patch is computed
/// from that pod alone). Anything this path does not accept as is (a wrongly typed field, an
/// object that is not a pod, duplicate keys) returns `None`, and the body takes the general
/// path, which words every error as before: the fast path can change speed, never a reply.
/// Without it (every body through the general path) the injector serves about 30% fewer
/// reviews per core on `benches/run.sh`.
pub(super) struct FastReview {
    pub(super) api_version: String,
    pub(super) uid: String,
    pub(super) namespace: String,
    pub(super) pod: Pod,
}

impl FastReview {
    pub(super) fn decode(body: &[u8]) -> Option<FastReview> {
        #[derive(serde::Deserialize)]
        struct Outer<'a> {
            #[serde(rename = "apiVersion", default, borrow)]
            api_version: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow)]
            request: Option<ObjectOnly<Request<'a>>>,
        }
        #[derive(serde::Deserialize)]
        struct Request<'a> {
            #[serde(default, borrow)]
            uid: Option<std::borrow::Cow<'a, str>>,
            #[serde(default, borrow)]
            namespace: Option<std::borrow::Cow<'a, str>>,
            object: Option<Pod>,
        }
        // serde_json does not check what it skips (the UTF-8 and escapes of strings, the range
        // of numbers), and the general path refuses those anywhere: the fast path first reads
        // the whole body as the general path would, without building anything.
        let body = std::str::from_utf8(body).ok()?;
        if !plainly_valid(body.as_bytes()) {
            serde_json::from_str::<Checked>(body).ok()?;
        }
        // One pass over the body: the pod is decoded where it stands.
        let ObjectOnly(outer) = serde_json::from_str::<ObjectOnly<Outer<'_>>>(body).ok()?;
        let ObjectOnly(request) = outer.request?;
        Some(FastReview {
            api_version: match outer.api_version.as_deref() {
                Some(V1BETA1) => V1BETA1,
                _ => V1,
            }
            .to_owned(),
            uid: request.uid.map(|c| c.into_owned()).unwrap_or_default(),
            namespace: request
                .namespace
                .map(|c| c.into_owned())
                .unwrap_or_default(),
            pod: request.object?,
        })
    }
}

/// Whether `body` (UTF-8) holds none of the three things serde_json's skipping of unread values
/// does not check and its [`Value`] parse refuses: a `\u` escape of a UTF-16 surrogate (a lone
/// one is refused), a number that may overflow `f64` (only an exponent or a run of hundreds of
/// digits can), and nesting deeper than the parser's recursion limit. Such a body is read in
/// full by [`Checked`] first; any other body is well-formed exactly when the typed decode
/// succeeds. One pass that jumps through strings to their quotes and escapes (a few thousand instructions
/// for a typical review, against about 90 thousand for [`Checked`]); false alarms only cost
/// that slower check.
pub(super) fn plainly_valid(body: &[u8]) -> bool {
    const MAX_DEPTH: usize = 100;
    const MAX_DIGITS: usize = 300;
    let mut depth = 0_usize;
    let mut digits = 0_usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                // Inside a string: only escapes matter.
                i += 1;
                loop {
                    // `i` can pass the end after an escape at the very end.
                    let Some(at) = body
                        .get(i..)
                        .and_then(|rest| rest.iter().position(|&b| b == b'"' || b == b'\\'))
                    else {
                        return false;
                    };
                    i += at;
                    if body[i] == b'"' {
                        break;
                    }
                    // `\uD800`-`\uDFFF`: a surrogate, to be checked in full.
                    if body.get(i + 1) == Some(&b'u')
                        && matches!(body.get(i + 2), Some(b'd' | b'D'))
                        && matches!(
                            body.get(i + 3),
                            Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                        )
                    {
                        return false;
                    }
                    i += 2;
                }
                digits = 0;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
                digits = 0;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                digits = 0;
            }
            b'0'..=b'9' => {
                digits += 1;
                if digits > MAX_DIGITS {
                    return false;
                }
            }
            b'e' | b'E' if digits > 0 || i.checked_sub(1).is_some_and(|p| body[p] == b'.') => {
                return false;
            }
            b'.' => {}
            _ => digits = 0,
        }
        i += 1;
    }
    true
}

/// Any JSON the general path's [`Value`] accepts, read in full and kept nowhere: every string
/// and key unescaped and checked, every number parsed, the same depth limit.
pub(super) struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// `T` from a JSON object only. A derived struct also accepts an array (its fields by
/// position), which the general path refuses; the fast path must not answer what it refuses.
pub(super) struct ObjectOnly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visitor(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}
