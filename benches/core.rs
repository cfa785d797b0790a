//! Core benchmarks: `admission::review` on a whole AdmissionReview body and
//! `admission::mutate` on the decoded pod plus the patch's JSON (`mutate/*`), for the `small`,
//! `typical` and `large` fixture pods.
//!
//! Run with `cargo bench --bench core`. Before criterion's timings it prints the heap
//! allocations (count and bytes) of one call per pod, counted by the `stats_alloc` global
//! allocator (a counting allocator written here would need `unsafe`, which the crate forbids).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use stats_alloc::{Region, StatsAlloc};
use support::workloads;
use vault_injector::admission::{self, Outcome};

// The binary's allocator (src/main.rs), counted: timings are those of the shipped allocator.
#[global_allocator]
static GLOBAL: StatsAlloc<mimalloc::MiMalloc> = StatsAlloc::new(mimalloc::MiMalloc);

fn main() {
    print_allocations();
    let mut c = Criterion::default().configure_from_args();
    bench_review(&mut c);
    bench_mutate(&mut c);
    c.final_summary();
}

/// One line per pod and function: allocations and bytes allocated by a single call (steady
/// state: measured after a warm-up call).
fn print_allocations() {
    let defaults = workloads::defaults();
    println!("allocations per call (count / bytes allocated):");
    for name in workloads::NAMES {
        let pod = workloads::pod(name).expect("fixture");
        let body = workloads::review_body(&pod, "705ab4f5-6393-11e8-b7cc-42010a800002");

        let reviewed = admission::review(&body, &defaults).expect("review");
        assert!(
            matches!(reviewed.outcome, Outcome::Injected(Some(_))),
            "{name}: {:?}",
            reviewed.outcome
        );
        let region = Region::new(&GLOBAL);
        let reviewed = admission::review(black_box(&body), &defaults).expect("review");
        let review_stats = region.change();
        drop(reviewed);

        let region = Region::new(&GLOBAL);
        let mutation = mutate_to_patch(black_box(&pod), &defaults);
        let mutate_stats = region.change();
        assert!(!mutation.is_empty(), "{name}: not injected");
        drop(mutation);

        println!(
            "  {name:<8} review: {:>6} allocs {:>9} B   mutate: {:>6} allocs {:>9} B   (request body {} B, reply {} B)",
            review_stats.allocations + review_stats.reallocations,
            review_stats.bytes_allocated,
            mutate_stats.allocations + mutate_stats.reallocations,
            mutate_stats.bytes_allocated,
            body.len(),
            admission::review(&body, &defaults)
                .expect("review")
                .body
                .len(),
        );
    }
}

/// Bytes in, bytes out: what the server's handler costs apart from HTTP and TLS.
fn bench_review(c: &mut Criterion) {
    let defaults = workloads::defaults();
    let mut group = c.benchmark_group("review");
    for name in workloads::NAMES {
        let pod = workloads::pod(name).expect("fixture");
        let body = workloads::review_body(&pod, "705ab4f5-6393-11e8-b7cc-42010a800002");
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| admission::review(black_box(body), &defaults).expect("review"));
        });
    }
    group.finish();
}

/// The decision and the patch as JSON bytes (what the reply base64-encodes), from an already
/// decoded object. Since the operations stay typed until written, serialising them belongs
/// here: without it this figure would leave out the patch's JSON.
fn mutate_to_patch(
    pod: &serde_json::Value,
    defaults: &vault_injector::settings::AgentDefaults,
) -> Vec<u8> {
    admission::mutate(pod, workloads::NAMESPACE, defaults)
        .ok()
        .and_then(|m| m.patch_json())
        .unwrap_or_default()
}

fn bench_mutate(c: &mut Criterion) {
    let defaults = workloads::defaults();
    let mut group = c.benchmark_group("mutate");
    for name in workloads::NAMES {
        let pod = workloads::pod(name).expect("fixture");
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(name), &pod, |b, pod| {
            b.iter(|| mutate_to_patch(black_box(pod), &defaults));
        });
    }
    group.finish();
}
