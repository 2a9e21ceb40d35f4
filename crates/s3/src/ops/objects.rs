//! PutObject, GetObject / HeadObject (Range, conditional requests, response overrides),
//! CopyObject, DeleteObject, DeleteObjects.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use sluice_lake::{bare_etag, ObjectMeta};

use super::{attrs_from_headers, empty, quoted, set, sse_from_headers, sse_headers, xml_response};
use crate::body::{expect, kinds, payload, pump, verify};
use crate::error::{from_lake, S3Error};
use crate::xml::{iso8601, Xml};
use crate::{Ctx, S3};

/// The body size the client announced: the decoded length of an aws-chunked body, else
/// Content-Length.
fn announced_size(ctx: &Ctx) -> Option<u64> {
    ctx.header("x-amz-decoded-content-length")
        .or_else(|| ctx.header("content-length"))
        .and_then(|v| v.trim().parse().ok())
}

pub(crate) async fn put_object(s: &S3, ctx: &mut Ctx, body: Body) -> Result<Response, S3Error> {
    let max = s.lake.object_bytes_max();
    if announced_size(ctx).is_some_and(|n| n > max) {
        return Err(from_lake(sluice_lake::LakeError::EntityTooLarge {
            size_max: max,
        }));
    }
    let attrs = attrs_from_headers(ctx)?;
    let e = expect(ctx)?;
    let mut p = payload(ctx)?;
    // If-None-Match: * (write only if absent), checked before the body is read and again
    // just before the commit.
    let if_absent = ctx.header("if-none-match").map(str::trim) == Some("*");
    if if_absent {
        absent(s, ctx).await?;
    }
    let mut w = s
        .lake
        .writer(ctx.bucket(), ctx.key(), attrs, kinds(&p, &e))
        .await
        .map_err(from_lake)?;
    let trailers = pump(body, &mut p, &mut w).await?;
    let staged = w.stage().await.map_err(from_lake)?;
    let echo = verify(&e, &p, &trailers, &staged.digests)?;
    if if_absent {
        absent(s, ctx).await?;
    }
    let meta = staged.commit().await.map_err(from_lake)?;
    let mut r = empty(StatusCode::OK);
    set(&mut r, "etag", &quoted(&meta.etag));
    sse_headers(&mut r, meta.attrs.sse.as_ref());
    for (k, v) in echo {
        set(&mut r, k, &v);
    }
    Ok(r)
}

async fn absent(s: &S3, ctx: &Ctx) -> Result<(), S3Error> {
    match s.lake.head(ctx.bucket(), ctx.key()).await {
        Ok(_) => Err(S3Error::precondition_failed("If-None-Match")),
        Err(sluice_lake::LakeError::NoSuchKey { .. }) => Ok(()),
        Err(e) => Err(from_lake(e)),
    }
}

/// What a Range header asks of an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeAsk {
    Whole,
    Part(std::ops::Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range (first-last, first-, -suffix). Several ranges or another unit are
/// ignored (the whole object), as S3 does.
pub(crate) fn parse_range(h: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => match num(b) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if size == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part(size.saturating_sub(n)..size),
            None => RangeAsk::Whole,
        },
        (false, true) => match num(a) {
            Some(start) if start >= size => RangeAsk::Unsatisfiable,
            Some(start) => RangeAsk::Part(start..size),
            None => RangeAsk::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    RangeAsk::Unsatisfiable
                } else {
                    RangeAsk::Part(start..end.min(size - 1) + 1)
                }
            }
            _ => RangeAsk::Whole,
        },
        (true, true) => RangeAsk::Whole,
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|e| e == "*" || bare_etag(e) == etag)
}

fn http_date_s(v: &str) -> Option<i64> {
    httpdate::parse_http_date(v.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

enum Condition {
    Proceed,
    NotModified,
    Failed(&'static str),
}

/// If-Match / If-Unmodified-Since (412), If-None-Match / If-Modified-Since (304), with S3's
/// precedence: If-Match over If-Unmodified-Since, If-None-Match over If-Modified-Since.
fn conditions(ctx: &Ctx, prefix: &str, m: &ObjectMeta) -> Condition {
    let h = |n: &str| ctx.header(&format!("{prefix}{n}"));
    let modified_s = m.modified_ms.div_euclid(1000);
    if let Some(v) = h("if-match") {
        if !etag_matches(v, &m.etag) {
            return Condition::Failed("If-Match");
        }
    } else if let Some(t) = h("if-unmodified-since").and_then(http_date_s) {
        if modified_s > t {
            return Condition::Failed("If-Unmodified-Since");
        }
    }
    if let Some(v) = h("if-none-match") {
        if etag_matches(v, &m.etag) {
            return Condition::NotModified;
        }
    } else if let Some(t) = h("if-modified-since").and_then(http_date_s) {
        if modified_s <= t {
            return Condition::NotModified;
        }
    }
    Condition::Proceed
}

fn http_date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}

fn object_headers(r: &mut Response, m: &ObjectMeta) {
    set(r, "etag", &quoted(&m.etag));
    sse_headers(r, m.attrs.sse.as_ref());
    set(r, "last-modified", &http_date(m.modified_ms));
    set(r, "accept-ranges", "bytes");
    set(
        r,
        "content-type",
        m.attrs
            .content_type
            .as_deref()
            .unwrap_or("binary/octet-stream"),
    );
    let a = &m.attrs;
    for (name, v) in [
        ("content-encoding", &a.content_encoding),
        ("content-disposition", &a.content_disposition),
        ("content-language", &a.content_language),
        ("cache-control", &a.cache_control),
        ("expires", &a.expires),
    ] {
        if let Some(v) = v {
            set(r, name, v);
        }
    }
    for (k, v) in &a.user {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
}

pub(crate) async fn get_object(s: &S3, ctx: &Ctx, head: bool) -> Result<Response, S3Error> {
    if ctx.has("partNumber") {
        return Err(S3Error::not_implemented(if head {
            "HeadObject with partNumber"
        } else {
            "GetObject with partNumber"
        }));
    }
    let o = s
        .lake
        .open_object(ctx.bucket(), ctx.key())
        .await
        .map_err(from_lake)?;
    let m = o.meta.clone();
    match conditions(ctx, "", &m) {
        Condition::Proceed => {}
        Condition::NotModified => {
            let mut r = empty(StatusCode::NOT_MODIFIED);
            set(&mut r, "etag", &quoted(&m.etag));
            set(&mut r, "last-modified", &http_date(m.modified_ms));
            return Ok(r);
        }
        Condition::Failed(c) => return Err(S3Error::precondition_failed(c)),
    }
    let (status, range) = match parse_range(ctx.header("range"), m.size) {
        RangeAsk::Whole => (StatusCode::OK, 0..m.size),
        RangeAsk::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        RangeAsk::Unsatisfiable => {
            return Err(S3Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            )
            .with("RangeRequested", ctx.header("range").unwrap_or(""))
            .with("ActualObjectSize", m.size.to_string()));
        }
    };
    let len = range.end - range.start;
    let body = if head || len == 0 {
        Body::empty()
    } else {
        Body::from_stream(o.read(Some(range.clone())).into_stream())
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    object_headers(&mut r, &m);
    set(&mut r, "content-length", &len.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut r,
            "content-range",
            &format!("bytes {}-{}/{}", range.start, range.end - 1, m.size),
        );
    }
    if !head {
        for (q, h) in [
            ("response-content-type", "content-type"),
            ("response-content-language", "content-language"),
            ("response-expires", "expires"),
            ("response-cache-control", "cache-control"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
        ] {
            if let Some(v) = ctx.q(q) {
                set(&mut r, h, v);
            }
        }
    }
    Ok(r)
}

pub(crate) async fn delete_object(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    s.lake
        .delete_object(ctx.bucket(), ctx.key())
        .await
        .map_err(from_lake)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `x-amz-copy-source`: `[/]<bucket>/<key>[?versionId=...]`, URL-encoded.
fn copy_source(v: &str) -> Result<(String, String), S3Error> {
    let bad = || {
        S3Error::invalid_argument("Invalid copy source object key")
            .with("ArgumentName", "x-amz-copy-source")
    };
    let (path, version) = match v.split_once('?') {
        Some((p, q)) => (p, q.strip_prefix("versionId=")),
        None => (v, None),
    };
    if version.is_some_and(|v| v != "null") {
        return Err(S3Error::not_implemented("CopyObject of an object version"));
    }
    let path = crate::percent_decode(path).ok_or_else(bad)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (b, k) = path.split_once('/').ok_or_else(bad)?;
    if b.is_empty() || k.is_empty() {
        return Err(bad());
    }
    Ok((b.to_string(), k.to_string()))
}

pub(crate) async fn copy_object(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    let (sb, sk) = copy_source(ctx.header("x-amz-copy-source").unwrap_or(""))?;
    let replace = match ctx.header("x-amz-metadata-directive").map(str::trim) {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(
                S3Error::invalid_argument(format!("Unknown metadata directive: {other}"))
                    .with("ArgumentName", "x-amz-metadata-directive"),
            )
        }
    };
    let sse = sse_from_headers(ctx)?;
    if sb == ctx.bucket() && sk == ctx.key() && !replace && sse.is_none() {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    sluice_lake::check_bucket(&sb).map_err(from_lake)?;
    let src = s.lake.head(&sb, &sk).await.map_err(from_lake)?;
    match conditions(ctx, "x-amz-copy-source-", &src) {
        Condition::Proceed => {}
        Condition::NotModified => {
            return Err(S3Error::precondition_failed(
                "x-amz-copy-source-If-None-Match",
            ))
        }
        Condition::Failed(c) => {
            return Err(S3Error::precondition_failed(match c {
                "If-Match" => "x-amz-copy-source-If-Match",
                _ => "x-amz-copy-source-If-Unmodified-Since",
            }))
        }
    }
    let attrs = if replace {
        Some(attrs_from_headers(ctx)?)
    } else {
        None
    };
    let meta = s
        .lake
        .copy_object_sse(&sb, &sk, ctx.bucket(), ctx.key(), attrs, sse)
        .await
        .map_err(from_lake)?;
    let mut x = Xml::new("CopyObjectResult");
    x.elem("LastModified", &iso8601(meta.modified_ms))
        .elem("ETag", &quoted(&meta.etag));
    let mut r = xml_response(x.finish("CopyObjectResult"));
    sse_headers(&mut r, meta.attrs.sse.as_ref());
    Ok(r)
}

pub(crate) async fn delete_objects(s: &S3, ctx: &mut Ctx, body: Body) -> Result<Response, S3Error> {
    let body = crate::body::collect(ctx, body, crate::limits::XML_BODY_BYTES_MAX).await?;
    let (quiet, keys) = crate::xml::parse_delete(&body)?;
    s.lake.head_bucket(ctx.bucket()).await.map_err(from_lake)?;
    let mut x = Xml::new("DeleteResult");
    for k in &keys {
        match s.lake.delete_object(ctx.bucket(), k).await {
            Ok(()) => {
                if !quiet {
                    x.open("Deleted").elem("Key", k).close("Deleted");
                }
            }
            Err(e) => {
                let e = from_lake(e);
                x.open("Error")
                    .elem("Key", k)
                    .elem("Code", e.code)
                    .elem("Message", &e.message)
                    .close("Error");
            }
        }
    }
    Ok(xml_response(x.finish("DeleteResult")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        let r = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(r("bytes=0-9", 100), Part(0..10));
        assert_eq!(r("bytes=90-200", 100), Part(90..100));
        assert_eq!(r("bytes=50-", 100), Part(50..100));
        assert_eq!(r("bytes=-10", 100), Part(90..100));
        assert_eq!(r("bytes=-200", 100), Part(0..100));
        assert_eq!(r("bytes=100-", 100), Unsatisfiable);
        assert_eq!(r("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=-0", 100), Unsatisfiable);
        assert_eq!(r("bytes=5-1", 100), Whole);
        assert_eq!(r("bytes=0-1,5-6", 100), Whole);
        assert_eq!(r("items=0-1", 100), Whole);
        assert_eq!(parse_range(None, 100), Whole);
    }

    #[test]
    fn copy_sources() {
        assert_eq!(
            copy_source("/b/k%20x").unwrap(),
            ("b".to_string(), "k x".to_string())
        );
        assert_eq!(
            copy_source("b/a/b?versionId=null").unwrap(),
            ("b".to_string(), "a/b".to_string())
        );
        assert!(copy_source("b").is_err());
        assert!(copy_source("b/k?versionId=3").is_err());
        assert!(etag_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"x\"", "abc"));
    }
}
