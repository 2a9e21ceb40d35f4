//! A damaged catalog is an error when the registry opens, never a panic when a stream is used.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use redb::{ReadableTable, TableDefinition};
use sluice_streams::{StreamMode, StreamName, StreamSpec, Streams, StreamsConfig, SystemClock};

const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");

fn make_stream(dir: &std::path::Path) {
    let streams = Streams::open(StreamsConfig::new(dir), Arc::new(SystemClock)).unwrap();
    streams
        .create_stream(
            &StreamName::new("s").unwrap(),
            StreamSpec {
                shard_count: 2,
                mode: StreamMode::Provisioned,
                max_record_size_kib: 1024,
                tags: Default::default(),
            },
        )
        .unwrap();
    streams.close();
}

/// Rewrites the stored metadata of stream `s` with `edit`.
fn damage(dir: &std::path::Path, edit: impl Fn(String) -> Vec<u8>) {
    let db = redb::Database::open(dir.join("catalog.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(STREAMS).unwrap();
        let json = String::from_utf8(t.get("s").unwrap().unwrap().value().to_vec()).unwrap();
        let damaged = edit(json);
        t.insert("s", damaged.as_slice()).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn a_damaged_hash_key_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    make_stream(dir.path());
    damage(dir.path(), |json| {
        assert!(json.contains("\"hash_start\":\"0\""), "{json}");
        json.replacen("\"hash_start\":\"0\"", "\"hash_start\":\"zero\"", 1)
            .into_bytes()
    });
    let Err(err) = Streams::open(StreamsConfig::new(dir.path()), Arc::new(SystemClock)) else {
        panic!("opening a damaged catalog must fail");
    };
    assert!(err.to_string().contains("hash key"), "{err}");
}

#[test]
fn garbage_metadata_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    make_stream(dir.path());
    damage(dir.path(), |_| b"\x00not json".to_vec());
    assert!(Streams::open(StreamsConfig::new(dir.path()), Arc::new(SystemClock)).is_err());
}

#[test]
fn an_intact_catalog_opens() {
    let dir = tempfile::tempdir().unwrap();
    make_stream(dir.path());
    damage(dir.path(), String::into_bytes);
    let streams = Streams::open(StreamsConfig::new(dir.path()), Arc::new(SystemClock)).unwrap();
    assert_eq!(streams.names(), vec!["s".to_string()]);
    let view = streams.describe("s").unwrap();
    assert_eq!(view.shards.len(), 2);
}
