//! A PostgreSQL server of the test's own: `initdb` into a temporary directory, started with
//! `pg_ctl` on a free loopback port (its socket in the same directory), stopped (`-m
//! immediate`) when dropped. The binaries come from `SLUICE_PG_BIN` (scripts/test.sh installs
//! Debian's `postgresql` and sets it to `/usr/lib/postgresql/<version>/bin`). Without it the
//! tests say so and pass, except under CI (`CI=true`), where its absence fails them.
//!
//! `initdb` refuses to run as root, so as root the server runs as `postgres` (the user
//! Debian's package creates) or, failing that, `nobody`, through `runuser -u`; the temporary
//! directory is handed to that user.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

pub const USER: &str = "sluice";
pub const PASSWORD: &str = "sluice-test-password";

pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    run_as: Option<String>,
}

fn id_of(user: &str, flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, user]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn check(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PgServer {
    /// Starts a server, or returns `None` (after saying why) when `SLUICE_PG_BIN` is not set.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = std::env::var_os("SLUICE_PG_BIN") else {
            assert!(
                std::env::var("CI").map(|v| v != "true").unwrap_or(true),
                "SLUICE_PG_BIN is not set under CI: scripts/test.sh installs PostgreSQL and \
                 sets it"
            );
            eprintln!(
                "skipping {test}: SLUICE_PG_BIN is not set (the directory of PostgreSQL's \
                 binaries; scripts/test.sh installs Debian's postgresql and sets it)"
            );
            return None;
        };
        let bin = PathBuf::from(bin);
        assert!(
            bin.join("initdb").exists() && bin.join("pg_ctl").exists(),
            "SLUICE_PG_BIN={} has no initdb / pg_ctl",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir()
            .unwrap();
        let run_as = if std::fs::metadata(dir.path()).unwrap().uid() == 0 {
            let user = if id_of("postgres", "-u").is_some() {
                "postgres"
            } else {
                "nobody"
            };
            let uid = id_of(user, "-u").unwrap();
            let gid = id_of(user, "-g").unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            Some(user.to_string())
        } else {
            None
        };
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            run_as,
        };
        let pwfile = server.dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some(user) = &server.run_as {
            let uid = id_of(user, "-u").unwrap();
            std::os::unix::fs::chown(&pwfile, Some(uid), None).unwrap();
        }
        let data = server.data();
        check(
            "initdb",
            server
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display()))
                .output()
                .unwrap(),
        );
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// `pg_ctl start` (waiting until the server accepts connections).
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        check(
            "pg_ctl start",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output()
                .unwrap(),
        );
    }

    /// `pg_ctl stop -m immediate`: every backend killed at once, no shutdown checkpoint (what
    /// a crash of the server does; committed transactions survive through the WAL).
    pub fn stop_immediate(&self) {
        check(
            "pg_ctl stop",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output()
                .unwrap(),
        );
    }

    pub fn jdbc_url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/postgres", self.port)
    }

    /// A connection of the test's own (setup and checks).
    pub async fn client(&self) -> Client {
        let mut last = None;
        for _ in 0..50 {
            let config = format!(
                "host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname=postgres",
                self.port
            );
            match tokio_postgres::connect(&config, NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    return client;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot connect: {last:?}");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
