// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The default policy on real pools, from the host files in `pools/hosts/`
//! (facts and sources in the project's `Documentation/cpu-facts.rst`).
//! Each expected answer cites the guidance it follows:
//!
//! - [BHI]: Intel, "Branch History Injection and Intra-mode Branch Target
//!   Injection" (INTEL-SA-00598): parts from Alder Lake on enumerate
//!   `BHI_CTRL`, and there the software BHB-clearing sequence does not clear
//!   enough history: `BHI_DIS_S` is the mitigation. Parts before Golden Cove
//!   (Ice Lake, Tiger Lake, Cascade Lake) have no `BHI_CTRL` and the sequence
//!   is effective. Linux `bhi_select_mitigation()`.
//! - [RSBU]: Intel, "Return Stack Buffer Underflow" (INTEL-SA-00702) and
//!   "Retpoline: A Branch Target Injection Mitigation": retpoline is
//!   incomplete on parts with `RRSBA` unless `RRSBA_DIS_S` is set, and on
//!   parts with `RSBA`; Linux then uses IBRS (`retbleed_select_mitigation()`).
//! - [T2S]: Firecracker's T2S template advertises `RRSBA` (and `RSBA`) to
//!   guests of a pool where some host behaves so.

use kvm_force_spec_ctrl_vmm::{
    defaults::{Bhi, Forced, GuestModel, Opts, PolicyError, V2Mode, Why},
    msr::arch_cap,
    pool::{HostModel, Pool, PoolError},
    SpecCtrl as S,
};
use proptest::prelude::*;

fn host(name: &str) -> HostModel {
    let text = match name {
        "skx" => include_str!("../pools/hosts/skx.json"),
        "clx" => include_str!("../pools/hosts/clx.json"),
        "icx" => include_str!("../pools/hosts/icx.json"),
        "icl-u" => include_str!("../pools/hosts/icl-u.json"),
        "tgl" => include_str!("../pools/hosts/tgl.json"),
        "adl-p" => include_str!("../pools/hosts/adl-p.json"),
        "spr" => include_str!("../pools/hosts/spr.json"),
        "arl-s" => include_str!("../pools/hosts/arl-s.json"),
        _ => panic!("no host file {name}"),
    };
    serde_json::from_str(text).unwrap()
}

fn pool(names: &[&str]) -> Pool {
    Pool::new(names.iter().map(|n| host(n))).unwrap()
}

/// (host, forced) for every host, in pool order.
fn forced(p: &Pool, model: &str, opts: Opts) -> Vec<(String, S)> {
    let d = p
        .default_policy(GuestModel::of_host(p.host(model).unwrap()), opts)
        .unwrap();
    d.hosts.iter().map(|h| (h.host.clone(), h.forced)).collect()
}

fn table(rows: &[(&str, S)]) -> Vec<(String, S)> {
    rows.iter().map(|(h, s)| (h.to_string(), *s)).collect()
}

/// Cascade Lake + Ice Lake-SP + Sapphire Rapids, Cascade Lake's model (the
/// baseline; it has no 7.2 leaf): Linux picks eIBRS and clears the BHB in
/// software. [BHI]: effective on CLX and ICX, not on SPR, which forces
/// BHI_DIS_S. CLX shows RRSBA and cannot force RRSBA_DIS_S, and the model
/// already says RRSBA [T2S]: nothing to add.
#[test]
fn server_pool_clx_icx_spr() {
    let p = pool(&["clx", "icx", "spr"]);
    assert_eq!(
        forced(&p, "clx", Opts::default()),
        table(&[
            ("clx", S::empty()),
            ("icx", S::empty()),
            ("spr", S::BHI_DIS_S)
        ])
    );
    let d = p
        .default_policy(GuestModel::of_host(&host("clx")), Opts::default())
        .unwrap();
    assert_eq!((d.choice.v2, d.choice.bhi), (V2Mode::Eibrs, Bhi::ClearsBhb));
    assert_eq!((d.advertise, d.withdraw), (0, 0));
    // Ice Lake-SP's model shows PSFD, which Cascade Lake lacks: refused.
    assert!(matches!(
        p.default_policy(GuestModel::of_host(&host("icx")), Opts::default()),
        Err(PolicyError::ModelExceedsHost { host, .. }) if host == "clx"
    ));
    // An ICX baseline with the 7.2 leaf hidden says RRSBA=0, which CLX
    // contradicts and cannot fix: advertise RRSBA [T2S].
    let icx_hidden = GuestModel {
        cpuid_7_2_edx: 0,
        ..GuestModel::of_host(&host("icx"))
    };
    let d = p.default_policy(icx_hidden, Opts::default()).unwrap();
    assert_eq!(d.advertise, arch_cap::RRSBA);
}

/// Tiger Lake + Alder Lake-P (client), Tiger Lake's model: eIBRS, software
/// BHB clearing; [BHI]: Alder Lake forces BHI_DIS_S. With BHI_DIS_S opted
/// out, the guest is exposed on Alder Lake and nowhere else.
#[test]
fn client_pool_tgl_adl() {
    let p = pool(&["tgl", "adl-p"]);
    assert_eq!(
        forced(&p, "tgl", Opts::default()),
        table(&[("tgl", S::empty()), ("adl-p", S::BHI_DIS_S)])
    );
    let opts = Opts {
        opt_out: S::BHI_DIS_S,
    };
    let d = p
        .default_policy(GuestModel::of_host(&host("tgl")), opts)
        .unwrap();
    assert_eq!(d.forced("adl-p"), Some(S::empty()));
    assert!(d.hosts[0].exposed.is_empty());
    assert_eq!(d.hosts[1].exposed.len(), 1);
    assert_eq!(d.hosts[1].exposed[0].bit, S::BHI_DIS_S);
    assert_eq!(d.hosts[1].exposed[0].why, Why::BhbClearOnBhiCtrl);
}

/// Skylake-SP + Cascade Lake, Skylake's model (RSBA, no eIBRS): Linux
/// picks IBRS on entry [RSBU], which needs nothing forced; CLX behaves as
/// RRSBA and cannot force RRSBA_DIS_S, so the model advertises RRSBA as
/// T2S does.
#[test]
fn skylake_pool() {
    let p = pool(&["skx", "clx"]);
    let d = p
        .default_policy(GuestModel::of_host(&host("skx")), Opts::default())
        .unwrap();
    assert_eq!(d.choice.v2, V2Mode::Ibrs);
    assert_eq!(d.advertise, arch_cap::RRSBA);
    assert!(d.hosts.iter().all(|h| h.forced.is_empty()));
}

/// A retpoline model (no eIBRS, RSBA and RRSBA 0) on CLX + ICX + SPR: the
/// guest's retpoline is incomplete on CLX (RRSBA, no control), so the model
/// advertises RSBA and the guest uses IBRS [RSBU]; it then clears the BHB in
/// software, which SPR makes effective with BHI_DIS_S [BHI].
#[test]
fn retpoline_model() {
    let p = pool(&["clx", "icx", "spr"]);
    let d = p
        .default_policy(GuestModel::default(), Opts::default())
        .unwrap();
    assert_eq!(d.advertise, arch_cap::RSBA | arch_cap::RRSBA);
    assert_eq!(d.choice.v2, V2Mode::Ibrs);
    assert_eq!(d.forced("spr"), Some(S::BHI_DIS_S));
    // Every forced bit comes with its reason.
    let spr = d.hosts.iter().find(|h| h.host == "spr").unwrap();
    assert_eq!(
        spr.reasons,
        vec![Forced {
            bit: S::BHI_DIS_S,
            why: Why::BhbClearOnBhiCtrl
        }]
    );
    // On ICX + SPR alone, retpoline can be completed: SPR forces
    // RRSBA_DIS_S and the guest, told RRSBA=0, relies on retpoline for BHI
    // too (Linux `bhi_select_mitigation()`), which RRSBA_DIS_S makes true.
    let p = pool(&["icx", "spr"]);
    let d = p
        .default_policy(GuestModel::default(), Opts::default())
        .unwrap();
    assert_eq!(
        (d.choice.v2, d.choice.bhi),
        (V2Mode::Retpoline, Bhi::Retpoline)
    );
    assert_eq!(d.forced("spr"), Some(S::RRSBA_DIS_S));
    assert_eq!(d.forced("icx"), Some(S::empty()));
}

/// The four emulated hosts (Bochs models of the same parts), Ice Lake-U's
/// model: only Sapphire Rapids needs BHI_DIS_S; Arrow Lake-S is BHI_NO.
#[test]
fn emulated_four_host_pool() {
    let p = pool(&["icl-u", "tgl", "spr", "arl-s"]);
    assert_eq!(
        forced(&p, "icl-u", Opts::default()),
        table(&[
            ("icl-u", S::empty()),
            ("tgl", S::empty()),
            ("spr", S::BHI_DIS_S),
            ("arl-s", S::empty()),
        ])
    );
    // Arrow Lake's own model says BHI_NO and shows controls the others
    // lack: refused.
    assert!(p
        .default_policy(GuestModel::of_host(&host("arl-s")), Opts::default())
        .is_err());
}

/// A model claiming BHI_NO on a pool with an affected host that can force
/// BHI_DIS_S: forced there. Where a host cannot (no BHI_CTRL), BHI_NO is
/// taken out of the model. With SPR's module missing, and the guest clears the BHB itself, which still
/// needs BHI_DIS_S on SPR: refused, naming the host, the bit and why.
#[test]
fn bhi_no_model_and_hosts_without_the_module() {
    let model = GuestModel {
        arch_capabilities: arch_cap::IBRS_ALL | arch_cap::BHI_NO,
        cpuid_7_2_edx: 0,
        family_model: None,
    };
    let p = pool(&["spr", "arl-s"]);
    let d = p.default_policy(model, Opts::default()).unwrap();
    assert_eq!(d.choice.bhi, Bhi::NotAffected);
    assert_eq!(d.forced("spr"), Some(S::BHI_DIS_S));
    assert_eq!(d.forced("arl-s"), Some(S::empty()));
    // TGL has no BHI_CTRL and is affected: BHI_NO must go.
    let p = pool(&["tgl", "spr", "icl-u"]);
    let d = p.default_policy(model, Opts::default()).unwrap();
    assert_eq!(d.withdraw, arch_cap::BHI_NO);
    assert_eq!(d.choice.bhi, Bhi::ClearsBhb);
    // SPR without the module.
    let bare = HostModel {
        supported: S::empty(),
        ..host("spr")
    };
    let p = Pool::new([host("tgl"), bare]).unwrap();
    let e = p
        .default_policy(GuestModel::of_host(&host("tgl")), Opts::default())
        .unwrap_err();
    assert!(
        matches!(&e, PolicyError::Unprotectable { host, bit, .. } if host == "spr" && *bit == S::BHI_DIS_S)
    );
    assert!(e.to_string().contains("spr") && e.to_string().contains("BHI_DIS_S"));
}

/// Host files that claim forcible bits their CPUID does not enumerate
/// (as the old icx.json and spr.json did) are refused with the reason.
#[test]
fn host_files_are_checked() {
    let old_icx = r#"{"name":"icx","arch_capabilities":524651,"cpuid_7_2_edx":1,"supported":447}"#;
    let e = serde_json::from_str::<HostModel>(old_icx).unwrap_err();
    assert!(e.to_string().contains("IPRED_DIS_U"), "{e}");
    // The same check where a host is built in code.
    let h = HostModel {
        cpuid_7_2_edx: 0,
        ..host("spr")
    };
    let e = Pool::new([h]).unwrap_err();
    assert!(matches!(&e, PoolError::ForcesUnenumerated { host, .. } if host == "spr"));
    // Pool files: two different hosts under one name, or none, are refused
    // when read.
    let tgl = serde_json::to_string(&host("tgl")).unwrap();
    let other = serde_json::to_string(&HostModel {
        arch_capabilities: 0,
        ..host("tgl")
    })
    .unwrap();
    let clash = format!(r#"{{"hosts":[{tgl},{other}]}}"#);
    assert!(serde_json::from_str::<Pool>(&clash).is_err());
    assert!(serde_json::from_str::<Pool>(r#"{"hosts":[]}"#).is_err());
    // Unknown bits, unknown fields, wrong types: errors, never panics.
    for bad in [
        r#"{"name":"x","arch_capabilities":0,"cpuid_7_2_edx":0,"supported":512}"#,
        r#"{"name":"x","arch_capabilities":0,"cpuid_7_2_edx":0,"supported":7,"extra":1}"#,
        r#"{"name":"x","arch_capabilities":-1,"cpuid_7_2_edx":0,"supported":7}"#,
        r#"{"name":"x","arch_capabilities":0,"cpuid_7_2_edx":4294967296,"supported":7}"#,
        r#"[]"#,
    ] {
        assert!(serde_json::from_str::<HostModel>(bad).is_err(), "{bad}");
    }
    let nameless = HostModel {
        name: String::new(),
        ..host("tgl")
    };
    assert_eq!(Pool::new([nameless]), Err(PoolError::NoName));
}

fn arb_host(name: String) -> impl Strategy<Value = HostModel> {
    (any::<u64>(), 0u32..64, any::<u64>()).prop_map(move |(ac, edx, sup)| HostModel {
        name: name.clone(),
        arch_capabilities: ac,
        cpuid_7_2_edx: edx,
        supported: S::from_bits_truncate(sup)
            & kvm_force_spec_ctrl_vmm::pool::enumerated_spec_ctrl(edx),
        source: None,
        microcode: None,
        family_model: None,
    })
}

proptest! {
    /// Any pool and model: an answer or an error, never a panic; what a
    /// host forces it can force and was not opted out; every need is
    /// either forced or listed as exposed.
    #[test]
    fn sound(hosts in proptest::collection::vec(0u8..1, 1..5).prop_flat_map(|v| {
                (0..v.len()).map(|i| arb_host(format!("h{i}"))).collect::<Vec<_>>()
            }),
            ac in any::<u64>(), edx in 0u32..64, opt_out in any::<u64>()) {
        let p = Pool::new(hosts).unwrap();
        let model = GuestModel { arch_capabilities: ac, cpuid_7_2_edx: edx, family_model: None };
        let opts = Opts { opt_out: S::from_bits_truncate(opt_out) };
        if let Ok(d) = p.default_policy(model, opts) {
            for (h, hd) in p.hosts().iter().zip(&d.hosts) {
                prop_assert!(h.supported.contains(hd.forced));
                prop_assert!((hd.forced & opts.opt_out).is_empty());
                for e in &hd.exposed {
                    prop_assert!(opts.opt_out.contains(e.bit));
                }
            }
            // The advice is stable: deciding again on the advised model
            // adds nothing more.
            let again = p.default_policy(d.advised_model(), opts).unwrap();
            prop_assert_eq!(again.advertise, 0);
            prop_assert_eq!(again.withdraw, 0);
            prop_assert_eq!(again.hosts, d.hosts);
        }
    }
}
