//! CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
//! ListParts, ListMultipartUploads.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;

use super::{
    attrs_from_headers, empty, encoding_type, int_param, owner, quoted, set, sse_headers,
    url_encode, xml_response,
};
use crate::body::{expect, kinds, payload, pump, verify};
use crate::error::{from_lake, S3Error};
use crate::limits::{LIST_PARTS_MAX, LIST_UPLOADS_MAX, XML_BODY_BYTES_MAX};
use crate::xml::{iso8601, Xml};
use crate::{Ctx, S3};

fn upload_id(ctx: &Ctx) -> &str {
    ctx.q("uploadId").unwrap_or("")
}

pub(crate) async fn create(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    let attrs = attrs_from_headers(ctx)?;
    let sse = attrs.sse.clone();
    let id = s
        .lake
        .create_upload(ctx.bucket(), ctx.key(), attrs)
        .await
        .map_err(from_lake)?;
    let mut x = Xml::new("InitiateMultipartUploadResult");
    x.elem("Bucket", ctx.bucket())
        .elem("Key", ctx.key())
        .elem("UploadId", &id);
    let mut r = xml_response(x.finish("InitiateMultipartUploadResult"));
    if let Some(mut sse) = sse {
        // The key's ARN, as the object will record it.
        if let Some(k) = sse.key.as_deref() {
            sse.key = s.lake.keyring().arn_of(k).map(str::to_string);
        } else {
            sse.key = s.lake.keyring().default_arn().map(str::to_string);
        }
        sse_headers(&mut r, Some(&sse));
    }
    if let Some(a) = ctx.header("x-amz-checksum-algorithm") {
        set(&mut r, "x-amz-checksum-algorithm", a);
    }
    Ok(r)
}

pub(crate) async fn upload_part(s: &S3, ctx: &mut Ctx, body: Body) -> Result<Response, S3Error> {
    let n = ctx
        .q("partNumber")
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
            .with("ArgumentName", "partNumber")
            .with("ArgumentValue", ctx.q("partNumber").unwrap_or(""))
        })?;
    if !ctx.has("uploadId") {
        return Err(S3Error::invalid_request("A part upload needs an uploadId"));
    }
    let max = sluice_lake::limits::PART_BYTES_MAX.min(s.lake.object_bytes_max());
    let announced = ctx
        .header("x-amz-decoded-content-length")
        .or_else(|| ctx.header("content-length"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|a| a > max) {
        return Err(from_lake(sluice_lake::LakeError::EntityTooLarge {
            size_max: max,
        }));
    }
    let e = expect(ctx)?;
    let mut p = payload(ctx)?;
    let id = upload_id(ctx).to_string();
    let mut w = s
        .lake
        .part_writer(ctx.bucket(), ctx.key(), &id, n, kinds(&p, &e))
        .await
        .map_err(from_lake)?;
    let trailers = pump(body, &mut p, &mut w).await?;
    let staged = w.stage().await.map_err(from_lake)?;
    let echo = verify(&e, &p, &trailers, &staged.digests)?;
    let meta = staged.commit().await.map_err(from_lake)?;
    let mut r = empty(StatusCode::OK);
    set(&mut r, "etag", &quoted(&meta.etag));
    for (k, v) in echo {
        set(&mut r, k, &v);
    }
    Ok(r)
}

pub(crate) async fn complete(s: &S3, ctx: &mut Ctx, body: Body) -> Result<Response, S3Error> {
    let body = crate::body::collect(ctx, body, XML_BODY_BYTES_MAX).await?;
    let parts = crate::xml::parse_complete(&body)?;
    let meta = s
        .lake
        .complete_upload(ctx.bucket(), ctx.key(), upload_id(ctx), &parts)
        .await
        .map_err(from_lake)?;
    let host = ctx.header("host").unwrap_or("localhost");
    let mut x = Xml::new("CompleteMultipartUploadResult");
    x.elem(
        "Location",
        &format!("http://{host}/{}/{}", ctx.bucket(), url_encode(ctx.key())),
    )
    .elem("Bucket", ctx.bucket())
    .elem("Key", ctx.key())
    .elem("ETag", &quoted(&meta.etag));
    let mut r = xml_response(x.finish("CompleteMultipartUploadResult"));
    sse_headers(&mut r, meta.attrs.sse.as_ref());
    Ok(r)
}

pub(crate) async fn abort(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    s.lake
        .abort_upload(ctx.bucket(), ctx.key(), upload_id(ctx))
        .await
        .map_err(from_lake)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(crate) async fn list_parts(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    let max = int_param(ctx, "max-parts", LIST_PARTS_MAX, LIST_PARTS_MAX)?;
    let after = int_param(ctx, "part-number-marker", 0, u32::MAX as usize)? as u32;
    let page = s
        .lake
        .list_parts(ctx.bucket(), ctx.key(), upload_id(ctx), after, max)
        .await
        .map_err(from_lake)?;
    let mut x = Xml::new("ListPartsResult");
    x.elem("Bucket", ctx.bucket())
        .elem("Key", ctx.key())
        .elem("UploadId", upload_id(ctx));
    owner(&mut x, "Initiator");
    owner(&mut x, "Owner");
    x.elem("StorageClass", "STANDARD")
        .elem("PartNumberMarker", &after.to_string());
    if let Some(last) = page.parts.last() {
        x.elem("NextPartNumberMarker", &last.part_number.to_string());
    }
    x.elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if page.truncated { "true" } else { "false" });
    for p in &page.parts {
        x.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem("LastModified", &iso8601(p.modified_ms))
            .elem("ETag", &quoted(&p.etag))
            .elem("Size", &p.size.to_string())
            .close("Part");
    }
    Ok(xml_response(x.finish("ListPartsResult")))
}

pub(crate) async fn list_uploads(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    let url = encoding_type(ctx)?;
    let enc = |k: &str| if url { url_encode(k) } else { k.to_string() };
    let max = int_param(ctx, "max-uploads", LIST_UPLOADS_MAX, LIST_UPLOADS_MAX)?;
    let prefix = ctx.q("prefix").unwrap_or("");
    let key_marker = ctx.q("key-marker").filter(|m| !m.is_empty());
    let id_marker = ctx.q("upload-id-marker").filter(|m| !m.is_empty());
    let after = key_marker.map(|k| (k.to_string(), id_marker.map(str::to_string)));
    let page = s
        .lake
        .list_uploads(ctx.bucket(), prefix, after, max)
        .await
        .map_err(from_lake)?;
    let mut x = Xml::new("ListMultipartUploadsResult");
    x.elem("Bucket", ctx.bucket())
        .elem("KeyMarker", &enc(key_marker.unwrap_or("")))
        .elem("UploadIdMarker", id_marker.unwrap_or(""));
    if let Some(last) = page.uploads.last() {
        x.elem("NextKeyMarker", &enc(&last.key))
            .elem("NextUploadIdMarker", &last.upload_id);
    }
    x.elem("Prefix", &enc(prefix));
    if url {
        x.elem("EncodingType", "url");
    }
    x.elem("MaxUploads", &max.to_string())
        .elem("IsTruncated", if page.truncated { "true" } else { "false" });
    for u in &page.uploads {
        x.open("Upload")
            .elem("Key", &enc(&u.key))
            .elem("UploadId", &u.upload_id);
        owner(&mut x, "Initiator");
        owner(&mut x, "Owner");
        x.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(u.initiated_ms))
            .close("Upload");
    }
    Ok(xml_response(x.finish("ListMultipartUploadsResult")))
}
