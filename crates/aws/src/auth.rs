//! AWS Signature Version 4 verification, in the `Authorization` header or in presigned query
//! parameters. With no access keys configured every request is accepted (local use); with keys,
//! the signature is recomputed with the key's secret and compared.
//!
//! The canonical request is assembled here; the key derivation and HMAC come from `aws-sigv4`.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorType};

/// How far a signed request's time may be from the server's.
const CLOCK_SKEW_MAX_MS: i64 = 15 * 60 * 1000;
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// access key id → secret access key; empty means no verification.
    keys: HashMap<String, String>,
}

/// Who made a request, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key: Option<String>,
    pub region: Option<String>,
}

impl Credentials {
    pub fn new(keys: impl IntoIterator<Item = (String, String)>) -> Credentials {
        Credentials {
            keys: keys.into_iter().collect(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Verifies the request's signature. `query` is the raw query string; `service` is the
    /// signing name the credential scope must name (`kinesis`, `firehose`, `lambda`, `s3`).
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        service: &str,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Caller, ApiError> {
        let params = query.map(parse_query).unwrap_or_default();
        let in_query = params.iter().any(|(k, _)| k == "X-Amz-Algorithm");
        let header = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if in_query && header.is_some() {
            return Err(invalid_signature("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."));
        }
        let signed = if in_query {
            Some(from_query(&params)?)
        } else if let Some(h) = header {
            Some(from_header(h, headers)?)
        } else {
            None
        };
        if !self.is_enabled() {
            return Ok(Caller {
                access_key: signed.as_ref().map(|s| s.access_key.clone()),
                region: signed.map(|s| s.region),
            });
        }
        let Some(signed) = signed else {
            return Err(ApiError::auth(
                ErrorType::MissingAuthenticationToken,
                StatusCode::BAD_REQUEST,
                "Missing Authentication Token",
            ));
        };
        let Some(secret) = self.keys.get(&signed.access_key) else {
            return Err(ApiError::auth(
                ErrorType::UnrecognizedClient,
                StatusCode::BAD_REQUEST,
                "The security token included in the request is invalid.",
            ));
        };
        if signed.service != service {
            return Err(invalid_signature(format!(
                "Credential should be scoped to correct service: '{service}'. "
            )));
        }
        let request_ms = parse_amz_date(&signed.amz_date)
            .ok_or_else(|| invalid_signature("Date must be in ISO-8601 'basic format'."))?;
        if let Some(expires_s) = signed.expires_s {
            if now_ms > request_ms + expires_s * 1000 {
                return Err(ApiError::auth(
                    ErrorType::AccessDenied,
                    StatusCode::FORBIDDEN,
                    "Request has expired",
                ));
            }
        } else if request_ms - now_ms > CLOCK_SKEW_MAX_MS {
            return Err(invalid_signature(format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                signed.amz_date,
                format_amz_date(now_ms + CLOCK_SKEW_MAX_MS),
                format_amz_date(now_ms)
            )));
        } else if now_ms - request_ms > CLOCK_SKEW_MAX_MS {
            return Err(invalid_signature(format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                signed.amz_date,
                format_amz_date(now_ms - CLOCK_SKEW_MAX_MS),
                format_amz_date(now_ms)
            )));
        }
        let payload_hashes: Vec<String> = match headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
        {
            Some(h) => vec![h.to_string()],
            // Presigning clients sign the body they are given, none (botocore signs the hash
            // of an empty body), or UNSIGNED-PAYLOAD: accept any of the three.
            None if in_query => vec![
                hex::encode(Sha256::digest(body)),
                hex::encode(Sha256::digest(b"")),
                "UNSIGNED-PAYLOAD".to_string(),
            ],
            None => vec![hex::encode(Sha256::digest(body))],
        };
        let canonical_query = canonical_query(&params, in_query);
        let canonical_headers = canonical_headers(headers, &signed.signed_headers)?;
        let time = UNIX_EPOCH + Duration::from_millis(request_ms as u64);
        let key = aws_sigv4::sign::v4::generate_signing_key(
            secret,
            time,
            &signed.region,
            &signed.service,
        );
        for payload_hash in payload_hashes {
            let canonical_request = format!(
                "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
                canonical_uri(path),
                signed.signed_headers.join(";")
            );
            let string_to_sign = format!(
                "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
                signed.amz_date,
                signed.date,
                signed.region,
                signed.service,
                hex::encode(Sha256::digest(canonical_request.as_bytes()))
            );
            let expected =
                aws_sigv4::sign::v4::calculate_signature(key.as_ref(), string_to_sign.as_bytes());
            if constant_time_eq(expected.as_bytes(), signed.signature.as_bytes()) {
                return Ok(Caller {
                    access_key: Some(signed.access_key),
                    region: Some(signed.region),
                });
            }
        }
        Err(invalid_signature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ))
    }
}

fn invalid_signature(message: impl Into<String>) -> ApiError {
    ApiError::auth(
        ErrorType::InvalidSignature,
        StatusCode::BAD_REQUEST,
        message,
    )
}

struct Signed {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    expires_s: Option<i64>,
}

fn split_credential(credential: &str) -> Option<(String, String, String, String)> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return None;
    }
    Some((
        parts[0].into(),
        parts[1].into(),
        parts[2].into(),
        parts[3].into(),
    ))
}

fn from_header(h: &str, headers: &HeaderMap) -> Result<Signed, ApiError> {
    let incomplete = |what: &str| {
        ApiError::auth(
            ErrorType::IncompleteSignature,
            StatusCode::BAD_REQUEST,
            format!("{what}Authorization={h}"),
        )
    };
    let rest = h.strip_prefix(ALGORITHM).ok_or_else(|| {
        incomplete("Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is accepted. ")
    })?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut missing = String::new();
    if credential.is_none() {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none() {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none() {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    if amz_date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) =
        (credential, signed_headers, signature, amz_date)
    else {
        return Err(incomplete(&missing));
    };
    let (access_key, date, region, service) = split_credential(credential)
        .ok_or_else(|| incomplete("Credential should be scoped to a valid region. "))?;
    Ok(Signed {
        access_key,
        date,
        region,
        service,
        signed_headers: signed_headers.split(';').map(str::to_string).collect(),
        signature: signature.to_string(),
        amz_date: amz_date.to_string(),
        expires_s: None,
    })
}

fn from_query(params: &[(String, String)]) -> Result<Signed, ApiError> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    };
    let missing = |k: &str| {
        ApiError::auth(
            ErrorType::IncompleteSignature,
            StatusCode::BAD_REQUEST,
            format!("AWS query-string parameters must include '{k}'."),
        )
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(invalid_signature(
            "Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is accepted.",
        ));
    }
    let credential = get("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?;
    let (access_key, date, region, service) =
        split_credential(credential).ok_or_else(|| missing("X-Amz-Credential"))?;
    Ok(Signed {
        access_key,
        date,
        region,
        service,
        signed_headers: get("X-Amz-SignedHeaders")
            .ok_or_else(|| missing("X-Amz-SignedHeaders"))?
            .split(';')
            .map(str::to_string)
            .collect(),
        signature: get("X-Amz-Signature")
            .ok_or_else(|| missing("X-Amz-Signature"))?
            .to_string(),
        amz_date: get("X-Amz-Date")
            .ok_or_else(|| missing("X-Amz-Date"))?
            .to_string(),
        expires_s: Some(
            get("X-Amz-Expires")
                .and_then(|v| v.parse().ok())
                .unwrap_or(900),
        ),
    })
}

fn canonical_headers(headers: &HeaderMap, signed: &[String]) -> Result<String, ApiError> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(invalid_signature(format!("The request signature we calculated does not match the signature you provided: signed header '{name}' is missing.")));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| uri_encode(&percent_decode(seg)))
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(params: &[(String, String)], presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20150830T123600Z` → epoch milliseconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(11..13)?,
        n(13..15)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(crate::civil::to_ms(y, mo, d, h, mi, se))
}

fn format_amz_date(ms: i64) -> String {
    let c = crate::civil::from_ms(ms);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        let ms = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(ms, 1_440_938_160_000);
        assert_eq!(format_amz_date(ms), "20150830T123600Z");
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a b/c~"), "a%20b%2Fc~");
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
