//! `sluice logs FUNCTION [--follow]`: prints a Lambda function's log,
//! `<data_dir>/lambda/logs/<name>.log` (what its processes print, with Lambda's START, END and
//! REPORT lines), and with `--follow` keeps printing what is appended, as `tail -f` does.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::LogsArgs;

/// How often `--follow` looks for more.
const FOLLOW_POLL_MS: u64 = 200;
/// Bytes read at most per look.
const READ_BYTES_MAX: usize = 1 << 20;

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    if sluice_lambda::names::FunctionName::new(&args.function).is_none() {
        bail!(
            "{:?} is not a function name (1 to 64 of a-z, A-Z, 0-9, - and _)",
            args.function
        );
    }
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok(), &[])?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    let path = sluice_lambda::log_file(&config.data_dir, &args.function);
    let follow = args.follow;
    tokio::task::spawn_blocking(move || print(&path, follow)).await?
}

fn print(path: &Path, follow: bool) -> anyhow::Result<()> {
    let mut file = loop {
        match std::fs::File::open(path) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {
                std::thread::sleep(Duration::from_millis(FOLLOW_POLL_MS));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "no log at {} (the function has not run yet, or the data directory is another: see --data-dir)",
                    path.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut position = 0u64;
    let mut buf = vec![0u8; READ_BYTES_MAX];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n > 0 {
            position += n as u64;
            out.write_all(&buf[..n])?;
            continue;
        }
        if !follow {
            return Ok(());
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(FOLLOW_POLL_MS));
        // Truncated or replaced: start again from its beginning.
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < position {
            file.seek(SeekFrom::Start(0))?;
            position = 0;
        }
    }
}
