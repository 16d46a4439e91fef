//! Compiles the healgrid `.proto` contracts with protox (pure Rust, so no
//! system `protoc` is needed) and generates tonic clients and servers.
//!
//! One encoded descriptor set per contract is written next to the generated
//! code, so each service serves gRPC reflection for its own API only (a
//! `grpcurl list` on the ledger must not offer the trader's methods).

use std::{env, fs, path::PathBuf};

use prost::Message;

/// Every contract of the workspace with the name of its descriptor set;
/// adding a service is one line here.
const PROTOS: &[(&str, &str)] = &[
    ("ledger", "healgrid/ledger/v1/ledger.proto"),
    ("trader", "healgrid/trader/v1/trader.proto"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Contracts import sibling files (e.g. the trader's operator.proto).
    println!("cargo:rerun-if-changed=healgrid");
    for (name, proto) in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
        let fds = protox::compile([proto], ["."])?;
        fs::write(
            out_dir.join(format!("{name}_descriptor.bin")),
            fds.encode_to_vec(),
        )?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .compile_fds(fds)?;
    }
    Ok(())
}
