//! The election's rules on their own, then whole elections against an in-memory API server
//! on tokio's paused clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use super::*;

fn wall() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn held(holder: &str, version: &str, duration: i32, transitions: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            resource_version: Some(version.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(duration),
            lease_transitions: Some(transitions),
            acquire_time: Some(MicroTime(Timestamp::from_second(1).unwrap())),
            renew_time: Some(MicroTime(Timestamp::from_second(2).unwrap())),
            ..LeaseSpec::default()
        }),
    }
}

fn spec(step: &Step) -> &LeaseSpec {
    match step {
        Step::Create(l) | Step::Update(l) => l.spec.as_ref().unwrap(),
        Step::Wait { .. } => panic!("{step:?}"),
    }
}

#[test]
fn timings_leave_a_margin_between_stepping_down_and_take_over() {
    assert!(TIMING.retry_period < TIMING.renew_deadline);
    assert!(TIMING.renew_deadline < TIMING.lease_duration);
    assert_eq!(TIMING.failover_bound(), Duration::from_millis(19_400));
}

#[test]
fn a_missing_lease_is_created_as_ours() {
    let mut o = Observer::default();
    let step = o.step(None, "a", &TIMING, Instant::now(), wall());
    assert!(matches!(step, Step::Create(_)), "{step:?}");
    let s = spec(&step);
    assert_eq!(s.holder_identity.as_deref(), Some("a"));
    assert_eq!(s.lease_duration_seconds, Some(15));
    assert_eq!(s.lease_transitions, Some(0));
    assert_eq!(s.acquire_time, Some(MicroTime(wall())));
    assert_eq!(s.renew_time, Some(MicroTime(wall())));
}

#[test]
fn another_holder_is_waited_for_until_unchanged_for_its_duration() {
    let mut o = Observer::default();
    let t0 = Instant::now();
    let lease = held("b", "1", 15, 3);
    assert_eq!(
        o.step(Some(&lease), "a", &TIMING, t0, wall()),
        Step::Wait { holder: "b".into() }
    );
    let later = t0 + Duration::from_millis(14_999);
    assert!(matches!(
        o.step(Some(&lease), "a", &TIMING, later, wall()),
        Step::Wait { .. }
    ));
    // A renewal (new resourceVersion) restarts the clock.
    let renewed = held("b", "2", 15, 3);
    assert!(matches!(
        o.step(Some(&renewed), "a", &TIMING, later, wall()),
        Step::Wait { .. }
    ));
    let expired = later + Duration::from_secs(15);
    assert!(matches!(
        o.step(
            Some(&renewed),
            "a",
            &TIMING,
            expired - Duration::from_millis(1),
            wall()
        ),
        Step::Wait { .. }
    ));
    let step = o.step(Some(&renewed), "a", &TIMING, expired, wall());
    let Step::Update(taken) = &step else {
        panic!("{step:?}")
    };
    assert_eq!(taken.metadata.resource_version.as_deref(), Some("2"));
    let s = spec(&step);
    assert_eq!(s.holder_identity.as_deref(), Some("a"));
    assert_eq!(s.lease_transitions, Some(4));
    assert_eq!(s.acquire_time, Some(MicroTime(wall())));
}

#[test]
fn a_longer_duration_of_the_holder_is_honoured() {
    let mut o = Observer::default();
    let t0 = Instant::now();
    let lease = held("b", "1", 60, 0);
    o.step(Some(&lease), "a", &TIMING, t0, wall());
    let step = o.step(
        Some(&lease),
        "a",
        &TIMING,
        t0 + Duration::from_secs(30),
        wall(),
    );
    assert!(matches!(step, Step::Wait { .. }));
    let step = o.step(
        Some(&lease),
        "a",
        &TIMING,
        t0 + Duration::from_secs(60),
        wall(),
    );
    assert!(matches!(step, Step::Update(_)));
}

#[test]
fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
    let mut o = Observer::default();
    let lease = held("a", "7", 15, 2);
    let step = o.step(Some(&lease), "a", &TIMING, Instant::now(), wall());
    let s = spec(&step);
    assert_eq!(s.lease_transitions, Some(2));
    assert_eq!(
        s.acquire_time,
        Some(MicroTime(Timestamp::from_second(1).unwrap()))
    );
    assert_eq!(s.renew_time, Some(MicroTime(wall())));
}

#[test]
fn a_released_lease_is_taken_at_once() {
    let mut o = Observer::default();
    let mut lease = held("", "1", 1, 5);
    lease.spec.as_mut().unwrap().holder_identity = None;
    let step = o.step(Some(&lease), "a", &TIMING, Instant::now(), wall());
    assert_eq!(spec(&step).lease_transitions, Some(6));
    assert_eq!(spec(&step).holder_identity.as_deref(), Some("a"));
}

/// An in-memory API server: one Lease with a resourceVersion counter, and a switch per
/// identity that makes its calls fail (a partitioned replica).
#[derive(Clone, Default)]
struct Fake {
    lease: Arc<Mutex<(Option<Lease>, u64)>>,
    cut: Arc<Mutex<Vec<String>>>,
}

struct Client {
    fake: Fake,
    me: String,
}

impl Client {
    fn check(&self) -> Result<(), LeaseError> {
        if self.fake.cut.lock().unwrap().contains(&self.me) {
            Err(LeaseError::Api("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

impl LeaseStore for Client {
    async fn get(&self) -> Result<Option<Lease>, LeaseError> {
        self.check()?;
        Ok(self.fake.lease.lock().unwrap().0.clone())
    }
    async fn create(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        self.check()?;
        let mut g = self.fake.lease.lock().unwrap();
        if g.0.is_some() {
            return Err(LeaseError::Conflict);
        }
        g.1 += 1;
        let mut l = lease.clone();
        l.metadata.resource_version = Some(g.1.to_string());
        g.0 = Some(l.clone());
        Ok(l)
    }
    async fn replace(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        self.check()?;
        let mut g = self.fake.lease.lock().unwrap();
        let current =
            g.0.as_ref()
                .and_then(|l| l.metadata.resource_version.clone());
        if current != lease.metadata.resource_version {
            return Err(LeaseError::Conflict);
        }
        g.1 += 1;
        let mut l = lease.clone();
        l.metadata.resource_version = Some(g.1.to_string());
        g.0 = Some(l.clone());
        Ok(l)
    }
}

fn holder(fake: &Fake) -> Option<String> {
    fake.lease
        .lock()
        .unwrap()
        .0
        .as_ref()?
        .spec
        .as_ref()?
        .holder_identity
        .clone()
}

fn spawn(fake: &Fake, me: &str) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let client = Client {
        fake: fake.clone(),
        me: me.to_owned(),
    };
    (rx, tokio::spawn(run(client, me.to_owned(), TIMING, tx)))
}

/// Advances the paused clock in 100 ms steps until `cond`, returning the time it took;
/// panics after `limit`. Checks at every step that at most one of `leaders` leads.
async fn until(
    limit: Duration,
    leaders: &[&watch::Receiver<bool>],
    cond: impl Fn() -> bool,
) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = leaders.iter().filter(|rx| *rx.borrow()).count();
        assert!(n <= 1, "{n} leaders at once");
    }
    t0.elapsed()
}

/// Lets `d` pass in 100 ms steps, checking that at most one of `leaders` leads.
async fn hold(d: Duration, leaders: &[&watch::Receiver<bool>]) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = leaders.iter().filter(|rx| *rx.borrow()).count();
        assert!(n <= 1, "{n} leaders at once");
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_leader_is_replaced_within_the_bound() {
    let fake = Fake::default();
    let (a, a_task) = spawn(&fake, "a");
    until(Duration::from_secs(1), &[], || *a.borrow()).await;
    let (b, _b_task) = spawn(&fake, "b");
    // b waits while a renews.
    hold(Duration::from_secs(60), &[&a, &b]).await;
    assert!(*a.borrow() && !*b.borrow());
    assert_eq!(holder(&fake).as_deref(), Some("a"));
    // a dies (no release).
    a_task.abort();
    let took = until(TIMING.failover_bound(), &[&b], || *b.borrow()).await;
    assert!(
        took >= TIMING.lease_duration - TIMING.retry_period,
        "{took:?}"
    );
    assert_eq!(holder(&fake).as_deref(), Some("b"));
    let transitions = fake
        .lease
        .lock()
        .unwrap()
        .0
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .lease_transitions;
    assert_eq!(transitions, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_leader_steps_down_before_anyone_takes_over_and_follows_after() {
    let fake = Fake::default();
    let (a, _a_task) = spawn(&fake, "a");
    until(Duration::from_secs(1), &[], || *a.borrow()).await;
    let (b, _b_task) = spawn(&fake, "b");
    tokio::time::sleep(Duration::from_secs(5)).await;
    // a cannot reach the API server any more: it steps down within the renew deadline,
    // and b takes over only after that (the helper checks there is never two leaders).
    fake.cut.lock().unwrap().push("a".into());
    let down = until(
        TIMING.renew_deadline + Duration::from_millis(100),
        &[&a, &b],
        || !*a.borrow(),
    )
    .await;
    assert!(!*b.borrow());
    let up = until(TIMING.failover_bound(), &[&a, &b], || *b.borrow()).await;
    assert!(
        down + up >= TIMING.lease_duration - TIMING.retry_period,
        "{down:?} + {up:?}"
    );
    // a comes back: it sees b's Lease and stays a follower.
    fake.cut.lock().unwrap().clear();
    hold(Duration::from_secs(60), &[&a, &b]).await;
    assert!(!*a.borrow() && *b.borrow());
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_sees_another_holder_steps_down_at_once() {
    let fake = Fake::default();
    let (a, _a_task) = spawn(&fake, "a");
    until(Duration::from_secs(1), &[], || *a.borrow()).await;
    // Someone overwrites the Lease (an operator, or a replica that misjudged).
    {
        let mut g = fake.lease.lock().unwrap();
        g.1 += 1;
        g.0 = Some(held("x", &g.1.to_string(), 15, 9));
    }
    until(
        TIMING.retry_period + Duration::from_millis(200),
        &[],
        || !*a.borrow(),
    )
    .await;
}
