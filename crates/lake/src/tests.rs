//! The local lake against its contract: atomic writes that leave nothing behind when they
//! fail, sidecars that never describe the wrong file, multipart uploads, listings.

use super::*;

fn lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::local(dir.path().join("lake"));
    (dir, lake)
}

async fn put(lake: &Lake, b: &str, k: &str, body: &[u8], attrs: ObjectAttrs) -> ObjectMeta {
    let mut w = lake
        .writer(b, k, attrs, DigestKinds::default())
        .await
        .unwrap();
    w.write(Bytes::copy_from_slice(body)).await.unwrap();
    w.stage().await.unwrap().commit().await.unwrap()
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

fn temps(lake: &Lake) -> usize {
    std::fs::read_dir(lake.tmp_dir()).map_or(0, |d| d.count())
}

#[tokio::test]
async fn objects_round_trip_and_list_in_key_order() {
    let (_d, lake) = lake();
    lake.put_object("lake", "b/2", Bytes::from_static(b"two"))
        .await
        .unwrap();
    lake.put_object("lake", "a/1", Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(lake.get_object("lake", "a/1").await.unwrap(), "one");
    let keys: Vec<_> = lake
        .list("lake", "")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["a/1", "b/2"]);
    assert_eq!(lake.list("lake", "b/").await.unwrap().len(), 1);
    assert!(matches!(
        lake.get_object("lake", "c").await,
        Err(LakeError::NoSuchKey { .. })
    ));
    assert!(matches!(
        lake.list("nope", "").await,
        Err(LakeError::NoSuchBucket(_))
    ));
    // The object is a plain file at its key.
    assert_eq!(std::fs::read(lake.root().join("lake/a/1")).unwrap(), b"one");
}

#[test]
fn names_are_checked() {
    assert!(check_bucket("my-data-bucket").is_ok());
    for bad in ["ab", "UPPER", "-x-", "a..b", "a_b"] {
        assert!(check_bucket(bad).is_err(), "{bad}");
    }
    assert!(check_key("2026/11/28/x.parquet").is_ok());
    for bad in ["", "../x", "a//b", "a/./b", "a/.sluice-tmp-1", "dir/"] {
        assert!(check_key(bad).is_err(), "{bad:?}");
    }
    assert!(check_key(&"k".repeat(1024)).is_ok());
    assert!(matches!(
        check_key(&"k".repeat(1025)),
        Err(LakeError::KeyTooLong)
    ));
}

#[tokio::test]
async fn metadata_and_etags_are_kept_beside_the_object() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    assert!(matches!(
        lake.create_bucket("bkt").await,
        Err(LakeError::BucketAlreadyOwnedByYou(_))
    ));
    let mut attrs = ObjectAttrs {
        content_type: Some("text/csv".into()),
        ..ObjectAttrs::default()
    };
    attrs.user.insert("owner".into(), "ana".into());
    let m = put(&lake, "bkt", "x/y.csv", b"a,b\n", attrs.clone()).await;
    assert_eq!(m.etag, md5_hex(b"a,b\n"));
    let h = lake.head("bkt", "x/y.csv").await.unwrap();
    assert_eq!(
        (h.size, h.etag.as_str(), &h.attrs),
        (4, m.etag.as_str(), &attrs)
    );
    // The bucket's directory holds the object and nothing else.
    let names: Vec<_> = std::fs::read_dir(lake.root().join("bkt/x"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["y.csv"]);
    // Listings carry the ETag too.
    let page = lake
        .list_page(
            "bkt",
            &ListQuery {
                max_keys: 10,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects[0].etag, m.etag);
}

#[tokio::test]
async fn a_file_put_there_by_another_program_is_served_with_a_derived_etag() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    let m = put(&lake, "bkt", "k", b"v1", ObjectAttrs::default()).await;
    // Replaced behind the lake's back: the sidecar no longer describes it.
    std::fs::write(lake.root().join("bkt/k.new"), b"version 2").unwrap();
    std::fs::rename(lake.root().join("bkt/k.new"), lake.root().join("bkt/k")).unwrap();
    let h = lake.head("bkt", "k").await.unwrap();
    assert_ne!(h.etag, m.etag);
    assert_eq!(h.size, 9);
    assert_eq!(lake.head("bkt", "k").await.unwrap().etag, h.etag);
    assert_eq!(lake.get_object("bkt", "k").await.unwrap(), "version 2");
}

#[tokio::test]
async fn a_body_not_committed_leaves_nothing() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    put(&lake, "bkt", "k", b"old", ObjectAttrs::default()).await;
    // Dropped mid-body.
    let mut w = lake
        .writer("bkt", "k", ObjectAttrs::default(), DigestKinds::default())
        .await
        .unwrap();
    w.write(Bytes::from(vec![7u8; 3 * 1024 * 1024]))
        .await
        .unwrap();
    drop(w);
    // Staged, then dropped (a digest mismatch).
    let mut w = lake
        .writer(
            "bkt",
            "k",
            ObjectAttrs::default(),
            DigestKinds {
                sha256: true,
                crc32: true,
                crc32c: true,
            },
        )
        .await
        .unwrap();
    w.write(Bytes::from_static(b"new")).await.unwrap();
    let s = w.stage().await.unwrap();
    assert_eq!(s.digests.crc32, Some(crc32fast::hash(b"new")));
    assert_eq!(s.digests.crc32c, Some(crc32c::crc32c(b"new")));
    drop(s);
    // Over the size limit.
    let small = Lake::build(lake.root().to_path_buf(), None, 10);
    let mut w = small
        .writer("bkt", "k", ObjectAttrs::default(), DigestKinds::default())
        .await
        .unwrap();
    assert!(matches!(
        w.write(Bytes::from_static(b"01234567890")).await,
        Err(LakeError::EntityTooLarge { size_max: 10 })
    ));
    drop(w);
    for _ in 0..100 {
        if temps(&lake) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(temps(&lake), 0);
    assert_eq!(lake.get_object("bkt", "k").await.unwrap(), "old");
    // A missing bucket is refused before any body is read.
    assert!(matches!(
        lake.writer("nope", "k", ObjectAttrs::default(), DigestKinds::default())
            .await,
        Err(LakeError::NoSuchBucket(_))
    ));
}

#[tokio::test]
async fn keys_that_are_directories_of_each_other_conflict() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    put(&lake, "bkt", "a/b", b"1", ObjectAttrs::default()).await;
    let mut w = lake
        .writer("bkt", "a", ObjectAttrs::default(), DigestKinds::default())
        .await
        .unwrap();
    w.write(Bytes::from_static(b"2")).await.unwrap();
    assert!(matches!(
        w.stage().await.unwrap().commit().await,
        Err(LakeError::KeyConflict { .. })
    ));
    let mut w = lake
        .writer(
            "bkt",
            "a/b/c",
            ObjectAttrs::default(),
            DigestKinds::default(),
        )
        .await
        .unwrap();
    w.write(Bytes::from_static(b"3")).await.unwrap();
    assert!(matches!(
        w.stage().await.unwrap().commit().await,
        Err(LakeError::KeyConflict { .. })
    ));
    // Once a/b is deleted, its directory goes and a can be an object.
    lake.delete_object("bkt", "a/b").await.unwrap();
    put(&lake, "bkt", "a", b"4", ObjectAttrs::default()).await;
    assert_eq!(lake.get_object("bkt", "a").await.unwrap(), "4");
    assert!(matches!(
        lake.head("bkt", "a/b").await,
        Err(LakeError::NoSuchKey { .. })
    ));
}

#[tokio::test]
async fn buckets_delete_only_when_empty() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    put(&lake, "bkt", "d/e/f", b"1", ObjectAttrs::default()).await;
    assert!(matches!(
        lake.delete_bucket("bkt").await,
        Err(LakeError::BucketNotEmpty(_))
    ));
    lake.delete_object("bkt", "d/e/f").await.unwrap();
    lake.delete_object("bkt", "d/e/f").await.unwrap();
    let names: Vec<_> = lake
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["bkt"]);
    lake.delete_bucket("bkt").await.unwrap();
    assert!(lake.list_buckets().await.unwrap().is_empty());
    assert!(matches!(
        lake.delete_bucket("bkt").await,
        Err(LakeError::NoSuchBucket(_))
    ));
    assert!(matches!(
        lake.delete_object("bkt", "x").await,
        Err(LakeError::NoSuchBucket(_))
    ));
}

#[tokio::test]
async fn listings_follow_s3_order_and_roll_up_prefixes() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    // '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f): a-b and a.txt come before a/...
    let keys = ["a-b", "a.txt", "a/x/1", "a/y", "a0", "b/c/d/e", "c"];
    for k in keys {
        put(&lake, "bkt", k, k.as_bytes(), ObjectAttrs::default()).await;
    }
    let all = |q: ListQuery| {
        let lake = lake.clone();
        async move {
            let mut q = q;
            let mut out = Vec::new();
            for _ in 0..100 {
                let p = lake.list_page("bkt", &q).await.unwrap();
                out.extend(p.objects.into_iter().map(|o| o.key));
                out.extend(p.common_prefixes);
                if !p.truncated {
                    return out;
                }
                q.after = p.next;
            }
            panic!("listing did not end");
        }
    };
    let q = ListQuery {
        max_keys: 2,
        ..ListQuery::default()
    };
    assert_eq!(all(q).await, keys);
    let q = ListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..ListQuery::default()
    };
    let p = lake.list_page("bkt", &q).await.unwrap();
    let got: Vec<_> = p.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(got, ["a-b", "a.txt", "a0", "c"]);
    assert_eq!(p.common_prefixes, ["a/", "b/"]);
    for max in 1..=6 {
        let q = ListQuery {
            delimiter: Some("/".into()),
            max_keys: max,
            ..ListQuery::default()
        };
        assert_eq!(all(q).await.len(), 6, "max {max}");
    }
    let q = ListQuery {
        prefix: "a/".into(),
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..ListQuery::default()
    };
    let p = lake.list_page("bkt", &q).await.unwrap();
    assert_eq!(p.common_prefixes, ["a/x/"]);
    assert_eq!(p.objects[0].key, "a/y");
    // A string prefix that is not a directory, and start-after.
    let q = ListQuery {
        prefix: "a".into(),
        after: Some(Cursor {
            key: "a.txt".into(),
            whole_prefix: false,
        }),
        max_keys: 1000,
        ..ListQuery::default()
    };
    assert_eq!(all(q).await, ["a/x/1", "a/y", "a0"]);
    // Another delimiter.
    let q = ListQuery {
        delimiter: Some("x".into()),
        max_keys: 1000,
        ..ListQuery::default()
    };
    let p = lake.list_page("bkt", &q).await.unwrap();
    assert_eq!(p.common_prefixes, ["a.tx", "a/x"]);
    // An empty directory left behind is not a common prefix.
    std::fs::create_dir_all(lake.root().join("bkt/empty/dir")).unwrap();
    let q = ListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..ListQuery::default()
    };
    let p = lake.list_page("bkt", &q).await.unwrap();
    assert_eq!(p.common_prefixes, ["a/", "b/"]);
}

#[tokio::test]
async fn multipart_uploads_make_one_object() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    let mut attrs = ObjectAttrs::default();
    attrs.user.insert("k".into(), "v".into());
    let id = lake
        .create_upload("bkt", "big/obj", attrs.clone())
        .await
        .unwrap();
    let part = |n: u8, len: usize| vec![n; len];
    let min = limits::PART_BYTES_MIN as usize;
    let mut etags = Vec::new();
    // Out of order, and part 2 uploaded twice: the second wins.
    for (n, body) in [
        (2u32, part(9, min)),
        (1, part(1, min)),
        (2, part(2, min)),
        (3, part(3, 10)),
    ] {
        let mut w = lake
            .part_writer("bkt", "big/obj", &id, n, DigestKinds::default())
            .await
            .unwrap();
        w.write(Bytes::from(body.clone())).await.unwrap();
        let m = w.stage().await.unwrap().commit().await.unwrap();
        assert_eq!(m.etag, md5_hex(&body));
        etags.push((n, m.etag));
    }
    let etag_of = |n: u32| etags.iter().rev().find(|(m, _)| *m == n).unwrap().1.clone();
    let listed = lake
        .list_parts("bkt", "big/obj", &id, 0, 1000)
        .await
        .unwrap();
    assert_eq!(listed.parts.len(), 3);
    assert_eq!(listed.parts[1].etag, etag_of(2));
    let page = lake.list_parts("bkt", "big/obj", &id, 1, 1).await.unwrap();
    assert_eq!((page.parts[0].part_number, page.truncated), (2, true));
    let uploads = lake.list_uploads("bkt", "", None, 10).await.unwrap();
    assert_eq!(uploads.uploads.len(), 1);
    // The checks.
    let wrong = [(1, etag_of(1)), (2, etag_of(1))];
    assert!(matches!(
        lake.complete_upload("bkt", "big/obj", &id, &wrong).await,
        Err(LakeError::InvalidPart { part_number: 2 })
    ));
    let order = [(2, etag_of(2)), (1, etag_of(1))];
    assert!(matches!(
        lake.complete_upload("bkt", "big/obj", &id, &order).await,
        Err(LakeError::InvalidPartOrder)
    ));
    let small = [(3, etag_of(3)), (4, etag_of(3))];
    assert!(matches!(
        lake.complete_upload("bkt", "big/obj", &id, &small).await,
        Err(LakeError::EntityTooSmall { part_number: 3, .. })
    ));
    let missing = [(1, etag_of(1)), (4, etag_of(3))];
    assert!(matches!(
        lake.complete_upload("bkt", "big/obj", &id, &missing).await,
        Err(LakeError::InvalidPart { part_number: 4 })
    ));
    let small = [(1, etag_of(1)), (3, etag_of(3))];
    assert!(lake
        .complete_upload("bkt", "big/obj", &id, &small)
        .await
        .is_ok_and(|m| m.size == min as u64 + 10));
    // Completed: the upload is gone, the object is there (retry the full list on a new one).
    assert!(matches!(
        lake.complete_upload("bkt", "big/obj", &id, &small).await,
        Err(LakeError::NoSuchUpload { .. })
    ));
    let id = lake
        .create_upload("bkt", "big/obj", attrs.clone())
        .await
        .unwrap();
    let mut md5s = Vec::new();
    for n in 1..=3u32 {
        let body = part(n as u8, if n < 3 { min } else { 100 });
        let mut w = lake
            .part_writer("bkt", "big/obj", &id, n, DigestKinds::default())
            .await
            .unwrap();
        w.write(Bytes::from(body.clone())).await.unwrap();
        let m = w.stage().await.unwrap().commit().await.unwrap();
        let mut raw = [0u8; 16];
        hex::decode_to_slice(&m.etag, &mut raw).unwrap();
        md5s.push((n, m.etag, raw));
    }
    let list: Vec<(u32, String)> = md5s
        .iter()
        .map(|(n, e, _)| (*n, format!("\"{e}\"")))
        .collect();
    let m = lake
        .complete_upload("bkt", "big/obj", &id, &list)
        .await
        .unwrap();
    let raws: Vec<[u8; 16]> = md5s.iter().map(|(_, _, r)| *r).collect();
    assert_eq!(m.etag, multipart_etag(&raws));
    assert!(m.etag.ends_with("-3"));
    let h = lake.head("bkt", "big/obj").await.unwrap();
    assert_eq!(
        (h.size, h.parts_count, &h.attrs),
        (2 * min as u64 + 100, Some(3), &attrs)
    );
    let bytes = lake.get_object("bkt", "big/obj").await.unwrap();
    assert_eq!(&bytes[..min], &part(1, min)[..]);
    assert_eq!(&bytes[2 * min..], &part(3, 100)[..]);
    assert!(!multipart::dir_of(&lake, &id).exists());
    // Abort.
    let id = lake
        .create_upload("bkt", "gone", ObjectAttrs::default())
        .await
        .unwrap();
    lake.abort_upload("bkt", "gone", &id).await.unwrap();
    assert!(matches!(
        lake.abort_upload("bkt", "gone", &id).await,
        Err(LakeError::NoSuchUpload { .. })
    ));
    assert!(matches!(
        lake.part_writer("bkt", "gone", &id, 1, DigestKinds::default())
            .await,
        Err(LakeError::NoSuchUpload { .. })
    ));
    assert!(matches!(
        lake.part_writer("bkt", "gone", "../../etc", 1, DigestKinds::default())
            .await,
        Err(LakeError::NoSuchUpload { .. })
    ));
    assert!(matches!(
        lake.part_writer("bkt", "gone", &id, 10_001, DigestKinds::default())
            .await,
        Err(LakeError::InvalidPartNumber { .. })
    ));
}

#[tokio::test]
async fn a_part_replaced_by_an_interrupted_upload_is_not_used() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    let id = lake
        .create_upload("bkt", "k", ObjectAttrs::default())
        .await
        .unwrap();
    let mut w = lake
        .part_writer("bkt", "k", &id, 1, DigestKinds::default())
        .await
        .unwrap();
    w.write(Bytes::from_static(b"one")).await.unwrap();
    let m = w.stage().await.unwrap().commit().await.unwrap();
    // A crash between the part's rename and its record: the record names the old file.
    let dir = multipart::dir_of(&lake, &id);
    std::fs::write(dir.join("00001.part.tmp"), b"ONE!").unwrap();
    std::fs::rename(dir.join("00001.part.tmp"), dir.join("00001.part")).unwrap();
    assert!(matches!(
        lake.complete_upload("bkt", "k", &id, &[(1, m.etag)]).await,
        Err(LakeError::InvalidPart { part_number: 1 })
    ));
    assert!(lake
        .list_parts("bkt", "k", &id, 0, 10)
        .await
        .unwrap()
        .parts
        .is_empty());
}

#[tokio::test]
async fn copies_keep_or_replace_attributes() {
    let (_d, lake) = lake();
    lake.create_bucket("src").await.unwrap();
    lake.create_bucket("dst").await.unwrap();
    let attrs = ObjectAttrs {
        content_type: Some("application/json".into()),
        ..ObjectAttrs::default()
    };
    let m = put(&lake, "src", "a", b"{}", attrs.clone()).await;
    let c = lake
        .copy_object("src", "a", "dst", "b/c", None)
        .await
        .unwrap();
    assert_eq!((c.etag.as_str(), &c.attrs), (m.etag.as_str(), &attrs));
    let c = lake
        .copy_object("src", "a", "src", "a", Some(ObjectAttrs::default()))
        .await
        .unwrap();
    assert_eq!(c.attrs, ObjectAttrs::default());
    assert_eq!(lake.get_object("dst", "b/c").await.unwrap(), "{}");
    assert!(matches!(
        lake.copy_object("src", "nope", "dst", "x", None).await,
        Err(LakeError::NoSuchKey { .. })
    ));
    assert!(matches!(
        lake.copy_object("src", "a", "nope", "x", None).await,
        Err(LakeError::NoSuchBucket(_))
    ));
}

#[tokio::test]
async fn ranges_read_what_was_asked() {
    let (_d, lake) = lake();
    lake.create_bucket("bkt").await.unwrap();
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    put(&lake, "bkt", "k", &body, ObjectAttrs::default()).await;
    let o = lake.open_object("bkt", "k").await.unwrap();
    let mut r = o.read(Some(300_000..700_001));
    let mut got = Vec::new();
    while let Some(c) = r.next_chunk().await {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(got, &body[300_000..700_001]);
    // An opened object reads the version it opened, even once replaced.
    let o = lake.open_object("bkt", "k").await.unwrap();
    put(&lake, "bkt", "k", b"new", ObjectAttrs::default()).await;
    let mut r = o.read(None);
    let mut n = 0;
    while let Some(c) = r.next_chunk().await {
        n += c.unwrap().len();
    }
    assert_eq!(n, body.len());
}

#[tokio::test]
async fn stale_temporary_files_are_swept() {
    let (_d, lake) = lake();
    std::fs::create_dir_all(lake.tmp_dir()).unwrap();
    std::fs::write(lake.tmp_dir().join("fresh"), b"x").unwrap();
    assert_eq!(lake.sweep().await.unwrap(), 0);
    let removed = blocking({
        let lake = lake.clone();
        move || local::sweep_temps(&lake, 0)
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(removed.await.unwrap(), 1);
}
