//! What a clear answer to a hostile gRPC request is, for the generated
//! hostile-input suites of every service, and requests no generated client
//! would send: protobuf messages that cannot be decoded.

use std::fmt;

use bytes::{Buf, BufMut};
use healgrid_proto::codec::UNDECODABLE;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Codes a refusal may carry: each names a cause the caller can act on.
pub const REFUSALS: [Code; 5] = [
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::OutOfRange,
    Code::ResourceExhausted,
];

/// Judges one answer to a malformed request: a write must be refused, a
/// read may also answer; a refusal must carry one of [`REFUSALS`] and a
/// message (never INTERNAL, UNKNOWN, UNAVAILABLE or a bare code).
///
/// # Errors
/// Why the answer is not acceptable.
pub fn judge(is_read: bool, answer: &Result<(), Status>) -> Result<(), String> {
    match answer {
        Ok(()) if is_read => Ok(()),
        Ok(()) => Err("a malformed write was accepted".into()),
        Err(s) if REFUSALS.contains(&s.code()) && !s.message().is_empty() => Ok(()),
        Err(s) => Err(format!("unclear status {:?}: {:?}", s.code(), s.message())),
    }
}

/// A generated request whose Debug output is cut short, so a failing case
/// with a 1 MB string still reads in a test log.
#[derive(Clone)]
pub struct Clipped<T>(pub T);

impl<T: fmt::Debug> fmt::Debug for Clipped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = format!("{:?}", self.0);
        let cut: String = full.chars().take(1_500).collect();
        f.write_str(&cut)
    }
}

/// Texts that are no decimal amount to any parser of healgrid (the wire
/// decimals of the ledger, the operator amounts of the trader): NaN and
/// infinities, exponents past every range, grouping, non-ASCII digits and
/// more digits than a 96-bit decimal holds.
pub const JUNK_DECIMALS: [&str; 13] = [
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e30",
    "0,8",
    "1.2.3",
    "--1",
    "0x10",
    "１",
    "٣",
    "99999999999999999999999999999999999",
];

/// A defect that makes a protobuf message undecodable, appended to a valid
/// encoding so the rest of the request would pass every check of the
/// service: only the decoder stands between it and a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecodable {
    /// The string field holds bytes that are not UTF-8.
    NonUtf8String,
    /// The string field's length prefix is a varint cut short.
    TruncatedVarint,
    /// The string field claims more bytes than the message has left.
    TruncatedField,
    /// The string field arrives as a varint.
    WrongWireType,
}

impl Undecodable {
    /// Every defect.
    pub const ALL: [Self; 4] = [
        Self::NonUtf8String,
        Self::TruncatedVarint,
        Self::TruncatedField,
        Self::WrongWireType,
    ];

    /// Every defect with the encoding of `valid` carrying it in field
    /// `string_field` (see [`Self::encode`]).
    #[must_use]
    pub fn every(valid: &impl prost::Message, string_field: u32) -> Vec<(Self, Vec<u8>)> {
        Self::ALL
            .into_iter()
            .map(|d| (d, d.encode(valid, string_field)))
            .collect()
    }

    /// The encoding of `valid` followed by its field number `string_field`
    /// (a `string` field) carrying this defect.
    #[must_use]
    pub fn encode(self, valid: &impl prost::Message, string_field: u32) -> Vec<u8> {
        let mut valid = valid.encode_to_vec();
        const VARINT: u32 = 0;
        const LENGTH_DELIMITED: u32 = 2;
        let wire_type = if self == Self::WrongWireType {
            VARINT
        } else {
            LENGTH_DELIMITED
        };
        push_varint(&mut valid, u64::from(string_field << 3 | wire_type));
        match self {
            Self::NonUtf8String => valid.extend([2, 0xC3, 0x28]),
            Self::TruncatedVarint => valid.push(0x80),
            Self::TruncatedField => valid.extend([10, b'a', b'b']),
            Self::WrongWireType => valid.push(1),
        }
        valid
    }
}

/// Judges the answer to an [`Undecodable`] request: INVALID_ARGUMENT
/// saying the request could not be decoded (never INTERNAL, which would
/// blame the server, and never OK).
///
/// # Errors
/// Why the answer is not acceptable.
pub fn judge_undecodable(answer: &Result<(), Status>) -> Result<(), String> {
    match answer {
        Err(s) if s.code() == Code::InvalidArgument && s.message().starts_with(UNDECODABLE) => {
            Ok(())
        }
        Ok(()) => Err("an undecodable request was accepted".into()),
        Err(s) => Err(format!("unclear status {:?}: {:?}", s.code(), s.message())),
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7F).unwrap_or_default() | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or_default());
}

/// Sends `body` as the one message of a unary call to `path` (e.g.
/// `/healgrid.ledger.v1.LedgerService/OpenPosition`), byte for byte, so a
/// test can send what no generated client would encode. The answer's
/// message is read and dropped.
///
/// # Errors
/// The call's status; UNAVAILABLE if the channel never became ready.
///
/// # Panics
/// If `path` is no URI path.
pub async fn send_raw(channel: Channel, path: &str, body: Vec<u8>) -> Result<(), Status> {
    let path: PathAndQuery = path.parse().expect("a gRPC method path");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(Request::new(body), path, RawCodec)
        .await
        .map(drop)
}

/// Writes a request's bytes as given and reads any answer as nothing.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        buf.advance(buf.remaining());
        Ok(Some(()))
    }
}
