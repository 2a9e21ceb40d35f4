//! Loads against a real PostgreSQL (see `common/mod.rs`): every format and column type, the
//! bookkeeping that makes a second load of an object a no-op, records that do not convert,
//! retries, and PostgreSQL stopped (`pg_ctl stop -m immediate`) and started again in the
//! middle of a load: every row arrives exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{PgServer, PASSWORD, USER};
use sluice_pgload::{error_manifest, CopyCommand, ErrorClass, LoadOutcome, Loader, LoaderConfig};

fn loader(pg: &PgServer, stream: &str, retry_seconds: i64) -> Loader {
    Loader::new(
        LoaderConfig::new(stream, &pg.jdbc_url(), USER, PASSWORD, Some(retry_seconds)).unwrap(),
    )
}

fn copy(table: &str, columns: Option<&str>, options: &str) -> CopyCommand {
    CopyCommand::new(table, columns, Some(options)).unwrap()
}

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn loaded_rows(outcome: LoadOutcome) -> u64 {
    match outcome {
        LoadOutcome::Loaded { rows, .. } => rows,
        other => panic!("expected Loaded, got {other:?}"),
    }
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

const EVENTS: &str = "CREATE TABLE events (
    id bigint NOT NULL,
    user_id text,
    amount numeric(12,2),
    ratio double precision,
    score real,
    small smallint,
    n integer,
    ok boolean,
    at timestamptz,
    local_at timestamp,
    day date,
    payload jsonb,
    doc json,
    uid uuid,
    label varchar(8),
    created_at timestamptz DEFAULT now()
)";

/// Each row as text, in a stable order, for comparisons.
async fn event_rows(client: &tokio_postgres::Client, where_: &str) -> Vec<Vec<Option<String>>> {
    let sql = format!(
        "SELECT id::text, user_id, amount::text, ratio::text, score::text, small::text, \
         n::text, ok::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
         local_at::text, day::text, payload::text, doc::text, uid::text, label \
         FROM events WHERE {where_} ORDER BY id"
    );
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..15).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_json_csv_text_and_gzip_objects() {
    let Some(pg) = PgServer::start("loads_json_csv_text_and_gzip_objects") else {
        return;
    };
    let client = pg.client().await;
    client.batch_execute(EVENTS).await.unwrap();
    let loader = loader(&pg, "clicks", 10);

    // JSON 'auto': records concatenated with and without newlines, every type, a key in the
    // wrong case (ignored: 'auto' is case-sensitive), an unknown key, a nested value.
    let body = br#"{"id":1,"user_id":"u1","amount":12.345,"ratio":0.5,"score":1.25,"small":7,"n":-3,"ok":true,"at":"2024-05-01T10:20:30.123456+02:00","local_at":"2024-05-01 10:20:30","day":"2024-05-01","payload":{"a":[1,2],"b":null},"doc":"plain","uid":"00112233-4455-6677-8899-aabbccddeeff","label":"short","extra":1}{"id":2,"USER_ID":"ignored","amount":"99999999.99","ok":"no","payload":[1],"label":null}
{"id":3,"user_id":{"nested":true},"small":"12","at":"2024-05-01 00:00:00","n":1e3}"#;
    let c = copy("events", None, "json 'auto'");
    assert_eq!(
        loaded_rows(
            loader
                .load("obj/json-1", Bytes::from_static(body), &c)
                .await
                .unwrap()
        ),
        3
    );
    let rows = event_rows(&client, "id <= 3").await;
    assert_eq!(
        rows[0],
        vec![
            s("1"),
            s("u1"),
            s("12.35"),
            s("0.5"),
            s("1.25"),
            s("7"),
            s("-3"),
            s("true"),
            s("2024-05-01 08:20:30.123456"),
            s("2024-05-01 10:20:30"),
            s("2024-05-01"),
            s(r#"{"a": [1, 2], "b": null}"#),
            s("\"plain\""),
            s("00112233-4455-6677-8899-aabbccddeeff"),
            s("short"),
        ]
    );
    assert_eq!(rows[1][1], None, "'auto' matches keys case-sensitively");
    assert_eq!(rows[1][2], s("99999999.99"));
    assert_eq!(rows[1][7], s("false"));
    assert_eq!(rows[1][11], s("[1]"));
    assert_eq!(rows[2][1], s(r#"{"nested":true}"#));
    assert_eq!(rows[2][5], s("12"));
    assert_eq!(rows[2][6], s("1000"));
    assert_eq!(rows[2][8], s("2024-05-01 00:00:00.000000"));

    // JSON 'auto ignorecase', GZIP, a column list (created_at takes its DEFAULT).
    let body = gzip(br#"{"ID":10,"User_Id":"u10","AT":1714558830}{"Id":11,"USER_ID":"u11"}"#);
    let c = copy(
        "events",
        Some("id, user_id, at"),
        "format as json 'auto ignorecase' gzip timeformat 'epochsecs'",
    );
    assert_eq!(
        loaded_rows(loader.load("obj/json-2.gz", body, &c).await.unwrap()),
        2
    );
    let rows = event_rows(&client, "id >= 10 AND id < 20").await;
    assert_eq!(rows[0][1], s("u10"));
    assert_eq!(rows[0][8], s("2024-05-01 10:20:30.000000"));
    assert_eq!(rows[1][1], s("u11"));
    let defaulted: bool = client
        .query_one(
            "SELECT bool_and(created_at IS NOT NULL) FROM events WHERE id >= 10",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(defaulted);

    // CSV with a header, quotes, a custom delimiter, NULL AS, a truncated varchar.
    let body = b"id;user_id;label;ok;day\n20;\"u;20\";\"a \"\"long\"\" label\";t;2024-02-29\n21;NULL;x;;\n";
    let c = copy(
        "events",
        Some("id,user_id,label,ok,day"),
        "csv delimiter ';' ignoreheader 1 null as 'NULL' truncatecolumns",
    );
    assert_eq!(
        loaded_rows(
            loader
                .load("obj/csv", Bytes::from_static(body), &c)
                .await
                .unwrap()
        ),
        2
    );
    let rows = event_rows(&client, "id >= 20 AND id < 30").await;
    assert_eq!(rows[0][1], s("u;20"));
    assert_eq!(rows[0][14], s("a \"long\""));
    assert_eq!(rows[0][10], s("2024-02-29"));
    assert_eq!(
        (rows[1][1].clone(), rows[1][7].clone(), rows[1][10].clone()),
        (None, None, None)
    );

    // Redshift's default text format (pipe-delimited, `\N` for NULL), gzipped.
    let body = gzip(b"30|u30|\\N\n31|u31|2.5\n");
    let c = copy("events", Some("id,user_id,ratio"), "gzip");
    assert_eq!(
        loaded_rows(loader.load("obj/text.gz", body, &c).await.unwrap()),
        2
    );
    let rows = event_rows(&client, "id >= 30").await;
    assert_eq!((rows[0][3].clone(), rows[1][3].clone()), (None, s("2.5")));

    // A schema-qualified, quoted table name.
    client
        .batch_execute("CREATE SCHEMA lab; CREATE TABLE lab.\"Clicks\" (\"Page\" text, n int)")
        .await
        .unwrap();
    let c = copy("lab.\"Clicks\"", None, "json 'auto ignorecase'");
    let body = Bytes::from_static(br#"{"page":"/home","N":1}"#);
    assert_eq!(
        loaded_rows(loader.load("obj/clicks", body, &c).await.unwrap()),
        1
    );
    let page: String = client
        .query_one("SELECT \"Page\" FROM lab.\"Clicks\"", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(page, "/home");

    // One bookkeeping row per object, with its row count.
    let book = client
        .query(
            "SELECT object_key, rows FROM sluice_firehose_loads \
             WHERE delivery_stream = 'clicks' ORDER BY object_key",
            &[],
        )
        .await
        .unwrap();
    let book: Vec<(String, i64)> = book.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        book,
        [
            ("obj/clicks".to_string(), 1),
            ("obj/csv".to_string(), 2),
            ("obj/json-1".to_string(), 3),
            ("obj/json-2.gz".to_string(), 2),
            ("obj/text.gz".to_string(), 2),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_load_of_the_same_object_is_skipped() {
    let Some(pg) = PgServer::start("a_second_load_of_the_same_object_is_skipped") else {
        return;
    };
    let client = pg.client().await;
    client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let c = copy("t", None, "json 'auto'");
    let body = Bytes::from_static(br#"{"id":1}{"id":2}"#);

    let first = loader(&pg, "s1", 5);
    assert_eq!(
        loaded_rows(first.load("k", body.clone(), &c).await.unwrap()),
        2
    );
    match first.load("k", body.clone(), &c).await.unwrap() {
        LoadOutcome::AlreadyLoaded { rows, attempts } => assert_eq!((rows, attempts), (2, 1)),
        other => panic!("{other:?}"),
    }
    // A new loader (sluice restarted) finds the bookkeeping row too.
    match loader(&pg, "s1", 5)
        .load("k", body.clone(), &c)
        .await
        .unwrap()
    {
        LoadOutcome::AlreadyLoaded { rows, .. } => assert_eq!(rows, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&client, "t").await, 2);
    // The bookkeeping is per delivery stream.
    assert_eq!(
        loaded_rows(loader(&pg, "s2", 5).load("k", body, &c).await.unwrap()),
        2
    );
    assert_eq!(count(&client, "t").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_do_not_convert_fail_the_object() {
    let Some(pg) = PgServer::start("records_that_do_not_convert_fail_the_object") else {
        return;
    };
    let client = pg.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (id int NOT NULL, name varchar(4), amount numeric CHECK (amount > 0))",
        )
        .await
        .unwrap();
    // A long retry duration: bad data must fail at once anyway.
    let loader = loader(&pg, "s", 600);
    let c = copy("t", None, "json 'auto'");

    let cases: [(&[u8], &str); 4] = [
        (
            br#"{"id":1}{"id":"two"}"#,
            "record 2, column \"id\" (integer): `two` is not an integer",
        ),
        (
            br#"{"id":1}{"name":"x"}"#,
            "record 2, column \"id\" (integer): NULL",
        ),
        (
            br#"{"id":1,"name":"too long"}"#,
            "column \"name\" (character varying(4))",
        ),
        (
            br#"{"id":1}{"id":2,"amount":-5}"#,
            "violates check constraint",
        ),
    ];
    for (body, needle) in cases {
        let started = Instant::now();
        match loader
            .load("bad", Bytes::from_static(body), &c)
            .await
            .unwrap()
        {
            LoadOutcome::Failed { error, attempts } => {
                eprintln!("bad object: {error}");
                assert_eq!(attempts, 1, "{error}");
                assert_eq!(error.class(), ErrorClass::BadData, "{error}");
                assert!(error.to_string().contains(needle), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(
        count(&client, "t").await,
        0,
        "nothing of a failed object is committed"
    );
    assert_eq!(count(&client, "sluice_firehose_loads").await, 0);

    // MAXERROR: bad records skipped and reported, the rest loaded.
    let c = copy("t", None, "json 'auto' maxerror 1");
    match loader
        .load(
            "some-bad",
            Bytes::from_static(br#"{"id":1}{"id":"x"}{"id":3}"#),
            &c,
        )
        .await
        .unwrap()
    {
        LoadOutcome::Loaded {
            rows,
            skipped_records,
            skipped,
            ..
        } => {
            assert_eq!((rows, skipped_records), (2, 1));
            assert_eq!(skipped[0].position.record, 2);
            assert_eq!(skipped[0].column.as_deref(), Some("id"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_retried_until_it_exists() {
    let Some(pg) = PgServer::start("a_missing_table_is_retried_until_it_exists") else {
        return;
    };
    let client = pg.client().await;
    let c = copy("late", None, "json 'auto'");

    // Not there for the whole (short) retry duration: the object fails, retried before.
    match loader(&pg, "s", 1)
        .load("k", Bytes::from_static(br#"{"id":1}"#), &c)
        .await
        .unwrap()
    {
        LoadOutcome::Failed { error, attempts } => {
            assert!(attempts >= 2, "{attempts}");
            assert_eq!(error.class(), ErrorClass::Destination);
            assert!(error.to_string().contains("does not exist"), "{error}");
        }
        other => panic!("{other:?}"),
    }

    // Created while the load retries: the load then succeeds.
    let loader = loader(&pg, "s", 60);
    let load = tokio::spawn(async move {
        loader
            .load("k", Bytes::from_static(br#"{"id":1}"#), &c)
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    client
        .batch_execute("CREATE TABLE late (id int)")
        .await
        .unwrap();
    match load.await.unwrap() {
        LoadOutcome::Loaded { rows, attempts, .. } => {
            assert_eq!(rows, 1);
            assert!(attempts >= 2, "{attempts}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&client, "late").await, 1);
}

/// Waits until the server's COPY has taken at least `tuples` rows (pg_stat_progress_copy).
async fn wait_for_copy_progress(client: &tokio_postgres::Client, tuples: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = client
            .query(
                "SELECT tuples_processed FROM pg_stat_progress_copy WHERE command = 'COPY FROM'",
                &[],
            )
            .await
            .unwrap();
        if rows.iter().any(|r| r.get::<_, i64>(0) >= tuples) {
            return;
        }
        assert!(Instant::now() < deadline, "the COPY never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_load_loads_every_row_exactly_once() {
    let Some(pg) = PgServer::start("a_restart_mid_load_loads_every_row_exactly_once") else {
        return;
    };
    let pg = std::sync::Arc::new(pg);
    let client = pg.client().await;
    client
        .batch_execute("CREATE TABLE big (id bigint NOT NULL, name text, at timestamptz)")
        .await
        .unwrap();
    const N: i64 = 200_000;
    let mut body = Vec::new();
    for i in 0..N {
        writeln!(
            body,
            r#"{{"id":{i},"name":"user-{i}","at":"2024-05-01T10:00:00Z"}}"#
        )
        .unwrap();
    }
    let body = Bytes::from(body);
    let c = copy("big", None, "json 'auto'");

    // 1. PostgreSQL stopped (immediate: a crash) mid-COPY, then started again.
    let loader = std::sync::Arc::new(loader(&pg, "s", 120));
    let load = {
        let (loader, body, c) = (loader.clone(), body.clone(), c.clone());
        tokio::spawn(async move { loader.load("big-1", body, &c).await.unwrap() })
    };
    wait_for_copy_progress(&client, 20_000).await;
    pg.stop_immediate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.start_again();
    match load.await.unwrap() {
        LoadOutcome::Loaded { rows, attempts, .. } => {
            assert_eq!(rows, N as u64);
            assert!(attempts >= 2, "the first attempt was cut short: {attempts}");
        }
        other => panic!("{other:?}"),
    }
    let client = pg.client().await;
    let (rows, distinct): (i64, i64) = {
        let r = client
            .query_one("SELECT count(*), count(DISTINCT id) FROM big", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((rows, distinct), (N, N), "every row exactly once");

    // 2. The loader's backend terminated mid-COPY (a dropped connection).
    let load = {
        let (loader, body, c) = (loader.clone(), body.clone(), c.clone());
        tokio::spawn(async move { loader.load("big-2", body, &c).await.unwrap() })
    };
    wait_for_copy_progress(&client, 20_000).await;
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_progress_copy \
             WHERE command = 'COPY FROM'",
            &[],
        )
        .await
        .unwrap();
    match load.await.unwrap() {
        LoadOutcome::Loaded { rows, attempts, .. } => {
            assert_eq!(rows, N as u64);
            assert!(attempts >= 2, "{attempts}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&client, "big").await, 2 * N);

    // 3. A load of an object already loaded, after the restart: nothing more.
    match loader.load("big-1", body, &c).await.unwrap() {
        LoadOutcome::AlreadyLoaded { rows, .. } => assert_eq!(rows, N as u64),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&client, "big").await, 2 * N);
    let book: i64 = client
        .query_one("SELECT sum(rows)::bigint FROM sluice_firehose_loads", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(book, 2 * N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_for_the_whole_retry_duration_fails_the_object() {
    let Some(pg) = PgServer::start("a_server_down_for_the_whole_retry_duration_fails_the_object")
    else {
        return;
    };
    let client = pg.client().await;
    client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let loader = loader(&pg, "s", 2);
    let c = copy("t", None, "json 'auto'");
    // A first load leaves a connection behind; the server then goes away.
    assert_eq!(
        loaded_rows(
            loader
                .load("a", Bytes::from_static(br#"{"id":1}"#), &c)
                .await
                .unwrap()
        ),
        1
    );
    pg.stop_immediate();
    let started = Instant::now();
    let outcome = loader
        .load(
            "staged/2024/05/01/10/b",
            Bytes::from_static(br#"{"id":2}"#),
            &c,
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    match outcome {
        LoadOutcome::Failed { error, attempts } => {
            assert!(attempts >= 2, "{attempts}");
            assert_eq!(error.class(), ErrorClass::Transient, "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    assert_eq!(
        error_manifest("lake", &["staged/2024/05/01/10/b"]),
        serde_json::json!({"entries": [{"url": "s3://lake/staged/2024/05/01/10/b", "mandatory": true}]})
    );
    pg.start_again();
    let client = pg.client().await;
    assert_eq!(count(&client, "t").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_redshift_urls() {
    let Some(pg) = PgServer::start("passwords_and_redshift_urls") else {
        return;
    };
    let client = pg.client().await;
    client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let c = copy("t", None, "json 'auto'");
    let url = format!(
        "jdbc:redshift://127.0.0.1:{}/postgres?ApplicationName=lab&sslmode=disable",
        pg.port
    );
    let good = Loader::new(LoaderConfig::new("s", &url, USER, PASSWORD, Some(0)).unwrap());
    assert_eq!(
        loaded_rows(
            good.load("k", Bytes::from_static(br#"{"id":1}"#), &c)
                .await
                .unwrap()
        ),
        1
    );
    let bad = Loader::new(LoaderConfig::new("s", &url, USER, "wrong-password", Some(0)).unwrap());
    match bad
        .load("k2", Bytes::from_static(br#"{"id":2}"#), &c)
        .await
        .unwrap()
    {
        LoadOutcome::Failed { error, attempts } => {
            assert_eq!(attempts, 1, "DurationInSeconds 0: no retry");
            assert_eq!(error.class(), ErrorClass::Destination, "{error}");
            assert!(!error.to_string().contains("wrong-password"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&client, "t").await, 1);
}
