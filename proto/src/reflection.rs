//! gRPC server reflection for healgrid services, built in one place so every
//! service answers `grpcurl list` / `describe` the same way: both protocol
//! versions (v1 and v1alpha, since clients still differ in which one they
//! ask) over the service's own contract plus `grpc.health.v1`.

use tonic_reflection::server::{Builder, Error, v1, v1alpha};

fn builder(contract: &'static [u8]) -> Builder<'static> {
    Builder::configure()
        .register_encoded_file_descriptor_set(contract)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The v1 and v1alpha reflection services for one contract (e.g.
/// [`crate::LEDGER_FILE_DESCRIPTOR_SET`]), ready for
/// `Server::builder().add_service(..)`.
///
/// # Errors
/// [`Error`] if a descriptor set cannot be decoded (a build defect).
pub fn services(
    contract: &'static [u8],
) -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    Error,
> {
    Ok((
        builder(contract).build_v1()?,
        builder(contract).build_v1alpha()?,
    ))
}
