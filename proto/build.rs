//! Compiles the healgrid `.proto` contracts with protox (pure Rust, so no
//! system `protoc` is needed) and generates tonic clients and servers.
//!
//! The encoded descriptor set is written next to the generated code so the
//! services can serve gRPC reflection from it.

use std::{env, fs, path::PathBuf};

use prost::Message;

/// Every contract of the workspace; adding a service is one line here.
const PROTOS: &[&str] = &[
    "healgrid/ledger/v1/ledger.proto",
    "healgrid/trader/v1/trader.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("healgrid_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
