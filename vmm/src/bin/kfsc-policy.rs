// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `kfsc-policy`: host facts, migration pools and their decision tables.
//!
//! ```text
//! kfsc-policy facts --name spr-a -o spr-a.json   # this host's facts, from KVM
//! kfsc-policy verify spr-a.json                  # this host still has them
//! kfsc-policy pool spr-a.json icx.json -o pool.json
//! kfsc-policy default --model-of icx pool.json   # what each host forces for every guest
//! kfsc-policy table pool.json                    # ... and for reports through the virtual MSRs
//! ```

use clap::{Parser, Subcommand};
use kvm_force_spec_ctrl_vmm::{
    defaults::{self, GuestModel, Opts},
    hostfacts,
    msr::arch_cap,
    pool::{self, cpuid_7_2_edx, HostModel, Pool},
    SpecCtrl,
};
use std::{fs, path::PathBuf, process::ExitCode};
use thiserror::Error;

#[derive(Parser)]
#[command(
    version,
    about = "Policy side of KVM_CAP_FORCE_SPEC_CTRL: host facts, pools, decisions"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read this host's facts from KVM (CPUID, IA32_ARCH_CAPABILITIES, the bits it can force).
    Facts {
        /// The host model's name in pools.
        #[arg(long)]
        name: String,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check that this host (from KVM) has the facts a host file records,
    /// on the bits the policy decides by: IA32_ARCH_CAPABILITIES' IBRS_ALL,
    /// RSBA, RRSBA, BHI_NO, the CPUID.(7,2):EDX controls, and the bits it
    /// can force.
    Verify {
        /// The host file.
        file: PathBuf,
    },
    /// Merge host files (or pool files) into one pool.
    Pool {
        /// Host or pool files (JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the default decision: what each host forces for guests that
    /// report nothing, and what their CPU model should advertise.
    Default {
        /// The guest's CPU model is this host's (a baseline model).
        #[arg(long, conflicts_with = "model")]
        model_of: Option<String>,
        /// The guest's CPU model, a JSON file with arch_capabilities and
        /// cpuid_7_2_edx.
        #[arg(long)]
        model: Option<PathBuf>,
        /// IA32_SPEC_CTRL bits never to force, e.g. BHI_DIS_S (names joined
        /// with |).
        #[arg(long, value_parser = parse_bits, default_value = "")]
        opt_out: SpecCtrl,
        /// A pool file, or host files to pool first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a pool's decision table for reports through the virtual MSRs.
    Table {
        /// A pool file, or host files to pool first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Error)]
enum CliError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a {what} file: {source}")]
    Parse {
        path: String,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Pool(#[from] pool::PoolError),
    #[error(transparent)]
    Facts(#[from] hostfacts::FactsError),
    #[error("encoding JSON: {0}")]
    Encode(serde_json::Error),
    #[error(transparent)]
    Policy(#[from] defaults::PolicyError),
    #[error("no host {0:?} in the pool")]
    NoHost(String),
    #[error("give the guest's CPU model: --model-of HOST or --model FILE")]
    NoModel,
    #[error("this host differs from {path}: {diffs}")]
    Differs { path: String, diffs: String },
}

fn parse_bits(s: &str) -> Result<SpecCtrl, String> {
    let mut bits = SpecCtrl::empty();
    for name in s.split('|').map(str::trim).filter(|n| !n.is_empty()) {
        bits |= SpecCtrl::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = SpecCtrl::all().iter_names().map(|(n, _)| n).collect();
            format!(
                "no IA32_SPEC_CTRL bit {name:?} (known: {})",
                known.join(", ")
            )
        })?;
    }
    Ok(bits)
}

fn read_json<T: serde::de::DeserializeOwned>(
    p: &PathBuf,
    what: &'static str,
) -> Result<T, CliError> {
    let path = p.display().to_string();
    let text = fs::read_to_string(p).map_err(|source| CliError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CliError::Parse { path, what, source })
}

/// A file holds one host model or a whole pool.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum File {
    Pool(Pool),
    Host(HostModel),
}

fn load(paths: &[PathBuf]) -> Result<Pool, CliError> {
    let mut hosts = Vec::new();
    for p in paths {
        let path = p.display().to_string();
        let text = fs::read_to_string(p).map_err(|source| CliError::Read {
            path: path.clone(),
            source,
        })?;
        // Try each shape for a precise message: a pool file's error if it
        // looks like a pool, else the host file's.
        let parsed = if text.contains("\"hosts\"") {
            serde_json::from_str::<Pool>(&text).map(File::Pool)
        } else {
            serde_json::from_str::<HostModel>(&text).map(File::Host)
        };
        match parsed.map_err(|source| CliError::Parse {
            path,
            what: "host or pool",
            source,
        })? {
            File::Pool(pool) => hosts.extend(pool.into_hosts()),
            File::Host(h) => hosts.push(h),
        }
    }
    Ok(Pool::new(hosts)?)
}

fn emit(json: String, output: Option<PathBuf>) -> Result<(), CliError> {
    match output {
        Some(p) => fs::write(&p, json + "\n").map_err(|source| CliError::Write {
            path: p.display().to_string(),
            source,
        }),
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.cmd {
        Cmd::Facts { name, output } => {
            let h = hostfacts::this_host(&name)?;
            emit(
                serde_json::to_string_pretty(&h).map_err(CliError::Encode)?,
                output,
            )
        }
        Cmd::Verify { file } => {
            let want: HostModel = read_json(&file, "host")?;
            let have = hostfacts::this_host(&want.name)?;
            let mut diffs = Vec::new();
            // KVM sets some IA32_ARCH_CAPABILITIES bits itself and leaves
            // out some CPUID.(7,2):EDX bits: compare the ones the policy
            // decides by.
            let mut differ = |what: &str, have: u64, want: u64| {
                if have != want {
                    diffs.push(format!("{what} {have:#x}, the file says {want:#x}"));
                }
            };
            differ(
                "IA32_ARCH_CAPABILITIES policy bits",
                have.arch_capabilities & arch_cap::POLICY,
                want.arch_capabilities & arch_cap::POLICY,
            );
            differ(
                "CPUID.(7,2):EDX controls",
                u64::from(have.cpuid_7_2_edx & cpuid_7_2_edx::POLICY),
                u64::from(want.cpuid_7_2_edx & cpuid_7_2_edx::POLICY),
            );
            if have.supported != want.supported {
                diffs.push(format!(
                    "can force {}, the file says {}",
                    have.supported, want.supported
                ));
            }
            if !diffs.is_empty() {
                return Err(CliError::Differs {
                    path: file.display().to_string(),
                    diffs: diffs.join("; "),
                });
            }
            println!(
                "{}: this host has the recorded facts (IA32_ARCH_CAPABILITIES {:#x}, CPUID.(7,2):EDX {:#x}, can force {})",
                want.name, have.arch_capabilities, have.cpuid_7_2_edx, have.supported
            );
            Ok(())
        }
        Cmd::Pool { files, output } => {
            let pool = load(&files)?;
            emit(
                serde_json::to_string_pretty(&pool).map_err(CliError::Encode)?,
                output,
            )
        }
        Cmd::Default {
            model_of,
            model,
            opt_out,
            files,
        } => {
            let pool = load(&files)?;
            let model = match (model_of, model) {
                (Some(name), _) => {
                    GuestModel::of_host(pool.host(&name).ok_or(CliError::NoHost(name))?)
                }
                (None, Some(path)) => read_json(&path, "CPU model")?,
                (None, None) => return Err(CliError::NoModel),
            };
            let d = pool.default_policy(model, Opts { opt_out })?;
            print!("{}", defaults::default_table(&d));
            Ok(())
        }
        Cmd::Table { files } => {
            print!("{}", pool::table(&load(&files)?));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kfsc-policy: {e}");
            ExitCode::FAILURE
        }
    }
}
