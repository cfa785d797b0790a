//! What the injector tells operators: Prometheus metrics and hclog-style logs.

pub mod logging;
pub mod metrics;
