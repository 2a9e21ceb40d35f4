//! The server configuration: one TOML file (see `sluice.example.toml`), then `SLUICE_*`
//! environment variables, then command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Where streams, shards and the catalog live.
    pub data_dir: PathBuf,
    /// The account id in ARNs and messages.
    pub account_id: String,
    /// The region in ARNs.
    pub region: String,
    pub storage: StorageConfig,
    pub streams: StreamsSection,
    pub throughput: ThroughputSection,
    pub on_demand: OnDemandSection,
    pub tls: Option<TlsSection>,
    /// With any key listed, every request must carry a valid SigV4 signature by one of them.
    pub access_keys: Vec<AccessKey>,
    pub cors: CorsSection,
}

/// CORS, for the AWS SDK for JavaScript in a web page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsSection {
    /// Origins (`scheme://host[:port]`) a web page may call sluice from; empty: any origin.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `group_commit` (default: acknowledge after fdatasync) or `interval` (acknowledge after
    /// write; fdatasync at most `sync_interval_ms` later).
    pub sync: String,
    pub sync_interval_ms: u64,
    pub segment_bytes_max: u64,
    pub segment_age_ms_max: i64,
    pub index_interval_bytes: u64,
    pub append_queue_depth_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsSection {
    pub shard_limit: u32,
    pub on_demand_stream_limit: u32,
    pub create_delay_ms: i64,
    pub delete_delay_ms: i64,
    /// How long a stream stays UPDATING after a reshard or mode change.
    pub update_delay_ms: i64,
    /// How long a registered consumer stays CREATING (and a deregistered one DELETING).
    pub consumer_delay_ms: i64,
    /// How often retention, state transitions and on-demand scaling run.
    pub maintenance_interval_ms: u64,
}

/// AWS's per-shard quotas; see `sluice.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThroughputSection {
    pub enforce: bool,
    pub write_bytes_per_sec: u64,
    pub write_records_per_sec: u64,
    pub read_calls_per_sec: u64,
    pub read_bytes_per_sec: u64,
}

/// The ON_DEMAND scaler; see `sluice.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnDemandSection {
    pub split_load: f64,
    pub split_after_ms: i64,
    pub merge_load: f64,
    pub merge_after_ms: i64,
    pub min_shards: u32,
}

/// A second, TLS listener (HTTP/1.1 and HTTP/2 by ALPN).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl Default for ThroughputSection {
    fn default() -> Self {
        let t = sluice_streams::ThroughputConfig::default();
        ThroughputSection {
            enforce: t.enforce,
            write_bytes_per_sec: t.write_bytes_per_sec,
            write_records_per_sec: t.write_records_per_sec,
            read_calls_per_sec: t.read_calls_per_sec,
            read_bytes_per_sec: t.read_bytes_per_sec,
        }
    }
}

impl Default for OnDemandSection {
    fn default() -> Self {
        let o = sluice_streams::OnDemandScaling::default();
        OnDemandSection {
            split_load: o.split_load,
            split_after_ms: o.split_after_ms,
            merge_load: o.merge_load,
            merge_after_ms: o.merge_after_ms,
            min_shards: o.min_shards,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:4567".parse().unwrap(),
            data_dir: PathBuf::from("sluice-data"),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            storage: StorageConfig::default(),
            streams: StreamsSection::default(),
            throughput: ThroughputSection::default(),
            on_demand: OnDemandSection::default(),
            tls: None,
            access_keys: Vec::new(),
            cors: CorsSection::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        let log = sluice_streams::LogConfig::default();
        StorageConfig {
            sync: "group_commit".into(),
            sync_interval_ms: 100,
            segment_bytes_max: log.segment_bytes_max,
            segment_age_ms_max: log.segment_age_ms_max,
            index_interval_bytes: log.index_interval_bytes,
            append_queue_depth_max: log.append_queue_depth_max,
        }
    }
}

impl Default for StreamsSection {
    fn default() -> Self {
        StreamsSection {
            shard_limit: 500,
            on_demand_stream_limit: 50,
            create_delay_ms: 0,
            delete_delay_ms: 0,
            update_delay_ms: 0,
            consumer_delay_ms: 0,
            maintenance_interval_ms: 1000,
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// `SLUICE_LISTEN`, `SLUICE_DATA_DIR`, `SLUICE_ACCOUNT_ID`, `SLUICE_REGION`, `SLUICE_SYNC`,
    /// `SLUICE_SHARD_LIMIT`, `SLUICE_ENFORCE_THROUGHPUT`, `SLUICE_UPDATE_DELAY_MS`,
    /// `SLUICE_CONSUMER_DELAY_MS`, `SLUICE_MAINTENANCE_INTERVAL_MS`,
    /// `SLUICE_ON_DEMAND_SPLIT_AFTER_MS`, `SLUICE_ON_DEMAND_MERGE_AFTER_MS`,
    /// `SLUICE_TLS_LISTEN` + `SLUICE_TLS_CERT_FILE` + `SLUICE_TLS_KEY_FILE`,
    /// `SLUICE_ACCESS_KEY_ID` + `SLUICE_SECRET_ACCESS_KEY`,
    /// `SLUICE_CORS_ALLOWED_ORIGINS` (comma-separated; empty: any origin).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("SLUICE_LISTEN") {
            self.listen = v.parse().with_context(|| format!("SLUICE_LISTEN={v}"))?;
        }
        if let Some(v) = get("SLUICE_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("SLUICE_ACCOUNT_ID") {
            self.account_id = v;
        }
        if let Some(v) = get("SLUICE_REGION") {
            self.region = v;
        }
        if let Some(v) = get("SLUICE_SYNC") {
            self.storage.sync = v;
        }
        if let Some(v) = get("SLUICE_SHARD_LIMIT") {
            self.streams.shard_limit = v
                .parse()
                .with_context(|| format!("SLUICE_SHARD_LIMIT={v}"))?;
        }
        fn parse<T: std::str::FromStr>(key: &str, v: String) -> anyhow::Result<T>
        where
            T::Err: std::error::Error + Send + Sync + 'static,
        {
            v.parse().with_context(|| format!("{key}={v}"))
        }
        if let Some(v) = get("SLUICE_ENFORCE_THROUGHPUT") {
            self.throughput.enforce = parse("SLUICE_ENFORCE_THROUGHPUT", v)?;
        }
        if let Some(v) = get("SLUICE_UPDATE_DELAY_MS") {
            self.streams.update_delay_ms = parse("SLUICE_UPDATE_DELAY_MS", v)?;
        }
        if let Some(v) = get("SLUICE_CONSUMER_DELAY_MS") {
            self.streams.consumer_delay_ms = parse("SLUICE_CONSUMER_DELAY_MS", v)?;
        }
        if let Some(v) = get("SLUICE_MAINTENANCE_INTERVAL_MS") {
            self.streams.maintenance_interval_ms = parse("SLUICE_MAINTENANCE_INTERVAL_MS", v)?;
        }
        if let Some(v) = get("SLUICE_ON_DEMAND_SPLIT_AFTER_MS") {
            self.on_demand.split_after_ms = parse("SLUICE_ON_DEMAND_SPLIT_AFTER_MS", v)?;
        }
        if let Some(v) = get("SLUICE_ON_DEMAND_MERGE_AFTER_MS") {
            self.on_demand.merge_after_ms = parse("SLUICE_ON_DEMAND_MERGE_AFTER_MS", v)?;
        }
        if let (Some(listen), Some(cert), Some(key)) = (
            get("SLUICE_TLS_LISTEN"),
            get("SLUICE_TLS_CERT_FILE"),
            get("SLUICE_TLS_KEY_FILE"),
        ) {
            self.tls = Some(TlsSection {
                listen: parse("SLUICE_TLS_LISTEN", listen)?,
                cert_file: cert.into(),
                key_file: key.into(),
            });
        }
        if let (Some(id), Some(secret)) =
            (get("SLUICE_ACCESS_KEY_ID"), get("SLUICE_SECRET_ACCESS_KEY"))
        {
            self.access_keys.push(AccessKey {
                access_key_id: id,
                secret_access_key: secret,
            });
        }
        if let Some(v) = get("SLUICE_CORS_ALLOWED_ORIGINS") {
            self.cors.allowed_origins = v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account_id must be 12 digits, got {:?}", self.account_id);
        }
        self.sync_policy()?;
        if self.storage.segment_bytes_max < 4096 {
            bail!("storage.segment_bytes_max must be at least 4096");
        }
        let t = &self.throughput;
        if [
            t.write_bytes_per_sec,
            t.write_records_per_sec,
            t.read_calls_per_sec,
            t.read_bytes_per_sec,
        ]
        .contains(&0)
        {
            bail!("throughput quotas must be above zero");
        }
        let o = &self.on_demand;
        if !(o.merge_load >= 0.0 && o.merge_load < o.split_load) || o.min_shards == 0 {
            bail!("on_demand: need 0 <= merge_load < split_load and min_shards >= 1");
        }
        for o in &self.cors.allowed_origins {
            let host = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            if o != "*" && !host.is_some_and(|h| !h.is_empty() && !h.contains('/')) {
                bail!("cors.allowed_origins: {o:?} is not an origin like \"http://localhost:3000\" (scheme://host[:port], no path) or \"*\"");
            }
        }
        Ok(())
    }

    pub fn sync_policy(&self) -> anyhow::Result<sluice_streams::SyncPolicy> {
        Ok(match self.storage.sync.as_str() {
            "group_commit" => sluice_streams::SyncPolicy::GroupCommit,
            "interval" => sluice_streams::SyncPolicy::Interval {
                interval_ms: self.storage.sync_interval_ms,
            },
            other => bail!("storage.sync must be \"group_commit\" or \"interval\", got {other:?}"),
        })
    }

    pub fn streams_config(&self) -> anyhow::Result<sluice_streams::StreamsConfig> {
        let mut c = sluice_streams::StreamsConfig::new(&self.data_dir);
        c.log.sync = self.sync_policy()?;
        c.log.segment_bytes_max = self.storage.segment_bytes_max;
        c.log.segment_age_ms_max = self.storage.segment_age_ms_max;
        c.log.index_interval_bytes = self.storage.index_interval_bytes;
        c.log.append_queue_depth_max = self.storage.append_queue_depth_max;
        c.shard_limit = self.streams.shard_limit;
        c.on_demand_stream_limit = self.streams.on_demand_stream_limit;
        c.create_delay_ms = self.streams.create_delay_ms;
        c.delete_delay_ms = self.streams.delete_delay_ms;
        c.update_delay_ms = self.streams.update_delay_ms;
        c.consumer_delay_ms = self.streams.consumer_delay_ms;
        let t = &self.throughput;
        c.throughput = sluice_streams::ThroughputConfig {
            enforce: t.enforce,
            write_bytes_per_sec: t.write_bytes_per_sec,
            write_records_per_sec: t.write_records_per_sec,
            read_calls_per_sec: t.read_calls_per_sec,
            read_bytes_per_sec: t.read_bytes_per_sec,
        };
        let o = &self.on_demand;
        c.on_demand = sluice_streams::OnDemandScaling {
            split_load: o.split_load,
            split_after_ms: o.split_after_ms,
            merge_load: o.merge_load,
            merge_after_ms: o.merge_after_ms,
            min_shards: o.min_shards,
        };
        c.account_id = self.account_id.clone();
        c.region = self.region.clone();
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c: Config = toml::from_str(&text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.listen.port(), 4567);
        assert_eq!(c.storage.sync, "group_commit");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisten_port = 5\n").is_err());
        assert!(toml::from_str::<Config>("[storage]\nsinc = \"interval\"\n").is_err());
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "SLUICE_LISTEN" => Some("127.0.0.1:9999".into()),
            "SLUICE_SYNC" => Some("interval".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(
            c.sync_policy().unwrap(),
            sluice_streams::SyncPolicy::Interval { interval_ms: 100 }
        );
        c.storage.sync = "sometimes".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn cors_origins() {
        let c: Config =
            toml::from_str("[cors]\nallowed_origins = [\"http://localhost:3000\"]\n").unwrap();
        assert_eq!(c.cors.allowed_origins, ["http://localhost:3000"]);
        c.validate().unwrap();
        let mut c = Config::default();
        assert!(c.cors.allowed_origins.is_empty());
        c.apply_env(|k| {
            (k == "SLUICE_CORS_ALLOWED_ORIGINS")
                .then(|| " http://a.test:8080, https://b.test ,".into())
        })
        .unwrap();
        assert_eq!(
            c.cors.allowed_origins,
            ["http://a.test:8080", "https://b.test"]
        );
        c.validate().unwrap();
        c.cors.allowed_origins = vec!["http://localhost:3000/".into()];
        assert!(c.validate().is_err());
        c.cors.allowed_origins = vec!["localhost:3000".into()];
        assert!(c.validate().is_err());
    }
}
