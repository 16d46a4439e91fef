//! Compiles the healgrid `.proto` contracts with protox (pure Rust, so no
//! system `protoc` is needed) and generates tonic clients and servers.
//!
//! One encoded descriptor set per contract is written next to the generated
//! code, so each service serves gRPC reflection for its own API only (a
//! `grpcurl list` on the ledger must not offer the trader's methods).
//!
//! Servers and clients get different codecs: servers refuse a request that
//! cannot be decoded as INVALID_ARGUMENT (`healgrid_proto::codec`), while
//! clients keep prost's codec, for which an undecodable response is the
//! server's fault (INTERNAL).

use std::{env, fs, path::PathBuf};

use prost::Message;
use prost_build::{Service, ServiceGenerator};

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
        let mut config = prost_build::Config::new();
        config.out_dir(&out_dir);
        config.service_generator(Box::new(ClientAndServer {
            client: tonic_prost_build::configure()
                .build_client(true)
                .build_server(false)
                .service_generator(),
            server: tonic_prost_build::configure()
                .build_client(false)
                .build_server(true)
                .codec_path(SERVER_CODEC)
                .service_generator(),
        }));
        config.compile_fds(fds)?;
    }
    Ok(())
}

/// The codec of the generated servers.
const SERVER_CODEC: &str = "crate::codec::ServerCodec";

/// Generates each service's client, then its server, as one tonic
/// generator with both enabled would, each with its own codec.
struct ClientAndServer {
    client: Box<dyn ServiceGenerator>,
    server: Box<dyn ServiceGenerator>,
}

impl ServiceGenerator for ClientAndServer {
    fn generate(&mut self, service: Service, buf: &mut String) {
        self.client.generate(service.clone(), buf);
        self.server.generate(service, buf);
    }

    fn finalize(&mut self, buf: &mut String) {
        self.client.finalize(buf);
        self.server.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        self.client.finalize_package(package, buf);
        self.server.finalize_package(package, buf);
    }
}
