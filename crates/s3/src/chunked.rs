//! aws-chunked bodies (`Content-Encoding: aws-chunked`), as the AWS CLI, the SDKs and `aws s3
//! cp` send them: `x-amz-content-sha256` is `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (each chunk
//! signed, chained from the request's seed signature), `...-PAYLOAD-TRAILER` (the same, then
//! signed trailing headers) or `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (plain chunks, then
//! trailing headers such as `x-amz-checksum-crc32`).
//!
//! ```text
//! <hex size>[;chunk-signature=<64 hex>]\r\n<size bytes>\r\n ... 0[;chunk-signature=...]\r\n
//! [<name>:<value>\r\n ... [x-amz-trailer-signature:<64 hex>\r\n]]\r\n
//! ```
//!
//! [`ChunkDecoder`] is a state machine fed the body as it arrives; it hands back the payload as
//! slices of the input (no copy) and checks each chunk's signature at the chunk's end, so a
//! body is never trusted before it is committed (the caller commits only once `finish` says the
//! whole body was well-formed and signed).

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::S3Error;
use crate::limits::{CHUNK_HEADER_BYTES_MAX, CHUNK_TRAILER_BYTES_MAX};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What signs the chunks of one request: its signing key, date, scope and the signature
/// before the next chunk's (the seed signature at first).
pub(crate) struct ChunkSigner {
    pub key: Vec<u8>,
    pub amz_date: String,
    pub scope: String,
    pub prev: String,
}

impl ChunkSigner {
    fn sign(&mut self, kind: &str, middle: &str, hash: &str) -> String {
        let to_sign = format!(
            "{kind}\n{}\n{}\n{}\n{middle}{hash}",
            self.amz_date, self.scope, self.prev
        );
        aws_sigv4::sign::v4::calculate_signature(&self.key, to_sign.as_bytes())
    }

    fn chunk(&mut self, data_hash: &str) -> String {
        self.sign(
            "AWS4-HMAC-SHA256-PAYLOAD",
            &format!("{EMPTY_SHA256}\n"),
            data_hash,
        )
    }

    fn trailer(&mut self, trailer_hash: &str) -> String {
        self.sign("AWS4-HMAC-SHA256-TRAILER", "", trailer_hash)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Data,
    DataEnd,
    Trailer,
    Done,
}

pub(crate) struct ChunkDecoder {
    state: State,
    /// Chunks carry `chunk-signature=` (signed streaming).
    signed: bool,
    /// Trailing headers follow the last chunk.
    trailer: bool,
    /// Verifies signatures when set (a key is configured for the request's access key).
    signer: Option<ChunkSigner>,
    line: Vec<u8>,
    remaining: u64,
    chunk_signature: Option<String>,
    data_hash: Option<Sha256>,
    decoded: u64,
    trailers: Vec<(String, String)>,
    trailer_bytes: usize,
    trailer_signature: Option<String>,
}

fn bad(message: &str) -> S3Error {
    S3Error::invalid_request(format!("The aws-chunked body is malformed: {message}"))
}

fn signature_mismatch() -> S3Error {
    S3Error::new(
        http::StatusCode::FORBIDDEN,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

impl ChunkDecoder {
    pub fn new(signed: bool, trailer: bool, signer: Option<ChunkSigner>) -> ChunkDecoder {
        ChunkDecoder {
            state: State::Header,
            signed,
            trailer,
            signer: if signed { signer } else { None },
            line: Vec::new(),
            remaining: 0,
            chunk_signature: None,
            data_hash: None,
            decoded: 0,
            trailers: Vec::new(),
            trailer_bytes: 0,
            trailer_signature: None,
        }
    }

    /// Payload bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Takes the next piece of the body; the payload found in it is appended to `out`.
    pub fn feed(&mut self, mut input: Bytes, out: &mut Vec<Bytes>) -> Result<(), S3Error> {
        while !input.is_empty() {
            match self.state {
                State::Header | State::Trailer => {
                    let Some(i) = input.iter().position(|b| *b == b'\n') else {
                        self.push_line(&input)?;
                        return Ok(());
                    };
                    self.push_line(&input[..=i])?;
                    input = input.slice(i + 1..);
                    let line = std::mem::take(&mut self.line);
                    let line = line
                        .strip_suffix(b"\r\n")
                        .or_else(|| line.strip_suffix(b"\n"))
                        .unwrap_or(&line);
                    let line = std::str::from_utf8(line).map_err(|_| bad("a line is not UTF-8"))?;
                    if self.state == State::Header {
                        self.header(line)?;
                    } else {
                        self.trailer_line(line)?;
                    }
                }
                State::Data => {
                    let n = (self.remaining.min(input.len() as u64)) as usize;
                    let piece = input.split_to(n);
                    if let Some(h) = &mut self.data_hash {
                        h.update(&piece);
                    }
                    self.remaining -= n as u64;
                    self.decoded += n as u64;
                    out.push(piece);
                    if self.remaining == 0 {
                        self.end_of_chunk()?;
                        self.state = State::DataEnd;
                    }
                }
                State::DataEnd => {
                    // The CRLF after a chunk's data.
                    self.push_line(&input[..1])?;
                    input = input.slice(1..);
                    if self.line == b"\r\n" || self.line == b"\n" {
                        self.line.clear();
                        self.state = State::Header;
                    } else if self.line != b"\r" {
                        return Err(bad("a chunk is longer than its size says"));
                    }
                }
                State::Done => {
                    // Whitespace after the end is tolerated; anything else is not.
                    if input.iter().all(|b| b.is_ascii_whitespace()) {
                        return Ok(());
                    }
                    return Err(bad("bytes follow the last chunk"));
                }
            }
        }
        Ok(())
    }

    fn push_line(&mut self, bytes: &[u8]) -> Result<(), S3Error> {
        let max = if self.state == State::Trailer {
            CHUNK_TRAILER_BYTES_MAX
        } else {
            CHUNK_HEADER_BYTES_MAX
        };
        if self.line.len() + bytes.len() > max {
            return Err(bad("a chunk header or trailer line is too long"));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn header(&mut self, line: &str) -> Result<(), S3Error> {
        let mut parts = line.split(';');
        let size = parts.next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| bad("a chunk size is not hex"))?;
        let mut signature = None;
        for ext in parts {
            if let Some(s) = ext.trim().strip_prefix("chunk-signature=") {
                signature = Some(s.to_string());
            }
        }
        if self.signed && signature.is_none() {
            return Err(bad("a chunk has no chunk-signature"));
        }
        self.chunk_signature = signature;
        self.remaining = size;
        self.data_hash = self.signer.as_ref().map(|_| Sha256::new());
        if size == 0 {
            self.end_of_chunk()?;
            self.state = if self.trailer {
                State::Trailer
            } else {
                // Only the final CRLF is left.
                State::Trailer
            };
        } else {
            self.state = State::Data;
        }
        Ok(())
    }

    /// Checks the signature of the chunk that just ended.
    fn end_of_chunk(&mut self) -> Result<(), S3Error> {
        let (Some(signer), Some(h)) = (&mut self.signer, self.data_hash.take()) else {
            return Ok(());
        };
        let expected = signer.chunk(&hex::encode(h.finalize()));
        let given = self.chunk_signature.take().unwrap_or_default();
        if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Err(signature_mismatch());
        }
        signer.prev = expected;
        Ok(())
    }

    fn trailer_line(&mut self, line: &str) -> Result<(), S3Error> {
        self.trailer_bytes += line.len();
        if self.trailer_bytes > CHUNK_TRAILER_BYTES_MAX {
            return Err(bad("the trailer is too long"));
        }
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        if !self.trailer {
            return Err(bad("bytes follow the last chunk"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("a trailer line has no ':'"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        if name == "x-amz-trailer-signature" {
            self.trailer_signature = Some(value);
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    /// Ends the body: it must have ended where the format says; the trailing headers.
    pub fn finish(&mut self) -> Result<Vec<(String, String)>, S3Error> {
        // Some clients end the body right after the last chunk's header or trailer lines,
        // without the final empty line.
        let ended = match self.state {
            State::Done => true,
            State::Trailer => self.line.is_empty() || self.line == b"\r\n" || self.line == b"\r",
            _ => false,
        };
        if !ended {
            return Err(S3Error::incomplete_body());
        }
        if self.trailer {
            if let Some(signer) = &mut self.signer {
                let mut text = String::new();
                for (k, v) in &self.trailers {
                    text.push_str(&format!("{k}:{v}\n"));
                }
                let expected = signer.trailer(&hex::encode(Sha256::digest(text.as_bytes())));
                let given = self.trailer_signature.clone().unwrap_or_default();
                if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
                    return Err(signature_mismatch());
                }
            }
        }
        self.state = State::Done;
        Ok(std::mem::take(&mut self.trailers))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    type Decoded = (Vec<u8>, Vec<(String, String)>);

    fn decode_in_pieces(body: &[u8], step: usize, mut d: ChunkDecoder) -> Result<Decoded, S3Error> {
        let mut out = Vec::new();
        for piece in body.chunks(step) {
            let mut got = Vec::new();
            d.feed(Bytes::copy_from_slice(piece), &mut got)?;
            for g in got {
                out.extend_from_slice(&g);
            }
        }
        let t = d.finish()?;
        Ok((out, t))
    }

    /// AWS's worked example (sigv4-streaming): 65 KiB of 'a' in chunks of 64 KiB and 1 KiB,
    /// with the published signatures.
    #[test]
    fn the_aws_streaming_example_verifies() {
        let key = aws_sigv4::sign::v4::generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600),
            "us-east-1",
            "s3",
        );
        let signer = || ChunkSigner {
            key: key.as_ref().to_vec(),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            prev: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        };
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend(std::iter::repeat_n(b'a', 65536));
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend(std::iter::repeat_n(b'a', 1024));
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        for step in [1, 7, 1000, body.len()] {
            let d = ChunkDecoder::new(true, false, Some(signer()));
            let (data, trailers) = decode_in_pieces(&body, step, d).unwrap();
            assert_eq!(data.len(), 66560);
            assert!(trailers.is_empty());
        }
        // One byte changed: the chunk's signature no longer matches.
        let mut tampered = body.clone();
        tampered[200] = b'b';
        let d = ChunkDecoder::new(true, false, Some(signer()));
        let e = decode_in_pieces(&tampered, 4096, d).err().unwrap();
        assert_eq!(e.code, "SignatureDoesNotMatch");
        // Without a key (any credentials accepted) it decodes without checking.
        let d = ChunkDecoder::new(true, false, None);
        assert_eq!(decode_in_pieces(&tampered, 4096, d).unwrap().0.len(), 66560);
        // Cut short.
        let d = ChunkDecoder::new(true, false, None);
        assert_eq!(
            decode_in_pieces(&body[..body.len() - 100], 4096, d)
                .err()
                .unwrap()
                .code,
            "IncompleteBody"
        );
    }

    #[test]
    fn unsigned_chunks_with_a_trailer() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for step in [1, 3, body.len()] {
            let d = ChunkDecoder::new(false, true, None);
            let (data, trailers) = decode_in_pieces(body, step, d).unwrap();
            assert_eq!(data, b"hello world");
            assert_eq!(
                trailers,
                [("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
            );
        }
        for bad_body in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"2\r\nhello\r\n0\r\n\r\n"] {
            let d = ChunkDecoder::new(false, true, None);
            assert!(decode_in_pieces(bad_body, 4, d).is_err());
        }
    }
}
