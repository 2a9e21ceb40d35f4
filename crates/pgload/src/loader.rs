//! [`Loader`]: one delivery stream's loads, one object at a time, each in one transaction with
//! its bookkeeping row, retried while `RetryOptions.DurationInSeconds` lasts.
//!
//! An attempt: connect (or reuse the connection of the last good load), make sure the
//! bookkeeping table exists, `BEGIN`, insert the object's bookkeeping row (`ON CONFLICT DO
//! NOTHING`: a row already there means the object was loaded, and the attempt stops there),
//! look the table up, `COPY ... FROM STDIN (FORMAT binary)` the rows as the blocking pool
//! parses them (bounded batches through a bounded channel), set the row count, `COMMIT`.
//! The rows and the bookkeeping row commit together or not at all, so a retry after a crash
//! or a restart of PostgreSQL (at any point, the commit's answer lost included) neither loses
//! nor duplicates rows. A failed attempt drops its connection (the server rolls back).

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, NoTls};

use crate::error::{ErrorClass, LoadError, RecordError};
use crate::jdbc::JdbcUrl;
use crate::limits;
use crate::options::CopyCommand;
use crate::rows::{self, Plan, Summary};
use crate::table::Target;
use crate::value::Cell;

/// The bookkeeping table, created (in the first schema of the connection's `search_path`) if
/// missing. An administrator may create it beforehand instead, for a user without CREATE.
pub const BOOKKEEPING_TABLE: &str = "sluice_firehose_loads";

const BOOKKEEPING_DDL: &str = "CREATE TABLE IF NOT EXISTS sluice_firehose_loads (\
    delivery_stream text NOT NULL, \
    object_key text NOT NULL, \
    rows bigint NOT NULL, \
    loaded_at timestamptz NOT NULL DEFAULT now(), \
    PRIMARY KEY (delivery_stream, object_key))";

const BOOKKEEPING_CLAIM: &str = "INSERT INTO sluice_firehose_loads \
    (delivery_stream, object_key, rows, loaded_at) VALUES ($1, $2, 0, now()) \
    ON CONFLICT (delivery_stream, object_key) DO NOTHING";

const BOOKKEEPING_ROWS: &str =
    "SELECT rows FROM sluice_firehose_loads WHERE delivery_stream = $1 AND object_key = $2";

const BOOKKEEPING_DONE: &str = "UPDATE sluice_firehose_loads SET rows = $3, loaded_at = now() \
    WHERE delivery_stream = $1 AND object_key = $2";

/// Why a [`LoaderConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoaderConfigError {
    #[error(transparent)]
    JdbcUrl(#[from] crate::error::JdbcUrlError),
    #[error("RetryOptions.DurationInSeconds must be between 0 and {max}, got {value}")]
    RetryDuration { value: i64, max: u32 },
    #[error("the delivery stream name must not be empty")]
    DeliveryStream,
}

/// One delivery stream's Redshift destination, as the loader uses it.
#[derive(Clone)]
pub struct LoaderConfig {
    /// The bookkeeping rows' `delivery_stream`.
    pub delivery_stream: String,
    pub url: JdbcUrl,
    pub username: String,
    password: String,
    /// `RetryOptions.DurationInSeconds`: how long failed attempts are retried, counted from
    /// the first attempt's start. Zero: one attempt.
    pub retry_duration: Duration,
    /// The most one attempt may take.
    pub attempt_timeout: Duration,
}

impl std::fmt::Debug for LoaderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderConfig")
            .field("delivery_stream", &self.delivery_stream)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("retry_duration", &self.retry_duration)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish()
    }
}

impl LoaderConfig {
    /// From the destination's `ClusterJDBCURL`, `Username`, `Password` and
    /// `RetryOptions.DurationInSeconds` (`None`: Firehose's default, 3600).
    pub fn new(
        delivery_stream: &str,
        cluster_jdbc_url: &str,
        username: &str,
        password: &str,
        retry_duration_seconds: Option<i64>,
    ) -> Result<LoaderConfig, LoaderConfigError> {
        if delivery_stream.is_empty() {
            return Err(LoaderConfigError::DeliveryStream);
        }
        let url = JdbcUrl::parse(cluster_jdbc_url)?;
        let seconds =
            retry_duration_seconds.unwrap_or(i64::from(limits::RETRY_DURATION_SECONDS_DEFAULT));
        if !(0..=i64::from(limits::RETRY_DURATION_SECONDS_MAX)).contains(&seconds) {
            return Err(LoaderConfigError::RetryDuration {
                value: seconds,
                max: limits::RETRY_DURATION_SECONDS_MAX,
            });
        }
        Ok(LoaderConfig {
            delivery_stream: delivery_stream.to_string(),
            url,
            username: username.to_string(),
            password: password.to_string(),
            retry_duration: Duration::from_secs(seconds.unsigned_abs()),
            attempt_timeout: limits::ATTEMPT_TIMEOUT_DEFAULT,
        })
    }
}

/// How a load ended.
#[derive(Debug)]
pub enum LoadOutcome {
    /// The rows are committed with the object's bookkeeping row.
    Loaded {
        rows: u64,
        attempts: u32,
        /// Records skipped under `MAXERROR` (0 without it), and the first of them.
        skipped_records: u64,
        skipped: Vec<RecordError>,
    },
    /// The bookkeeping row was already there: an earlier attempt (perhaps one whose commit's
    /// answer was lost, or another sluice) loaded the object. Nothing was written.
    AlreadyLoaded { rows: u64, attempts: u32 },
    /// The object is skipped: its data is bad ([`ErrorClass::BadData`], not retried) or the
    /// retry duration ran out. Nothing of it was committed; the caller writes its error
    /// manifest ([`crate::error_manifest`]).
    Failed { error: LoadError, attempts: u32 },
}

/// A connection and the task that drives it; dropping it closes the socket at once, so the
/// server rolls back whatever the connection left open.
struct Connection {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Done {
    Loaded { rows: u64, summary: Summary },
    AlreadyLoaded { rows: u64 },
}

/// Loads one delivery stream's objects, one at a time, over one connection kept between
/// loads.
pub struct Loader {
    config: LoaderConfig,
    connection: Mutex<Option<Connection>>,
}

impl Loader {
    pub fn new(config: LoaderConfig) -> Loader {
        Loader {
            config,
            connection: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Loads the staged object `object_key` (its bytes as staged, at most
    /// [`limits::OBJECT_BYTES_MAX`]) into the `copy` command's table. Loads on one loader
    /// run one after another. `Err` only for an object over the size limit; every other
    /// failure is a [`LoadOutcome::Failed`].
    pub async fn load(
        &self,
        object_key: &str,
        body: Bytes,
        copy: &CopyCommand,
    ) -> Result<LoadOutcome, LoadError> {
        if body.len() > limits::OBJECT_BYTES_MAX {
            return Err(LoadError::ObjectTooLarge {
                bytes: body.len(),
                max: limits::OBJECT_BYTES_MAX,
            });
        }
        let mut kept = self.connection.lock().await;
        let deadline = Instant::now() + self.config.retry_duration;
        let mut backoff_ms = limits::BACKOFF_MS_MIN;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // The connection is out of the slot while an attempt uses it, and goes back only
            // after a good one: a failed attempt, or a load whose future is dropped midway,
            // drops it, so the server rolls back what it left open.
            let mut connection = kept.take();
            let attempt = tokio::time::timeout(
                self.config.attempt_timeout,
                self.attempt(&mut connection, object_key, &body, copy),
            )
            .await;
            if matches!(attempt, Ok(Ok(_))) {
                *kept = connection;
            } else {
                drop(connection);
            }
            let error = match attempt {
                Ok(Ok(Done::Loaded { rows, summary })) => {
                    tracing::debug!(
                        delivery_stream = %self.config.delivery_stream,
                        object_key,
                        rows,
                        attempts,
                        "object loaded"
                    );
                    return Ok(LoadOutcome::Loaded {
                        rows,
                        attempts,
                        skipped_records: summary.skipped_count,
                        skipped: summary.skipped,
                    });
                }
                Ok(Ok(Done::AlreadyLoaded { rows })) => {
                    return Ok(LoadOutcome::AlreadyLoaded { rows, attempts })
                }
                Ok(Err(error)) => error,
                Err(_) => LoadError::AttemptTimedOut {
                    after: self.config.attempt_timeout,
                },
            };
            let class = error.class();
            let jitter = rand::thread_rng().gen_range(0..=backoff_ms / 4);
            let wait = Duration::from_millis(backoff_ms + jitter);
            if !class.is_retried()
                || attempts >= limits::ATTEMPTS_MAX
                || Instant::now() + wait > deadline
            {
                tracing::warn!(
                    delivery_stream = %self.config.delivery_stream,
                    object_key,
                    attempts,
                    error = %error,
                    "load failed; the object is skipped"
                );
                return Ok(LoadOutcome::Failed { error, attempts });
            }
            tracing::warn!(
                delivery_stream = %self.config.delivery_stream,
                object_key,
                attempts,
                transient = class == ErrorClass::Transient,
                error = %error,
                "load attempt failed; retrying"
            );
            tokio::time::sleep(wait).await;
            backoff_ms = (backoff_ms * 2).min(limits::BACKOFF_MS_MAX);
        }
    }

    async fn connect(&self) -> Result<Connection, LoadError> {
        let config = self
            .config
            .url
            .config(&self.config.username, &self.config.password);
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| LoadError::postgres("connecting to the cluster", e))?;
        let task = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
        });
        let connection = Connection { client, task };
        let exists: bool = connection
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&BOOKKEEPING_TABLE])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| LoadError::postgres("looking for the bookkeeping table", e))?;
        if !exists {
            // Two loaders creating it at once: the loser's error is retried, and then finds it.
            connection
                .client
                .batch_execute(BOOKKEEPING_DDL)
                .await
                .map_err(|e| LoadError::postgres("creating the bookkeeping table", e))?;
        }
        Ok(connection)
    }

    async fn attempt(
        &self,
        slot: &mut Option<Connection>,
        object_key: &str,
        body: &Bytes,
        copy: &CopyCommand,
    ) -> Result<Done, LoadError> {
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        let connection = match slot {
            Some(connection) => connection,
            None => slot.insert(self.connect().await?),
        };
        let stream = self.config.delivery_stream.as_str();
        let tx = connection
            .client
            .transaction()
            .await
            .map_err(|e| LoadError::postgres("starting the transaction", e))?;
        let claimed = tx
            .execute(BOOKKEEPING_CLAIM, &[&stream, &object_key])
            .await
            .map_err(|e| LoadError::postgres("writing the bookkeeping row", e))?;
        if claimed == 0 {
            let rows: i64 = tx
                .query_one(BOOKKEEPING_ROWS, &[&stream, &object_key])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| LoadError::postgres("reading the bookkeeping row", e))?;
            tx.rollback()
                .await
                .map_err(|e| LoadError::postgres("ending the transaction", e))?;
            return Ok(Done::AlreadyLoaded {
                rows: rows.max(0).unsigned_abs(),
            });
        }
        let target = Target::lookup(&tx, copy).await?;
        let plan = Arc::new(Plan::new(target, copy.options())?);
        let sink = tx
            .copy_in(&plan.target.copy_statement())
            .await
            .map_err(|e| LoadError::postgres("starting the COPY", e))?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &plan.target.types()));

        let (sender, mut receiver) = mpsc::channel::<Batch>(limits::BATCHES_IN_FLIGHT_MAX);
        let parser = {
            let plan = Arc::clone(&plan);
            let body = body.clone();
            let object_key = object_key.to_string();
            tokio::task::spawn_blocking(move || parse(&object_key, &body, &plan, &sender))
        };
        let summary = loop {
            match receiver.recv().await {
                Some(Batch::Rows(batch)) => {
                    for row in &batch {
                        writer
                            .as_mut()
                            .write_raw(row.iter())
                            .await
                            .map_err(|e| LoadError::postgres("writing rows", e))?;
                    }
                }
                Some(Batch::End(result)) => break result?,
                None => {
                    // The parser ended without its last message: it panicked.
                    let reason = match parser.await {
                        Err(e) if e.is_panic() => "reading the object panicked",
                        _ => "reading the object stopped unexpectedly",
                    };
                    return Err(LoadError::Body {
                        object_key: object_key.to_string(),
                        reason: reason.to_string(),
                    });
                }
            }
        };
        let rows = writer
            .as_mut()
            .finish()
            .await
            .map_err(|e| LoadError::postgres("finishing the COPY", e))?;
        let rows_i64 = i64::try_from(rows).unwrap_or(i64::MAX);
        tx.execute(BOOKKEEPING_DONE, &[&stream, &object_key, &rows_i64])
            .await
            .map_err(|e| LoadError::postgres("writing the bookkeeping row", e))?;
        tx.commit()
            .await
            .map_err(|e| LoadError::postgres("committing", e))?;
        Ok(Done::Loaded { rows, summary })
    }
}

/// What the parsing thread hands the connection.
enum Batch {
    Rows(Vec<Vec<Cell>>),
    End(Result<Summary, LoadError>),
}

/// The parsing thread: rows in batches of at most [`limits::BATCH_ROWS_MAX`] rows or
/// [`limits::BATCH_BYTES_MAX`] bytes, then the summary. Stops when the connection side is
/// gone (a failed or abandoned attempt).
fn parse(object_key: &str, body: &[u8], plan: &Plan, sender: &mpsc::Sender<Batch>) {
    let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(limits::BATCH_ROWS_MAX);
    let mut batch_bytes = 0usize;
    let mut open = true;
    let result = rows::read_rows(object_key, body, plan, &mut |row| {
        batch_bytes += row.iter().map(Cell::heap_bytes).sum::<usize>()
            + row.len() * std::mem::size_of::<Cell>();
        batch.push(row);
        if batch.len() >= limits::BATCH_ROWS_MAX || batch_bytes >= limits::BATCH_BYTES_MAX {
            batch_bytes = 0;
            let full = std::mem::replace(&mut batch, Vec::with_capacity(limits::BATCH_ROWS_MAX));
            open = sender.blocking_send(Batch::Rows(full)).is_ok();
        }
        open
    });
    if !open {
        return;
    }
    if result.is_ok() && !batch.is_empty() && sender.blocking_send(Batch::Rows(batch)).is_err() {
        return;
    }
    let _ = sender.blocking_send(Batch::End(result));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, retry_seconds: i64) -> LoaderConfig {
        LoaderConfig::new("stream", url, "u", "secret-password", Some(retry_seconds)).unwrap()
    }

    #[test]
    fn config_checks_the_retry_duration_at_the_limits() {
        let url = "jdbc:postgresql://127.0.0.1/db";
        let max = i64::from(limits::RETRY_DURATION_SECONDS_MAX);
        assert_eq!(config(url, 0).retry_duration, Duration::ZERO);
        assert_eq!(config(url, max).retry_duration, Duration::from_secs(7200));
        assert!(LoaderConfig::new("s", url, "u", "p", Some(max + 1)).is_err());
        assert!(LoaderConfig::new("s", url, "u", "p", Some(-1)).is_err());
        let default = LoaderConfig::new("s", url, "u", "p", None).unwrap();
        assert_eq!(default.retry_duration, Duration::from_secs(3600));
        assert!(!format!("{default:?}").contains("\"p\""));
        assert!(!format!("{:?}", config(url, 0)).contains("secret-password"));
        assert!(LoaderConfig::new("", url, "u", "p", None).is_err());
        assert!(LoaderConfig::new("s", "jdbc:mysql://h/d", "u", "p", None).is_err());
    }

    /// A port nothing listens on: bound, then released.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_after_the_retry_duration() {
        let url = format!("jdbc:postgresql://127.0.0.1:{}/db", closed_port());
        let copy = CopyCommand::new("t", None, Some("json 'auto'")).unwrap();

        let loader = Loader::new(config(&url, 0));
        let outcome = loader
            .load("k", Bytes::from_static(b"{}"), &copy)
            .await
            .unwrap();
        match outcome {
            LoadOutcome::Failed { error, attempts } => {
                assert_eq!(attempts, 1, "DurationInSeconds 0: no retry");
                assert_eq!(error.class(), ErrorClass::Transient, "{error}");
                assert!(error.to_string().contains("connecting"), "{error}");
            }
            other => panic!("{other:?}"),
        }

        let loader = Loader::new(config(&url, 1));
        let started = Instant::now();
        let outcome = loader
            .load("k", Bytes::from_static(b"{}"), &copy)
            .await
            .unwrap();
        let elapsed = started.elapsed();
        match outcome {
            LoadOutcome::Failed { attempts, .. } => assert!(attempts >= 2, "{attempts}"),
            other => panic!("{other:?}"),
        }
        assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
    }

    #[tokio::test]
    async fn objects_over_the_limit_are_refused_before_any_attempt() {
        let loader = Loader::new(config("jdbc:postgresql://127.0.0.1:1/db", 0));
        let copy = CopyCommand::new("t", None, None).unwrap();
        let at = Bytes::from(vec![b'x'; limits::OBJECT_BYTES_MAX]);
        // At the limit the load is attempted (and fails to connect).
        assert!(matches!(
            loader.load("k", at, &copy).await,
            Ok(LoadOutcome::Failed { .. })
        ));
        let past = Bytes::from(vec![b'x'; limits::OBJECT_BYTES_MAX + 1]);
        assert!(matches!(
            loader.load("k", past, &copy).await,
            Err(LoadError::ObjectTooLarge { .. })
        ));
    }

    #[test]
    fn parsed_rows_come_in_bounded_batches() {
        use crate::table::{Kind, TargetColumn};
        use tokio_postgres::types::Type;
        let target = Target {
            table: "t".into(),
            columns: vec![TargetColumn {
                name: "id".into(),
                kind: Kind::Int4,
                pg_type: Type::INT4,
                not_null: false,
                chars_max: None,
                type_name: "integer".into(),
            }],
        };
        let copy = CopyCommand::new("t", None, Some("json 'auto'")).unwrap();
        let plan = Plan::new(target, copy.options()).unwrap();
        let rows = 2 * limits::BATCH_ROWS_MAX + 1;
        let body: String = (0..rows).map(|i| format!("{{\"id\":{i}}}")).collect();
        let (sender, mut receiver) = mpsc::channel(limits::BATCHES_IN_FLIGHT_MAX);
        let thread = std::thread::spawn(move || parse("k", body.as_bytes(), &plan, &sender));
        let mut sizes = Vec::new();
        loop {
            match receiver.blocking_recv() {
                Some(Batch::Rows(batch)) => sizes.push(batch.len()),
                Some(Batch::End(result)) => {
                    assert_eq!(result.unwrap().records, rows as u64);
                    break;
                }
                None => panic!("no end"),
            }
        }
        thread.join().unwrap();
        assert_eq!(
            sizes,
            [limits::BATCH_ROWS_MAX, limits::BATCH_ROWS_MAX, 1],
            "a batch holds at most BATCH_ROWS_MAX rows"
        );
    }

    #[test]
    fn load_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let loader = Loader::new(config("jdbc:postgresql://127.0.0.1:1/db", 0));
        let copy = CopyCommand::new("t", None, None).unwrap();
        let future = loader.load("k", Bytes::new(), &copy);
        assert_send(&future);
    }
}
