//! AdmissionReview bodies around an object, as the API server posts them to the webhook. Only
//! `serde_json` is used, so benchmarks and fuzz targets can include this file as it is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};

/// The request uid a review carries unless [`ReviewBuilder::uid`] says otherwise.
pub const UID: &str = "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4";

/// An `admission.k8s.io/v1` review of a Pod CREATE of `object` in namespace `apps`, sent by the
/// ReplicaSet controller.
pub fn review(object: Value) -> ReviewBuilder {
    ReviewBuilder {
        api_version: "admission.k8s.io/v1".to_owned(),
        uid: UID.to_owned(),
        namespace: "apps".to_owned(),
        kind: Some("Pod".to_owned()),
        user: Some(json!({"username": "system:serviceaccount:kube-system:replicaset-controller"})),
        complete: false,
        object,
    }
}

/// Builder of one review; fields come out in the order the API server writes them.
#[derive(Clone)]
pub struct ReviewBuilder {
    api_version: String,
    uid: String,
    namespace: String,
    /// The request's `kind.kind` (group "", version v1); `None` leaves `kind` and `resource` out.
    kind: Option<String>,
    user: Option<Value>,
    complete: bool,
    object: Value,
}

impl ReviewBuilder {
    /// Sets the review's `apiVersion` (`admission.k8s.io/v1beta1`, or anything else).
    pub fn api_version(mut self, api_version: &str) -> Self {
        self.api_version = api_version.to_owned();
        self
    }

    /// Sets `request.uid`.
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = uid.to_owned();
        self
    }

    /// Sets `request.namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// Sets the request's object kind (`Pod` unless told); `resource` stays `pods`.
    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.to_owned());
        self
    }

    /// Sets `request.userInfo`.
    pub fn user(mut self, user_info: Value) -> Self {
        self.user = Some(user_info);
        self
    }

    /// Only what the injector needs: uid, namespace, operation and object.
    pub fn bare(mut self) -> Self {
        self.kind = None;
        self.user = None;
        self.complete = false;
        self
    }

    /// Every field a real API server sends, `requestKind` to `options`.
    pub fn complete(mut self) -> Self {
        self.complete = true;
        self
    }

    /// The review JSON.
    pub fn build(self) -> Value {
        let gvk = |kind: &str| json!({"group": "", "version": "v1", "kind": kind});
        let pods = json!({"group": "", "version": "v1", "resource": "pods"});
        let mut request = Map::new();
        request.insert("uid".into(), json!(self.uid));
        if let Some(kind) = &self.kind {
            request.insert("kind".into(), gvk(kind));
            request.insert("resource".into(), pods.clone());
            if self.complete {
                request.insert("requestKind".into(), gvk(kind));
                request.insert("requestResource".into(), pods);
            }
        }
        request.insert("namespace".into(), json!(self.namespace));
        request.insert("operation".into(), json!("CREATE"));
        if let Some(user) = self.user {
            request.insert("userInfo".into(), user);
        }
        request.insert("object".into(), self.object);
        if self.complete {
            request.insert("oldObject".into(), Value::Null);
            request.insert("dryRun".into(), json!(false));
            request.insert(
                "options".into(),
                json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
            );
        }
        json!({"kind": "AdmissionReview", "apiVersion": self.api_version, "request": request})
    }

    /// The review as JSON text.
    pub fn into_json(self) -> String {
        self.build().to_string()
    }

    /// The review as the body of a POST.
    pub fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self.build()).unwrap()
    }
}
