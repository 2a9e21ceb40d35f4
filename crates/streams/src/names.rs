use std::fmt;

/// A stream name: 1 to 128 characters of `[a-zA-Z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    pub const LEN_MAX: usize = 128;

    pub fn new(name: &str) -> Option<StreamName> {
        let ok = !name.is_empty()
            && name.len() <= Self::LEN_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        ok.then(|| StreamName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A shard id, `shardId-` and twelve digits: the shard's index within its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u32);

impl ShardId {
    const PREFIX: &'static str = "shardId-";

    /// Parses `shardId-` followed by up to twelve digits (leading zeros optional).
    pub fn parse(s: &str) -> Option<ShardId> {
        let digits = s.strip_prefix(Self::PREFIX)?;
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok().map(ShardId)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:012}", Self::PREFIX, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert!(StreamName::new("MyDataStream").is_some());
        assert!(StreamName::new("a.b-c_d9").is_some());
        assert!(StreamName::new(&"x".repeat(128)).is_some());
        assert!(StreamName::new(&"x".repeat(129)).is_none());
        assert!(StreamName::new("").is_none());
        assert!(StreamName::new("has space").is_none());
        assert!(StreamName::new("slash/no").is_none());
    }

    #[test]
    fn shard_ids() {
        assert_eq!(ShardId(0).to_string(), "shardId-000000000000");
        assert_eq!(ShardId(17).to_string(), "shardId-000000000017");
        assert_eq!(ShardId::parse("shardId-000000000017"), Some(ShardId(17)));
        assert_eq!(ShardId::parse("shardId-17"), Some(ShardId(17)));
        assert_eq!(ShardId::parse("shard-000000000017"), None);
        assert_eq!(ShardId::parse("shardId-abc"), None);
    }
}
