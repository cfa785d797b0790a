//! The pure core of vault-injector: what the Vault Agent Injector does to a pod, with no I/O.
//!
//! A pod and the injector's settings go in; the agent containers, volumes, mounts and agent
//! configuration come out, as the RFC 6902 patch the webhook returns. Nothing here reads files,
//! the environment or the network, starts tasks or talks to Kubernetes: this crate does not
//! depend on an async runtime, an HTTP stack or a Kubernetes client, so the compiler keeps it
//! that way. The server, the certificate sources, the Kubernetes watchers and the command line
//! live in the `vault-injector` crate around it.
//!
//! The flow of one admission request, module by module:
//!
//! 1. [`settings`]: the injector-wide settings, upstream's `AGENT_INJECT_*` variables and
//!    `-flags`, declared once in one table and parsed into the typed [`settings::Settings`]
//!    (callers hand in the flag values and an environment lookup).
//! 2. [`annotations`]: the pod's `vault.hashicorp.com/*` annotations, declared once in one key
//!    table, read and validated into one [`annotations::AgentRequest`], with the settings as
//!    typed defaults. An invalid value is a [`annotations::Refusal`] that names the annotation
//!    and the value, in upstream's wording.
//! 3. [`agent_config`]: the Vault Agent configuration the request describes, as the JSON the
//!    agent reads (`VAULT_CONFIG`); with secrets as environment variables, also the exec
//!    agent's.
//! 4. [`inject`]: the containers, volumes and mounts added to the pod, and the pod's status
//!    annotation, as operations of a [`patch`].
//! 5. [`patch`]: RFC 6902 operations in upstream's order, and the user's own JSON patches
//!    applied with upstream's json-patch semantics.
//! 6. [`admission`]: an AdmissionReview in, an AdmissionReview out; the decision
//!    ([`admission::Outcome`]) for metrics and logs.
//!
//! Around that flow: [`render`] and [`lint`] (the webhook's decision and its warnings for
//! manifests read from files), [`warnings`] (the admission warnings), [`openbao`]
//! (`openbao.org/*` annotations and the `bao` CLI), [`ns_defaults`] (Namespace annotations as pod
//! defaults) and [`goparse`] (Go's value syntax: `strconv`, durations, Kubernetes quantities,
//! quoting, where upstream's exact wording or semantics must be reproduced).

pub mod admission;
pub mod agent_config;
pub mod annotations;
pub mod goparse;
pub mod inject;
pub mod lint;
pub mod ns_defaults;
pub mod openbao;
pub mod patch;
pub mod render;
pub mod settings;
pub mod warnings;
