// SPDX-License-Identifier: GPL-2.0

//! loom models of the update protocol (`rust/protocol.rs`): every
//! interleaving of the threads, under the C11 memory model loom implements.
//!
//! 1. [`latch_reads_whole_snapshots`]: a reader racing a writer gets one
//!    published snapshot, never a mix of two.
//! 2. [`no_guest_instruction_under_a_stale_configuration`]: contract item 4.
//!    An updater publishes configurations and kicks the vCPU the way KVM's
//!    `kvm_make_all_cpus_request()` does (set the request, move an
//!    in-guest vCPU to EXITING, wait for it to leave guest mode); the vCPU
//!    runs KVM's entry sequence (handle requests, IN_GUEST_MODE, full
//!    barrier, cancel if a request is pending, the module's entry hook).
//!    Once the updater returns, every guest instruction must run under the
//!    new configuration.
//!
//! KVM orders `vcpu->mode` against the request bits with full barriers on
//! both sides (`smp_mb__after_srcu_read_unlock()` in `vcpu_enter_guest()`,
//! `smp_mb__before_atomic()` + `cmpxchg()` in the kicker). loom models
//! SeqCst accesses and fences as acquire/release only, which would allow a
//! store-buffering outcome that KVM's barriers forbid; so those accesses are
//! written as read-modify-writes, which loom orders totally per location and
//! which forbid store buffering between the two threads as the barriers do.
//! (Plain stores of `mode` are RMWs too: loom 0.7 let a successful
//! compare-exchange read a value older than a store already made.)

use kvm_force_spec_ctrl_host::protocol::{Latch, Word};
use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// loom's atomics as the protocol's [`Word`].
struct LoomWord(loom::sync::atomic::AtomicU64);

impl Word for LoomWord {
    fn new(v: u64) -> Self {
        LoomWord(loom::sync::atomic::AtomicU64::new(v))
    }
    fn load_acquire(&self) -> u64 {
        self.0.load(loom::sync::atomic::Ordering::Acquire)
    }
    fn load_relaxed(&self) -> u64 {
        self.0.load(loom::sync::atomic::Ordering::Relaxed)
    }
    fn store_release(&self, v: u64) {
        self.0.store(v, loom::sync::atomic::Ordering::Release)
    }
}

type Config = Latch<LoomWord, 2>;

/// Snapshot `k`: two words that only ever appear together.
fn snapshot(k: u64) -> [u64; 2] {
    [k, k * 3 + 1]
}

/// `Latch::read`, with loom's yield in the retry loop so that the model
/// lets the writer finish.
fn read(latch: &Config) -> (u64, [u64; 2]) {
    loop {
        if let Some(r) = latch.try_read() {
            return r;
        }
        thread::yield_now();
    }
}

#[test]
fn latch_reads_whole_snapshots() {
    loom::model(|| {
        let latch = Arc::new(Config::new(snapshot(0)));
        let writer = {
            let latch = latch.clone();
            thread::spawn(move || {
                for k in 1..=3 {
                    assert_eq!(latch.publish(snapshot(k)), k);
                }
            })
        };
        let mut last = 0;
        for _ in 0..2 {
            let (generation, s) = read(&latch);
            assert_eq!(s, snapshot(generation), "torn read");
            assert!(generation >= last, "generation went back");
            last = generation;
        }
        writer.join().unwrap();
        assert_eq!(read(&latch), (3, snapshot(3)));
    });
}

const OUTSIDE_GUEST_MODE: u64 = 0;
const IN_GUEST_MODE: u64 = 1;
const EXITING_GUEST_MODE: u64 = 2;

/// One vCPU as KVM runs it, with the module's entry hook.
struct Vcpu {
    mode: AtomicU64,
    /// KVM_REQ_SPEC_CTRL_UPDATE.
    request: AtomicBool,
}

/// Bounded preemptions keep the exploration to seconds; three are enough
/// for every ordering of two publishes against one entry sequence.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.max_branches = 10_000;
    builder.check(f);
}

#[test]
fn no_guest_instruction_under_a_stale_configuration() {
    model(|| {
        let config = Arc::new(Config::new(snapshot(0)));
        let vcpu = Arc::new(Vcpu {
            mode: AtomicU64::new(OUTSIDE_GUEST_MODE),
            request: AtomicBool::new(false),
        });
        // The generation of the last KVM_ENABLE_CAP that returned.
        let returned = Arc::new(AtomicU64::new(0));

        let updater = {
            let (config, vcpu, returned) = (config.clone(), vcpu.clone(), returned.clone());
            thread::spawn(move || {
                for k in 1..=2 {
                    let generation = config.publish(snapshot(k));
                    // kvm_make_all_cpus_request(): kvm_make_request(), then
                    // kvm_vcpu_exiting_guest_mode() decides on the IPI.
                    vcpu.request.swap(true, SeqCst);
                    let was = match vcpu.mode.compare_exchange(
                        IN_GUEST_MODE,
                        EXITING_GUEST_MODE,
                        SeqCst,
                        SeqCst,
                    ) {
                        Ok(m) | Err(m) => m,
                    };
                    if was != OUTSIDE_GUEST_MODE {
                        // KVM_REQUEST_WAIT: the IPI is acknowledged once the
                        // vCPU has left guest mode.
                        // An RMW reads the latest mode: loom models SeqCst
                        // loads as acquire, which may keep seeing an old one.
                        while vcpu.mode.fetch_add(0, SeqCst) != OUTSIDE_GUEST_MODE {
                            thread::yield_now();
                        }
                    }
                    returned.store(generation, SeqCst);
                }
            })
        };

        // vcpu_enter_guest(), three times round.
        let mut applied = (0, snapshot(0));
        for _ in 0..3 {
            // Requests are handled (and cleared) before the vCPU commits.
            vcpu.request.swap(false, SeqCst);
            vcpu.mode.swap(IN_GUEST_MODE, SeqCst);
            if vcpu.request.fetch_or(false, SeqCst) {
                vcpu.mode.swap(OUTSIDE_GUEST_MODE, SeqCst);
                continue;
            }
            // The module's entry hook: one load on the fast path.
            if config.generation() != applied.0 {
                applied = read(&config);
            }
            // A guest instruction.
            let must = returned.load(SeqCst);
            assert!(
                applied.0 >= must,
                "guest ran generation {} after KVM_ENABLE_CAP returned {}",
                applied.0,
                must
            );
            assert_eq!(applied.1, snapshot(applied.0), "torn configuration");
            // VM exit.
            vcpu.mode.swap(OUTSIDE_GUEST_MODE, SeqCst);
        }
        updater.join().unwrap();
    });
}
