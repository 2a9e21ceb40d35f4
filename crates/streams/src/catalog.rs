//! The catalog: stream and shard metadata in an embedded ACID store (redb), one
//! transaction per change, so a crash leaves either the old or the new state of a stream.
//! The same database holds stream consumers' checkpoints (`checkpoint.rs`).

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::error::StreamsError;
use crate::meta::StreamMeta;

const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub struct Catalog {
    pub(crate) db: Database,
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog, StreamsError> {
        let db = Database::create(path).map_err(StreamsError::catalog)?;
        let tx = db.begin_write().map_err(StreamsError::catalog)?;
        tx.open_table(STREAMS).map_err(StreamsError::catalog)?;
        tx.open_table(COUNTERS).map_err(StreamsError::catalog)?;
        tx.open_table(crate::checkpoint::CHECKPOINTS)
            .map_err(StreamsError::catalog)?;
        tx.open_table(crate::checkpoint::CONSUMER_STATE)
            .map_err(StreamsError::catalog)?;
        tx.commit().map_err(StreamsError::catalog)?;
        Ok(Catalog { db })
    }

    pub fn load_all(&self) -> Result<Vec<StreamMeta>, StreamsError> {
        let tx = self.db.begin_read().map_err(StreamsError::catalog)?;
        let table = tx.open_table(STREAMS).map_err(StreamsError::catalog)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(StreamsError::catalog)? {
            let (_, v) = row.map_err(StreamsError::catalog)?;
            out.push(serde_json::from_slice(v.value()).map_err(StreamsError::catalog)?);
        }
        Ok(out)
    }

    /// Stores `meta`, replacing any stream of that name.
    pub fn put(&self, meta: &StreamMeta) -> Result<(), StreamsError> {
        let bytes = serde_json::to_vec(meta).map_err(StreamsError::catalog)?;
        let tx = self.db.begin_write().map_err(StreamsError::catalog)?;
        tx.open_table(STREAMS)
            .map_err(StreamsError::catalog)?
            .insert(meta.name.as_str(), bytes.as_slice())
            .map_err(StreamsError::catalog)?;
        tx.commit().map_err(StreamsError::catalog)
    }

    /// Removes the stream `name` and, in the same transaction, every consumer's checkpoints
    /// of it.
    pub fn remove(&self, name: &str) -> Result<(), StreamsError> {
        let tx = self.db.begin_write().map_err(StreamsError::catalog)?;
        tx.open_table(STREAMS)
            .map_err(StreamsError::catalog)?
            .remove(name)
            .map_err(StreamsError::catalog)?;
        Catalog::remove_checkpoints_of(&tx, name)?;
        tx.commit().map_err(StreamsError::catalog)
    }

    /// Returns the next value of a named counter, durably.
    pub fn next_id(&self, counter: &str) -> Result<u64, StreamsError> {
        let tx = self.db.begin_write().map_err(StreamsError::catalog)?;
        let next = {
            let mut table = tx.open_table(COUNTERS).map_err(StreamsError::catalog)?;
            let next = table
                .get(counter)
                .map_err(StreamsError::catalog)?
                .map(|v| v.value())
                .unwrap_or(0)
                + 1;
            table.insert(counter, next).map_err(StreamsError::catalog)?;
            next
        };
        tx.commit().map_err(StreamsError::catalog)?;
        Ok(next)
    }
}
