//! Where and how the store connects, parsed from a `postgres://` URL.

use std::str::FromStr;
use std::time::Duration;

/// The task hub used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "durable";
/// Connections per store (per process) when the URL does not say.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a call waits for a free pooled connection when the URL does not say.
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection may take when the URL does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest schema name accepted: the notification channel `durable:<schema>` must stay
/// within PostgreSQL's 63-byte identifier limit.
const MAX_SCHEMA_LEN: usize = 50;

/// A URL or option the store cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid PostgreSQL store URL: {0}")]
pub struct UrlError(pub String);

/// PostgreSQL's `synchronous_commit` for the store's sessions: what an acknowledged commit
/// survives. `None` in [`PostgresOptions`] keeps the server's setting (normally `on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynchronousCommit {
    /// Flushed to the local disk (and to synchronous standbys, if any) before the answer.
    On,
    /// Acknowledged before the flush: a server crash may lose the last ~0.6 s of commits, though
    /// never half of one.
    Off,
    /// Flushed locally; standbys are not waited for.
    Local,
    RemoteWrite,
    RemoteApply,
}

impl SynchronousCommit {
    pub fn as_str(self) -> &'static str {
        match self {
            SynchronousCommit::On => "on",
            SynchronousCommit::Off => "off",
            SynchronousCommit::Local => "local",
            SynchronousCommit::RemoteWrite => "remote_write",
            SynchronousCommit::RemoteApply => "remote_apply",
        }
    }
}

impl FromStr for SynchronousCommit {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        match s.to_ascii_lowercase().as_str() {
            "on" => Ok(SynchronousCommit::On),
            "off" => Ok(SynchronousCommit::Off),
            "local" => Ok(SynchronousCommit::Local),
            "remote_write" => Ok(SynchronousCommit::RemoteWrite),
            "remote_apply" => Ok(SynchronousCommit::RemoteApply),
            other => Err(UrlError(format!(
                "unknown synchronous_commit '{other}' (expected on, off, local, remote_write or remote_apply)"
            ))),
        }
    }
}

/// Connection settings of a [`crate::PostgresStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Host, port, user, password, database and the other libpq-style settings.
    pub config: tokio_postgres::Config,
    /// The task hub: the PostgreSQL schema that holds its tables. Hubs in one database never see
    /// each other's instances.
    pub schema: String,
    /// The most connections this store opens for its calls (a listener connection comes on top).
    pub pool_size: usize,
    /// How long a call waits for a pooled connection before failing as unavailable.
    pub pool_timeout: Duration,
    pub synchronous_commit: Option<SynchronousCommit>,
}

impl PostgresOptions {
    /// Options for an already built connection config, with every other setting at its default.
    pub fn new(config: tokio_postgres::Config) -> Self {
        let mut options = PostgresOptions {
            config,
            schema: DEFAULT_SCHEMA.into(),
            pool_size: DEFAULT_POOL_SIZE,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
            synchronous_commit: None,
        };
        options.fill_defaults();
        options
    }

    pub fn with_schema(mut self, schema: impl Into<String>) -> Result<Self, UrlError> {
        self.schema = schema.into();
        validate_schema(&self.schema)?;
        Ok(self)
    }

    /// Parses `postgres://user:password@host:port/database?option=value&...` (or
    /// `postgresql://`). The store's own options:
    ///
    /// | option | meaning | default |
    /// |---|---|---|
    /// | `schema` | task hub: the schema holding its tables (`[a-z_][a-z0-9_]*`, at most 50) | `durable` |
    /// | `pool_size` | connections per store for its calls | 16 |
    /// | `pool_timeout` | seconds a call waits for a free connection | 30 |
    /// | `synchronous_commit` | `on`, `off`, `local`, `remote_write`, `remote_apply` | the server's |
    ///
    /// Every other option goes to the driver as in libpq: `connect_timeout` (seconds, default
    /// 10), `application_name` (default `durable`), `options`, `keepalives`,
    /// `keepalives_idle`, `tcp_user_timeout`, `target_session_attrs`, `sslmode` (`disable` or
    /// `prefer`; TLS is not built in), and `host`/`port`/`user`/`password`/`dbname` overrides.
    /// A URL without a user connects as `$USER` (else `postgres`); without a host, to
    /// `localhost`.
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| {
                UrlError(format!(
                    "'{}' does not start with postgres:// or postgresql://",
                    redact(url)
                ))
            })?;
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut driver_params = Vec::new();
        let mut schema = DEFAULT_SCHEMA.to_string();
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut pool_timeout = DEFAULT_POOL_TIMEOUT;
        let mut synchronous_commit = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "schema" => schema = value.to_string(),
                "pool_size" => {
                    pool_size = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        UrlError(format!(
                            "pool_size must be a positive integer, not '{value}'"
                        ))
                    })?;
                }
                "pool_timeout" => {
                    let secs: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .ok_or_else(|| {
                            UrlError(format!(
                                "pool_timeout must be a positive number of seconds, not '{value}'"
                            ))
                        })?;
                    pool_timeout = Duration::from_secs_f64(secs);
                }
                "synchronous_commit" => synchronous_commit = Some(value.parse()?),
                _ => driver_params.push(pair),
            }
        }
        validate_schema(&schema)?;
        let driver_url = if driver_params.is_empty() {
            format!("postgresql://{base}")
        } else {
            format!("postgresql://{base}?{}", driver_params.join("&"))
        };
        let config = tokio_postgres::Config::from_str(&driver_url)
            .map_err(|e| UrlError(format!("'{}': {e}", redact(url))))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(UrlError(
                "sslmode=require: TLS is not built in yet (use sslmode=disable or prefer, or a TLS-terminating proxy)".into(),
            ));
        }
        let mut options = PostgresOptions {
            config,
            schema,
            pool_size,
            pool_timeout,
            synchronous_commit,
        };
        options.fill_defaults();
        Ok(options)
    }

    fn fill_defaults(&mut self) {
        let c = &mut self.config;
        if c.get_hosts().is_empty() && c.get_hostaddrs().is_empty() {
            c.host("localhost");
        }
        if c.get_user().is_none() {
            let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
            c.user(&user);
        }
        if c.get_connect_timeout().is_none() {
            c.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if c.get_application_name().is_none() {
            c.application_name("durable");
        }
    }

    /// The driver config for the store's sessions: the options above plus `synchronous_commit`.
    pub(crate) fn session_config(&self) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        if let Some(sync) = self.synchronous_commit {
            let setting = format!("-c synchronous_commit={}", sync.as_str());
            let options = match config.get_options() {
                Some(existing) => format!("{existing} {setting}"),
                None => setting,
            };
            config.options(&options);
        }
        config
    }

    /// Where the store connects, without the password: `host:port/database`.
    pub fn location(&self) -> String {
        use tokio_postgres::config::Host;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => self
                .config
                .get_hostaddrs()
                .first()
                .map_or_else(|| "localhost".into(), |a| a.to_string()),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("");
        format!("{host}:{port}/{db}")
    }
}

/// Schema names are plain lower-case identifiers, so they never need quoting in SQL.
fn validate_schema(schema: &str) -> Result<(), UrlError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || schema.len() > MAX_SCHEMA_LEN {
        return Err(UrlError(format!(
            "schema '{schema}' must be a lower-case identifier ([a-z_][a-z0-9_]*) of at most {MAX_SCHEMA_LEN} characters"
        )));
    }
    if schema.starts_with("pg_") {
        return Err(UrlError(format!(
            "schema '{schema}' is reserved: PostgreSQL keeps pg_ names for itself"
        )));
    }
    Ok(())
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_errors() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db?x=1"),
            "postgres://u:***@h:1/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let err = PostgresOptions::from_url("postgres://u:secret@h/db?bogus=1").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
