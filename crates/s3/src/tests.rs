//! The router in process: routing by path and Host, S3's answers and errors. The official
//! clients (boto3, the AWS CLI) test it against the real binary in tests/python/test_s3.py.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

fn service(dir: &std::path::Path) -> Router {
    let lake = Lake::local(dir.join("lake"));
    let s = S3::new(
        lake,
        Credentials::default(),
        Vec::new(),
        S3Options {
            region: "us-east-1".into(),
            virtual_host_domains: vec!["localhost".into(), "s3.localhost".into()],
            now_ms: Arc::new(|| 0),
        },
    );
    s.router()
}

async fn call(
    r: &Router,
    method: &str,
    host: &str,
    uri: &str,
    body: &'static [u8],
) -> (StatusCode, http::HeaderMap, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host)
        .body(Body::from(body))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn path_style_and_virtual_host_style_reach_the_same_objects() {
    let d = tempfile::tempdir().unwrap();
    let r = service(d.path());
    let h = "127.0.0.1:4567";
    assert_eq!(call(&r, "PUT", h, "/lake", b"").await.0, StatusCode::OK);
    let (s, hd, _) = call(&r, "PUT", h, "/lake/a%20b/c.txt", b"hello").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hd["etag"], "\"5d41402abc4b2a76b9719d911017c592\"");
    assert!(hd.contains_key("x-amz-request-id"));
    let (s, _, body) = call(&r, "GET", "lake.localhost:4567", "/a%20b/c.txt", b"").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "hello"));
    let (s, _, body) = call(
        &r,
        "GET",
        "lake.s3.localhost",
        "/?list-type=2&prefix=a",
        b"",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("<Key>a b/c.txt</Key>"), "{body}");
    assert!(body.contains("<KeyCount>1</KeyCount>"), "{body}");
    assert_eq!(
        std::fs::read(d.path().join("lake/lake/a b/c.txt")).unwrap(),
        b"hello"
    );
    let (s, hd, body) = call(&r, "GET", h, "/lake/a%20b/c.txt", b"").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, "hello");
    assert_eq!(hd["content-type"], "binary/octet-stream");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_s3_xml() {
    let d = tempfile::tempdir().unwrap();
    let r = service(d.path());
    let h = "localhost";
    let (s, _, body) = call(&r, "GET", h, "/nope/k", b"").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("<Code>NoSuchBucket</Code>"), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");
    call(&r, "PUT", h, "/bkt", b"").await;
    let (s, _, body) = call(&r, "PUT", h, "/bkt", b"").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("BucketAlreadyOwnedByYou"), "{body}");
    let (s, _, body) = call(&r, "GET", h, "/bkt/missing", b"").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("<Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>missing</Key>"), "{body}");
    let (s, _, body) = call(&r, "HEAD", h, "/bkt/missing", b"").await;
    assert_eq!((s, body.as_str()), (StatusCode::NOT_FOUND, ""));
    let (s, _, body) = call(&r, "PUT", h, "/Bad_Name", b"").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("InvalidBucketName"), "{body}");
    let (s, _, body) = call(&r, "GET", h, "/bkt?versioning", b"").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("GetBucketVersioning"), "{body}");
    let (s, _, body) = call(&r, "PUT", h, "/bkt/k?tagging", b"").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("PutObjectTagging"), "{body}");
    call(&r, "PUT", h, "/bkt/k", b"0123456789").await;
    let req = Request::builder()
        .method("GET")
        .uri("/bkt/k")
        .header("host", h)
        .header("range", "bytes=20-")
        .body(Body::empty())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let req = Request::builder()
        .method("GET")
        .uri("/bkt/k")
        .header("host", h)
        .header("range", "bytes=2-4")
        .body(Body::empty())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 2-4/10");
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "234");
    let (s, _, body) = call(&r, "DELETE", h, "/bkt", b"").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("BucketNotEmpty"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_request_without_a_target_is_not_s3s() {
    let d = tempfile::tempdir().unwrap();
    let r = service(d.path());
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "localhost")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from("{}"))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.headers()["x-amzn-ErrorType"],
        "UnknownOperationException"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sha256_and_md5_mismatches_are_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let r = service(d.path());
    call(&r, "PUT", "localhost", "/bkt", b"").await;
    for (name, value, code) in [
        (
            "x-amz-content-sha256",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "XAmzContentSHA256Mismatch",
        ),
        ("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==", "BadDigest"),
        ("x-amz-checksum-crc32", "AAAAAA==", "BadDigest"),
        ("content-md5", "nope", "InvalidDigest"),
    ] {
        let req = Request::builder()
            .method("PUT")
            .uri("/bkt/k")
            .header("host", "localhost")
            .header(name, value)
            .body(Body::from("data"))
            .unwrap();
        let resp = r.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains(code), "{name}");
    }
    assert!(!d.path().join("lake/bkt/k").exists());
}

/// An upload the server refuses before reading its body, from a client that waits for
/// `100 Continue` (boto3 and the CLI do for PutObject and UploadPart): the client may never
/// send the body, so the server closes the connection after its answer rather than read the
/// next request's first bytes as that body (which made the next request's method `OST`).
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upload_that_expects_continue_closes_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = tempfile::tempdir().unwrap();
    let r = service(d.path());
    assert_eq!(
        call(&r, "PUT", "127.0.0.1", "/lake", b"").await.0,
        StatusCode::OK
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, r).await });
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The body (one byte) is held back, as a client waiting for 100 Continue does.
    c.write_all(
        b"PUT /lake/k?partNumber=1&uploadId=nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Length: 1\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    // The next request on the same connection.
    c.write_all(
        b"POST /lake/small?uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), c.read_to_end(&mut got))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&got).to_lowercase();
    assert!(text.starts_with("http/1.1 404"), "{text}");
    assert!(text.contains("<code>nosuchupload</code>"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    // One answer: the second request was not read as part of the first.
    assert_eq!(text.matches("http/1.1 ").count(), 1, "{text}");
    server.abort();
}
