//! The operations, by family: `buckets`, `objects` (put, get, head, copy, delete),
//! `listing` (ListObjects v1 and v2), `multipart`. What they share is here.

pub(crate) mod buckets;
pub(crate) mod listing;
pub(crate) mod multipart;
pub(crate) mod objects;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use sluice_lake::{ObjectAttrs, Sse, SseAlgorithm};

use crate::error::S3Error;
use crate::limits::USER_METADATA_BYTES_MAX;
use crate::xml::Xml;
use crate::Ctx;

/// The owner sluice names in listings (one account: the canonical id is fixed).
pub(crate) const OWNER_ID: &str =
    "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";
pub(crate) const OWNER_NAME: &str = "sluice";

pub(crate) fn owner(x: &mut Xml, tag: &str) {
    x.open(tag)
        .elem("ID", OWNER_ID)
        .elem("DisplayName", OWNER_NAME)
        .close(tag);
}

pub(crate) fn xml_response(body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

pub(crate) fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

pub(crate) fn set(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// `encoding-type=url`: keys as S3 encodes them (everything but unreserved characters and
/// `/` percent-encoded).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The object attributes a PutObject, CopyObject (REPLACE) or CreateMultipartUpload sets.
pub(crate) fn attrs_from_headers(ctx: &Ctx) -> Result<ObjectAttrs, S3Error> {
    let h = |n: &str| ctx.header(n).map(str::to_string);
    let mut a = ObjectAttrs {
        content_type: h("content-type"),
        content_encoding: h("content-encoding").and_then(|e| {
            // aws-chunked is how the body was sent, not what it is.
            let rest: Vec<&str> = e
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            (!rest.is_empty()).then(|| rest.join(","))
        }),
        content_disposition: h("content-disposition"),
        content_language: h("content-language"),
        cache_control: h("cache-control"),
        expires: h("expires"),
        sse: sse_from_headers(ctx)?,
        ..ObjectAttrs::default()
    };
    let mut size = 0;
    for (name, value) in &ctx.headers {
        if let Some(n) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            size += n.len() + v.len();
            a.user.insert(n.to_string(), v);
        }
    }
    if size > USER_METADATA_BYTES_MAX {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with("MaxSizeAllowed", USER_METADATA_BYTES_MAX.to_string()));
    }
    Ok(a)
}

/// `x-amz-server-side-encryption` (`AES256`, `aws:kms`) and
/// `x-amz-server-side-encryption-aws-kms-key-id` (a key's ARN, id, alias or alias ARN; none:
/// the default key, as S3 uses `aws/s3`). SSE-C and DSSE are not implemented.
pub(crate) fn sse_from_headers(ctx: &Ctx) -> Result<Option<Sse>, S3Error> {
    if ctx
        .header("x-amz-server-side-encryption-customer-algorithm")
        .is_some()
    {
        return Err(S3Error::not_implemented(
            "server-side encryption with customer-provided keys (SSE-C)",
        ));
    }
    let key = ctx
        .header("x-amz-server-side-encryption-aws-kms-key-id")
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let algorithm = match ctx.header("x-amz-server-side-encryption").map(str::trim) {
        None => None,
        Some("AES256") => Some(SseAlgorithm::Aes256),
        Some("aws:kms") => Some(SseAlgorithm::AwsKms),
        Some("aws:kms:dsse") => {
            return Err(S3Error::not_implemented(
                "dual-layer server-side encryption (aws:kms:dsse)",
            ))
        }
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "The encryption method specified is not supported: {other}"
            ))
            .with("ArgumentName", "x-amz-server-side-encryption")
            .with("ArgumentValue", other))
        }
    };
    match (algorithm, key) {
        (None, None) => Ok(None),
        (Some(SseAlgorithm::AwsKms), key) => Ok(Some(Sse {
            algorithm: SseAlgorithm::AwsKms,
            key: key.map(str::to_string),
        })),
        (Some(SseAlgorithm::Aes256), None) => Ok(Some(Sse::aes256())),
        (_, Some(_)) => Err(S3Error::invalid_argument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
        )
        .with("ArgumentName", "x-amz-server-side-encryption")),
    }
}

/// The SSE headers S3 answers for an object encrypted as `sse` records.
pub(crate) fn sse_headers(r: &mut Response, sse: Option<&Sse>) {
    let Some(sse) = sse else { return };
    set(r, "x-amz-server-side-encryption", sse.algorithm.as_str());
    if let (SseAlgorithm::AwsKms, Some(k)) = (sse.algorithm, &sse.key) {
        set(r, "x-amz-server-side-encryption-aws-kms-key-id", k);
    }
}

/// A query parameter that must be a non-negative integer (`max-keys` and the like).
pub(crate) fn int_param(
    ctx: &Ctx,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, S3Error> {
    match ctx.q(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as u64).min(max as u64) as usize)
            .ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "Provided {name} not an integer or within integer range"
                ))
                .with("ArgumentName", name)
                .with("ArgumentValue", v)
            }),
    }
}

/// `encoding-type`: only `url` exists.
pub(crate) fn encoding_type(ctx: &Ctx) -> Result<bool, S3Error> {
    match ctx.q("encoding-type") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("url") => Ok(true),
        Some(v) => Err(
            S3Error::invalid_argument("Invalid Encoding Method specified in Request")
                .with("ArgumentName", "encoding-type")
                .with("ArgumentValue", v),
        ),
    }
}
