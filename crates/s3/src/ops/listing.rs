//! ListObjectsV2 and ListObjects (v1): prefix, delimiter (common prefixes), max-keys,
//! continuation-token / start-after (v2), marker (v1), encoding-type=url, fetch-owner.

use axum::response::Response;
use base64::Engine;
use sluice_lake::{Cursor, ListQuery};

use super::{encoding_type, int_param, owner, quoted, url_encode, xml_response};
use crate::error::{from_lake, S3Error};
use crate::limits::LIST_KEYS_MAX;
use crate::xml::{iso8601, Xml};
use crate::{Ctx, S3};

/// A continuation token: the cursor, base64url (`k` + key, or `p` + a common prefix skipped
/// whole). Opaque to clients; a forged one only moves where the listing starts.
fn token(c: &Cursor) -> String {
    let mut raw = String::with_capacity(c.key.len() + 1);
    raw.push(if c.whole_prefix { 'p' } else { 'k' });
    raw.push_str(&c.key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn parse_token(t: &str) -> Result<Cursor, S3Error> {
    let bad = || {
        S3Error::invalid_argument("The continuation token provided is incorrect")
            .with("ArgumentName", "continuation-token")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (kind, key) = raw.split_at_checked(1).ok_or_else(bad)?;
    match kind {
        "k" => Ok(Cursor {
            key: key.to_string(),
            whole_prefix: false,
        }),
        "p" => Ok(Cursor {
            key: key.to_string(),
            whole_prefix: true,
        }),
        _ => Err(bad()),
    }
}

pub(crate) async fn list_objects(s: &S3, ctx: &Ctx, v2: bool) -> Result<Response, S3Error> {
    let url = encoding_type(ctx)?;
    let enc = |k: &str| if url { url_encode(k) } else { k.to_string() };
    let max_keys = int_param(ctx, "max-keys", LIST_KEYS_MAX, LIST_KEYS_MAX)?;
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx
        .q("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let token_in = if v2 {
        ctx.q("continuation-token")
    } else {
        None
    };
    let start_after = if v2 { ctx.q("start-after") } else { None };
    let marker = if v2 { None } else { ctx.q("marker") };
    let after = match (token_in, start_after, marker) {
        (Some(t), _, _) => Some(parse_token(t)?),
        (None, Some(sa), _) if !sa.is_empty() => Some(Cursor {
            key: sa.to_string(),
            whole_prefix: false,
        }),
        // A v1 marker that ends with the delimiter is a common prefix a previous page ended
        // on: skip it whole.
        (None, _, Some(m)) if !m.is_empty() => Some(Cursor {
            key: m.to_string(),
            whole_prefix: delimiter.as_deref().is_some_and(|d| m.ends_with(d)),
        }),
        _ => None,
    };
    let q = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        after,
        max_keys,
    };
    let page = s
        .lake
        .list_page(ctx.bucket(), &q)
        .await
        .map_err(from_lake)?;
    let fetch_owner = !v2 || ctx.q("fetch-owner").is_some_and(|v| v == "true");

    let mut x = Xml::new("ListBucketResult");
    x.elem("Name", ctx.bucket()).elem("Prefix", &enc(&prefix));
    if v2 {
        if let Some(t) = token_in {
            x.elem("ContinuationToken", t);
        }
        if let Some(sa) = start_after {
            x.elem("StartAfter", &enc(sa));
        }
    } else {
        x.elem("Marker", &enc(marker.unwrap_or("")));
        if page.truncated {
            if let Some(n) = &page.next {
                x.elem("NextMarker", &enc(&n.key));
            }
        }
    }
    x.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delimiter {
        x.elem("Delimiter", &enc(d));
    }
    if url {
        x.elem("EncodingType", "url");
    }
    if v2 {
        x.elem(
            "KeyCount",
            &(page.objects.len() + page.common_prefixes.len()).to_string(),
        );
    }
    x.elem("IsTruncated", if page.truncated { "true" } else { "false" });
    if v2 && page.truncated {
        if let Some(n) = &page.next {
            x.elem("NextContinuationToken", &token(n));
        }
    }
    for o in &page.objects {
        x.open("Contents")
            .elem("Key", &enc(&o.key))
            .elem("LastModified", &iso8601(o.modified_ms))
            .elem("ETag", &quoted(&o.etag))
            .elem("Size", &o.size.to_string())
            .elem("StorageClass", "STANDARD");
        if fetch_owner {
            owner(&mut x, "Owner");
        }
        x.close("Contents");
    }
    for p in &page.common_prefixes {
        x.open("CommonPrefixes")
            .elem("Prefix", &enc(p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(x.finish("ListBucketResult")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for c in [
            Cursor {
                key: "a/b c".into(),
                whole_prefix: false,
            },
            Cursor {
                key: "x/".into(),
                whole_prefix: true,
            },
        ] {
            assert_eq!(parse_token(&token(&c)).unwrap(), c);
        }
        assert!(parse_token("!!").is_err());
        assert!(parse_token("").is_err());
    }
}
