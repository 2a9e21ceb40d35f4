//! S3's errors: a code, an HTTP status, a message, and the XML S3 answers with
//! (`<Error><Code/><Message/>...<Resource/><RequestId/></Error>`; a HEAD answer has no body).
//! [`from_lake`] is the one exhaustive mapping from the lake's errors; [`from_auth`] maps the
//! protocol layer's SigV4 errors to S3's codes.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use sluice_aws::{ApiError, ErrorType};
use sluice_lake::LakeError;

use crate::xml::escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Further members S3 adds for this error (BucketName, Key, UploadId, ...).
    pub fields: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.fields.push((name, value.into()));
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }

    pub fn internal() -> S3Error {
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    pub fn not_implemented(operation: &str) -> S3Error {
        S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "sluice does not implement the S3 operation {operation} (see docs/specs/s3-compat.md)"
            ),
        )
        .with("Operation", operation)
    }

    pub fn method_not_allowed() -> S3Error {
        S3Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    }

    pub fn bad_digest(what: &str) -> S3Error {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "BadDigest",
            format!("The {what} you specified did not match the calculated checksum."),
        )
    }

    pub fn incomplete_body() -> S3Error {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }

    pub fn precondition_failed(condition: &str) -> S3Error {
        S3Error::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
        .with("Condition", condition)
    }

    /// The answer: S3's XML (none for HEAD), with the request id.
    pub fn response(&self, resource: &str, request_id: &str, head: bool) -> Response {
        let body = if head {
            Body::empty()
        } else {
            let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
            s.push_str(&format!("<Code>{}</Code>", self.code));
            s.push_str(&format!("<Message>{}</Message>", escape(&self.message)));
            for (k, v) in &self.fields {
                s.push_str(&format!("<{k}>{}</{k}>", escape(v)));
            }
            s.push_str(&format!("<Resource>{}</Resource>", escape(resource)));
            s.push_str(&format!("<RequestId>{}</RequestId>", escape(request_id)));
            s.push_str("</Error>");
            Body::from(s)
        };
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        if !head {
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        r
    }
}

/// The one mapping from the lake's errors to S3's. Internal details (paths, causes) are logged,
/// never sent.
pub(crate) fn from_lake(e: LakeError) -> S3Error {
    use StatusCode as S;
    match e {
        LakeError::NoSuchBucket(b) => S3Error::new(
            S::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
        .with("BucketName", b),
        LakeError::NoSuchKey { key, .. } => {
            S3Error::new(S::NOT_FOUND, "NoSuchKey", "The specified key does not exist.")
                .with("Key", key)
        }
        LakeError::InvalidBucketName(b) => S3Error::new(
            S::BAD_REQUEST,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        )
        .with("BucketName", b),
        LakeError::InvalidKey(_) => S3Error::invalid_argument(
            "sluice keeps keys as paths: a key must not be empty, hold an empty, '.' or '..' segment (so no leading, trailing or doubled '/'), a NUL, or a segment starting '.sluice-'",
        ),
        LakeError::KeyTooLong => {
            S3Error::new(S::BAD_REQUEST, "KeyTooLongError", "Your key is too long")
        }
        LakeError::BucketAlreadyOwnedByYou(b) => S3Error::new(
            S::CONFLICT,
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
        .with("BucketName", b),
        LakeError::BucketNotEmpty(b) => S3Error::new(
            S::CONFLICT,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        )
        .with("BucketName", b),
        LakeError::KeyConflict { key, .. } => S3Error::new(
            S::CONFLICT,
            "KeyConflict",
            "The local lake keeps objects as files: a key cannot be both an object and a prefix of other keys followed by '/' (as 'a' and 'a/b')",
        )
        .with("Key", key),
        LakeError::EntityTooLarge { size_max } => S3Error::new(
            S::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with("MaxSizeAllowed", size_max.to_string()),
        LakeError::EntityTooSmall {
            part_number,
            size,
            size_min,
        } => S3Error::new(
            S::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed object size.",
        )
        .with("ProposedSize", size.to_string())
        .with("MinSizeAllowed", size_min.to_string())
        .with("PartNumber", part_number.to_string()),
        LakeError::NoSuchUpload { upload_id } => S3Error::new(
            S::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload_id),
        LakeError::InvalidPart { part_number } => S3Error::new(
            S::BAD_REQUEST,
            "InvalidPart",
            "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        )
        .with("PartNumber", part_number.to_string()),
        LakeError::InvalidPartOrder => S3Error::new(
            S::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ),
        LakeError::InvalidPartNumber { part_number, max } => S3Error::invalid_argument(format!(
            "Part number must be an integer between 1 and {max}, inclusive"
        ))
        .with("ArgumentName", "partNumber")
        .with("ArgumentValue", part_number.to_string()),
        LakeError::TooManyUploads { .. } => S3Error::new(
            S::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate: too many multipart uploads are in progress.",
        ),
        LakeError::StorageFull => S3Error::new(
            S::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The lake's disk is full. Please try again once space is free.",
        ),
        LakeError::PreconditionFailed => S3Error::precondition_failed("If-Match"),
        LakeError::RemoteDenied(cause) => {
            tracing::warn!(%cause, "the remote object store refused access");
            S3Error::new(S::FORBIDDEN, "AccessDenied", "Access Denied")
        }
        LakeError::Remote(cause) => {
            tracing::warn!(%cause, "the remote object store failed");
            S3Error::new(
                S::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The lake's object store did not answer as expected. Please try again.",
            )
        }
        LakeError::Io { path, source } => {
            tracing::error!(path = %path.display(), error = %source, "lake I/O error");
            S3Error::internal()
        }
        LakeError::Task(cause) => {
            tracing::error!(%cause, "lake task failed");
            S3Error::internal()
        }
        // Server-side encryption (keys from `[[keys]]` in KMS's place): S3's answers for a
        // KMS key it cannot find or use.
        LakeError::KmsKeyNotFound(key) => S3Error::new(
            S::BAD_REQUEST,
            "KMS.NotFoundException",
            format!("Invalid keyId '{key}': no such key is configured ([[keys]])"),
        ),
        LakeError::NoDefaultKey => S3Error::invalid_argument(
            "Server-side encryption without a KMS key id needs a default key: configure a [[keys]] entry with default = true",
        )
        .with("ArgumentName", "x-amz-server-side-encryption"),
        LakeError::KeyUnavailable { object, key_arn } => {
            tracing::warn!(%object, key = %key_arn, "an encrypted object's key is not configured");
            S3Error::new(
                S::FORBIDDEN,
                "KMS.NotFoundException",
                format!("The object is encrypted under the key {key_arn}, which is not configured ([[keys]])"),
            )
        }
        LakeError::Damaged { object } => {
            tracing::error!(%object, "an encrypted object does not verify");
            S3Error::new(
                S::INTERNAL_SERVER_ERROR,
                "InternalError",
                "The object could not be decrypted: it was altered on disk, or the key configured under its key id is not the one it was written with.",
            )
        }
        LakeError::EncryptionUnsupported => S3Error::new(
            S::NOT_IMPLEMENTED,
            "NotImplemented",
            "Server-side encryption is not supported with a remote lake ([lake] endpoint): use the store's own encryption",
        ),
    }
}

/// SigV4 failures (from `sluice_aws::Credentials::verify`) in S3's words.
pub(crate) fn from_auth(e: ApiError) -> S3Error {
    use StatusCode as S;
    let message = e.message.clone().unwrap_or_default();
    match e.error_type {
        ErrorType::MissingAuthenticationToken => {
            S3Error::new(S::FORBIDDEN, "AccessDenied", "Access Denied")
        }
        ErrorType::UnrecognizedClient => S3Error::new(
            S::FORBIDDEN,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        ErrorType::InvalidSignature
            if message.starts_with("Signature expired")
                || message.starts_with("Signature not yet current") =>
        {
            S3Error::new(
                S::FORBIDDEN,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )
        }
        ErrorType::InvalidSignature if message.starts_with("Credential should be scoped") => {
            S3Error::new(S::BAD_REQUEST, "AuthorizationHeaderMalformed", message)
        }
        ErrorType::InvalidSignature if message.starts_with("Unsupported AWS 'algorithm'") => {
            S3Error::new(S::BAD_REQUEST, "AuthorizationHeaderMalformed", message)
        }
        ErrorType::InvalidSignature if message.starts_with("Found both") => {
            S3Error::invalid_argument(message)
        }
        ErrorType::InvalidSignature | ErrorType::IncompleteSignature
            if message.contains("does not match") =>
        {
            S3Error::new(
                S::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            )
        }
        ErrorType::IncompleteSignature => {
            S3Error::new(S::BAD_REQUEST, "AuthorizationHeaderMalformed", message)
        }
        ErrorType::AccessDenied => S3Error::new(S::FORBIDDEN, "AccessDenied", message),
        // Verification answers with no other types; anything else is still a refusal.
        _ => S3Error::new(S::FORBIDDEN, "AccessDenied", "Access Denied"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_as_s3_xml() {
        let e = from_lake(LakeError::NoSuchKey {
            bucket: "b".into(),
            key: "a<b".into(),
        });
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, "NoSuchKey"));
        let r = e.response("/b/a<b", "req-1", false);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let internal = from_lake(LakeError::Io {
            path: "/secret/path".into(),
            source: std::io::Error::other("boom"),
        });
        assert!(!internal.message.contains("secret"));
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
