//! Every protocol limit of the S3 API (the lake's own, such as part sizes, are in
//! `sluice_lake::limits`).

/// Keys (and common prefixes) one listing page answers at most, and the default (S3: 1,000).
pub const LIST_KEYS_MAX: usize = 1000;
/// Parts one ListParts page answers at most, and the default (S3: 1,000).
pub const LIST_PARTS_MAX: usize = 1000;
/// Uploads one ListMultipartUploads page answers at most, and the default (S3: 1,000).
pub const LIST_UPLOADS_MAX: usize = 1000;
/// Keys one DeleteObjects request names at most (S3: 1,000).
pub const DELETE_KEYS_MAX: usize = 1000;
/// The largest XML request body (DeleteObjects of 1,000 long keys, CompleteMultipartUpload of
/// 10,000 parts, CreateBucketConfiguration), read into memory.
pub const XML_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// User metadata (`x-amz-meta-*` names and values) per object (S3: 2 KB).
pub const USER_METADATA_BYTES_MAX: usize = 2 * 1024;
/// An aws-chunked chunk header line (`<hex size>;chunk-signature=<64 hex>`) at most.
pub const CHUNK_HEADER_BYTES_MAX: usize = 4096;
/// The trailer of an aws-chunked body (checksum lines and the trailer signature) at most.
pub const CHUNK_TRAILER_BYTES_MAX: usize = 16 * 1024;
