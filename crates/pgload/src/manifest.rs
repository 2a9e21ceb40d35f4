//! What the caller writes when a load fails for good. Firehose, once a Redshift COPY has failed
//! for the whole retry duration, skips that batch of S3 objects and writes their list "as a
//! manifest file in the `errors/` folder" of the bucket, for a manual backfill with
//! `COPY ... MANIFEST`: a Redshift COPY manifest (`{"entries":[{"url":"s3://bucket/key",
//! "mandatory":true}]}`) under `<prefix>errors/manifests/YYYY/MM/dd/HH/`. The folder is
//! Firehose's; the file name is sluice's choice: the failed object's own name, so each
//! manifest is found from its object and a retried write replaces rather than duplicates it.

use serde_json::{json, Value};

use crate::timestamp::utc_parts;

/// The manifest listing the failed objects of `bucket` (Redshift's COPY manifest format,
/// every entry mandatory so a backfill fails loudly if an object is missing).
pub fn error_manifest(bucket: &str, object_keys: &[&str]) -> Value {
    let entries: Vec<Value> = object_keys
        .iter()
        .map(|key| json!({ "url": format!("s3://{bucket}/{key}"), "mandatory": true }))
        .collect();
    json!({ "entries": entries })
}

/// The manifest's key: `prefix` (the destination's S3 prefix, already expanded, ending in `/`
/// or empty), `errors/manifests/`, the UTC hour of `unix_ms` (when the load failed) as
/// `YYYY/MM/dd/HH/`, and the failed object's file name (the last segment of `object_key`).
pub fn error_manifest_key(prefix: &str, unix_ms: i64, object_key: &str) -> String {
    let (year, month, day, hour, _, _) = utc_parts(unix_ms);
    let name = object_key.rsplit('/').next().unwrap_or(object_key);
    format!("{prefix}errors/manifests/{year:04}/{month:02}/{day:02}/{hour:02}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_shape() {
        let m = error_manifest(
            "lake",
            &["2024/05/01/10/s-1-2024-05-01-10-20-30-abc", "x y"],
        );
        assert_eq!(
            m,
            json!({"entries": [
                {"url": "s3://lake/2024/05/01/10/s-1-2024-05-01-10-20-30-abc", "mandatory": true},
                {"url": "s3://lake/x y", "mandatory": true}
            ]})
        );
        assert_eq!(error_manifest("b", &[]), json!({"entries": []}));
    }

    #[test]
    fn manifest_key() {
        // 2024-05-01T10:20:30Z
        let at = 1_714_558_830_000;
        assert_eq!(
            error_manifest_key(
                "clicks/",
                at,
                "clicks/2024/05/01/09/s-1-2024-05-01-09-59-59-u"
            ),
            "clicks/errors/manifests/2024/05/01/10/s-1-2024-05-01-09-59-59-u"
        );
        assert_eq!(
            error_manifest_key("", at, "obj"),
            "errors/manifests/2024/05/01/10/obj"
        );
    }
}
