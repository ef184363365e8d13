// SPDX-License-Identifier: GPL-2.0

//! The update protocol: how a snapshot written by one task reaches readers
//! on other CPUs, without locks on the reading side.
//!
//! [`Latch`] is the two-copy scheme of Linux's `seqcount_latch_t`
//! (`include/linux/seqlock.h`), over atomics so that it is data-race free in
//! the Rust memory model and can be model-checked with `loom`
//! (`rust/host/tests/loom.rs`):
//!
//! - A writer (writers are serialised by the caller) fills the copy that
//!   readers are *not* directed to, then publishes it by incrementing the
//!   generation with release ordering.
//! - A reader loads the generation (acquire), reads the copy it selects,
//!   and loads the generation again; equal generations mean the copy was
//!   not being rewritten during the read, else it retries.
//!
//! A reader never waits for a writer: a writer preempted mid-update leaves
//! the published copy untouched. That is what the VM-entry path needs, which
//! runs with IRQs off and must not spin on a sleeping task (nor take a
//! `SpinLock`, a sleeping lock on PREEMPT_RT).
//!
//! # Invariant
//!
//! Every completed [`Latch::read`] returns one snapshot exactly as some
//! [`Latch::publish`] wrote it (never a mix of two), together with the
//! generation that publish produced; and a read that starts after
//! `publish` returned sees that snapshot or a later one.
//!
//! The module uses three latches: the VM-wide configuration and each vCPU's
//! own configuration (written by ioctls, read on the VM-entry path), and
//! each vCPU's record of its last VM entry (written on the VM-entry path,
//! read by the debug view). The no-stale-instruction guarantee (contract
//! item 4) is this invariant composed with KVM's kick-and-wait request;
//! `rust/host/tests/loom.rs` models both together, and
//! `Documentation/design.rst` states the argument.

/// One word of shared state: the atomic operations the protocol needs.
///
/// The kernel module implements it with `kernel::sync::atomic::Atomic<u64>`,
/// the host tests with `core::sync::atomic::AtomicU64` and loom's.
pub trait Word: Sync {
    /// A word holding `v`.
    fn new(v: u64) -> Self;
    /// Load with acquire ordering.
    fn load_acquire(&self) -> u64;
    /// Load with no ordering.
    fn load_relaxed(&self) -> u64;
    /// Store with release ordering.
    fn store_release(&self, v: u64);
}

/// A snapshot of `N` words published by one writer at a time and read
/// without locks.
///
/// # Invariants
///
/// `copies[(generation + 1) % 2]` is only written by [`Latch::publish`]
/// while readers are directed to `copies[generation % 2]`.
pub struct Latch<W: Word, const N: usize> {
    generation: W,
    copies: [[W; N]; 2],
}

impl<W: Word, const N: usize> Latch<W, N> {
    /// A latch holding `init`, at generation 0.
    pub fn new(init: [u64; N]) -> Self {
        Latch {
            generation: W::new(0),
            copies: [init.map(W::new), init.map(W::new)],
        }
    }

    /// The generation: how many snapshots were published. One acquire load,
    /// so a reader that sees a generation also sees its snapshot.
    pub fn generation(&self) -> u64 {
        self.generation.load_acquire()
    }

    /// Publish `snapshot`; returns its generation.
    ///
    /// Writers must be serialised by the caller (the module: the VM's mutex
    /// for the VM-wide configuration, KVM's vCPU mutex for a vCPU's own, the
    /// vCPU's thread for its entry record); concurrent writers could fill
    /// the same copy.
    pub fn publish(&self, snapshot: [u64; N]) -> u64 {
        // Only writers change the generation, and they are serialised.
        let next = self.generation.load_relaxed().wrapping_add(1);
        let copy = &self.copies[(next % 2) as usize];
        // Release on each word: a reader that loads one of these values (with
        // acquire) also sees the previous publish's generation store, which
        // directed readers away from this copy and precedes these stores
        // (writers are serialised), so its closing check fails and it retries.
        for (word, v) in copy.iter().zip(snapshot) {
            word.store_release(v);
        }
        self.generation.store_release(next);
        next
    }

    /// One attempt at a consistent read: the generation and its snapshot, or
    /// `None` if a writer published meanwhile.
    pub fn try_read(&self) -> Option<(u64, [u64; N])> {
        let generation = self.generation.load_acquire();
        let copy = &self.copies[(generation % 2) as usize];
        let snapshot = core::array::from_fn(|i| copy[i].load_acquire());
        (self.generation.load_acquire() == generation).then_some((generation, snapshot))
    }

    /// The latest snapshot and its generation.
    ///
    /// Retries while writers publish during the read. On the VM-entry path
    /// that is at most once per configuration change: the writer waits for
    /// the vCPU to leave guest mode after each publish, and the vCPU stays in
    /// guest mode from before this read until after its VM entry.
    pub fn read(&self) -> (u64, [u64; N]) {
        loop {
            if let Some(r) = self.try_read() {
                return r;
            }
            core::hint::spin_loop();
        }
    }
}
