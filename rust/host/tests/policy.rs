// SPDX-License-Identifier: GPL-2.0

//! The policy of KVM_CAP_FORCE_SPEC_CTRL: bits, validation, merge.

use kvm_force_spec_ctrl_host::abi::*;
use kvm_force_spec_ctrl_host::policy::{self, bits, Config, Invalid, Request, Scope};
use proptest::prelude::*;

#[test]
fn known_bits_match_domain() {
    // DOMAIN.md: IBRS 0, STIBP 1, SSBD 2, IPRED_DIS_U 3, IPRED_DIS_S 4,
    // RRSBA_DIS_U 5, RRSBA_DIS_S 6, PSFD 7, DDPD_U 8, BHI_DIS_S 10.
    assert_eq!(bits::KNOWN, 0x5ff);
    let mut seen = 0;
    for (i, (_, bit)) in bits::NAMED.iter().enumerate() {
        assert_eq!(bit.count_ones(), 1, "entry {i}");
        assert_eq!(seen & bit, 0, "entry {i} repeats a bit");
        seen |= bit;
    }
}

#[test]
fn supported_is_what_the_host_accepts() {
    assert_eq!(policy::supported(|_| false), 0, "no MSR: nothing supported");
    assert_eq!(
        policy::supported(|_| true),
        bits::KNOWN,
        "unknown bits never reported"
    );
    let host = bits::IBRS | bits::STIBP | bits::SSBD | (1 << 9) | (1 << 40);
    assert_eq!(
        policy::supported(|v| v & !host == 0),
        bits::IBRS | bits::STIBP | bits::SSBD
    );
}

fn args(mask: u64, value: u64, flags: u64, reserved: u64) -> [u64; 4] {
    let mut a = [0; 4];
    a[KVM_FORCE_SPEC_CTRL_ARG_MASK] = mask;
    a[KVM_FORCE_SPEC_CTRL_ARG_VALUE] = value;
    a[KVM_FORCE_SPEC_CTRL_ARG_FLAGS] = flags;
    a[KVM_FORCE_SPEC_CTRL_ARG_RESERVED] = reserved;
    a
}

#[test]
fn enable_cap_table() {
    let sup = bits::IBRS | bits::SSBD;
    let set = |m, v| Ok(Request::Set(Config::new(m, v).unwrap()));
    let cases: &[(&str, [u64; 4], Scope, Result<Request, Invalid>)] = &[
        ("off", args(0, 0, 0, 0), Scope::Vm, set(0, 0)),
        (
            "force on",
            args(bits::SSBD, bits::SSBD, 0, 0),
            Scope::Vm,
            set(bits::SSBD, bits::SSBD),
        ),
        (
            "force off a supported bit",
            args(bits::IBRS, 0, 0, 0),
            Scope::Vm,
            set(bits::IBRS, 0),
        ),
        (
            "force off an unsupported bit",
            args(bits::STIBP, 0, 0, 0),
            Scope::Vm,
            Err(Invalid::Unsupported),
        ),
        (
            "force off an unknown bit",
            args(1 << 63, 0, 0, 0),
            Scope::Vm,
            Err(Invalid::Unsupported),
        ),
        (
            "force off every supported bit",
            args(sup, 0, 0, 0),
            Scope::Vcpu,
            set(sup, 0),
        ),
        (
            "value outside mask",
            args(bits::IBRS, bits::SSBD, 0, 0),
            Scope::Vm,
            Err(Invalid::ValueOutsideMask),
        ),
        (
            "unsupported on",
            args(bits::STIBP, bits::STIBP, 0, 0),
            Scope::Vm,
            Err(Invalid::Unsupported),
        ),
        (
            "unknown flag",
            args(0, 0, 1 << 1, 0),
            Scope::Vm,
            Err(Invalid::Flags),
        ),
        (
            "reserved",
            args(0, 0, 0, 1),
            Scope::Vm,
            Err(Invalid::Reserved),
        ),
        (
            "clear on a VM",
            args(0, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0),
            Scope::Vm,
            Err(Invalid::Flags),
        ),
        (
            "clear on a vCPU",
            args(0, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0),
            Scope::Vcpu,
            Ok(Request::Clear),
        ),
        (
            "clear with a mask",
            args(bits::IBRS, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0),
            Scope::Vcpu,
            Err(Invalid::ClearWithConfig),
        ),
        (
            "vCPU config",
            args(bits::IBRS, bits::IBRS, 0, 0),
            Scope::Vcpu,
            set(bits::IBRS, bits::IBRS),
        ),
    ];
    for (name, a, scope, want) in cases {
        assert_eq!(policy::parse_enable_cap(a, *scope, sup), *want, "{name}");
    }
}

proptest! {
    /// Contract item 8 for one value: forced bits from `value`, the rest
    /// from the guest.
    #[test]
    fn effective_merges(guest: u64, mask: u64, value: u64) {
        let c = Config::new(mask, value & mask).unwrap();
        let e = c.effective(guest);
        prop_assert_eq!(e & mask, value & mask);
        prop_assert_eq!(e & !mask, guest & !mask);
        prop_assert_eq!(Config::OFF.effective(guest), guest);
    }

    /// Validation never accepts what the contract rejects.
    #[test]
    fn enable_cap_rejects(a: [u64; 4], sup: u64, vcpu: bool) {
        let scope = if vcpu { Scope::Vcpu } else { Scope::Vm };
        let (mask, value, flags) = (a[0], a[1], a[2]);
        match policy::parse_enable_cap(&a, scope, sup) {
            Ok(Request::Set(c)) => {
                prop_assert_eq!(a[3], 0);
                prop_assert_eq!(flags, 0);
                prop_assert_eq!(value & !mask, 0);
                prop_assert_eq!(mask & !sup, 0);
                prop_assert_eq!((c.mask(), c.value()), (mask, value));
            }
            Ok(Request::Clear) => {
                prop_assert!(vcpu);
                prop_assert_eq!((mask, value, flags, a[3]), (0, 0, KVM_FORCE_SPEC_CTRL_CLEAR, 0));
            }
            Err(_) => {}
        }
    }
}

#[test]
fn backend_choice() {
    use policy::{choose_backend, Backend, HostFacts, Vendor};
    // (has_msr, vendor, has_virt, has_host_copy, prefer_intercept)
    let facts = |has_msr, vendor, has_virt, has_host_copy, prefer_intercept| HostFacts {
        has_msr,
        vendor,
        has_virt,
        has_host_copy,
        prefer_intercept,
    };
    let cases = [
        (
            facts(true, Vendor::Vmx, true, false, false),
            Backend::VmxVirt,
        ),
        (
            facts(true, Vendor::Vmx, true, false, true),
            Backend::VmxIntercept,
        ),
        (
            facts(true, Vendor::Vmx, false, false, false),
            Backend::VmxIntercept,
        ),
        (
            facts(true, Vendor::Svm, false, false, false),
            Backend::SvmIntercept,
        ),
        (
            facts(true, Vendor::Svm, false, true, false),
            Backend::SvmVspec,
        ),
        (
            facts(true, Vendor::Svm, false, true, true),
            Backend::SvmIntercept,
        ),
        (facts(false, Vendor::Vmx, true, false, false), Backend::None),
        (facts(false, Vendor::Svm, false, true, false), Backend::None),
        (facts(true, Vendor::None, false, true, false), Backend::None),
    ];
    for (host, want) in cases {
        assert_eq!(choose_backend(host), want, "{host:?}");
        // Contract item 1: the capability is reported exactly where a
        // backend exists, whatever the administrator prefers.
        assert_eq!(
            policy::capable(host),
            want != Backend::None,
            "capable {host:?}"
        );
    }
}

#[test]
fn backend_interception() {
    use policy::bits::{IBRS, SSBD, STIBP};
    use policy::{Backend, Config};
    let on = Config::new(SSBD | STIBP, SSBD | STIBP).unwrap();
    let off = Config::new(IBRS, 0).unwrap();
    let mixed = Config::new(IBRS | SSBD, SSBD).unwrap();
    // (backend, forced on only, a bit forced off, both): contract item 9.
    let cases = [
        (Backend::VmxVirt, false, false, false),
        (Backend::VmxIntercept, true, true, true),
        (Backend::SvmIntercept, true, true, true),
        // V_SPEC_CTRL ORs the host copy in: it can force on, never off.
        (Backend::SvmVspec, false, true, true),
        (Backend::None, false, false, false),
    ];
    for (backend, want_on, want_off, want_mixed) in cases {
        assert_eq!(backend.intercepts(on), want_on, "{backend:?} on");
        assert_eq!(backend.intercepts(off), want_off, "{backend:?} off");
        assert_eq!(backend.intercepts(mixed), want_mixed, "{backend:?} mixed");
        assert_eq!(backend.uses_host_copy(), backend == Backend::SvmVspec);
    }
}
