//! Request bodies: plain or aws-chunked (as `x-amz-content-sha256` says), streamed into the
//! lake's writer or collected (small XML bodies), and checked once read against every digest
//! the client gave (`x-amz-content-sha256`, `Content-MD5`, `x-amz-checksum-crc32`, `-crc32c`,
//! `-sha256`, in a header or in the aws-chunked trailer) before anything is committed.

use axum::body::Body;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt;
use sha2::Digest;
use sluice_lake::{DigestKinds, Digests, ObjectWriter};

use crate::chunked::ChunkDecoder;
use crate::error::{from_lake, S3Error};
use crate::Ctx;

pub(crate) enum Payload {
    /// The body as sent; `sha256` is the hash the signature covers, when the client gave one.
    Plain { sha256: Option<[u8; 32]> },
    Chunked {
        decoder: Box<ChunkDecoder>,
        decoded_length: Option<u64>,
    },
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

/// How the body is encoded, from `x-amz-content-sha256`.
pub(crate) fn payload(ctx: &mut Ctx) -> Result<Payload, S3Error> {
    let decoded_length = match ctx.header("x-amz-decoded-content-length") {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument("x-amz-decoded-content-length is not a number")
        })?),
        None => None,
    };
    let chunked = |signed: bool, trailer: bool, ctx: &mut Ctx| Payload::Chunked {
        decoder: Box::new(ChunkDecoder::new(signed, trailer, ctx.signer.take())),
        decoded_length,
    };
    let header = ctx.header("x-amz-content-sha256").map(str::to_string);
    Ok(match header.as_deref() {
        None | Some("UNSIGNED-PAYLOAD") => Payload::Plain { sha256: None },
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") => chunked(true, false, ctx),
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") => chunked(true, true, ctx),
        Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER") => chunked(false, true, ctx),
        Some(h) => {
            let mut sha = [0u8; 32];
            if hex::decode_to_slice(h, &mut sha).is_err() {
                return Err(S3Error::invalid_argument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
                ));
            }
            Payload::Plain { sha256: Some(sha) }
        }
    })
}

/// The digests the client gave in headers, and the checksums it announced for the trailer.
#[derive(Debug, Default)]
pub(crate) struct Expect {
    md5: Option<[u8; 16]>,
    crc32: Option<u32>,
    crc32c: Option<u32>,
    sha256: Option<[u8; 32]>,
    trailer: Vec<String>,
}

fn checksum_u32(name: &str, v: &str) -> Result<u32, S3Error> {
    match b64(v).as_deref() {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(S3Error::invalid_request(format!(
            "Value for {name} header is invalid."
        ))),
    }
}

fn checksum_sha256(name: &str, v: &str) -> Result<[u8; 32], S3Error> {
    b64(v)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| S3Error::invalid_request(format!("Value for {name} header is invalid.")))
}

pub(crate) fn expect(ctx: &Ctx) -> Result<Expect, S3Error> {
    let mut e = Expect::default();
    if let Some(v) = ctx.header("content-md5") {
        let md5 = b64(v)
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                S3Error::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidDigest",
                    "The Content-MD5 you specified is not valid.",
                )
            })?;
        e.md5 = Some(md5);
    }
    if let Some(v) = ctx.header("x-amz-checksum-crc32") {
        e.crc32 = Some(checksum_u32("x-amz-checksum-crc32", v)?);
    }
    if let Some(v) = ctx.header("x-amz-checksum-crc32c") {
        e.crc32c = Some(checksum_u32("x-amz-checksum-crc32c", v)?);
    }
    if let Some(v) = ctx.header("x-amz-checksum-sha256") {
        e.sha256 = Some(checksum_sha256("x-amz-checksum-sha256", v)?);
    }
    if let Some(v) = ctx.header("x-amz-trailer") {
        e.trailer = v
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
    }
    Ok(e)
}

/// The digests the lake must compute to check what the client gave.
pub(crate) fn kinds(p: &Payload, e: &Expect) -> DigestKinds {
    let announced = |n: &str| e.trailer.iter().any(|t| t == n);
    DigestKinds {
        sha256: matches!(p, Payload::Plain { sha256: Some(_) })
            || e.sha256.is_some()
            || announced("x-amz-checksum-sha256"),
        crc32: e.crc32.is_some() || announced("x-amz-checksum-crc32"),
        crc32c: e.crc32c.is_some() || announced("x-amz-checksum-crc32c"),
    }
}

/// Reads the body into the writer (decoding aws-chunked); the trailing headers.
pub(crate) async fn pump(
    body: Body,
    p: &mut Payload,
    w: &mut ObjectWriter,
) -> Result<Vec<(String, String)>, S3Error> {
    let mut body = body;
    let mut pieces = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| S3Error::incomplete_body())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match p {
            Payload::Plain { .. } => w.write(data).await.map_err(from_lake)?,
            Payload::Chunked { decoder, .. } => {
                decoder.feed(data, &mut pieces)?;
                for piece in pieces.drain(..) {
                    w.write(piece).await.map_err(from_lake)?;
                }
            }
        }
    }
    finish(p)
}

fn finish(p: &mut Payload) -> Result<Vec<(String, String)>, S3Error> {
    match p {
        Payload::Plain { .. } => Ok(Vec::new()),
        Payload::Chunked {
            decoder,
            decoded_length,
        } => {
            let t = decoder.finish()?;
            if decoded_length.is_some_and(|n| n != decoder.decoded()) {
                return Err(S3Error::incomplete_body());
            }
            Ok(t)
        }
    }
}

/// Reads a small body whole (at most `cap` bytes), checked like a streamed one.
pub(crate) async fn collect(ctx: &mut Ctx, body: Body, cap: usize) -> Result<Bytes, S3Error> {
    let mut p = payload(ctx)?;
    let e = expect(ctx)?;
    let too_big = || {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "MaxMessageLengthExceeded",
            "Your request was too big.",
        )
    };
    let mut out = BytesMut::new();
    let mut body = body;
    let mut pieces = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| S3Error::incomplete_body())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match &mut p {
            Payload::Plain { .. } => pieces.push(data),
            Payload::Chunked { decoder, .. } => decoder.feed(data, &mut pieces)?,
        }
        for piece in pieces.drain(..) {
            if out.len() + piece.len() > cap {
                return Err(too_big());
            }
            out.extend_from_slice(&piece);
        }
    }
    let trailers = finish(&mut p)?;
    let out = out.freeze();
    let k = kinds(&p, &e);
    let digests = Digests {
        md5: md5::Md5::digest(&out).into(),
        sha256: k.sha256.then(|| sha2::Sha256::digest(&out).into()),
        crc32: k.crc32.then(|| crc32fast::hash(&out)),
        crc32c: k.crc32c.then(|| crc32c::crc32c(&out)),
    };
    verify(&e, &p, &trailers, &digests)?;
    Ok(out)
}

/// Checks the body's digests against the client's; the checksum headers to answer with.
pub(crate) fn verify(
    e: &Expect,
    p: &Payload,
    trailers: &[(String, String)],
    d: &Digests,
) -> Result<Vec<(&'static str, String)>, S3Error> {
    let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    if let Payload::Plain { sha256: Some(want) } = p {
        if d.sha256.as_ref() != Some(want) {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
            .with("ClientComputedContentSHA256", hex::encode(want))
            .with(
                "S3ComputedContentSHA256",
                d.sha256.map(hex::encode).unwrap_or_default(),
            ));
        }
    }
    if let Some(want) = e.md5 {
        if d.md5 != want {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let trailer = |n: &str| {
        trailers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let mut echo = Vec::new();
    let crc32 = match trailer("x-amz-checksum-crc32") {
        Some(v) => Some(checksum_u32("x-amz-checksum-crc32", v)?),
        None => e.crc32,
    };
    if let Some(want) = crc32 {
        if d.crc32 != Some(want) {
            return Err(S3Error::bad_digest("CRC32"));
        }
        echo.push(("x-amz-checksum-crc32", enc(&want.to_be_bytes())));
    }
    let crc32c = match trailer("x-amz-checksum-crc32c") {
        Some(v) => Some(checksum_u32("x-amz-checksum-crc32c", v)?),
        None => e.crc32c,
    };
    if let Some(want) = crc32c {
        if d.crc32c != Some(want) {
            return Err(S3Error::bad_digest("CRC32C"));
        }
        echo.push(("x-amz-checksum-crc32c", enc(&want.to_be_bytes())));
    }
    let sha = match trailer("x-amz-checksum-sha256") {
        Some(v) => Some(checksum_sha256("x-amz-checksum-sha256", v)?),
        None => e.sha256,
    };
    if let Some(want) = sha {
        if d.sha256 != Some(want) {
            return Err(S3Error::bad_digest("SHA256"));
        }
        echo.push(("x-amz-checksum-sha256", enc(&want)));
    }
    for n in &e.trailer {
        if trailer(n).is_none() && n.starts_with("x-amz-checksum-") {
            return Err(S3Error::invalid_request(format!(
                "The trailer {n} was announced in x-amz-trailer but not sent."
            )));
        }
    }
    Ok(echo)
}
