//! `sluice-s3` serves the lake ([`sluice_lake::Lake`]) through the S3 REST API, on sluice's
//! one port as the gateway's fallback router (`Gateway::fallback`): a request no other service
//! claims is an S3 request.
//!
//! The main types:
//! - [`S3`]: the service; [`S3::router`] is the axum router for `Gateway::fallback`.
//! - [`S3Options`]: the region it answers for and the domains of virtual-host style.
//!
//! A request goes: bucket and key from the Host header (virtual-host style, `host.rs`) or the
//! path (path-style); the operation from method, bucket, key and sub-resource (`Op`); SigV4
//! through `sluice_aws::Credentials::verify` (signing name `s3`, the path encoded once, the
//! payload hash as `x-amz-content-sha256` gives it: a SHA-256 the body is then checked against,
//! `UNSIGNED-PAYLOAD`, or aws-chunked streaming, whose chunk signatures `chunked.rs` checks);
//! then the operation (`ops/`), whose answers are S3's XML (`xml.rs`) and whose errors are
//! S3's (`error.rs`). Operations sluice does not implement answer 501 NotImplemented naming
//! the operation (docs/specs/s3-compat.md lists them).
//!
//! Why no S3 protocol crate: s3s (the well-kept one) was measured. Its last release that builds
//! on rustc 1.95 is 0.14 (0.15+ need 1.96); it fits axum (a tower service) and costs ~76 s of a
//! cold debug build on two cores (~45 crates new to the tree, among them a second RustCrypto
//! digest family). It does not fit sluice's auth: s3s verifies SigV4 itself, needs every
//! client's secret and refuses signed requests without them, while sluice by default accepts
//! any credentials (no keys configured) and must still decode aws-chunked bodies then; and its
//! signature checks would duplicate `sluice_aws::Credentials`. So the XML layer is our own:
//! a few fixed answer shapes and three request bodies read with quick-xml.

mod body;
mod chunked;
mod error;
mod host;
pub mod limits;
mod ops;
mod xml;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use sluice_aws::{Credentials, NowMs};
use sluice_lake::Lake;

use crate::error::S3Error;

/// How the S3 API answers.
#[derive(Clone)]
pub struct S3Options {
    /// The region buckets are in (GetBucketLocation, `x-amz-bucket-region`).
    pub region: String,
    /// Host names under which the bucket is taken from the Host header.
    pub virtual_host_domains: Vec<String>,
    pub now_ms: NowMs,
}

/// The S3 API over a lake.
pub struct S3 {
    lake: Lake,
    credentials: Credentials,
    /// access key id → secret, for aws-chunked chunk signatures (`Credentials` checks the
    /// request's own signature; the chunks chained to it need the signing key).
    secrets: HashMap<String, String>,
    options: S3Options,
}

impl S3 {
    /// `secrets` are the same keys `credentials` holds.
    pub fn new(
        lake: Lake,
        credentials: Credentials,
        secrets: impl IntoIterator<Item = (String, String)>,
        options: S3Options,
    ) -> Arc<S3> {
        Arc::new(S3 {
            lake,
            credentials,
            secrets: secrets.into_iter().collect(),
            options,
        })
    }

    /// The router to give `Gateway::fallback`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }
}

/// The S3 operations, and those sluice answers NotImplemented to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    ListObjectsV2,
    ListObjects,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    NotImplemented(&'static str),
    MethodNotAllowed,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::HeadBucket => "HeadBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListObjects => "ListObjects",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteObjects => "DeleteObjects",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
            Op::NotImplemented(name) => name,
            Op::MethodNotAllowed => "-",
        }
    }
}

/// Sub-resources of a bucket sluice does not implement: (query name, operation by method
/// GET / PUT / DELETE / POST).
const BUCKET_SUBRESOURCES: &[(&str, [&str; 4])] = &[
    (
        "accelerate",
        [
            "GetBucketAccelerateConfiguration",
            "PutBucketAccelerateConfiguration",
            "-",
            "-",
        ],
    ),
    ("acl", ["GetBucketAcl", "PutBucketAcl", "-", "-"]),
    (
        "analytics",
        [
            "GetBucketAnalyticsConfiguration",
            "PutBucketAnalyticsConfiguration",
            "DeleteBucketAnalyticsConfiguration",
            "-",
        ],
    ),
    (
        "cors",
        ["GetBucketCors", "PutBucketCors", "DeleteBucketCors", "-"],
    ),
    (
        "encryption",
        [
            "GetBucketEncryption",
            "PutBucketEncryption",
            "DeleteBucketEncryption",
            "-",
        ],
    ),
    (
        "intelligent-tiering",
        [
            "GetBucketIntelligentTieringConfiguration",
            "PutBucketIntelligentTieringConfiguration",
            "DeleteBucketIntelligentTieringConfiguration",
            "-",
        ],
    ),
    (
        "inventory",
        [
            "GetBucketInventoryConfiguration",
            "PutBucketInventoryConfiguration",
            "DeleteBucketInventoryConfiguration",
            "-",
        ],
    ),
    (
        "lifecycle",
        [
            "GetBucketLifecycleConfiguration",
            "PutBucketLifecycleConfiguration",
            "DeleteBucketLifecycle",
            "-",
        ],
    ),
    (
        "logging",
        ["GetBucketLogging", "PutBucketLogging", "-", "-"],
    ),
    (
        "metrics",
        [
            "GetBucketMetricsConfiguration",
            "PutBucketMetricsConfiguration",
            "DeleteBucketMetricsConfiguration",
            "-",
        ],
    ),
    (
        "notification",
        [
            "GetBucketNotificationConfiguration",
            "PutBucketNotificationConfiguration",
            "-",
            "-",
        ],
    ),
    (
        "object-lock",
        [
            "GetObjectLockConfiguration",
            "PutObjectLockConfiguration",
            "-",
            "-",
        ],
    ),
    (
        "ownershipControls",
        [
            "GetBucketOwnershipControls",
            "PutBucketOwnershipControls",
            "DeleteBucketOwnershipControls",
            "-",
        ],
    ),
    (
        "policy",
        [
            "GetBucketPolicy",
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "-",
        ],
    ),
    ("policyStatus", ["GetBucketPolicyStatus", "-", "-", "-"]),
    (
        "publicAccessBlock",
        [
            "GetPublicAccessBlock",
            "PutPublicAccessBlock",
            "DeletePublicAccessBlock",
            "-",
        ],
    ),
    (
        "replication",
        [
            "GetBucketReplication",
            "PutBucketReplication",
            "DeleteBucketReplication",
            "-",
        ],
    ),
    (
        "requestPayment",
        [
            "GetBucketRequestPayment",
            "PutBucketRequestPayment",
            "-",
            "-",
        ],
    ),
    (
        "tagging",
        [
            "GetBucketTagging",
            "PutBucketTagging",
            "DeleteBucketTagging",
            "-",
        ],
    ),
    (
        "versioning",
        ["GetBucketVersioning", "PutBucketVersioning", "-", "-"],
    ),
    ("versions", ["ListObjectVersions", "-", "-", "-"]),
    (
        "website",
        [
            "GetBucketWebsite",
            "PutBucketWebsite",
            "DeleteBucketWebsite",
            "-",
        ],
    ),
];

/// Sub-resources of an object sluice does not implement.
const OBJECT_SUBRESOURCES: &[(&str, [&str; 4])] = &[
    ("acl", ["GetObjectAcl", "PutObjectAcl", "-", "-"]),
    ("attributes", ["GetObjectAttributes", "-", "-", "-"]),
    (
        "legal-hold",
        ["GetObjectLegalHold", "PutObjectLegalHold", "-", "-"],
    ),
    ("restore", ["-", "-", "-", "RestoreObject"]),
    (
        "retention",
        ["GetObjectRetention", "PutObjectRetention", "-", "-"],
    ),
    ("select", ["-", "-", "-", "SelectObjectContent"]),
    (
        "tagging",
        [
            "GetObjectTagging",
            "PutObjectTagging",
            "DeleteObjectTagging",
            "-",
        ],
    ),
    ("torrent", ["GetObjectTorrent", "-", "-", "-"]),
];

fn unimplemented_subresource(
    table: &[(&str, [&'static str; 4])],
    method: &Method,
    has: impl Fn(&str) -> bool,
) -> Option<Op> {
    let i = match *method {
        Method::GET | Method::HEAD => 0,
        Method::PUT => 1,
        Method::DELETE => 2,
        Method::POST => 3,
        _ => return Some(Op::MethodNotAllowed),
    };
    table
        .iter()
        .find(|(q, _)| has(q))
        .map(|(_, ops)| match ops[i] {
            "-" => Op::MethodNotAllowed,
            name => Op::NotImplemented(name),
        })
}

/// One S3 request, parsed.
pub(crate) struct Ctx {
    pub method: Method,
    pub headers: HeaderMap,
    pub raw_path: String,
    pub raw_query: Option<String>,
    pub query: Vec<(String, String)>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub op: Op,
    /// The signature and scope of a header-signed request (for aws-chunked chunk signatures).
    pub signer: Option<chunked::ChunkSigner>,
}

impl Ctx {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bucket (operations that have one are only routed with one).
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or("")
    }

    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("")
    }

    /// The resource an error names: `/bucket/key`.
    fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".into(),
        }
    }
}

/// `%XX` decoding of a path segment or query component (UTF-8; `None` if not).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn classify(
    method: &Method,
    bucket: Option<&str>,
    key: Option<&str>,
    ctx_has: impl Fn(&str) -> bool,
    copy_source: bool,
) -> Op {
    match (bucket, key) {
        (None, _) => match *method {
            Method::GET => Op::ListBuckets,
            _ => Op::MethodNotAllowed,
        },
        (Some(_), None) => {
            if let Some(op) = unimplemented_subresource(BUCKET_SUBRESOURCES, method, &ctx_has) {
                return op;
            }
            match *method {
                Method::GET if ctx_has("location") => Op::GetBucketLocation,
                Method::GET if ctx_has("uploads") => Op::ListMultipartUploads,
                Method::GET if ctx_has("list-type") => Op::ListObjectsV2,
                Method::GET => Op::ListObjects,
                Method::PUT => Op::CreateBucket,
                Method::HEAD => Op::HeadBucket,
                Method::DELETE => Op::DeleteBucket,
                Method::POST if ctx_has("delete") => Op::DeleteObjects,
                Method::POST => Op::NotImplemented("PostObject"),
                _ => Op::MethodNotAllowed,
            }
        }
        (Some(_), Some(_)) => {
            if let Some(op) = unimplemented_subresource(OBJECT_SUBRESOURCES, method, &ctx_has) {
                return op;
            }
            match *method {
                Method::GET if ctx_has("uploadId") => Op::ListParts,
                Method::GET => Op::GetObject,
                Method::HEAD => Op::HeadObject,
                Method::PUT if ctx_has("uploadId") || ctx_has("partNumber") => {
                    if copy_source {
                        Op::NotImplemented("UploadPartCopy")
                    } else {
                        Op::UploadPart
                    }
                }
                Method::PUT if copy_source => Op::CopyObject,
                Method::PUT => Op::PutObject,
                Method::DELETE if ctx_has("uploadId") => Op::AbortMultipartUpload,
                Method::DELETE => Op::DeleteObject,
                Method::POST if ctx_has("uploads") => Op::CreateMultipartUpload,
                Method::POST if ctx_has("uploadId") => Op::CompleteMultipartUpload,
                Method::POST => Op::NotImplemented("PostObject"),
                _ => Op::MethodNotAllowed,
            }
        }
    }
}

fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, S3Error> {
    let mut out = Vec::new();
    for p in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let bad = || {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "Couldn't parse the specified URI.",
            )
        };
        out.push((
            percent_decode(k).ok_or_else(bad)?,
            percent_decode(v).ok_or_else(bad)?,
        ));
    }
    Ok(out)
}

/// The header-signed request's signing context, for its aws-chunked chunks: only when keys are
/// configured (otherwise any signature is accepted and chunks are not checked either).
fn chunk_signer(s: &S3, headers: &HeaderMap) -> Option<chunked::ChunkSigner> {
    if !s.credentials.is_enabled() {
        return None;
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut c = credential?.split('/');
    let (ak, date, region, service) = (c.next()?, c.next()?, c.next()?, c.next()?);
    let secret = s.secrets.get(ak)?;
    let amz_date = headers.get("x-amz-date")?.to_str().ok()?.to_string();
    let ms = sluice_aws::civil::to_ms(
        date.get(0..4)?.parse().ok()?,
        date.get(4..6)?.parse().ok()?,
        date.get(6..8)?.parse().ok()?,
        0,
        0,
        0,
    );
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, time, region, service);
    Some(chunked::ChunkSigner {
        key: key.as_ref().to_vec(),
        amz_date,
        scope: format!("{date}/{region}/{service}/aws4_request"),
        prev: signature?.to_string(),
    })
}

async fn handle(State(s): State<Arc<S3>>, req: Request) -> Response {
    let request_id = sluice_aws::request_id();
    let (parts, body) = req.into_parts();
    let head = parts.method == Method::HEAD;
    let continues = expects_continue(&parts.headers);
    let mut ctx = match parse(&s, parts, &request_id) {
        Ok(c) => c,
        Err(Parsed::Answer(r)) => return *r,
        Err(Parsed::Error(e)) => {
            let mut r = e.response("/", &request_id, head);
            stamp(&mut r, &request_id);
            close_unread(&mut r, continues);
            return r;
        }
    };
    let result = serve(&s, &mut ctx, body).await;
    let mut r = match result {
        Ok(r) => r,
        Err(e) => e.response(&ctx.resource(), &request_id, head),
    };
    stamp(&mut r, &request_id);
    close_unread(&mut r, continues);
    let status = r.status();
    let op = ctx.op.name();
    count_request(op, status);
    if status.is_server_error() {
        tracing::warn!(request_id, op, %status, "s3 request failed");
    } else {
        tracing::debug!(request_id, op, %status, "s3 request");
    }
    r
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// An error answered to a request whose client waits for `100 Continue` (the SDKs' uploads):
/// the body may or may not follow, so the connection ends with the answer instead of reading
/// the next request from bytes that may be the body, or that may never come.
fn close_unread(r: &mut Response, continues: bool) {
    if continues && !r.status().is_success() {
        r.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
}

fn stamp(r: &mut Response, request_id: &str) {
    use base64::Engine;
    use sha2::Digest;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amz-request-id", v);
    }
    let id2 = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(request_id.as_bytes()));
    if let Ok(v) = HeaderValue::from_str(&id2) {
        h.insert("x-amz-id-2", v);
    }
}

/// `sluice_requests_total{service="s3", operation, status}`, as the gateway counts JSON
/// services' requests; operation names are static, so the series are bounded.
fn count_request(op: &'static str, status: StatusCode) {
    let class = match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("sluice_requests_total", "service" => "s3", "operation" => op, "status" => class)
        .increment(1);
}

enum Parsed {
    Answer(Box<Response>),
    Error(S3Error),
}

fn parse(s: &S3, mut parts: http::request::Parts, request_id: &str) -> Result<Ctx, Parsed> {
    // HTTP/2 carries the host as :authority.
    if !parts.headers.contains_key(http::header::HOST) {
        if let Some(a) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(http::header::HOST, a);
        }
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let raw_path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().map(str::to_string);
    let bad_uri = || {
        Parsed::Error(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidURI",
            "Couldn't parse the specified URI.",
        ))
    };
    let (bucket, key) = match host::bucket_from_host(host, &s.options.virtual_host_domains) {
        Some(b) => {
            let k = raw_path.strip_prefix('/').unwrap_or(&raw_path);
            let k = if k.is_empty() {
                None
            } else {
                Some(percent_decode(k).ok_or_else(bad_uri)?)
            };
            (Some(b), k)
        }
        None => {
            let p = raw_path.strip_prefix('/').unwrap_or(&raw_path);
            let (b, k) = p.split_once('/').unwrap_or((p, ""));
            let b = (!b.is_empty()).then(|| percent_decode(b)).flatten();
            let k = if k.is_empty() {
                None
            } else {
                Some(percent_decode(k).ok_or_else(bad_uri)?)
            };
            (b, k)
        }
    };
    // POST / in the AWS JSON protocol without an X-Amz-Target: not S3's. Answer as the gateway
    // does for a JSON request naming no operation.
    if bucket.is_none() && parts.method == Method::POST {
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Some(format) = sluice_aws::codec::format_of(ct) {
            let e = sluice_aws::ApiError::unknown_operation();
            let mut r = Response::new(Body::from(sluice_aws::codec::encode_error(&e, format)));
            *r.status_mut() = e.status;
            let h = r.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(sluice_aws::codec::content_type(format)),
            );
            if let Ok(v) = HeaderValue::from_str(request_id) {
                h.insert("x-amzn-RequestId", v);
            }
            h.insert("x-amzn-ErrorType", HeaderValue::from_static(e.type_name()));
            return Err(Parsed::Answer(Box::new(r)));
        }
    }
    let query = parse_query(raw_query.as_deref()).map_err(Parsed::Error)?;
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    let op = classify(
        &parts.method,
        bucket.as_deref(),
        key.as_deref(),
        has,
        parts.headers.contains_key("x-amz-copy-source"),
    );
    let signer = chunk_signer(s, &parts.headers);
    Ok(Ctx {
        method: parts.method,
        headers: parts.headers,
        raw_path,
        raw_query,
        query,
        bucket,
        key,
        op,
        signer,
    })
}

async fn serve(s: &S3, ctx: &mut Ctx, body: Body) -> Result<Response, S3Error> {
    // Signature Version 2 (presigned `AWSAccessKeyId`/`Signature`/`Expires`, or an `AWS `
    // Authorization header) is not verified: say so instead of a bare AccessDenied.
    if s.credentials.is_enabled()
        && ((ctx.has("AWSAccessKeyId") && ctx.has("Signature"))
            || ctx
                .header("authorization")
                .is_some_and(|a| a.starts_with("AWS ")))
    {
        return Err(S3Error::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "sluice verifies AWS Signature Version 4 only; sign with SigV4 (boto3: Config(signature_version='s3v4'))",
        ));
    }
    // The signature first (its payload hash is the header's: the body is checked against it
    // as it is read, or chunk by chunk).
    s.credentials
        .verify(
            "s3",
            ctx.method.as_str(),
            &ctx.raw_path,
            ctx.raw_query.as_deref(),
            &ctx.headers,
            b"",
            (s.options.now_ms)(),
        )
        .map_err(error::from_auth)?;
    if let Some(b) = &ctx.bucket {
        if ctx.op != Op::CreateBucket {
            sluice_lake::check_bucket(b).map_err(error::from_lake)?;
        }
    }
    match ctx.op {
        Op::ListBuckets => ops::buckets::list_buckets(s).await,
        Op::CreateBucket => ops::buckets::create_bucket(s, ctx, body).await,
        Op::HeadBucket => ops::buckets::head_bucket(s, ctx).await,
        Op::DeleteBucket => ops::buckets::delete_bucket(s, ctx).await,
        Op::GetBucketLocation => ops::buckets::get_bucket_location(s, ctx).await,
        Op::ListObjectsV2 => ops::listing::list_objects(s, ctx, true).await,
        Op::ListObjects => ops::listing::list_objects(s, ctx, false).await,
        Op::ListMultipartUploads => ops::multipart::list_uploads(s, ctx).await,
        Op::DeleteObjects => ops::objects::delete_objects(s, ctx, body).await,
        Op::PutObject => ops::objects::put_object(s, ctx, body).await,
        Op::CopyObject => ops::objects::copy_object(s, ctx).await,
        Op::GetObject => ops::objects::get_object(s, ctx, false).await,
        Op::HeadObject => ops::objects::get_object(s, ctx, true).await,
        Op::DeleteObject => ops::objects::delete_object(s, ctx).await,
        Op::CreateMultipartUpload => ops::multipart::create(s, ctx).await,
        Op::UploadPart => ops::multipart::upload_part(s, ctx, body).await,
        Op::CompleteMultipartUpload => ops::multipart::complete(s, ctx, body).await,
        Op::AbortMultipartUpload => ops::multipart::abort(s, ctx).await,
        Op::ListParts => ops::multipart::list_parts(s, ctx).await,
        Op::NotImplemented(name) => Err(S3Error::not_implemented(name)),
        Op::MethodNotAllowed => Err(S3Error::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests;
