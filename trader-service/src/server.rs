//! The trader's gRPC server: the control API ([`crate::grpc::TraderGrpc`])
//! plus `grpc.health.v1` and server reflection (v1 and v1alpha), so
//! `grpcurl list`, `describe` and calls work without `.proto` files.

use std::future::Future;

use healgrid_proto::tls::ServerSecurity;
use healgrid_proto::trader::v1::trader_service_server::TraderServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::grpc::TraderGrpc;
use crate::runtime::RuntimeHandle;

/// Default control API address (SPEC §14).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50052";

/// Largest request accepted: control requests are tiny, anything bigger is
/// refused before it is decoded.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Why the control server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The reflection service could not be built from the descriptors.
    #[error("building the reflection service failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("gRPC transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the control API for `handle` on `listener` until `shutdown`
/// resolves, then finishes in-flight requests and returns. Tests pass a
/// listener bound to port 0.
///
/// # Errors
/// [`ServerError`] if reflection cannot be built or the transport fails.
pub async fn serve(
    handle: RuntimeHandle,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    serve_secured(handle, listener, shutdown, &ServerSecurity::default()).await
}

/// [`serve`] with TLS and the token check of `security` in front of every
/// service (health and, as configured, reflection stay open).
///
/// # Errors
/// [`ServerError`] if reflection cannot be built or the transport fails.
pub async fn serve_secured(
    handle: RuntimeHandle,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    security: &ServerSecurity,
) -> Result<(), ServerError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<TraderServiceServer<TraderGrpc>>()
        .await;
    let (reflection_v1, reflection_v1alpha) =
        healgrid_proto::reflection::services(healgrid_proto::TRADER_FILE_DESCRIPTOR_SET)?;
    let trader = TraderServiceServer::new(TraderGrpc::new(handle))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let addr = listener.local_addr().ok();
    tracing::info!(
        ?addr,
        transport = security.transport(),
        token_required = security.auth.is_enabled(),
        "trader control API listening (gRPC)"
    );
    security
        .server()?
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(trader)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    tracing::info!("trader control API stopped");
    Ok(())
}
