//! Runs `admission::mutate` (or `review`) on one fixture pod in a loop, for profilers:
//! `valgrind --tool=callgrind target/release/examples/profile_core typical mutate 200`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The injector binary's allocator (src/main.rs), so both servers of a run and the profiles
// allocate the same way.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use support::workloads;
use vault_injector::admission;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "typical".into());
    let what = args.next().unwrap_or_else(|| "mutate".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let defaults = workloads::defaults();
    let pod = workloads::pod(&name).expect("fixture");
    let body = workloads::review_body(&pod, "705ab4f5-6393-11e8-b7cc-42010a800002");
    for _ in 0..n {
        if what == "review" {
            black_box(admission::review(black_box(&body), &defaults).expect("review"));
        } else {
            // As benches/core.rs's `mutate`: the decision and the patch's JSON.
            let mutation = admission::mutate(black_box(&pod), workloads::NAMESPACE, &defaults)
                .expect("mutate");
            black_box(mutation.patch_json());
        }
    }
}
