//! Server-side encryption against its contract: what is on disk is never the plaintext, reads
//! (whole, ranges, copies, multipart) give the plaintext back, and a damaged file or a wrong
//! or missing key is an error, never garbage.

use super::*;

const ARN: &str = "arn:aws:kms:us-east-1:000000000000:key/k1";
const ARN2: &str = "arn:aws:kms:us-east-1:000000000000:key/k2";

fn conf(arn: &str, alias: Option<&str>, default: bool) -> KeyConfig {
    KeyConfig {
        arn: arn.into(),
        alias: alias.map(str::to_string),
        file: "unused".into(),
        default,
    }
}

fn keys(k1: [u8; 32]) -> Keyring {
    Keyring::from_keys(&[
        (conf(ARN, Some("alias/lake"), true), k1),
        (conf(ARN2, None, false), [2u8; 32]),
    ])
    .unwrap()
}

fn lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::local(dir.path().join("lake"));
    lake.set_keyring(keys([1u8; 32]));
    (dir, lake)
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn on_disk(lake: &Lake, b: &str, k: &str) -> Vec<u8> {
    std::fs::read(lake.root().join(b).join(k)).unwrap()
}

async fn read_range(
    lake: &Lake,
    b: &str,
    k: &str,
    r: Option<ByteRange>,
) -> Result<Vec<u8>, LakeError> {
    let o = lake.open_object(b, k).await?;
    let mut rd = o.read(r);
    let mut out = Vec::new();
    while let Some(c) = rd.next_chunk().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

fn chunk() -> usize {
    sse::CHUNK_BYTES as usize
}

#[tokio::test]
async fn encrypted_objects_round_trip_and_are_ciphertext_on_disk() {
    let (_d, lake) = lake();
    for (i, n) in [0, 1, chunk() - 1, chunk(), chunk() + 1, 3 * chunk() + 17]
        .into_iter()
        .enumerate()
    {
        let data = body(n);
        let k = format!("o{i}");
        lake.put_object_sse(
            "bk1",
            &k,
            Bytes::from(data.clone()),
            Some(Sse::kms("alias/lake")),
        )
        .await
        .unwrap();
        assert_eq!(lake.get_object("bk1", &k).await.unwrap(), data, "size {n}");
        let m = lake.head("bk1", &k).await.unwrap();
        assert_eq!(m.size, n as u64);
        assert_eq!(
            m.etag,
            hex::encode(<md5::Md5 as md5::Digest>::digest(&data))
        );
        assert_eq!(
            m.attrs.sse,
            Some(Sse {
                algorithm: SseAlgorithm::AwsKms,
                key: Some(ARN.into())
            })
        );
        let raw = on_disk(&lake, "bk1", &k);
        assert!(raw.len() > n);
        if n >= 16 {
            assert!(
                !raw.windows(16).any(|w| w == &data[..16]),
                "plaintext on disk"
            );
        }
        let listed = lake.list("bk1", &k).await.unwrap();
        assert_eq!(listed[0].size, n as u64);
    }
    // SSE-S3 takes the default key.
    lake.put_object_sse(
        "bk1",
        "s3",
        Bytes::from_static(b"hello"),
        Some(Sse::aes256()),
    )
    .await
    .unwrap();
    let m = lake.head("bk1", "s3").await.unwrap();
    assert_eq!(
        m.attrs.sse,
        Some(Sse {
            algorithm: SseAlgorithm::Aes256,
            key: Some(ARN.into())
        })
    );
    assert_eq!(lake.get_object("bk1", "s3").await.unwrap(), "hello");
    assert_eq!(
        std::fs::read_dir(lake.tmp_dir()).map_or(0, |d| d.count()),
        0
    );
}

#[tokio::test]
async fn ranges_decrypt_only_what_is_asked() {
    let (_d, lake) = lake();
    let data = body(3 * chunk() + 100);
    lake.put_object_sse("bk1", "r", Bytes::from(data.clone()), Some(Sse::kms(ARN2)))
        .await
        .unwrap();
    let n = data.len() as u64;
    let c = chunk() as u64;
    for r in [
        0..1,
        0..c,
        c - 1..c + 1,
        c..2 * c,
        5..3 * c + 7,
        n - 1..n,
        2 * c + 3..n,
        0..n,
    ] {
        let got = read_range(&lake, "bk1", "r", Some(r.clone()))
            .await
            .unwrap();
        assert_eq!(got, &data[r.start as usize..r.end as usize], "{r:?}");
    }
}

#[tokio::test]
async fn unknown_keys_are_refused_at_write() {
    let (_d, lake) = lake();
    let e = lake
        .put_object_sse(
            "bk1",
            "x",
            Bytes::from_static(b"x"),
            Some(Sse::kms("arn:aws:kms:us-east-1:000000000000:key/nope")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, LakeError::KmsKeyNotFound(_)), "{e:?}");
    // No bucket was made, nothing written.
    assert!(matches!(
        lake.head_bucket("bk1").await,
        Err(LakeError::NoSuchBucket(_))
    ));
    let bare = Lake::local(lake.root().join("other"));
    let e = bare
        .put_object_sse("bk1", "x", Bytes::from_static(b"x"), Some(Sse::aes256()))
        .await
        .unwrap_err();
    assert!(matches!(e, LakeError::NoDefaultKey), "{e:?}");
}

#[tokio::test]
async fn a_tampered_file_is_an_error_never_garbage() {
    let (_d, lake) = lake();
    let data = body(2 * chunk() + 5);
    lake.put_object_sse("bk1", "t", Bytes::from(data.clone()), Some(Sse::aes256()))
        .await
        .unwrap();
    let path = lake.root().join("bk1/t");
    let clean = std::fs::read(&path).unwrap();
    let len = clean.len();
    // A flipped bit in the last chunk: the first chunks still read, the last one fails.
    for at in [len - 1, len - 20, 200] {
        let mut bad = clean.clone();
        bad[at] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let e = lake.get_object("bk1", "t").await.unwrap_err();
        assert!(matches!(e, LakeError::Damaged { .. }), "byte {at}: {e:?}");
    }
    // A flipped bit in the header (the plaintext size): the unwrap fails at open.
    let mut bad = clean.clone();
    bad[20] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        lake.open_object("bk1", "t").await,
        Err(LakeError::Damaged { .. })
    ));
    // Truncated at a chunk boundary, or with a chunk dropped.
    std::fs::write(&path, &clean[..len - 21]).unwrap();
    assert!(lake.get_object("bk1", "t").await.is_err());
    // The clean file still reads (the sidecar no longer describes the rewritten file: the
    // magic does).
    std::fs::write(&path, &clean).unwrap();
    assert_eq!(lake.get_object("bk1", "t").await.unwrap(), data);
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_an_error() {
    let (_d, lake) = lake();
    lake.put_object_sse(
        "bk1",
        "w",
        Bytes::from_static(b"secret"),
        Some(Sse::kms(ARN)),
    )
    .await
    .unwrap();
    // The same ARN with another key file.
    lake.set_keyring(keys([9u8; 32]));
    assert!(matches!(
        lake.get_object("bk1", "w").await,
        Err(LakeError::Damaged { .. })
    ));
    // The key not configured at all.
    lake.set_keyring(Keyring::from_keys(&[(conf(ARN2, None, false), [2u8; 32])]).unwrap());
    let e = lake.get_object("bk1", "w").await.unwrap_err();
    assert!(
        matches!(&e, LakeError::KeyUnavailable { key_arn, .. } if key_arn == ARN),
        "{e:?}"
    );
    // Metadata still answers (as S3's HEAD does without kms:Decrypt).
    assert_eq!(lake.head("bk1", "w").await.unwrap().size, 6);
}

#[tokio::test]
async fn a_crash_before_the_sidecar_still_decrypts() {
    let (_d, lake) = lake();
    lake.put_object_sse(
        "bk1",
        "c/k",
        Bytes::from_static(b"durable"),
        Some(Sse::kms(ARN)),
    )
    .await
    .unwrap();
    // The state a crash between the rename and the sidecar leaves: no sidecar.
    std::fs::remove_file(lake.root().join(".sluice-meta/bk1/c/k")).unwrap();
    let m = lake.head("bk1", "c/k").await.unwrap();
    assert_eq!(m.size, 7);
    assert_eq!(m.attrs.sse.unwrap().key.as_deref(), Some(ARN));
    assert_eq!(lake.get_object("bk1", "c/k").await.unwrap(), "durable");
    // A plain object whose bytes happen to look encrypted, with its sidecar, is served as is.
    let fake = on_disk(&lake, "bk1", "c/k");
    lake.put_object("bk1", "plain", Bytes::from(fake.clone()))
        .await
        .unwrap();
    assert_eq!(lake.get_object("bk1", "plain").await.unwrap(), fake);
}

#[tokio::test]
async fn copies_and_multipart_uploads_stay_encrypted() {
    let (_d, lake) = lake();
    let data = body(chunk() + 3);
    lake.put_object_sse(
        "bk1",
        "src",
        Bytes::from(data.clone()),
        Some(Sse::kms(ARN2)),
    )
    .await
    .unwrap();
    // Without SSE asked, the copy keeps the source's; with it, the copy takes the one asked.
    let m = lake
        .copy_object("bk1", "src", "bk1", "same", None)
        .await
        .unwrap();
    assert_eq!(m.attrs.sse.as_ref().unwrap().key.as_deref(), Some(ARN2));
    assert_eq!(lake.get_object("bk1", "same").await.unwrap(), data);
    let m = lake
        .copy_object_sse("bk1", "src", "bk1", "other", None, Some(Sse::aes256()))
        .await
        .unwrap();
    assert_eq!(
        m.attrs.sse.as_ref().unwrap().algorithm,
        SseAlgorithm::Aes256
    );
    assert_eq!(m.size, data.len() as u64);
    assert_eq!(lake.get_object("bk1", "other").await.unwrap(), data);
    assert_ne!(on_disk(&lake, "bk1", "other")[..], data[..]);
    // A plain copy of a plain object stays plain.
    lake.put_object("bk1", "p", Bytes::from_static(b"plain"))
        .await
        .unwrap();
    let m = lake
        .copy_object("bk1", "p", "bk1", "p2", None)
        .await
        .unwrap();
    assert!(m.attrs.sse.is_none());
    assert_eq!(on_disk(&lake, "bk1", "p2"), b"plain");

    // Multipart: parts are encrypted on disk, the object is too.
    let attrs = ObjectAttrs {
        sse: Some(Sse::kms("alias/lake")),
        ..ObjectAttrs::default()
    };
    let id = lake.create_upload("bk1", "mp", attrs).await.unwrap();
    let p1 = body(limits::PART_BYTES_MIN as usize);
    let p2 = b"tail".to_vec();
    let mut etags = Vec::new();
    for (n, p) in [(1u32, &p1), (2, &p2)] {
        let mut w = lake
            .part_writer("bk1", "mp", &id, n, DigestKinds::default())
            .await
            .unwrap();
        w.write(Bytes::from(p.clone())).await.unwrap();
        let m = w.stage().await.unwrap().commit().await.unwrap();
        assert_eq!(m.size, p.len() as u64);
        etags.push((n, m.etag));
    }
    let page = lake.list_parts("bk1", "mp", &id, 0, 10).await.unwrap();
    assert_eq!(page.parts[1].size, 4);
    let part_file = lake
        .root()
        .join(".sluice-uploads")
        .join(&id)
        .join("00002.part");
    assert_ne!(std::fs::read(part_file).unwrap(), b"tail");
    let m = lake
        .complete_upload("bk1", "mp", &id, &etags)
        .await
        .unwrap();
    assert_eq!(m.attrs.sse.as_ref().unwrap().key.as_deref(), Some(ARN));
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    assert_eq!(m.size, all.len() as u64);
    assert_eq!(lake.get_object("bk1", "mp").await.unwrap(), all);
    let got = read_range(
        &lake,
        "bk1",
        "mp",
        Some(all.len() as u64 - 6..all.len() as u64),
    )
    .await
    .unwrap();
    assert_eq!(got, &all[all.len() - 6..]);
}

#[test]
fn key_configs_and_files_are_checked() {
    let ok = [conf(ARN, Some("alias/a"), true), conf(ARN2, None, false)];
    KeyConfig::validate_all(&ok).unwrap();
    for bad in [
        vec![conf("arn:aws:kms:us-east-1:0:key/x", None, false)],
        vec![conf("arn:aws:s3:us-east-1:000000000000:key/x", None, false)],
        vec![conf(ARN, Some("lake"), false)],
        vec![conf(ARN, None, true), conf(ARN2, None, true)],
        vec![conf(ARN, None, false), conf(ARN, None, false)],
    ] {
        assert!(KeyConfig::validate_all(&bad).is_err(), "{bad:?}");
    }
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.key");
    std::fs::write(&good, format!("{}\n", "ab".repeat(32))).unwrap();
    let short = d.path().join("short.key");
    std::fs::write(&short, "abcd").unwrap();
    let raw = d.path().join("raw.key");
    std::fs::write(&raw, [7u8; 32]).unwrap();
    let with = |f: &str| KeyConfig {
        file: f.into(),
        ..conf(ARN, Some("alias/a"), true)
    };
    let ring = Keyring::load(&[with("good.key")], Some(d.path())).unwrap();
    assert!(ring.has_key(ARN) && ring.has_key("k1") && ring.has_key("alias/a"));
    assert!(ring.has_key("arn:aws:kms:us-east-1:000000000000:alias/a"));
    assert!(!ring.has_key("alias/b"));
    assert_eq!(ring.default_arn(), Some(ARN));
    for f in ["short.key", "raw.key", "missing.key"] {
        let e = Keyring::load(&[with(f)], Some(d.path())).unwrap_err();
        assert!(e.contains(f), "{e}");
    }
}
