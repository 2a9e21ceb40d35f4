//! The order in which a consumer may read a resharded stream's shards: a shard is ready once
//! each of its parents is finished (read to its end) or gone (removed past retention). Reading
//! in this order keeps every partition key's records in order across splits and merges. The
//! one rule behind [`crate::StreamConsumer`] and `sluice tail` (which applies it to shards
//! listed over the API).

/// Whether a shard with these parents may be read now. `present` says whether a shard still
/// exists; `finished` whether it has been read to its end.
pub fn is_ready(
    parents: [Option<u32>; 2],
    present: impl Fn(u32) -> bool,
    finished: impl Fn(u32) -> bool,
) -> bool {
    parents
        .into_iter()
        .flatten()
        .all(|p| !present(p) || finished(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_first() {
        let present = |i: u32| i < 4;
        // No parents: ready at once.
        assert!(is_ready([None, None], present, |_| false));
        // A split child waits for its parent.
        assert!(!is_ready([Some(0), None], present, |_| false));
        assert!(is_ready([Some(0), None], present, |i| i == 0));
        // A merge child waits for both.
        assert!(!is_ready([Some(1), Some(2)], present, |i| i == 1));
        assert!(is_ready([Some(1), Some(2)], present, |i| i == 1 || i == 2));
        // A parent removed past retention counts as finished.
        assert!(is_ready([Some(9), None], present, |_| false));
    }
}
