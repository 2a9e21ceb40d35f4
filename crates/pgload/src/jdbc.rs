//! `ClusterJDBCURL`: `jdbc:postgresql://host[:port]/database[?params]` or
//! `jdbc:redshift://host[:port]/database[?params]` (a server speaking the PostgreSQL protocol)
//! read into a [`JdbcUrl`], then into `tokio_postgres::Config`.
//!
//! sluice connects without TLS (`NoTls`): PostgreSQL on loopback or on a network the operator
//! trusts. A URL that asks for TLS (`ssl=true`, `sslmode=require`, `verify-ca`, `verify-full`)
//! is refused rather than silently downgraded. Parameters read: `user` and `password` (used
//! when the destination's Username / Password are empty), `ApplicationName`,
//! `currentSchema` (the session's `search_path`), `connectTimeout` (seconds), `sslmode`
//! (`disable`, `allow`, `prefer`) and `ssl=false`; others (driver tuning such as `tcpKeepAlive`
//! or `loginTimeout`) are ignored.

use std::time::Duration;

use crate::error::JdbcUrlError;
use crate::limits;

/// Which JDBC driver's URL it was (only the default port differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JdbcScheme {
    Postgresql,
    Redshift,
}

impl JdbcScheme {
    /// The port a URL without one connects to.
    pub fn default_port(self) -> u16 {
        match self {
            JdbcScheme::Postgresql => 5432,
            JdbcScheme::Redshift => 5439,
        }
    }
}

/// A parsed `ClusterJDBCURL`. It holds no password of the destination's own (only one given
/// as a URL parameter), and its `Debug` does not show that one.
#[derive(Clone, PartialEq, Eq)]
pub struct JdbcUrl {
    pub scheme: JdbcScheme,
    pub host: String,
    pub port: u16,
    /// `None` connects to the database named like the user (PostgreSQL's default).
    pub database: Option<String>,
    pub user: Option<String>,
    password: Option<String>,
    pub application_name: Option<String>,
    pub current_schema: Option<String>,
    pub connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for JdbcUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdbcUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("application_name", &self.application_name)
            .field("current_schema", &self.current_schema)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> JdbcUrlError {
    JdbcUrlError::Invalid {
        url: url.to_string(),
        reason: reason.into(),
    }
}

/// `%XX` decoding of a path segment or query value.
fn percent_decode(url: &str, text: &str) -> Result<String, JdbcUrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(url, "a `%` is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, "percent-encoding that is not UTF-8"))
}

impl JdbcUrl {
    /// Parses a `ClusterJDBCURL`.
    pub fn parse(url: &str) -> Result<JdbcUrl, JdbcUrlError> {
        if url.chars().count() > limits::JDBC_URL_CHARS_MAX {
            return Err(JdbcUrlError::TooLong {
                max: limits::JDBC_URL_CHARS_MAX,
            });
        }
        let lower = url.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("jdbc:postgresql://") {
            (JdbcScheme::Postgresql, &url["jdbc:postgresql://".len()..])
        } else if lower.starts_with("jdbc:redshift://") {
            (JdbcScheme::Redshift, &url["jdbc:redshift://".len()..])
        } else if lower.starts_with("jdbc:redshift:iam://") {
            return Err(invalid(
                url,
                "IAM authentication (jdbc:redshift:iam://) is not supported; use \
                 jdbc:redshift:// with Username and Password",
            ));
        } else {
            return Err(JdbcUrlError::Scheme {
                url: url.to_string(),
            });
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.split_once('/') {
            Some((a, p)) => (a, p),
            None => (before_query, ""),
        };
        if authority.contains('@') {
            return Err(invalid(
                url,
                "user information before the host is not part of a JDBC URL (use Username \
                 and Password)",
            ));
        }
        if authority.contains(',') {
            return Err(invalid(url, "several hosts are not supported; name one"));
        }
        let (host, port_text) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid(url, "an IPv6 host is missing its `]`"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| invalid(url, "unexpected text after the IPv6 host"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid(url, "the host is missing"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(invalid(
                url,
                format!("`{host}` is not a host name or address"),
            ));
        }
        let port = match port_text {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(invalid(url, format!("`{p}` is not a port"))),
            },
        };
        let path = path.trim_end_matches('/');
        if path.contains('/') {
            return Err(invalid(url, "the path must be just the database name"));
        }
        let database = match percent_decode(url, path)? {
            d if d.is_empty() => None,
            d => Some(d),
        };
        let mut parsed = JdbcUrl {
            scheme,
            host: host.to_string(),
            port,
            database,
            user: None,
            password: None,
            application_name: None,
            current_schema: None,
            connect_timeout: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(url, value)?;
            match key.to_ascii_lowercase().as_str() {
                "user" => parsed.user = Some(value),
                "password" => parsed.password = Some(value),
                "applicationname" => parsed.application_name = Some(value),
                "currentschema" => parsed.current_schema = Some(value),
                "connecttimeout" => {
                    let seconds: u64 = value.parse().map_err(|_| {
                        invalid(
                            url,
                            format!("connectTimeout `{value}` is not whole seconds"),
                        )
                    })?;
                    // 0 means "no timeout" to the JDBC driver; sluice keeps its own bound.
                    if seconds > 0 {
                        parsed.connect_timeout = Some(Duration::from_secs(seconds));
                    }
                }
                "ssl" if !matches!(value.to_ascii_lowercase().as_str(), "false" | "0") => {
                    return Err(JdbcUrlError::TlsRequired {
                        url: url.to_string(),
                        parameter: format!("ssl={value}"),
                    })
                }
                "sslmode" => match value.to_ascii_lowercase().as_str() {
                    "disable" | "allow" | "prefer" => {}
                    _ => {
                        return Err(JdbcUrlError::TlsRequired {
                            url: url.to_string(),
                            parameter: format!("sslmode={value}"),
                        })
                    }
                },
                _ => {}
            }
        }
        Ok(parsed)
    }

    /// The connection settings: the destination's `Username` / `Password` when not empty,
    /// else the URL's `user` / `password`; TLS off.
    pub fn config(&self, username: &str, password: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config.host(&self.host);
        config.port(self.port);
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let user = if username.is_empty() {
            self.user.as_deref().unwrap_or_default()
        } else {
            username
        };
        if !user.is_empty() {
            config.user(user);
        }
        let password = if password.is_empty() {
            self.password.as_deref().unwrap_or_default()
        } else {
            password
        };
        if !password.is_empty() {
            config.password(password);
        }
        if let Some(database) = &self.database {
            config.dbname(database);
        }
        config.application_name(
            self.application_name
                .as_deref()
                .unwrap_or("sluice-firehose"),
        );
        if let Some(schema) = &self.current_schema {
            // `options` is split at spaces by the server; a backslash keeps one.
            config.options(format!("-c search_path={}", schema.replace(' ', "\\ ")));
        }
        // The URL's connectTimeout, bounded by sluice's own limit.
        config.connect_timeout(
            self.connect_timeout
                .unwrap_or(limits::CONNECT_TIMEOUT)
                .min(limits::CONNECT_TIMEOUT_MAX),
        );
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::Host;

    #[test]
    fn postgresql_and_redshift_urls() {
        let u = JdbcUrl::parse("jdbc:postgresql://127.0.0.1:5433/analytics").unwrap();
        assert_eq!(u.scheme, JdbcScheme::Postgresql);
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 5433));
        assert_eq!(u.database.as_deref(), Some("analytics"));

        let u = JdbcUrl::parse("jdbc:redshift://example.local/dev").unwrap();
        assert_eq!(u.scheme, JdbcScheme::Redshift);
        assert_eq!(u.port, 5439);

        let u = JdbcUrl::parse("jdbc:postgresql://localhost").unwrap();
        assert_eq!((u.port, u.database.clone()), (5432, None));

        let u = JdbcUrl::parse("jdbc:postgresql://[::1]:6000/my%20db?ApplicationName=lab&currentSchema=staging&connectTimeout=3&sslmode=disable&tcpKeepAlive=true").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 6000);
        assert_eq!(u.database.as_deref(), Some("my db"));
        assert_eq!(u.application_name.as_deref(), Some("lab"));
        assert_eq!(u.current_schema.as_deref(), Some("staging"));
        assert_eq!(u.connect_timeout, Some(Duration::from_secs(3)));
    }

    #[test]
    fn config_prefers_the_destinations_credentials() {
        let u = JdbcUrl::parse("jdbc:postgresql://db:1/x?user=u1&password=p1").unwrap();
        assert!(!format!("{u:?}").contains("p1"));
        let c = u.config("firehose", "secret");
        assert_eq!(c.get_user(), Some("firehose"));
        assert_eq!(c.get_password(), Some(&b"secret"[..]));
        assert_eq!(c.get_hosts(), &[Host::Tcp("db".into())]);
        assert_eq!(c.get_ports(), &[1]);
        assert_eq!(c.get_dbname(), Some("x"));
        let c = u.config("", "");
        assert_eq!(c.get_user(), Some("u1"));
        assert_eq!(c.get_password(), Some(&b"p1"[..]));
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    }

    #[test]
    fn refusals() {
        let cases = [
            ("postgresql://h/db", "must be a PostgreSQL-protocol URL"),
            ("jdbc:mysql://h/db", "must be a PostgreSQL-protocol URL"),
            ("jdbc:redshift:iam://h/db", "IAM"),
            ("jdbc:postgresql://h:0/db", "is not a port"),
            ("jdbc:postgresql://h:99999/db", "is not a port"),
            ("jdbc:postgresql://h:x/db", "is not a port"),
            ("jdbc:postgresql:///db", "host is missing"),
            ("jdbc:postgresql://u:p@h/db", "user information"),
            ("jdbc:postgresql://a,b/db", "several hosts"),
            ("jdbc:postgresql://h/db/x", "just the database name"),
            ("jdbc:postgresql://h/db?ssl=true", "asks for TLS"),
            ("jdbc:postgresql://h/db?sslmode=require", "asks for TLS"),
            ("jdbc:postgresql://h/d%zz", "hex digits"),
            ("jdbc:postgresql://[::1/db", "`]`"),
        ];
        for (url, needle) in cases {
            let err = JdbcUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
        assert!(JdbcUrl::parse("jdbc:postgresql://h/db?ssl=false").is_ok());
    }

    #[test]
    fn url_length_at_the_limit() {
        let max = limits::JDBC_URL_CHARS_MAX;
        let base = "jdbc:postgresql://h/";
        let at = format!("{base}{}", "d".repeat(max - base.len()));
        assert!(JdbcUrl::parse(&at).is_ok());
        let past = format!("{at}d");
        assert!(matches!(
            JdbcUrl::parse(&past),
            Err(JdbcUrlError::TooLong { .. })
        ));
    }
}
