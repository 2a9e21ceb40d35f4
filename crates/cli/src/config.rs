//! The server configuration: one TOML file (see `sluice.example.toml`), then `SLUICE_*`
//! environment variables ([`ENV_OVERRIDES`]), then command-line flags, each overriding the one
//! before.
//!
//! Each crate owns its section, as a serde struct with its defaults and `deny_unknown_fields`:
//! `[storage]` is `sluice_log::LogConfig`, `[streams]` `sluice_streams::StreamsConfig`,
//! `[throughput]` and `[on_demand]` its `ThroughputConfig` and `OnDemandScaling`, `[cors]` and
//! `[listener]` `sluice_aws::Cors` and `ListenerLimits`, `[lambda]` `sluice_lambda::LambdaConfig`,
//! `[firehose]` `sluice_firehose::FirehoseConfig`, `[lake]` `sluice_lake::LakeConfig`, each
//! `[[processors]]` table `sluice_jq::ProcessorConfig`, each `[[tables]]` table
//! `sluice_firehose::TableConfig` (sluice-columnar's); [`Config`] only nests them. The
//! file is read into a `toml::Table`, every override is written into that table under its
//! dotted key, and the table is deserialized once: an override goes through the same type
//! checks as the file, and an unknown key anywhere is an error naming it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use sluice_aws::{Cors, ListenerLimits};
use sluice_jq::ProcessorConfig;
use sluice_lambda::LambdaConfig;
use sluice_streams::{LogConfig, OnDemandScaling, StreamsConfig, ThroughputConfig};
use toml::{Table, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub storage: LogConfig,
    /// The registry's limits and delays; its `data_dir`, `log`, `throughput`, `on_demand`,
    /// `account_id` and `region` are not keys of `[streams]` ([`Config::streams_config`] fills
    /// them in from their own sections).
    pub streams: StreamsConfig,
    pub throughput: ThroughputConfig,
    pub on_demand: OnDemandScaling,
    pub cors: Cors,
    pub listener: ListenerLimits,
    /// Lambda: the process pools that run handlers, and functions declared in the file.
    pub lambda: LambdaConfig,
    /// Firehose: delivery streams' buffers, back-pressure and retries (`sluice_firehose`).
    pub firehose: sluice_firehose::FirehoseConfig,
    /// The lake: where objects are (local directory or an S3-compatible endpoint) and how the
    /// S3 API finds buckets in Host headers (`sluice_lake::LakeConfig`).
    pub lake: sluice_lake::LakeConfig,
    /// Processors: jq transforms from one stream into another (`sluice_jq`); none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<ProcessorConfig>,
    /// Tables for Firehose's record format conversion (the Glue tables a
    /// `SchemaConfiguration` names); none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<sluice_firehose::TableConfig>,
    /// A second, TLS listener; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSection>,
    /// With any key listed, every request must carry a valid SigV4 signature by one of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_keys: Vec<AccessKey>,
    /// Keys of the lake's server-side encryption (`sluice_lake::KeyConfig`: a key file in a
    /// KMS key's place); none by default. The files are read when the server starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<sluice_lake::KeyConfig>,
}

/// A second, TLS listener (HTTP/1.1 and HTTP/2 by ALPN). No defaults: all three keys or none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4567)),
            data_dir: PathBuf::from("sluice-data"),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            storage: LogConfig::default(),
            streams: StreamsConfig::default(),
            throughput: ThroughputConfig::default(),
            on_demand: OnDemandScaling::default(),
            cors: Cors::default(),
            listener: ListenerLimits::default(),
            lambda: LambdaConfig::default(),
            firehose: sluice_firehose::FirehoseConfig::default(),
            lake: sluice_lake::LakeConfig::default(),
            processors: Vec::new(),
            tables: Vec::new(),
            tls: None,
            access_keys: Vec::new(),
            keys: Vec::new(),
        }
    }
}

/// How an environment variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    Float,
    /// Comma-separated; blanks around and empty items are dropped (so `""` is an empty list).
    StrList,
}

/// Every environment variable the server reads, with the key it sets. The only list of them:
/// `sluice serve --help` prints it, README and `sluice.example.toml` point there. A key with
/// `[+]` sets a field of one entry appended to that array of tables (`[[access_keys]]`), the
/// same entry for every variable naming it. Other `SLUICE_*` variables are not the server's
/// (`SLUICE_ENDPOINT` is the client commands', `SLUICE_LOG` the log filter) and are ignored.
pub const ENV_OVERRIDES: &[(&str, &str, Kind)] = &[
    ("SLUICE_LISTEN", "listen", Kind::Str),
    ("SLUICE_DATA_DIR", "data_dir", Kind::Str),
    ("SLUICE_ACCOUNT_ID", "account_id", Kind::Str),
    ("SLUICE_REGION", "region", Kind::Str),
    ("SLUICE_SYNC", "storage.sync", Kind::Str),
    ("SLUICE_SHARD_LIMIT", "streams.shard_limit", Kind::Int),
    (
        "SLUICE_UPDATE_DELAY_MS",
        "streams.update_delay_ms",
        Kind::Int,
    ),
    (
        "SLUICE_CONSUMER_DELAY_MS",
        "streams.consumer_delay_ms",
        Kind::Int,
    ),
    (
        "SLUICE_MAINTENANCE_INTERVAL_MS",
        "streams.maintenance_interval_ms",
        Kind::Int,
    ),
    (
        "SLUICE_ENFORCE_THROUGHPUT",
        "throughput.enforce",
        Kind::Bool,
    ),
    (
        "SLUICE_ON_DEMAND_SPLIT_LOAD",
        "on_demand.split_load",
        Kind::Float,
    ),
    (
        "SLUICE_ON_DEMAND_SPLIT_AFTER_MS",
        "on_demand.split_after_ms",
        Kind::Int,
    ),
    (
        "SLUICE_ON_DEMAND_MERGE_LOAD",
        "on_demand.merge_load",
        Kind::Float,
    ),
    (
        "SLUICE_ON_DEMAND_MERGE_AFTER_MS",
        "on_demand.merge_after_ms",
        Kind::Int,
    ),
    (
        "SLUICE_CORS_ALLOWED_ORIGINS",
        "cors.allowed_origins",
        Kind::StrList,
    ),
    ("SLUICE_LAMBDA_PYTHON", "lambda.python", Kind::Str),
    (
        "SLUICE_LAMBDA_MAPPING_STATE_DELAY_MS",
        "lambda.mapping_state_delay_ms",
        Kind::Int,
    ),
    // The lake's remote store ([lake]).
    ("SLUICE_LAKE_ENDPOINT", "lake.endpoint", Kind::Str),
    ("SLUICE_LAKE_REGION", "lake.region", Kind::Str),
    ("SLUICE_LAKE_ACCESS_KEY_ID", "lake.access_key_id", Kind::Str),
    (
        "SLUICE_LAKE_SECRET_ACCESS_KEY",
        "lake.secret_access_key",
        Kind::Str,
    ),
    ("SLUICE_TLS_LISTEN", "tls.listen", Kind::Str),
    ("SLUICE_TLS_CERT_FILE", "tls.cert_file", Kind::Str),
    ("SLUICE_TLS_KEY_FILE", "tls.key_file", Kind::Str),
    (
        "SLUICE_ACCESS_KEY_ID",
        "access_keys[+].access_key_id",
        Kind::Str,
    ),
    (
        "SLUICE_SECRET_ACCESS_KEY",
        "access_keys[+].secret_access_key",
        Kind::Str,
    ),
];

impl Kind {
    fn parse(self, text: &str) -> Result<Value, String> {
        Ok(match self {
            Kind::Str => Value::String(text.into()),
            Kind::Int => Value::Integer(
                text.trim()
                    .parse()
                    .map_err(|_| "not an integer".to_string())?,
            ),
            Kind::Bool => Value::Boolean(match text.trim() {
                "true" => true,
                "false" => false,
                _ => return Err("neither true nor false".into()),
            }),
            Kind::Float => Value::Float(text.trim().parse().map_err(|_| "not a number")?),
            Kind::StrList => Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int => "integer",
            Kind::Bool => "true|false",
            Kind::Float => "number",
            Kind::StrList => "comma-separated list",
        }
    }
}

/// The environment variables, for `sluice serve --help`.
pub fn env_help() -> String {
    let mut s = String::from(
        "Environment variables: each sets the key shown, checked as in the config file, which it\n\
         overrides; --data-dir, --listen and --sync override both.\n",
    );
    for (var, key, kind) in ENV_OVERRIDES {
        s.push_str(&format!("  {var:<33} {key:<34} {}\n", kind.name()));
    }
    s.push_str(
        "  (access_keys[+]: one [[access_keys]] entry added to the file's, from both variables)",
    );
    s
}

/// Writes `value` at a dotted `key` of `table`, creating the tables on the way. `appended`
/// remembers the arrays that already got their `[+]` entry.
fn set_key(
    table: &mut Table,
    key: &str,
    value: Value,
    appended: &mut HashSet<String>,
) -> Result<(), String> {
    let (head, rest) = match key.split_once('.') {
        None => {
            table.insert(key.into(), value);
            return Ok(());
        }
        Some(split) => split,
    };
    let inner = if let Some(array) = head.strip_suffix("[+]") {
        let Value::Array(entries) = table
            .entry(array)
            .or_insert_with(|| Value::Array(Vec::new()))
        else {
            return Err(format!("{array} is not an array of tables"));
        };
        if appended.insert(array.to_string()) {
            entries.push(Value::Table(Table::new()));
        }
        entries.last_mut()
    } else {
        Some(
            table
                .entry(head)
                .or_insert_with(|| Value::Table(Table::new())),
        )
    };
    match inner {
        Some(Value::Table(t)) => set_key(t, rest, value, appended),
        _ => Err(format!("{head} is not a table")),
    }
}

impl Config {
    /// Loads the file (if any), then the environment, then `flags`: (flag as shown in errors,
    /// dotted key, value). Returns a validated configuration.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&str, &str, Value)],
    ) -> anyhow::Result<Config> {
        let file = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                Some((p.display().to_string(), text))
            }
            None => None,
        };
        Config::resolve(
            file.as_ref()
                .map(|(name, text)| (name.as_str(), text.as_str())),
            env,
            flags,
        )
    }

    /// [`Config::load`] on a file's `(name, text)`.
    fn resolve(
        file: Option<(&str, &str)>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&str, &str, Value)],
    ) -> anyhow::Result<Config> {
        let mut table = Table::new();
        // Which source the table has failed to check since (a group of variables such as the
        // TLS ones may fail until its last member is set): named in the error if it still
        // fails at the end.
        let mut failing_since = None;
        if let Some((name, text)) = file {
            // Deserialized straight from the text first, so that an error shows its line.
            toml::from_str::<Config>(text).with_context(|| format!("parsing {name}"))?;
            table = toml::from_str(text).with_context(|| format!("parsing {name}"))?;
            if check(&table).is_err() {
                failing_since = Some(name.to_string());
            }
        }
        let mut overrides = Vec::new();
        for &(var, key, kind) in ENV_OVERRIDES {
            let Some(text) = env(var) else { continue };
            let source = if var.contains("SECRET") {
                format!("{var}=(hidden)")
            } else {
                format!("{var}={text:?}")
            };
            let value = kind.parse(&text).map_err(|e| anyhow!("{source}: {e}"))?;
            overrides.push((source, key, value));
        }
        for (flag, key, value) in flags {
            overrides.push((format!("{flag} {value}"), key, value.clone()));
        }
        let mut appended = HashSet::new();
        for (source, key, value) in overrides {
            set_key(&mut table, key, value, &mut appended).map_err(|e| anyhow!("{source}: {e}"))?;
            match check(&table) {
                Ok(_) => failing_since = None,
                Err(_) => {
                    failing_since.get_or_insert(source);
                }
            }
        }
        check(&table).map_err(|e| match failing_since {
            Some(source) => e.context(source),
            None => e,
        })
    }

    /// Checks what the types cannot: each section's `validate`, and the account id.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account_id must be 12 digits, got {:?}", self.account_id);
        }
        self.throughput
            .validate()
            .map_err(|e| anyhow!("[throughput] {e}"))?;
        self.on_demand
            .validate()
            .map_err(|e| anyhow!("[on_demand] {e}"))?;
        self.cors.validate().map_err(|e| anyhow!("[cors] {e}"))?;
        self.lambda
            .validate()
            .map_err(|e| anyhow!("[lambda] {e}"))?;
        sluice_jq::validate_all(&self.processors).map_err(|e| anyhow!("[[processors]] {e}"))?;
        self.firehose
            .validate()
            .map_err(|e| anyhow!("[firehose] {e}"))?;
        sluice_firehose::conversion::Catalog::check_tables(&self.tables)
            .map_err(|e| anyhow!("[[tables]] {e}"))?;
        self.lake.validate().map_err(|e| anyhow!("[lake] {e}"))?;
        sluice_lake::KeyConfig::validate_all(&self.keys).map_err(|e| anyhow!("[[keys]] {e}"))?;
        Ok(())
    }

    /// The registry's settings: `[streams]` with the other sections it needs moved in.
    pub fn streams_config(&self) -> StreamsConfig {
        StreamsConfig {
            data_dir: self.data_dir.clone(),
            log: self.storage.clone(),
            throughput: self.throughput,
            on_demand: self.on_demand,
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            ..self.streams.clone()
        }
    }
}

/// The table as a validated [`Config`].
fn check(table: &Table) -> anyhow::Result<Config> {
    let config = Config::deserialize(Value::Table(table.clone()))?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn example() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.example.toml");
        std::fs::read_to_string(path).unwrap()
    }

    /// The example with its commented-out optional blocks (`[tls]`, `[[access_keys]]`,
    /// `[[lambda.functions]]`, which have no defaults) uncommented: from their header to the
    /// next line not starting `# `.
    fn uncommented(text: &str) -> String {
        let headers = [
            "# [tls]",
            "# [[access_keys]]",
            "# [[lambda.functions]]",
            "# [[processors]]",
            "# [[tables]]",
            "# [[keys]]",
        ];
        let mut found = 0;
        let mut in_block = false;
        let mut out = String::new();
        for line in text.lines() {
            if headers.contains(&line) {
                found += 1;
                in_block = true;
            }
            match line.strip_prefix("# ") {
                Some(rest) if in_block => out.push_str(rest),
                _ => {
                    in_block = false;
                    out.push_str(line);
                }
            }
            out.push('\n');
        }
        assert_eq!(found, headers.len(), "the example lost an optional block");
        out
    }

    /// The dotted keys of a table's values (`storage.sync`; `access_keys[].access_key_id` for an
    /// array of tables), for comparing a file with the structs.
    fn dotted_keys(table: &Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (k, v) in table {
            let key = format!("{prefix}{k}");
            match v {
                Value::Table(t) => dotted_keys(t, &format!("{key}."), out),
                Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_table) => {
                    for t in a.iter().filter_map(Value::as_table) {
                        dotted_keys(t, &format!("{key}[]."), out);
                    }
                }
                _ => {
                    out.insert(key);
                }
            }
        }
    }

    fn keys_of(table: &Table) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        dotted_keys(table, "", &mut keys);
        keys
    }

    fn serialized(c: &Config) -> Table {
        match Value::try_from(c).unwrap() {
            Value::Table(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn resolve(text: Option<&str>, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::resolve(
            text.map(|t| ("test.toml", t)),
            |k| {
                env.iter()
                    .find(|(v, _)| *v == k)
                    .map(|(_, t)| t.to_string())
            },
            &[],
        )
    }

    /// The drift test: `sluice.example.toml` shows every key of every section, each at its
    /// default, and nothing else. A field added to any crate's struct without a line in the
    /// example fails here, and so does a line for a field that does not exist.
    #[test]
    fn the_example_is_every_key_at_its_default() {
        let text = example();
        let raw: Table = toml::from_str(&text).unwrap();
        let parsed: Config = toml::from_str(&text).unwrap();
        parsed.validate().unwrap();
        let default = serialized(&Config::default());
        let missing: Vec<_> = keys_of(&default)
            .difference(&keys_of(&raw))
            .cloned()
            .collect();
        let unknown: Vec<_> = keys_of(&raw)
            .difference(&keys_of(&default))
            .cloned()
            .collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "sluice.example.toml lacks {missing:?} and has no such fields as {unknown:?}"
        );
        assert_eq!(
            serialized(&parsed),
            default,
            "sluice.example.toml shows a value that is not the default"
        );
    }

    /// The optional blocks, uncommented, parse, and show every key of their structs.
    #[test]
    fn the_examples_optional_blocks_parse() {
        let text = uncommented(&example());
        let raw: Table = toml::from_str(&text).unwrap();
        let parsed: Config = toml::from_str(&text).unwrap();
        assert!(parsed.tls.is_some());
        assert_eq!(parsed.access_keys.len(), 1);
        assert_eq!(parsed.lambda.functions.len(), 1);
        assert_eq!(parsed.processors.len(), 1);
        assert_eq!(parsed.tables.len(), 1);
        assert_eq!(parsed.keys.len(), 1);
        parsed.validate().unwrap();
        assert_eq!(keys_of(&raw), keys_of(&serialized(&parsed)));
        let added: BTreeSet<_> = keys_of(&raw)
            .difference(&keys_of(&toml::from_str(&example()).unwrap()))
            .cloned()
            .collect();
        assert!(
            added.iter().all(|k| k.starts_with("tls.")
                || k.starts_with("access_keys[].")
                || k.starts_with("keys[].")
                || k.starts_with("lambda.functions[].")
                || k.starts_with("processors[].")
                || k.starts_with("tables[].")),
            "{added:?}"
        );
    }

    /// Every variable sets a key that exists, as the type the key has.
    #[test]
    fn the_env_table_names_real_keys() {
        let full = Config {
            tls: Some(TlsSection {
                listen: "127.0.0.1:1".parse().unwrap(),
                cert_file: "c".into(),
                key_file: "k".into(),
            }),
            access_keys: vec![AccessKey {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
            }],
            ..Config::default()
        };
        let table = serialized(&full);
        let mut vars = HashSet::new();
        for (var, key, kind) in ENV_OVERRIDES {
            assert!(var.starts_with("SLUICE_") && vars.insert(var), "{var}");
            let mut value = Some(Value::Table(table.clone()));
            for part in key.split('.') {
                value = match (value, part.strip_suffix("[+]")) {
                    (Some(Value::Table(t)), None) => t.get(part).cloned(),
                    (Some(Value::Table(t)), Some(array)) => match t.get(array) {
                        Some(Value::Array(a)) => a.first().cloned(),
                        _ => None,
                    },
                    _ => None,
                };
            }
            let ok = matches!(
                (kind, value),
                (Kind::Str, Some(Value::String(_)))
                    | (Kind::Int, Some(Value::Integer(_)))
                    | (Kind::Bool, Some(Value::Boolean(_)))
                    | (Kind::Float, Some(Value::Float(_)))
                    | (Kind::StrList, Some(Value::Array(_)))
            );
            assert!(ok, "{var} -> {key} is not a {kind:?} key");
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        for (text, key) in [
            ("listen = \"127.0.0.1:1\"\nlisten_port = 5\n", "listen_port"),
            ("[storage]\nsinc = \"interval\"\n", "sinc"),
            ("[streams]\ndata_dir = \"x\"\n", "data_dir"),
            ("[listener]\nconnections = 5\n", "connections"),
            ("[cors]\norigins = []\n", "origins"),
            ("[metrics]\n", "metrics"),
            ("[lambda]\npythn = \"x\"\n", "pythn"),
            (
                "[[processors]]\nname = \"p\"\nsource = \"a\"\noutput = \"b\"\nprogram = \".\"\nbatchsize = 5\n",
                "batchsize",
            ),
        ] {
            let e = format!("{:#}", resolve(Some(text), &[]).unwrap_err());
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
            assert!(e.contains("test.toml"), "{e}");
        }
    }

    #[test]
    fn values_are_checked_by_the_owning_crate() {
        for (text, wanted) in [
            ("[storage]\nsegment_bytes_max = 100\n", "segment_bytes_max"),
            ("[storage]\nsync = \"sometimes\"\n", "group_commit"),
            (
                "[throughput]\nread_calls_per_sec = 0\n",
                "[throughput] read_calls_per_sec",
            ),
            ("[on_demand]\nmerge_load = 0.9\n", "[on_demand] split_load"),
            ("[on_demand]\nmin_shards = 0\n", "[on_demand] min_shards"),
            (
                "[cors]\nallowed_origins = [\"localhost:3000\"]\n",
                "[cors] allowed_origins",
            ),
            ("account_id = \"12\"\n", "account_id"),
            (
                "[lambda]\nfunction_concurrency_max = 0\n",
                "[lambda] function_concurrency_max",
            ),
            (
                "[[lambda.functions]]\nname = \"f\"\nruntime = \"python3.12\"\nhandler = \"a.b\"\ncode_dir = \".\"\ntimeout_s = 901\n",
                "timeout_s",
            ),
            (
                "[[processors]]\nname = \"p\"\nsource = \"a\"\noutput = \"b\"\nprogram = \"select(.x ==)\"\n",
                "[[processors]] processor \"p\": program does not compile: line 1, column 13",
            ),
            (
                "[[tables]]\ndatabase = \"d\"\nname = \"t\"\ncolumns = [{ name = \"c\", type = \"arr<int>\" }]\n",
                "[[tables]] table d.t: column `c`: invalid column type `arr<int>`",
            ),
            (
                "[[tables]]\ndatabase = \"d\"\nname = \"t\"\ncolumns = [{ name = \"c\", type = \"int\" }]\n[[tables]]\ndatabase = \"D\"\nname = \"T\"\ncolumns = [{ name = \"c\", type = \"int\" }]\n",
                "[[tables]] table D.T is declared twice",
            ),
            (
                "[[processors]]\nname = \"p\"\nsource = \"a\"\noutput = \"b\"\nprogram = \".\"\nbatch_size = 10001\n",
                "batch_size must be 1 to 10000",
            ),
        ] {
            let e = format!("{:#}", resolve(Some(text), &[]).unwrap_err());
            assert!(e.contains(wanted), "{text}: {e}");
        }
    }

    #[test]
    fn new_keys_reach_the_libraries() {
        let c = resolve(
            Some(
                "[storage]\nsync = \"interval\"\nsync_interval_ms = 7\ncommit_bytes_max = 65536\n\
                 recovery_backoff_ms_min = 5\nrecovery_backoff_ms_max = 50\n\
                 [streams]\nshard_limit = 9\n[listener]\nconnections_max = 3\n\
                 [cors]\nmax_age_secs = 60\n",
            ),
            &[],
        )
        .unwrap();
        let s = c.streams_config();
        assert_eq!(
            s.log.sync,
            sluice_streams::SyncPolicy::Interval { interval_ms: 7 }
        );
        assert_eq!(s.log.commit_bytes_max, 65536);
        assert_eq!(
            (s.log.recovery_backoff_ms_min, s.log.recovery_backoff_ms_max),
            (5, 50)
        );
        assert_eq!(s.shard_limit, 9);
        assert_eq!(c.listener.connections_max, 3);
        assert_eq!(c.cors.max_age_secs, 60);
    }

    #[test]
    fn env_overrides() {
        let c = resolve(
            Some("[storage]\nsync_interval_ms = 250\n"),
            &[
                ("SLUICE_LISTEN", "127.0.0.1:9999"),
                ("SLUICE_SYNC", "interval"),
                ("SLUICE_SHARD_LIMIT", "3"),
                ("SLUICE_ENFORCE_THROUGHPUT", "true"),
                ("SLUICE_ON_DEMAND_SPLIT_LOAD", "0.5"),
                ("SLUICE_ENDPOINT", "http://elsewhere:1"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(
            c.storage.sync,
            sluice_streams::SyncPolicy::Interval { interval_ms: 250 }
        );
        assert_eq!(c.streams.shard_limit, 3);
        assert!(c.throughput.enforce);
        assert_eq!(c.on_demand.split_load, 0.5);

        for (env, wanted) in [
            (("SLUICE_SYNC", "sometimes"), "SLUICE_SYNC=\"sometimes\""),
            (
                ("SLUICE_SHARD_LIMIT", "many"),
                "SLUICE_SHARD_LIMIT=\"many\": not an integer",
            ),
            (("SLUICE_SHARD_LIMIT", "-1"), "SLUICE_SHARD_LIMIT"),
            (("SLUICE_LISTEN", "nowhere"), "SLUICE_LISTEN"),
            (
                ("SLUICE_ENFORCE_THROUGHPUT", "yes"),
                "neither true nor false",
            ),
            (
                ("SLUICE_ACCOUNT_ID", "1"),
                "SLUICE_ACCOUNT_ID=\"1\": account_id",
            ),
            (("SLUICE_TLS_LISTEN", "127.0.0.1:1"), "SLUICE_TLS_LISTEN"),
            (
                ("SLUICE_SECRET_ACCESS_KEY", "hush"),
                "SLUICE_SECRET_ACCESS_KEY=(hidden)",
            ),
        ] {
            let e = format!("{:#}", resolve(None, &[env]).unwrap_err());
            assert!(e.contains(wanted), "{env:?}: {e}");
            assert!(!e.contains("hush"), "{e}");
        }
    }

    #[test]
    fn grouped_variables() {
        let c = resolve(
            Some("[[access_keys]]\naccess_key_id = \"A\"\nsecret_access_key = \"a\"\n"),
            &[
                ("SLUICE_ACCESS_KEY_ID", "B"),
                ("SLUICE_SECRET_ACCESS_KEY", "b"),
                ("SLUICE_TLS_LISTEN", "127.0.0.1:4568"),
                ("SLUICE_TLS_CERT_FILE", "cert.pem"),
                ("SLUICE_TLS_KEY_FILE", "key.pem"),
            ],
        )
        .unwrap();
        let keys: Vec<_> = c
            .access_keys
            .iter()
            .map(|k| (k.access_key_id.as_str(), k.secret_access_key.as_str()))
            .collect();
        assert_eq!(keys, [("A", "a"), ("B", "b")]);
        let tls = c.tls.unwrap();
        assert_eq!(tls.listen.port(), 4568);
        assert_eq!(tls.key_file, Path::new("key.pem"));
        // One of a group is not enough.
        let e = format!(
            "{:#}",
            resolve(None, &[("SLUICE_ACCESS_KEY_ID", "B")]).unwrap_err()
        );
        assert!(
            e.contains("SLUICE_ACCESS_KEY_ID") && e.contains("secret_access_key"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_the_environment() {
        let c = Config::resolve(
            None,
            |k| (k == "SLUICE_SYNC").then(|| "group_commit".into()),
            &[("--sync", "storage.sync", Value::String("interval".into()))],
        )
        .unwrap();
        assert_eq!(
            c.storage.sync,
            sluice_streams::SyncPolicy::Interval { interval_ms: 100 }
        );
        let e = Config::resolve(
            None,
            |_| None,
            &[("--sync", "storage.sync", Value::String("never".into()))],
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("--sync \"never\""), "{e:#}");
    }

    #[test]
    fn cors_origins() {
        let c = resolve(
            Some("[cors]\nallowed_origins = [\"http://localhost:3000\"]\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.cors.allowed_origins, ["http://localhost:3000"]);
        let c = resolve(
            None,
            &[(
                "SLUICE_CORS_ALLOWED_ORIGINS",
                " http://a.test:8080, https://b.test ,",
            )],
        )
        .unwrap();
        assert_eq!(
            c.cors.allowed_origins,
            ["http://a.test:8080", "https://b.test"]
        );
        let e = resolve(
            None,
            &[("SLUICE_CORS_ALLOWED_ORIGINS", "http://localhost:3000/")],
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("SLUICE_CORS_ALLOWED_ORIGINS"),
            "{e:#}"
        );
    }
}
