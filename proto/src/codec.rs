//! The codec of healgrid's gRPC servers: prost's, except for a request that
//! is no valid protobuf message (a `string` field that is not UTF-8, a
//! message cut short, a field with the wrong wire type). prost's codec
//! answers that with INTERNAL, which tells the client the server is broken
//! and invites a retry of the same bytes; the fault is the request's, so it
//! is refused as INVALID_ARGUMENT saying what could not be decoded.
//!
//! Only the generated servers use it: a client that cannot decode a
//! response keeps prost's INTERNAL, since there the fault is the server's.
//! Responses are encoded by prost's own encoder, unchanged. The health and
//! reflection services are generated inside tonic-health and
//! tonic-reflection with prost's codec, so they keep its INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// How the message of a refused undecodable request starts.
pub const UNDECODABLE: &str = "request could not be decoded";

/// The start of prost's description of a decode error, which says nothing
/// the status code does not.
const PROST_PREFIX: &str = "failed to decode Protobuf message: ";

/// A [`Codec`] for servers: encodes responses `T` as prost does, decodes
/// requests `U` refusing undecodable ones as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ServerCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for ServerCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for ServerCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder { _pd: PhantomData }
    }
}

/// Decodes one request message `U`; see [`ServerCodec`].
#[derive(Debug, Clone)]
pub struct RequestDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| undecodable(&e))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The status of a request prost could not decode: INVALID_ARGUMENT with
/// prost's account of where and why (e.g. `OpenPositionRequest.bot_id:
/// invalid string value: data is not UTF-8 encoded`).
#[must_use]
pub fn undecodable(error: &prost::DecodeError) -> Status {
    let full = error.to_string();
    let why = full.strip_prefix(PROST_PREFIX).unwrap_or(&full);
    Status::invalid_argument(format!("{UNDECODABLE}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    /// A message with one string field (1) and one varint field (2).
    #[derive(Clone, PartialEq, Message)]
    struct Probe {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(uint64, tag = "2")]
        count: u64,
    }

    fn status_of(bytes: &[u8]) -> Status {
        match Probe::decode(bytes) {
            Ok(p) => panic!("decoded {p:?}"),
            Err(e) => undecodable(&e),
        }
    }

    #[test]
    fn non_utf8_string_names_the_field() {
        let s = status_of(&[0x0A, 2, 0xC3, 0x28]);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "request could not be decoded: Probe.name: invalid string value: data is not UTF-8 encoded"
        );
    }

    #[test]
    fn truncated_and_mistyped_fields_are_invalid_arguments() {
        for bytes in [
            &[0x10, 0x80][..],     // varint cut short
            &[0x0A, 10, b'a'][..], // length past the end
            &[0x08, 1][..],        // string sent as a varint
            &[0x0A][..],           // key without a value
        ] {
            let s = status_of(bytes);
            assert_eq!(s.code(), Code::InvalidArgument, "{bytes:?}: {s:?}");
            assert!(s.message().starts_with(UNDECODABLE), "{s:?}");
            assert!(!s.message().contains(PROST_PREFIX), "{s:?}");
        }
    }
}
