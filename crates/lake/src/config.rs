//! `[lake]`: where the lake is (a directory under the data directory, or an S3-compatible
//! endpoint) and how the S3 API finds a bucket in a request's Host header.

use serde::{Deserialize, Serialize};

/// The `[lake]` section of sluice's configuration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Empty: the lake is the directory `<data_dir>/lake`. Otherwise the URL of an
    /// S3-compatible store (`http://127.0.0.1:9000`, `https://s3.eu-west-1.amazonaws.com`):
    /// buckets and objects are that store's, reached through object_store.
    pub endpoint: String,
    /// The remote store's region (signing scope, and LocationConstraint of new buckets).
    pub region: String,
    /// Credentials for the remote store; both empty: requests go unsigned.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Address remote buckets path-style (`<endpoint>/<bucket>/<key>`, what MinIO, moto and
    /// most S3-compatible stores want) rather than virtual-host style.
    pub path_style: bool,
    /// The largest PutObject, UploadPart or CopyObject body, in bytes (S3's 5 GiB by default).
    pub object_bytes_max: u64,
    /// Host names under which the S3 API takes the bucket from the Host header
    /// (`<bucket>.<domain>[:port]`, virtual-host style). A Host that is one of these, an IP
    /// address or any other name is path-style (`/<bucket>/<key>`).
    pub virtual_host_domains: Vec<String>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            object_bytes_max: crate::limits::OBJECT_BYTES_MAX,
            virtual_host_domains: vec!["localhost".into(), "s3.localhost".into()],
        }
    }
}

impl std::fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &if self.secret_access_key.is_empty() {
                    ""
                } else {
                    "(hidden)"
                },
            )
            .field("path_style", &self.path_style)
            .field("object_bytes_max", &self.object_bytes_max)
            .field("virtual_host_domains", &self.virtual_host_domains)
            .finish()
    }
}

impl LakeConfig {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.endpoint.is_empty()
            || self.endpoint.starts_with("http://")
            || self.endpoint.starts_with("https://"))
        {
            return Err(format!(
                "endpoint must be an http:// or https:// URL, got {:?}",
                self.endpoint
            ));
        }
        if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
            return Err("access_key_id and secret_access_key go together".into());
        }
        if self.region.is_empty() {
            return Err("region must not be empty".into());
        }
        if !(1..=crate::limits::OBJECT_BYTES_MAX).contains(&self.object_bytes_max) {
            return Err(format!(
                "object_bytes_max must be 1 to {}",
                crate::limits::OBJECT_BYTES_MAX
            ));
        }
        for d in &self.virtual_host_domains {
            let ok = !d.is_empty()
                && d.split('.').all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                return Err(format!(
                    "virtual_host_domains: {d:?} is not a host name (lowercase letters, digits, '-' and '.')"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        LakeConfig::default().validate().unwrap();
        for bad in [
            LakeConfig {
                endpoint: "ftp://x".into(),
                ..LakeConfig::default()
            },
            LakeConfig {
                access_key_id: "a".into(),
                ..LakeConfig::default()
            },
            LakeConfig {
                object_bytes_max: 0,
                ..LakeConfig::default()
            },
            LakeConfig {
                virtual_host_domains: vec!["a..b".into()],
                ..LakeConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let c = LakeConfig {
            secret_access_key: "hush".into(),
            access_key_id: "a".into(),
            ..LakeConfig::default()
        };
        assert!(!format!("{c:?}").contains("hush"));
    }
}
