//! ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;

use super::{empty, owner, set, xml_response};
use crate::error::{from_lake, S3Error};
use crate::xml::{iso8601, Xml, NS};
use crate::{Ctx, S3};

pub(crate) async fn list_buckets(s: &S3) -> Result<Response, S3Error> {
    let buckets = s.lake.list_buckets().await.map_err(from_lake)?;
    let mut x = Xml::new("ListAllMyBucketsResult");
    owner(&mut x, "Owner");
    x.open("Buckets");
    for b in &buckets {
        x.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(b.created_ms))
            .close("Bucket");
    }
    x.close("Buckets");
    Ok(xml_response(x.finish("ListAllMyBucketsResult")))
}

pub(crate) async fn create_bucket(s: &S3, ctx: &mut Ctx, body: Body) -> Result<Response, S3Error> {
    sluice_lake::check_bucket(ctx.bucket()).map_err(from_lake)?;
    // A CreateBucketConfiguration may name a location: any is taken (sluice has one region),
    // but the XML must be well-formed.
    let body = crate::body::collect(ctx, body, crate::limits::XML_BODY_BYTES_MAX).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        crate::xml::parse_location(&body)?;
    }
    s.lake
        .create_bucket(ctx.bucket())
        .await
        .map_err(from_lake)?;
    let mut r = empty(StatusCode::OK);
    set(&mut r, "location", &format!("/{}", ctx.bucket()));
    Ok(r)
}

pub(crate) async fn head_bucket(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    s.lake.head_bucket(ctx.bucket()).await.map_err(from_lake)?;
    let mut r = empty(StatusCode::OK);
    set(&mut r, "x-amz-bucket-region", &s.options.region);
    Ok(r)
}

pub(crate) async fn delete_bucket(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    s.lake
        .delete_bucket(ctx.bucket())
        .await
        .map_err(from_lake)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(crate) async fn get_bucket_location(s: &S3, ctx: &Ctx) -> Result<Response, S3Error> {
    s.lake.head_bucket(ctx.bucket()).await.map_err(from_lake)?;
    // us-east-1 is answered as an empty constraint, as S3 does.
    let region = if s.options.region == "us-east-1" {
        ""
    } else {
        s.options.region.as_str()
    };
    Ok(xml_response(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{NS}\">{}</LocationConstraint>",
        crate::xml::escape(region)
    )))
}
