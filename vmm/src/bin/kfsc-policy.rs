// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `kfsc-policy`: host facts, migration pools and their decision tables.
//!
//! ```text
//! kfsc-policy facts --name spr-a -o spr-a.json   # this host's facts
//! kfsc-policy pool spr-a.json icx.json -o pool.json
//! kfsc-policy table pool.json                    # what to advertise, what to force
//! ```

use clap::{Parser, Subcommand};
use kvm_force_spec_ctrl_vmm::{
    hostfacts,
    pool::{self, HostModel, Pool},
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
    /// Read this host's facts (CPUID, IA32_ARCH_CAPABILITIES, the bits KVM can force).
    Facts {
        /// The host model's name in pools.
        #[arg(long)]
        name: String,
        /// The CPU whose IA32_ARCH_CAPABILITIES is read.
        #[arg(long, default_value_t = 0)]
        cpu: u32,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
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
    /// Print a pool's decision table.
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
    #[error("{path}: neither a host nor a pool file: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Pool(#[from] pool::PoolError),
    #[error(transparent)]
    Facts(#[from] hostfacts::FactsError),
    #[error("encoding JSON: {0}")]
    Encode(serde_json::Error),
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
        match parsed.map_err(|source| CliError::Parse { path, source })? {
            File::Pool(pool) => hosts.extend(pool.hosts),
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
        Cmd::Facts { name, cpu, output } => {
            let h = hostfacts::this_host(&name, cpu)?;
            emit(
                serde_json::to_string_pretty(&h).map_err(CliError::Encode)?,
                output,
            )
        }
        Cmd::Pool { files, output } => {
            let pool = load(&files)?;
            emit(
                serde_json::to_string_pretty(&pool).map_err(CliError::Encode)?,
                output,
            )
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
