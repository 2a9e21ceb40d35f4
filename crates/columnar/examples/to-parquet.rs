//! Converts a JSON Lines file into a Parquet file the way a delivery stream does, for trying a
//! table definition by hand and for the Python read-back test (tests/python/test_columnar.py).
//!
//! ```text
//! cargo run -p sluice-columnar --example to-parquet -- TABLE.json IN.jsonl OUT.parquet \
//!     [--compression SNAPPY|GZIP|UNCOMPRESSED] [--writer-version V1|V2] [--dictionary] \
//!     [--block-size-bytes N] [--page-size-bytes N] \
//!     [--hive [--timestamp-format F]...] [--case-sensitive] [--dots-to-underscores] \
//!     [--map COLUMN=KEY]...
//! ```
//!
//! `TABLE.json` is a `[[tables]]` entry as JSON (`{"database", "name", "columns": [{"name",
//! "type"}]}`), or `{"infer": true}` to infer the schema from the input. Each input line is one
//! record. Records that do not convert are printed to stdout as JSON lines (`index`, `code`,
//! `message`); the last line is a summary (`rows`, `errors`, `bytes`, `columns`).

use std::error::Error;
use std::io::BufRead;

use sluice_columnar::{
    Converter, Deserializer, HiveJsonSerDe, OpenXJsonSerDe, ParquetWriterConfig, Schema,
    TableConfig,
};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: to-parquet TABLE.json IN.jsonl OUT.parquet [options]".into());
    }
    let (table_path, input_path, output_path) = (&args[0], &args[1], &args[2]);
    let mut config = ParquetWriterConfig::default();
    let mut hive = false;
    let mut formats: Vec<String> = Vec::new();
    let mut openx = OpenXJsonSerDe::default();
    let mut rest = args[3..].iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--compression" => config.compression = value()?.parse()?,
            "--writer-version" => config.writer_version = value()?.parse()?,
            "--dictionary" => config.enable_dictionary_compression = true,
            "--block-size-bytes" => config.block_size_bytes = value()?.parse()?,
            "--page-size-bytes" => config.page_size_bytes = value()?.parse()?,
            "--hive" => hive = true,
            "--timestamp-format" => formats.push(value()?.clone()),
            "--case-sensitive" => openx.case_insensitive = false,
            "--dots-to-underscores" => openx.convert_dots_in_json_keys_to_underscores = true,
            "--map" => {
                let (column, key) = value()?.split_once('=').ok_or("--map takes COLUMN=KEY")?;
                openx
                    .column_to_json_key_mappings
                    .insert(column.to_string(), key.to_string());
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let deserializer = if hive {
        Deserializer::Hive(HiveJsonSerDe::new(&formats)?)
    } else {
        Deserializer::OpenX(openx)
    };

    let lines: Vec<Vec<u8>> = std::io::BufReader::new(std::fs::File::open(input_path)?)
        .split(b'\n')
        .collect::<Result<_, _>>()?;
    let table: serde_json::Value = serde_json::from_slice(&std::fs::read(table_path)?)?;
    let schema = if table.get("infer") == Some(&serde_json::Value::Bool(true)) {
        let samples: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        Schema::infer_with(&samples, &deserializer)?
    } else {
        serde_json::from_value::<TableConfig>(table)?.schema()?
    };

    let converter = Converter::new(schema, deserializer, &config)?;
    let file = std::fs::File::create(output_path)?;
    let written = converter.write(file, lines.iter().map(Vec::as_slice))?;
    written.out.sync_all()?;
    for error in &written.errors {
        println!(
            "{}",
            serde_json::json!({
                "index": error.index,
                "code": error.kind.code(),
                "message": error.message,
            })
        );
    }
    let columns: Vec<serde_json::Value> = converter
        .schema()
        .columns()
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "type": c.column_type.to_string()}))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "rows": written.rows,
            "errors": written.errors.len(),
            "bytes": std::fs::metadata(output_path)?.len(),
            "columns": columns,
        })
    );
    Ok(())
}
