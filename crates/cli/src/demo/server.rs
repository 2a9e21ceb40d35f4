//! The demo's server: `sluice serve` of this same binary as a child process, on the demo's
//! data directory and configuration file, its output in `server.log` there. A child rather
//! than the server in this process: its log lines stay out of the progress line, and
//! stopping it is what stopping any sluice is (SIGTERM, then SIGKILL if it hangs).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stopped: bool,
}

impl Server {
    /// Starts `sluice serve --config <config> --data-dir <data_dir> --listen <listen>` and
    /// waits until it listens. `SLUICE_*` variables of this environment are not passed on: the
    /// demo's server is configured by its file alone.
    pub fn start(
        data_dir: &Path,
        config: &Path,
        listen: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("finding the sluice binary")?;
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(listen.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file.try_clone()?));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SLUICE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SLUICE_LOG", "info").env("NO_COLOR", "1");
        let mut child = cmd.spawn().context("starting `sluice serve`")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout of the server"))?;
        // The server prints where it listens on its stdout; the rest of it goes to the log.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log_file = log_file;
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_file, "{line}");
                if let Some(rest) = line.strip_prefix("sluice listening on http://") {
                    if let (Ok(a), Some(t)) = (rest.trim().parse::<SocketAddr>(), tx.take()) {
                        let _ = t.send(a);
                    }
                }
            }
        });
        let mut server = Server {
            child,
            addr: listen,
            stopped: false,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    server.addr = addr;
                    return Ok(server);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Some(status) = server.child.try_wait()? {
                server.stopped = true;
                bail!(
                    "the server exited ({status}) before listening; its log: {}\n{}",
                    log.display(),
                    tail(log, 15)
                );
            }
            if Instant::now() > deadline {
                server.stop();
                bail!(
                    "the server did not listen within {} s; its log: {}",
                    START_TIMEOUT.as_secs(),
                    log.display()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server has exited (it should not while the demo runs).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM (the server finishes what it is writing and closes its logs), then SIGKILL if it
    /// has not exited after [`STOP_TIMEOUT`]. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let termed = pid
            .map(|p| rustix::process::kill_process(p, rustix::process::Signal::TERM).is_ok())
            .unwrap_or(false);
        if termed {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
