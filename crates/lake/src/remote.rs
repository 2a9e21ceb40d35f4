//! The remote back end: buckets and objects of an S3-compatible store (`[lake] endpoint`).
//! Objects go through object_store (one `AmazonS3` client per bucket, kept in a bounded map);
//! bucket-level calls, which object_store has no API for, are signed here (SigV4, signing name
//! `s3`) and sent with the reqwest client object_store already builds.
//!
//! Bodies are staged locally first (so a digest mismatch is refused before anything reaches
//! the remote) and uploaded from the staged file: in one PUT up to 8 MiB, else as a multipart
//! upload of 8 MiB parts, a few in flight; memory stays bounded whatever the size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as OsPath;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::limits::{
    REMOTE_BUCKET_CLIENTS_MAX, REMOTE_LIST_BUCKETS_BYTES_MAX, REMOTE_PARTS_IN_FLIGHT,
    REMOTE_PART_BYTES,
};
use crate::list::{Entry, ListPage, ListQuery, Pager};
use crate::meta::{bare_etag, ObjectAttrs, ObjectMeta};
use crate::multipart::PartFile;
use crate::stage::TempFile;
use crate::{BucketInfo, ByteRange, Lake, LakeConfig, LakeError};

pub(crate) struct Remote {
    config: LakeConfig,
    scheme: String,
    /// host[:port] of the endpoint.
    authority: String,
    http: reqwest::Client,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

pub(crate) struct RemoteSource {
    store: Arc<dyn ObjectStore>,
    path: OsPath,
    etag: Option<String>,
    bucket: String,
    key: String,
}

fn map_err(e: object_store::Error, bucket: &str, key: &str) -> LakeError {
    match e {
        object_store::Error::NotFound { .. } => LakeError::NoSuchKey {
            bucket: bucket.into(),
            key: key.into(),
        },
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
            LakeError::PreconditionFailed
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => LakeError::RemoteDenied(e.to_string()),
        object_store::Error::InvalidPath { .. } => LakeError::InvalidKey(key.into()),
        other => LakeError::Remote(other.to_string()),
    }
}

fn os_path(key: &str) -> Result<OsPath, LakeError> {
    OsPath::parse(key).map_err(|_| LakeError::InvalidKey(key.into()))
}

fn to_attributes(a: &ObjectAttrs) -> Attributes {
    let mut at = Attributes::new();
    let mut put = |k: Attribute, v: &Option<String>| {
        if let Some(v) = v {
            at.insert(k, v.clone().into());
        }
    };
    put(Attribute::ContentType, &a.content_type);
    put(Attribute::ContentEncoding, &a.content_encoding);
    put(Attribute::ContentDisposition, &a.content_disposition);
    put(Attribute::ContentLanguage, &a.content_language);
    put(Attribute::CacheControl, &a.cache_control);
    for (k, v) in &a.user {
        at.insert(Attribute::Metadata(k.clone().into()), v.clone().into());
    }
    at
}

fn from_attributes(at: &Attributes) -> ObjectAttrs {
    let mut a = ObjectAttrs::default();
    for (k, v) in at {
        let text = v.as_ref().to_string();
        let v = Some(text.clone());
        match k {
            Attribute::ContentType => a.content_type = v,
            Attribute::ContentEncoding => a.content_encoding = v,
            Attribute::ContentDisposition => a.content_disposition = v,
            Attribute::ContentLanguage => a.content_language = v,
            Attribute::CacheControl => a.cache_control = v,
            Attribute::Metadata(name) => {
                a.user.insert(name.to_lowercase(), text);
            }
            _ => {}
        }
    }
    a
}

fn meta_of(m: &object_store::ObjectMeta, attrs: ObjectAttrs) -> ObjectMeta {
    let etag = m.e_tag.as_deref().map(bare_etag).unwrap_or("").to_string();
    let parts_count = etag
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u32>().ok());
    ObjectMeta {
        key: m.location.to_string(),
        size: m.size,
        etag,
        modified_ms: m.last_modified.timestamp_millis(),
        attrs,
        parts_count,
    }
}

/// The `<Code>` of an S3 error answer.
fn error_code(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(c, _)| c.to_string())
        .unwrap_or_default()
}

impl Remote {
    pub fn new(config: &LakeConfig) -> Result<Remote, LakeError> {
        let endpoint = config.endpoint.trim_end_matches('/');
        let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
            LakeError::Remote(format!("[lake] endpoint {endpoint:?} is not a URL"))
        })?;
        let authority = rest.split('/').next().unwrap_or(rest).to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| LakeError::Remote(e.to_string()))?;
        Ok(Remote {
            config: LakeConfig {
                endpoint: endpoint.to_string(),
                ..config.clone()
            },
            scheme: scheme.to_string(),
            authority,
            http,
            stores: Mutex::new(HashMap::new()),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, LakeError> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stores.get(bucket) {
            return Ok(s.clone());
        }
        let c = &self.config;
        let mut b = AmazonS3Builder::new()
            .with_endpoint(&c.endpoint)
            .with_region(&c.region)
            .with_bucket_name(bucket)
            .with_allow_http(self.scheme == "http")
            .with_virtual_hosted_style_request(!c.path_style);
        if c.access_key_id.is_empty() {
            b = b.with_skip_signature(true);
        } else {
            b = b
                .with_access_key_id(&c.access_key_id)
                .with_secret_access_key(&c.secret_access_key);
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(b.build().map_err(|e| LakeError::Remote(e.to_string()))?);
        if stores.len() >= REMOTE_BUCKET_CLIENTS_MAX {
            stores.clear();
        }
        stores.insert(bucket.to_string(), store.clone());
        Ok(store)
    }

    // ---- buckets: signed calls of our own ----------------------------------------------

    /// One bucket-level call: `method` on the service (`bucket` None) or on a bucket.
    async fn call(
        &self,
        method: reqwest::Method,
        bucket: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), LakeError> {
        let (host, path) = match bucket {
            Some(b) if !self.config.path_style => {
                (format!("{b}.{}", self.authority), "/".to_string())
            }
            Some(b) => (self.authority.clone(), format!("/{b}")),
            None => (self.authority.clone(), "/".to_string()),
        };
        let url = format!("{}://{host}{path}", self.scheme);
        let payload_hash = hex::encode(Sha256::digest(&body));
        let now = crate::clock::now_ms();
        let (amz_date, date) = crate::clock::amz_date(now);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", &payload_hash);
        if !self.config.access_key_id.is_empty() {
            let region = &self.config.region;
            let canonical = format!(
                "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload_hash}"
            );
            let scope = format!("{date}/{region}/s3/aws4_request");
            let to_sign = format!(
                "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
                hex::encode(Sha256::digest(canonical.as_bytes()))
            );
            let time = UNIX_EPOCH + Duration::from_millis(now as u64);
            let key = aws_sigv4::sign::v4::generate_signing_key(
                &self.config.secret_access_key,
                time,
                region,
                "s3",
            );
            let signature =
                aws_sigv4::sign::v4::calculate_signature(key.as_ref(), to_sign.as_bytes());
            req = req.header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
                    self.config.access_key_id
                ),
            );
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| LakeError::Remote(e.to_string()))?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > REMOTE_LIST_BUCKETS_BYTES_MAX as u64)
        {
            return Err(LakeError::Remote("the remote's answer is too large".into()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| LakeError::Remote(e.to_string()))?;
        Ok((status, body))
    }

    fn failed(bucket: &str, status: u16, body: &[u8]) -> LakeError {
        let code = error_code(body);
        match (status, code.as_str()) {
            (404, _) | (_, "NoSuchBucket") => LakeError::NoSuchBucket(bucket.into()),
            (409, "BucketNotEmpty") => LakeError::BucketNotEmpty(bucket.into()),
            (409, _) => LakeError::BucketAlreadyOwnedByYou(bucket.into()),
            (401 | 403, _) => LakeError::RemoteDenied(format!("{status} {code}")),
            _ => LakeError::Remote(format!("{status} {code}")),
        }
    }

    pub async fn create_bucket(&self, bucket: &str) -> Result<(), LakeError> {
        // S3 in us-east-1 (and moto) answer 200 to creating a bucket one owns: ask first, so the
        // answer is the same as the local lake's.
        if self.head_bucket(bucket).await.is_ok() {
            return Err(LakeError::BucketAlreadyOwnedByYou(bucket.into()));
        }
        let body = if self.config.region == "us-east-1" {
            Vec::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.config.region
            )
            .into_bytes()
        };
        let (status, body) = self.call(reqwest::Method::PUT, Some(bucket), body).await?;
        match status {
            200..=299 => Ok(()),
            _ => Err(Self::failed(bucket, status, &body)),
        }
    }

    pub async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, LakeError> {
        let (status, body) = self
            .call(reqwest::Method::HEAD, Some(bucket), Vec::new())
            .await?;
        match status {
            200..=299 => Ok(BucketInfo {
                name: bucket.into(),
                created_ms: 0,
            }),
            _ => Err(Self::failed(bucket, status, &body)),
        }
    }

    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), LakeError> {
        let (status, body) = self
            .call(reqwest::Method::DELETE, Some(bucket), Vec::new())
            .await?;
        match status {
            200..=299 => Ok(()),
            _ => Err(Self::failed(bucket, status, &body)),
        }
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, LakeError> {
        let (status, body) = self.call(reqwest::Method::GET, None, Vec::new()).await?;
        if !(200..=299).contains(&status) {
            return Err(Self::failed("", status, &body));
        }
        parse_list_buckets(&body)
    }

    // ---- objects -----------------------------------------------------------------------

    pub async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, LakeError> {
        let store = self.store(bucket)?;
        let path = os_path(key)?;
        let opts = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let r = store
            .get_opts(&path, opts)
            .await
            .map_err(|e| map_err(e, bucket, key))?;
        let mut m = meta_of(&r.meta, from_attributes(&r.attributes));
        m.key = key.into();
        Ok(m)
    }

    pub async fn open(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, RemoteSource), LakeError> {
        let meta = self.head(bucket, key).await?;
        let source = RemoteSource {
            store: self.store(bucket)?,
            path: os_path(key)?,
            etag: (!meta.etag.is_empty()).then(|| format!("\"{}\"", meta.etag)),
            bucket: bucket.into(),
            key: key.into(),
        };
        Ok((meta, source))
    }

    /// Uploads a staged file as `bucket/key`.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        file: &TempFile,
        attrs: &ObjectAttrs,
    ) -> Result<ObjectMeta, LakeError> {
        let parts = [PartFile {
            path: file.path.clone(),
            md5: [0; 16],
            size: file.id.size,
        }];
        self.put_parts(bucket, key, &parts, attrs).await
    }

    /// Uploads the concatenation of `files` as `bucket/key`.
    pub async fn put_parts(
        &self,
        bucket: &str,
        key: &str,
        files: &[PartFile],
        attrs: &ObjectAttrs,
    ) -> Result<ObjectMeta, LakeError> {
        use tokio::io::AsyncReadExt;
        let store = self.store(bucket)?;
        let path = os_path(key)?;
        let total: u64 = files.iter().map(|f| f.size).sum();
        // A write's 404 is the bucket's.
        let map_err = |e: object_store::Error, bucket: &str, key: &str| match e {
            object_store::Error::NotFound { .. } => LakeError::NoSuchBucket(bucket.into()),
            e => map_err(e, bucket, key),
        };
        let io = |p: &std::path::Path| {
            let p = p.to_path_buf();
            move |e| LakeError::io(p, e)
        };
        let e_tag = if total <= REMOTE_PART_BYTES as u64 {
            let mut buf = Vec::with_capacity(total as usize);
            for f in files {
                let mut file = tokio::fs::File::open(&f.path).await.map_err(io(&f.path))?;
                file.read_to_end(&mut buf).await.map_err(io(&f.path))?;
            }
            let opts = PutOptions {
                attributes: to_attributes(attrs),
                ..PutOptions::default()
            };
            store
                .put_opts(&path, PutPayload::from(buf), opts)
                .await
                .map_err(|e| map_err(e, bucket, key))?
                .e_tag
        } else {
            let opts = PutMultipartOptions {
                attributes: to_attributes(attrs),
                ..PutMultipartOptions::default()
            };
            let upload = store
                .put_multipart_opts(&path, opts)
                .await
                .map_err(|e| map_err(e, bucket, key))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, REMOTE_PART_BYTES);
            let mut buf = vec![0u8; crate::limits::WRITE_CHUNK_BYTES];
            let result: Result<(), LakeError> = async {
                for f in files {
                    let mut file = tokio::fs::File::open(&f.path).await.map_err(io(&f.path))?;
                    loop {
                        let n = file.read(&mut buf).await.map_err(io(&f.path))?;
                        if n == 0 {
                            break;
                        }
                        w.wait_for_capacity(REMOTE_PARTS_IN_FLIGHT)
                            .await
                            .map_err(|e| map_err(e, bucket, key))?;
                        w.write(&buf[..n]);
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                let _ = w.abort().await;
                return Err(e);
            }
            w.finish().await.map_err(|e| map_err(e, bucket, key))?.e_tag
        };
        match self.head(bucket, key).await {
            Ok(m) => Ok(m),
            Err(_) => Ok(ObjectMeta {
                key: key.into(),
                size: total,
                etag: e_tag.as_deref().map(bare_etag).unwrap_or("").to_string(),
                modified_ms: crate::clock::now_ms(),
                attrs: attrs.clone(),
                parts_count: None,
            }),
        }
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), LakeError> {
        let store = self.store(bucket)?;
        match store.delete(&os_path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e, bucket, key)),
        }
    }

    pub async fn copy(
        &self,
        lake: &Lake,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        attrs: Option<ObjectAttrs>,
    ) -> Result<ObjectMeta, LakeError> {
        if src_bucket == dst_bucket && attrs.is_none() {
            let store = self.store(src_bucket)?;
            store
                .copy(&os_path(src_key)?, &os_path(dst_key)?)
                .await
                .map_err(|e| map_err(e, src_bucket, src_key))?;
            return self.head(dst_bucket, dst_key).await;
        }
        // Across buckets, or with new attributes: read, stage, upload (bounded memory).
        let (meta, source) = self.open(src_bucket, src_key).await?;
        if meta.size > lake.object_bytes_max() {
            return Err(LakeError::EntityTooLarge {
                size_max: lake.object_bytes_max(),
            });
        }
        let attrs = attrs.unwrap_or(meta.attrs.clone());
        let mut w = lake
            .writer(dst_bucket, dst_key, attrs, Default::default())
            .await?;
        let mut r = source.read(0..meta.size);
        while let Some(chunk) = r.next().await {
            w.write(chunk?).await?;
        }
        w.stage().await?.commit().await
    }

    pub async fn list_page(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, LakeError> {
        let store = self.store(bucket)?;
        // object_store lists by whole path segments: list the prefix's directory and let the
        // pager keep the keys that start with the prefix itself.
        let dir = q
            .prefix
            .rfind('/')
            .map(|i| &q.prefix[..i])
            .filter(|d| !d.is_empty());
        let dir = match dir.map(OsPath::parse) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => return Ok(ListPage::default()),
            None => None,
        };
        let offset = q.after.as_ref().and_then(|c| OsPath::parse(&c.key).ok());
        let mut s = match &offset {
            Some(o) => store.list_with_offset(dir.as_ref(), o),
            None => store.list(dir.as_ref()),
        };
        let mut pager = Pager::new(q, crate::limits::LIST_SCAN_MAX);
        while let Some(item) = s.next().await {
            let m = match item {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(LakeError::NoSuchBucket(bucket.into()))
                }
                Err(e) => return Err(map_err(e, bucket, "")),
            };
            if !pager.push(Entry::Object(Box::new(meta_of(&m, ObjectAttrs::default())))) {
                break;
            }
        }
        Ok(pager.finish())
    }
}

impl RemoteSource {
    pub fn read(self, range: ByteRange) -> BoxStream<'static, Result<Bytes, LakeError>> {
        if range.is_empty() {
            return stream::empty().boxed();
        }
        let RemoteSource {
            store,
            path,
            etag,
            bucket,
            key,
        } = self;
        let (b2, k2) = (bucket.clone(), key.clone());
        let fut = async move {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(range)),
                if_match: etag,
                ..GetOptions::default()
            };
            store.get_opts(&path, opts).await
        };
        stream::once(fut)
            .flat_map(move |r| match r {
                Ok(g) => {
                    let (b, k) = (b2.clone(), k2.clone());
                    g.into_stream()
                        .map(move |c| c.map_err(|e| map_err(e, &b, &k)))
                        .boxed()
                }
                Err(e) => {
                    stream::once(futures_util::future::ready(Err(map_err(e, &b2, &k2)))).boxed()
                }
            })
            .boxed()
    }
}

/// A ListAllMyBucketsResult's buckets.
fn parse_list_buckets(body: &[u8]) -> Result<Vec<BucketInfo>, LakeError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut name = String::new();
    let mut created = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                if path.last().is_some_and(|p| p == "Bucket") {
                    name.clear();
                    created.clear();
                }
            }
            Ok(Event::End(_)) => {
                if path.last().is_some_and(|p| p == "Bucket") && !name.is_empty() {
                    out.push(BucketInfo {
                        name: name.clone(),
                        created_ms: crate::clock::parse_iso8601(&created).unwrap_or(0),
                    });
                }
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|c| c.into_owned()).unwrap_or_default();
                match path.last().map(String::as_str) {
                    Some("Name") => name.push_str(&text),
                    Some("CreationDate") => created.push_str(&text),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(LakeError::Remote(format!("ListBuckets answer: {e}"))),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_buckets_answers_parse() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>x</ID></Owner><Buckets><Bucket><Name>b2</Name><CreationDate>2024-01-02T03:04:05.000Z</CreationDate></Bucket><Bucket><Name>a1</Name><CreationDate>2024-01-02T03:04:05Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"#;
        let b = parse_list_buckets(xml).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].name, "a1");
        assert_eq!(
            b[1].created_ms,
            crate::clock::parse_iso8601("2024-01-02T03:04:05Z").unwrap()
        );
        assert_eq!(
            error_code(b"<Error><Code>BucketNotEmpty</Code></Error>"),
            "BucketNotEmpty"
        );
    }

    #[test]
    fn attributes_round_trip() {
        let mut a = ObjectAttrs {
            content_type: Some("text/csv".into()),
            cache_control: Some("no-cache".into()),
            ..ObjectAttrs::default()
        };
        a.user.insert("owner".into(), "me".into());
        assert_eq!(from_attributes(&to_attributes(&a)), a);
    }
}
