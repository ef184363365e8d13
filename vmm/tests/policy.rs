// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The pool policy, the virtual MSRs and the combination with the operator's
//! configuration: tables and properties.

use kvm_force_spec_ctrl_vmm::{
    forcing::{combine, effective_config, VcpuForcing},
    msr::{self, arch_cap, Advertised, Fault, Mitigation, RestoreError, VcpuMsrs, WriteEffect},
    pool::enumerated_spec_ctrl,
    pool::{self, cpuid_7_2_edx as edx, HostModel, Need, Pool, PoolError},
    Config, SpecCtrl as S,
};
use proptest::prelude::*;

const BHB: u64 = 1 << 0;
const RETPOLINE: u64 = 1 << 1;

fn advert(bits: u64) -> Advertised {
    Advertised::new(bits).unwrap()
}

fn host(name: &str, ac: u64, cpuid: u32, supported: S) -> HostModel {
    HostModel {
        name: name.into(),
        arch_capabilities: ac,
        cpuid_7_2_edx: cpuid,
        supported: supported & enumerated_spec_ctrl(cpuid),
        source: None,
        microcode: None,
        family_model: None,
    }
}

#[test]
fn mitigation_bits_match_the_rfc() {
    assert_eq!(Mitigation::BhbClearSeqS.bit(), BHB);
    assert_eq!(Mitigation::RetpolineS.bit(), RETPOLINE);
    assert_eq!(msr::MITIGATION_BITS, 0b11);
    assert_eq!(arch_cap::RRSBA, 1 << 19);
    assert_eq!(arch_cap::BHI_NO, 1 << 20);
    assert_eq!(arch_cap::VIRTUAL_ENUM, 1 << 63);
    assert_eq!(edx::RRSBA_CTRL, 1 << 2);
    assert_eq!(edx::BHI_CTRL, 1 << 4);
}

#[test]
fn needs_per_host() {
    let all = S::all();
    let cases = [
        // (arch_cap, cpuid, bhb, retpoline)
        (0, 0, Need::Nothing, Need::Nothing),
        (0, edx::BHI_CTRL, Need::Force(S::BHI_DIS_S), Need::Nothing),
        (
            arch_cap::BHI_NO,
            edx::BHI_CTRL,
            Need::Nothing,
            Need::Nothing,
        ),
        (arch_cap::RRSBA, 0, Need::Nothing, Need::Unfixable),
        (
            arch_cap::RRSBA,
            edx::RRSBA_CTRL,
            Need::Nothing,
            Need::Force(S::RRSBA_DIS_S),
        ),
        (
            arch_cap::RRSBA,
            edx::RRSBA_CTRL | edx::BHI_CTRL,
            Need::Force(S::BHI_DIS_S),
            Need::Force(S::RRSBA_DIS_S),
        ),
    ];
    for (ac, cpuid, bhb, ret) in cases {
        let h = host("h", ac, cpuid, all);
        assert_eq!(h.need(Mitigation::BhbClearSeqS), bhb, "{h:?}");
        assert_eq!(h.need(Mitigation::RetpolineS), ret, "{h:?}");
    }
}

#[test]
fn forcing_needs_support() {
    let spr = host(
        "spr",
        arch_cap::RRSBA,
        edx::RRSBA_CTRL | edx::BHI_CTRL,
        S::all(),
    );
    let f = spr.forcing(BHB | RETPOLINE);
    assert_eq!(f.forced, S::BHI_DIS_S | S::RRSBA_DIS_S);
    assert_eq!(f.unprotected, 0);
    // Without the module (supported 0): nothing forced, both unprotected.
    let bare = HostModel {
        supported: S::empty(),
        ..spr.clone()
    };
    let f = bare.forcing(BHB | RETPOLINE);
    assert_eq!((f.forced, f.unprotected), (S::empty(), BHB | RETPOLINE));
    // A report of nothing forces nothing.
    assert_eq!(spr.forcing(0), Default::default());
}

#[test]
fn advertisement_and_pools() {
    let spr = host(
        "spr",
        arch_cap::RRSBA,
        edx::RRSBA_CTRL | edx::BHI_CTRL,
        S::all(),
    );
    let clx = host("clx", 0, 0, S::IBRS | S::STIBP | S::SSBD);
    let future = host("future", arch_cap::BHI_NO, edx::BHI_CTRL, S::all());
    assert_eq!(
        Pool::new([clx.clone()]).unwrap().decide().advertised,
        Advertised::NONE
    );
    assert_eq!(
        Pool::new([future.clone()]).unwrap().decide().advertised,
        Advertised::NONE
    );
    assert_eq!(
        Pool::new([clx.clone(), spr.clone()])
            .unwrap()
            .decide()
            .advertised,
        advert(BHB | RETPOLINE)
    );
    // The same model twice is one host; two models under one name are not.
    assert_eq!(
        Pool::new([spr.clone(), spr.clone()]).unwrap().hosts().len(),
        1
    );
    let other = HostModel {
        supported: S::empty(),
        ..spr.clone()
    };
    assert_eq!(
        Pool::new([spr, other]),
        Err(PoolError::NameClash("spr".into()))
    );
    assert_eq!(Pool::new([]), Err(PoolError::Empty));
}

#[test]
fn reports_and_names() {
    assert_eq!(pool::reports(Advertised::NONE), vec![0]);
    assert_eq!(pool::reports(advert(BHB | RETPOLINE)), vec![0, 1, 2, 3]);
    assert_eq!(pool::reports(advert(RETPOLINE)), vec![0, 2]);
    assert!(Advertised::new(4).is_err());
    assert_eq!(pool::report_name(3), "bhb-clear-seq-s+retpoline-s");
    assert_eq!(S::empty().to_string(), "-");
    assert_eq!(
        (S::BHI_DIS_S | S::RRSBA_DIS_S).to_string(),
        "RRSBA_DIS_S|BHI_DIS_S"
    );
}

#[test]
fn virtual_msrs_follow_the_rfc() {
    let adv = advert(BHB | RETPOLINE);
    let mut v = VcpuMsrs::new(adv, arch_cap::RRSBA);
    assert_eq!(
        v.read(msr::MSR_IA32_ARCH_CAPABILITIES),
        Ok(arch_cap::RRSBA | arch_cap::VIRTUAL_ENUM)
    );
    assert_eq!(v.read(msr::MSR_VIRTUAL_ENUMERATION), Ok(1));
    assert_eq!(v.read(msr::MSR_VIRTUAL_MITIGATION_ENUM), Ok(3));
    assert_eq!(
        v.read(msr::MSR_VIRTUAL_MITIGATION_CTRL),
        Ok(0),
        "0 at reset"
    );
    assert_eq!(
        v.write(msr::MSR_VIRTUAL_MITIGATION_CTRL, BHB),
        Ok(WriteEffect::Report(BHB))
    );
    assert_eq!(
        v.write(msr::MSR_VIRTUAL_MITIGATION_CTRL, BHB),
        Ok(WriteEffect::None)
    );
    assert_eq!(
        v.write(msr::MSR_VIRTUAL_MITIGATION_CTRL, 1 << 2),
        Err(Fault::Reserved {
            msr: msr::MSR_VIRTUAL_MITIGATION_CTRL,
            bits: 1 << 2
        })
    );
    assert_eq!(v.report(), BHB, "a refused write changes nothing");
    for ro in [
        msr::MSR_VIRTUAL_ENUMERATION,
        msr::MSR_VIRTUAL_MITIGATION_ENUM,
    ] {
        assert_eq!(v.write(ro, 0), Err(Fault::ReadOnly(ro)));
    }
    assert_eq!(
        v.write(msr::MSR_IA32_ARCH_CAPABILITIES, 0),
        Err(Fault::ReadOnly(msr::MSR_IA32_ARCH_CAPABILITIES))
    );
    assert_eq!(v.read(0x5000_0003), Err(Fault::NoSuchMsr(0x5000_0003)));
    assert_eq!(v.reset(), WriteEffect::Report(0));
    assert_eq!(v.report(), 0);

    // Only retpoline advertised: bit 0 is reserved.
    let mut r = VcpuMsrs::new(advert(RETPOLINE), 0);
    assert!(r.write(msr::MSR_VIRTUAL_MITIGATION_CTRL, BHB).is_err());

    // Nothing advertised: the MSRs do not exist, bit 63 is clear.
    let mut none = VcpuMsrs::new(Advertised::default(), arch_cap::VIRTUAL_ENUM | 5);
    assert_eq!(none.read(msr::MSR_IA32_ARCH_CAPABILITIES), Ok(5));
    for m in [
        msr::MSR_VIRTUAL_ENUMERATION,
        msr::MSR_VIRTUAL_MITIGATION_ENUM,
        msr::MSR_VIRTUAL_MITIGATION_CTRL,
    ] {
        assert_eq!(none.read(m), Err(Fault::NoSuchMsr(m)));
        assert_eq!(none.write(m, 0), Err(Fault::NoSuchMsr(m)));
    }
}

#[test]
fn migration_state() {
    let adv = advert(3);
    let mut src = VcpuMsrs::new(adv, 0);
    src.write(msr::MSR_VIRTUAL_MITIGATION_CTRL, RETPOLINE)
        .unwrap();
    let json = serde_json::to_string(&src.save()).unwrap();
    let mut dst = VcpuMsrs::new(adv, 0);
    assert_eq!(
        dst.restore(serde_json::from_str(&json).unwrap()),
        Ok(WriteEffect::Report(RETPOLINE))
    );
    assert_eq!(dst.report(), RETPOLINE);
    // A destination advertising anything else refuses, and keeps its
    // state: the guest enumerated once, on the source.
    let mut small = VcpuMsrs::new(advert(BHB), 0);
    small.write(msr::MSR_VIRTUAL_MITIGATION_CTRL, BHB).unwrap();
    assert_eq!(
        small.restore(src.save()),
        Err(RestoreError::AdvertisementChanged {
            source_adv: 3,
            here: BHB
        })
    );
    assert_eq!(small.report(), BHB);
    // A destination whose CPU model gives another IA32_ARCH_CAPABILITIES
    // refuses too.
    let mut other_model = VcpuMsrs::new(adv, arch_cap::RRSBA);
    assert_eq!(
        other_model.restore(src.save()),
        Err(RestoreError::ArchCapabilitiesChanged {
            source_value: arch_cap::VIRTUAL_ENUM,
            here: arch_cap::VIRTUAL_ENUM | arch_cap::RRSBA
        })
    );
    assert_eq!(other_model.report(), 0);
    // A state from before these fields is refused with the field named.
    let old: Result<msr::VcpuMsrState, _> = serde_json::from_str(r#"{"mitigation_ctrl":2}"#);
    assert!(old.unwrap_err().to_string().contains("version"));
    // A state of another version is refused.
    let mut future = src.save();
    future.version = 2;
    assert_eq!(dst.restore(future), Err(RestoreError::Version(2)));
    assert_eq!(dst.report(), RETPOLINE);
}

#[test]
fn operator_wins_on_its_bits() {
    let c = |m: S, v: S| Config::new(m, v).unwrap();
    let cases = [
        // operator, report forces, own config, conflicts
        (Config::OFF, S::empty(), VcpuForcing::FollowVm, S::empty()),
        (
            Config::OFF,
            S::BHI_DIS_S,
            VcpuForcing::Own(c(S::BHI_DIS_S, S::BHI_DIS_S)),
            S::empty(),
        ),
        (
            c(S::SSBD, S::SSBD),
            S::BHI_DIS_S,
            VcpuForcing::Own(c(S::SSBD | S::BHI_DIS_S, S::SSBD | S::BHI_DIS_S)),
            S::empty(),
        ),
        // The operator forces BHI_DIS_S off: it stays off.
        (
            c(S::BHI_DIS_S, S::empty()),
            S::BHI_DIS_S,
            VcpuForcing::FollowVm,
            S::BHI_DIS_S,
        ),
        // The operator already forces it on: nothing of the vCPU's own.
        (
            c(S::BHI_DIS_S, S::BHI_DIS_S),
            S::BHI_DIS_S,
            VcpuForcing::FollowVm,
            S::empty(),
        ),
    ];
    for (op, forced, want, conflicts) in cases {
        let got = combine(op, forced);
        assert_eq!(got.forcing, want, "{op:?} {forced}");
        assert_eq!(got.conflicts, conflicts, "{op:?} {forced}");
    }
}

fn arb_host(name: String) -> impl Strategy<Value = HostModel> {
    (
        prop_oneof![
            Just(0u64),
            Just(arch_cap::RRSBA),
            Just(arch_cap::BHI_NO),
            Just(arch_cap::RRSBA | arch_cap::BHI_NO)
        ],
        0u32..32,
        any::<u64>(),
    )
        .prop_map(move |(ac, cpuid, supported)| {
            host(&name, ac, cpuid, S::from_bits_truncate(supported))
        })
}

fn arb_pool() -> impl Strategy<Value = Vec<HostModel>> {
    (1usize..5).prop_flat_map(|n| {
        (0..n)
            .map(|i| arb_host(format!("h{i}")))
            .collect::<Vec<_>>()
    })
}

fn arb_config() -> impl Strategy<Value = Config> {
    (any::<u64>(), any::<u64>()).prop_map(|(m, v)| {
        let (m, v) = (S::from_bits_truncate(m), S::from_bits_truncate(v));
        Config::new(m, v & m).unwrap()
    })
}

proptest! {
    /// Adding a host never removes an advertised mitigation, nor a bit a
    /// host of the pool forces for any report.
    #[test]
    fn adding_a_host_never_removes(hosts in arb_pool(), extra in arb_host("new".into())) {
        let before = Pool::new(hosts.clone()).unwrap();
        let mut grown = before.clone();
        grown.add(extra).unwrap();
        let (b, a) = (before.decide(), grown.decide());
        prop_assert_eq!(b.advertised.mitigations() & !a.advertised.mitigations(), 0);
        for h in before.hosts() {
            for r in pool::reports(b.advertised) {
                let after = grown.host(&h.name).unwrap().forcing(r);
                prop_assert!(after.forced.contains(h.forcing(r).forced));
            }
        }
    }

    /// A host forces only bits it supports, only for what was reported, and
    /// every reported mitigation is either made effective or flagged.
    #[test]
    fn forcing_is_sound(h in arb_host("h".into()), report in 0u64..4) {
        let f = h.forcing(report);
        prop_assert!(h.supported.contains(f.forced));
        prop_assert_eq!(f.unprotected & !report, 0);
        for m in Mitigation::ALL {
            if report & m.bit() == 0 {
                continue;
            }
            match h.need(m) {
                Need::Nothing => prop_assert_eq!(f.unprotected & m.bit(), 0),
                Need::Force(bit) => prop_assert!(f.forced.contains(bit) || f.unprotected & m.bit() != 0),
                Need::Unfixable => prop_assert!(f.unprotected & m.bit() != 0),
                _ => prop_assert!(false, "a need this test does not know"),
            }
        }
        prop_assert_eq!(h.forcing(0).forced, S::empty());
    }

    /// Every mitigation some host of the pool needs something for is
    /// advertised, and nothing else.
    #[test]
    fn advertised_iff_needed(hosts in arb_pool()) {
        let p = Pool::new(hosts).unwrap();
        let adv = p.decide().advertised;
        for m in Mitigation::ALL {
            let needed = p.hosts().iter().any(|h| h.need(m) != Need::Nothing);
            prop_assert_eq!(adv.mitigations() & m.bit() != 0, needed);
        }
    }

    /// The combination keeps the operator's bits, adds the report's
    /// elsewhere, and reports exactly the overridden ones.
    #[test]
    fn combination(op in arb_config(), forced in any::<u64>()) {
        let forced = S::from_bits_truncate(forced);
        let c = combine(op, forced);
        let eff = effective_config(op, c.forcing);
        prop_assert_eq!(eff.mask() & op.mask(), op.mask());
        prop_assert_eq!(eff.value() & op.mask(), op.value());
        prop_assert_eq!(eff.value() & (forced - op.mask()), forced - op.mask());
        prop_assert_eq!(eff.mask() - op.mask(), forced - op.mask());
        prop_assert_eq!(c.conflicts, (forced & op.mask()) - op.value());
        prop_assert_eq!(c.forcing == VcpuForcing::FollowVm, (forced - op.mask()).is_empty());
    }

    /// A guest write never leaves an unadvertised bit in the report, and a
    /// refused write changes nothing.
    #[test]
    fn guest_writes(adv in 0u64..4, writes in proptest::collection::vec((0u32..4, any::<u64>()), 0..20)) {
        let mut v = VcpuMsrs::new(advert(adv), 0);
        for (off, value) in writes {
            let before = v.report();
            let r = v.write(msr::MSR_VIRTUAL_ENUMERATION + off, value);
            if r.is_err() {
                prop_assert_eq!(v.report(), before);
            }
            prop_assert_eq!(v.report() & !adv, 0);
        }
    }
}

#[derive(Clone, Debug)]
enum MsrOp {
    Read(u32),
    Write(u32, u64),
    Reset,
    /// Migrate to a destination with this advertisement and
    /// IA32_ARCH_CAPABILITIES.
    Migrate(u64, u64),
}

fn msr_op() -> impl Strategy<Value = MsrOp> {
    let msr = prop_oneof![
        Just(msr::MSR_IA32_ARCH_CAPABILITIES),
        (0u32..4).prop_map(|o| msr::MSR_VIRTUAL_ENUMERATION + o),
        any::<u32>(),
    ];
    prop_oneof![
        msr.clone().prop_map(MsrOp::Read),
        (msr, any::<u64>()).prop_map(|(m, v)| MsrOp::Write(m, v)),
        Just(MsrOp::Reset),
        (0u64..4, prop_oneof![Just(0u64), Just(arch_cap::RRSBA)])
            .prop_map(|(a, c)| MsrOp::Migrate(a, c)),
    ]
}

proptest! {
    /// Random guest accesses, resets and migrations (the invariants of
    /// Documentation/userspace.rst): the report never holds an unadvertised
    /// bit; the virtual MSRs exist iff something is advertised, and bit 63
    /// of IA32_ARCH_CAPABILITIES says so; a migration keeps the report when
    /// the destination tells the guest the same, and otherwise is refused
    /// with both sides unchanged.
    #[test]
    fn virtual_msrs_and_migrations(adv in 0u64..4, caps in prop_oneof![Just(0u64), Just(arch_cap::RRSBA)],
                                   ops in proptest::collection::vec(msr_op(), 0..30)) {
        let mut v = VcpuMsrs::new(advert(adv), caps);
        for op in ops {
            let before = v.report();
            match op {
                MsrOp::Read(m) => {
                    let r = v.read(m);
                    if m == msr::MSR_IA32_ARCH_CAPABILITIES {
                        prop_assert_eq!(r, Ok(caps | if adv != 0 { arch_cap::VIRTUAL_ENUM } else { 0 }));
                    } else if (msr::MSR_VIRTUAL_ENUMERATION..=msr::MSR_VIRTUAL_MITIGATION_CTRL).contains(&m) {
                        prop_assert_eq!(r.is_ok(), adv != 0);
                    } else {
                        prop_assert!(r.is_err());
                    }
                    prop_assert_eq!(v.report(), before);
                }
                MsrOp::Write(m, value) => {
                    if v.write(m, value).is_err() {
                        prop_assert_eq!(v.report(), before);
                    }
                }
                MsrOp::Reset => {
                    v.reset();
                    prop_assert_eq!(v.report(), 0);
                }
                MsrOp::Migrate(dadv, dcaps) => {
                    let saved = v.save();
                    let json = serde_json::to_string(&saved).unwrap();
                    let mut dest = VcpuMsrs::new(advert(dadv), dcaps);
                    let r = dest.restore(serde_json::from_str(&json).unwrap());
                    if dadv == adv && dcaps == caps {
                        prop_assert_eq!(r, Ok(WriteEffect::Report(before)));
                        prop_assert_eq!(dest.report(), before);
                        v = dest;
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(dest.report(), 0);
                        prop_assert_eq!(v.save(), saved);
                    }
                }
            }
            prop_assert_eq!(v.report() & !adv, 0);
        }
    }
}
