//! Lease-mode leader election (`-leader-election-mode=lease`, not upstream): a
//! `coordination.k8s.io/v1` Lease named [`LEASE_NAME`] in the injector's namespace, with
//! client-go's leader-election rules and its usual timings ([`TIMING`]):
//!
//! - **lease duration 15 s**: a candidate takes the Lease over once it has seen it unchanged
//!   (same `resourceVersion`) for the holder's `leaseDurationSeconds` (15 s), measured on the
//!   candidate's own monotonic clock, so clock skew between nodes does not matter. A Lease with
//!   no holder (released) is taken at once.
//! - **retry period 2 s**: candidates look every 2 s (+0–10 %); the leader renews every 2 s.
//! - **renew deadline 10 s**: a leader that has not renewed for 10 s (counted from the start of
//!   its last successful renewal) steps down, 5 s before anyone else may take the Lease. A
//!   leader that sees another holder steps down at once.
//!
//! So a leader that dies is replaced within 15–19 s (lease duration plus up to one retry
//! period before it was last seen renewing and one after it expired), and two replicas never
//! lead at once unless a request takes more than 5 s to reach the API server.
//!
//! Writes are `get`, `create` and `update` (optimistic concurrency on `resourceVersion`); no
//! `patch`, `list` or `watch` on leases is needed.
//!
//! Why not the `kube-lease-manager` crate: its leader never learns that it lost the Lease while
//! its renewals fail (no renew deadline), so it would keep writing the certificate after another
//! replica took over; its expiry is computed from the holder's wall clock (`renewTime`); and
//! it needs `patch` on leases.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::telemetry::logging::HANDLER;

/// Name of the Lease (the same name as the leader-for-life ConfigMap; the kinds differ).
pub const LEASE_NAME: &str = "vault-k8s-leader";

/// The election's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease unchanged since it was last seen stays valid for others.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Time between two attempts (candidates) or two renewals (leader).
    pub retry_period: Duration,
}

/// client-go's (and kube-controller-manager's) defaults: 15 s, 10 s, 2 s.
pub const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry_period: Duration::from_secs(2),
};

impl Timing {
    /// The longest time from a leader's death to a new leader, when a candidate is running:
    /// the Lease may have been seen last up to one retry period (plus jitter) after its final
    /// renewal, expires a lease duration later, and is taken at the next look.
    pub fn failover_bound(&self) -> Duration {
        self.lease_duration + self.retry_period.mul_f64(2.0 * (1.0 + MAX_JITTER))
    }
}

/// Candidates wait the retry period lengthened by a random 0–10 %.
const MAX_JITTER: f64 = 0.1;

/// A Lease operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Someone else created or updated the Lease first (HTTP 409).
    #[error("the Lease was changed by someone else")]
    Conflict,
    /// Any other failure.
    #[error("{0}")]
    Api(String),
}

/// Where the Lease lives: the API server, or a fake in tests.
pub trait LeaseStore: Send + Sync {
    /// Reads the Lease (`None` when it does not exist).
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, LeaseError>> + Send;
    /// Creates it.
    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease, LeaseError>> + Send;
    /// Replaces it; fails with [`LeaseError::Conflict`] when its `resourceVersion` is stale.
    fn replace(&self, lease: &Lease) -> impl Future<Output = Result<Lease, LeaseError>> + Send;
}

fn kube_err(e: kube::Error) -> LeaseError {
    match e {
        kube::Error::Api(status) if status.code == 409 => LeaseError::Conflict,
        e => LeaseError::Api(e.to_string()),
    }
}

impl LeaseStore for Api<Lease> {
    async fn get(&self) -> Result<Option<Lease>, LeaseError> {
        self.get_opt(LEASE_NAME).await.map_err(kube_err)
    }
    async fn create(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        Api::create(self, &PostParams::default(), lease)
            .await
            .map_err(kube_err)
    }
    async fn replace(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        Api::replace(self, LEASE_NAME, &PostParams::default(), lease)
            .await
            .map_err(kube_err)
    }
}

/// What to do after reading the Lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// There is no Lease: create it, held by us.
    Create(Lease),
    /// It is ours, free, or expired: write it as ours (renewal or take-over).
    Update(Lease),
    /// Someone else holds it and it has not expired.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// What one candidate remembers of the Lease between two looks: the last `resourceVersion`
/// seen and when it was first seen (local monotonic clock).
#[derive(Debug, Default, Clone)]
pub struct Observer {
    seen: Option<(String, Instant)>,
}

impl Observer {
    /// Records `lease` as seen at `now`, unless it is the version already seen.
    pub fn observe(&mut self, lease: &Lease, now: Instant) {
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        if self.seen.as_ref().map(|(v, _)| v) != Some(&version) {
            self.seen = Some((version, now));
        }
    }

    /// client-go's `tryAcquireOrRenew` decision for `me` given the Lease just read.
    /// `wall` is written as `renewTime` (and `acquireTime` on a take-over).
    pub fn step(
        &mut self,
        current: Option<&Lease>,
        me: &str,
        timing: &Timing,
        now: Instant,
        wall: Timestamp,
    ) -> Step {
        let Some(current) = current else {
            self.seen = None;
            return Step::Create(claim(None, me, timing, wall));
        };
        self.observe(current, now);
        let spec = current.spec.as_ref();
        let holder = spec
            .and_then(|s| s.holder_identity.as_deref())
            .unwrap_or_default();
        if !holder.is_empty() && holder != me {
            // The holder's own duration counts when it is longer than ours.
            let duration = spec
                .and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .map_or(timing.lease_duration, |s| {
                    Duration::from_secs(s).max(timing.lease_duration)
                });
            let seen_at = self.seen.as_ref().map_or(now, |(_, at)| *at);
            if now < seen_at + duration {
                return Step::Wait {
                    holder: holder.to_owned(),
                };
            }
        }
        Step::Update(claim(Some(current), me, timing, wall))
    }
}

/// The Lease as `me` writes it: holder, duration and renew time set; acquire time and
/// transitions as client-go keeps them (a new holder gets `acquireTime = now` and one more
/// transition). Metadata (with the `resourceVersion` read) and other fields are kept.
pub fn claim(current: Option<&Lease>, me: &str, timing: &Timing, wall: Timestamp) -> Lease {
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let old = lease.spec.take().unwrap_or_default();
    let kept = old.holder_identity.as_deref() == Some(me);
    let transitions = old.lease_transitions.unwrap_or(0);
    let now = MicroTime(wall);
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(
            i32::try_from(timing.lease_duration.as_secs()).unwrap_or(i32::MAX),
        ),
        acquire_time: if kept {
            old.acquire_time.clone().or_else(|| Some(now.clone()))
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(if current.is_none() || kept {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..old
    });
    lease
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// We hold the Lease (created, renewed or taken over).
    Held,
    /// Someone else holds it.
    HeldBy(String),
    /// Our write lost a race; look again later.
    Conflict,
}

async fn try_acquire_or_renew<S: LeaseStore>(
    store: &S,
    me: &str,
    timing: &Timing,
    observer: &mut Observer,
) -> Result<Attempt, LeaseError> {
    let current = store.get().await?;
    let step = observer.step(
        current.as_ref(),
        me,
        timing,
        Instant::now(),
        Timestamp::now(),
    );
    let written = match step {
        Step::Wait { holder } => return Ok(Attempt::HeldBy(holder)),
        Step::Create(lease) => store.create(&lease).await,
        Step::Update(lease) => store.replace(&lease).await,
    };
    match written {
        Ok(lease) => {
            observer.observe(&lease, Instant::now());
            Ok(Attempt::Held)
        }
        Err(LeaseError::Conflict) => Ok(Attempt::Conflict),
        Err(e) => Err(e),
    }
}

/// Runs the election for `me` for ever, publishing on `leading` whether this replica leads:
/// `true` only after the Lease was written as ours, and `false` as soon as another holder is
/// seen, or when [`Timing::renew_deadline`] has passed since the start of the last successful
/// renewal (whatever the API server does: a slow request is abandoned at the deadline).
pub async fn run<S: LeaseStore>(
    store: S,
    me: String,
    timing: Timing,
    leading: watch::Sender<bool>,
) {
    let mut observer = Observer::default();
    let mut last_holder = String::new();
    loop {
        // Candidate.
        let mut renewed;
        loop {
            let start = Instant::now();
            match try_acquire_or_renew(&store, &me, &timing, &mut observer).await {
                Ok(Attempt::Held) => {
                    renewed = start;
                    break;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if holder != last_holder {
                        tracing::info!(target: HANDLER, Lease = LEASE_NAME, Leader = %holder, "Not the leader. Waiting for the Lease to expire.");
                        last_holder = holder;
                    }
                }
                Ok(Attempt::Conflict) => {}
                Err(e) => {
                    tracing::warn!(target: HANDLER, Lease = LEASE_NAME, Server = %crate::cluster::api_server(), Error = %e, "could not read or take the Lease");
                }
            }
            tokio::time::sleep(crate::cluster::backoff::lengthen(
                timing.retry_period,
                MAX_JITTER,
            ))
            .await;
        }
        tracing::info!(target: HANDLER, Lease = LEASE_NAME, Pod = %me, "Became the leader.");
        last_holder.clone_from(&me);
        leading.send_replace(true);

        // Leader: renew every retry period until the renew deadline passes or someone else
        // holds the Lease.
        let why = loop {
            let deadline = renewed + timing.renew_deadline;
            tokio::time::sleep_until((Instant::now() + timing.retry_period).min(deadline)).await;
            if Instant::now() >= deadline {
                break format!("not renewed for {:?}", timing.renew_deadline);
            }
            let start = Instant::now();
            let attempt = tokio::time::timeout_at(
                deadline,
                try_acquire_or_renew(&store, &me, &timing, &mut observer),
            )
            .await;
            match attempt {
                Ok(Ok(Attempt::Held)) => renewed = start,
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    let why = format!("the Lease is held by {holder}");
                    last_holder = holder;
                    break why;
                }
                Ok(Ok(Attempt::Conflict)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(target: HANDLER, Lease = LEASE_NAME, Server = %crate::cluster::api_server(), Error = %e, "could not renew the Lease");
                }
                Err(_) => break format!("not renewed for {:?}", timing.renew_deadline),
            }
        };
        leading.send_replace(false);
        tracing::warn!(target: HANDLER, Lease = LEASE_NAME, Reason = %why, "Lost the leadership.");
    }
}

#[cfg(test)]
mod tests;
