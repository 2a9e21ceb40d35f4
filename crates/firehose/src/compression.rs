//! `CompressionFormat`: how a delivered object's bytes are compressed, and the file extension
//! Firehose gives it.
//!
//! - `GZIP`: one gzip member (`.gz`).
//! - `ZIP`: a zip archive of one deflated entry named with a UUID (`.zip`).
//! - `Snappy`: snappy-java's stream format (what Firehose writes, not the official framing
//!   format): the header `0x82 "SNAPPY" 0x00`, version 1 and compatible version 1 as
//!   big-endian `u32`s, then for each block of at most 32 KiB its compressed length
//!   (big-endian `u32`) and the raw snappy block (`.snappy`).
//! - `HADOOP_SNAPPY`: Hadoop's block format (what Hadoop's and Spark's `SnappyCodec` read):
//!   for each block of at most 32 KiB its uncompressed length, its compressed length (both
//!   big-endian `u32`) and the raw snappy block (`.snappy`).

use std::io::Write as _;

use bytes::Bytes;

/// The compression formats of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    #[serde(rename = "UNCOMPRESSED")]
    Uncompressed,
    #[serde(rename = "GZIP")]
    Gzip,
    #[serde(rename = "ZIP")]
    Zip,
    #[serde(rename = "Snappy")]
    Snappy,
    #[serde(rename = "HADOOP_SNAPPY")]
    HadoopSnappy,
}

/// The enum as the API spells it, in the order of the model.
pub const COMPRESSION_NAMES: [&str; 5] = ["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];

/// snappy-java's stream header magic.
pub const SNAPPY_JAVA_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Uncompressed bytes per snappy block (snappy-java's default block size).
pub const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;

impl Compression {
    pub fn parse(s: &str) -> Option<Compression> {
        Some(match s {
            "UNCOMPRESSED" => Compression::Uncompressed,
            "GZIP" => Compression::Gzip,
            "ZIP" => Compression::Zip,
            "Snappy" => Compression::Snappy,
            "HADOOP_SNAPPY" => Compression::HadoopSnappy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Gzip => "GZIP",
            Compression::Zip => "ZIP",
            Compression::Snappy => "Snappy",
            Compression::HadoopSnappy => "HADOOP_SNAPPY",
        }
    }

    /// The extension of objects when `FileExtension` is not set.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy | Compression::HadoopSnappy => ".snappy",
        }
    }

    /// Compresses an object's bytes.
    /// As `compress`, taking the body: UNCOMPRESSED hands it on without a copy.
    pub fn compress_owned(self, data: Vec<u8>) -> Result<Bytes, String> {
        match self {
            Compression::Uncompressed => Ok(Bytes::from(data)),
            _ => self.compress(&data),
        }
    }

    pub fn compress(self, data: &[u8]) -> Result<Bytes, String> {
        let io = |e: std::io::Error| e.to_string();
        Ok(Bytes::from(match self {
            Compression::Uncompressed => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 4 + 64),
                    flate2::Compression::default(),
                );
                e.write_all(data).map_err(io)?;
                e.finish().map_err(io)?
            }
            Compression::Zip => {
                let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(data.len() as u64 >= u32::MAX as u64);
                w.start_file(crate::prefix::uuid_v4(), options)
                    .map_err(|e| e.to_string())?;
                w.write_all(data).map_err(io)?;
                w.finish().map_err(|e| e.to_string())?.into_inner()
            }
            Compression::Snappy => {
                let mut out = Vec::with_capacity(data.len() / 2 + 64);
                out.extend_from_slice(&SNAPPY_JAVA_MAGIC);
                out.extend_from_slice(&1u32.to_be_bytes());
                out.extend_from_slice(&1u32.to_be_bytes());
                let mut enc = snap::raw::Encoder::new();
                for block in data.chunks(SNAPPY_BLOCK_BYTES) {
                    let c = enc.compress_vec(block).map_err(|e| e.to_string())?;
                    out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                    out.extend_from_slice(&c);
                }
                out
            }
            Compression::HadoopSnappy => {
                let mut out = Vec::with_capacity(data.len() / 2 + 64);
                let mut enc = snap::raw::Encoder::new();
                for block in data.chunks(SNAPPY_BLOCK_BYTES) {
                    let c = enc.compress_vec(block).map_err(|e| e.to_string())?;
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                    out.extend_from_slice(&c);
                }
                out
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("{{\"i\":{i}}}\n").into_bytes())
            .collect()
    }

    fn be_u32(b: &[u8], at: usize) -> usize {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    }

    #[test]
    fn gzip_and_zip_round_trip() {
        let data = sample();
        let gz = Compression::Gzip.compress(&data).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);

        let z = Compression::Zip.compress(&data).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(z.to_vec())).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap().len(), 36);
        let mut back = Vec::new();
        entry.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(Compression::Uncompressed.compress(&data).unwrap(), data);
    }

    #[test]
    fn snappy_java_stream_round_trips() {
        let data = sample();
        let s = Compression::Snappy.compress(&data).unwrap();
        assert_eq!(&s[..8], &SNAPPY_JAVA_MAGIC);
        assert_eq!((be_u32(&s, 8), be_u32(&s, 12)), (1, 1));
        let mut back = Vec::new();
        let mut at = 16;
        while at < s.len() {
            let n = be_u32(&s, at);
            back.extend(
                snap::raw::Decoder::new()
                    .decompress_vec(&s[at + 4..at + 4 + n])
                    .unwrap(),
            );
            at += 4 + n;
        }
        assert_eq!(back, data);
    }

    #[test]
    fn hadoop_snappy_round_trips() {
        let data = sample();
        let s = Compression::HadoopSnappy.compress(&data).unwrap();
        let mut back = Vec::new();
        let mut at = 0;
        while at < s.len() {
            let (raw, n) = (be_u32(&s, at), be_u32(&s, at + 4));
            let block = snap::raw::Decoder::new()
                .decompress_vec(&s[at + 8..at + 8 + n])
                .unwrap();
            assert_eq!(block.len(), raw);
            assert!(raw <= SNAPPY_BLOCK_BYTES);
            back.extend(block);
            at += 8 + n;
        }
        assert_eq!(back, data);
    }

    #[test]
    fn names_and_extensions() {
        for n in COMPRESSION_NAMES {
            assert_eq!(Compression::parse(n).unwrap().as_str(), n);
        }
        assert_eq!(Compression::parse("gzip"), None);
        assert_eq!(Compression::Snappy.extension(), ".snappy");
        assert_eq!(Compression::HadoopSnappy.extension(), ".snappy");
    }
}
