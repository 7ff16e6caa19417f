//! Configuration, read from the environment in this one module and nowhere else.
//!
//! Every variable is parsed here; a bad value stops start-up with a message naming the
//! variable. The names of the first version (`PORT`, `FRONTEND_URL`, `DATABASE_URL`,
//! `SECRET_KEY`, `ALGORITHM`, `OPENAI_API_KEY`) keep working.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// A variable with a value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

/// Where users and job metadata live.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// An embedded SQLite file (the zero-setup default).
    Sqlite { path: PathBuf },
    /// A MySQL 8 (or MariaDB) server; the URL may hold a password.
    Mysql { url: Secret<String> },
}

/// The HMAC algorithm used to sign access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which browser origins may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

/// DuckDB engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// DuckDB `memory_limit`, e.g. `512MB`; `None` keeps DuckDB's default (80% of RAM).
    pub memory_limit: Option<String>,
    /// DuckDB `threads`; `None` uses every core.
    pub threads: Option<usize>,
    /// Where DuckDB spills; `None` means `DATA_DIR/duckdb-tmp`.
    pub temp_dir: Option<PathBuf>,
    /// How many whole-file operations (ingests, exports) run at once; the others wait.
    /// They share `memory_limit`, so running more at once makes each fail sooner.
    pub max_concurrent_ingests: usize,
}

/// Limits that refuse a GraphQL operation before it runs.
#[derive(Debug, Clone, Copy)]
pub struct GraphqlLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
}

/// Sign-in attempt limits.
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    /// Failed attempts allowed per account within `window`.
    pub per_account: u32,
    /// Attempts allowed per client address within `window`.
    pub per_address: u32,
    pub window: Duration,
}

/// An object store for dataset files (`STORAGE_URL` and the `STORAGE_*` options).
#[derive(Debug, Clone)]
pub struct ObjectStoreConfig {
    /// `s3://bucket/prefix` or `file:///absolute/path`.
    pub url: String,
    /// An S3-compatible server's address (MinIO, Ceph, R2…); unset for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// (Kept out of logs with the secret key, as the README says of both.)
    pub access_key_id: Option<Secret<String>>,
    pub secret_access_key: Option<Secret<String>>,
    /// Allow `http://` endpoints (a server on the same host or network).
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
}

/// What a `serve` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    /// The API only: jobs are queued for workers elsewhere.
    Api,
    /// Workers only (HTTP serves health and metrics).
    Worker,
    /// Both (the default).
    All,
}

impl ServerRole {
    pub fn runs_api(self) -> bool {
        matches!(self, ServerRole::Api | ServerRole::All)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, ServerRole::Worker | ServerRole::All)
    }
}

impl std::str::FromStr for ServerRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api" => Ok(ServerRole::Api),
            "worker" => Ok(ServerRole::Worker),
            "all" => Ok(ServerRole::All),
            other => Err(format!("{other:?}: use api, worker or all")),
        }
    }
}

/// How jobs are run.
#[derive(Debug, Clone, Copy)]
pub struct JobsConfig {
    /// Jobs one process runs at once (each in its own DuckDB database).
    pub concurrency: usize,
    /// How long a worker holds a job without renewing; a dead worker's job is retried after.
    pub lease: Duration,
    /// Claims of one job before it fails with `WORKER_LOST`.
    pub max_attempts: u32,
    /// How often idle workers look for jobs queued by other instances.
    pub poll_interval: Duration,
    /// The longest a `previewTool` may run before it is stopped.
    pub preview_timeout: Duration,
    /// Jobs one user may have queued or running at once; `runTool` beyond is `RATE_LIMITED`.
    pub max_active_per_user: u64,
    /// `jobProgress` subscriptions one user may have open on one instance; more are
    /// `RATE_LIMITED`.
    pub max_subscriptions_per_user: usize,
}

/// The language model behind the AI agents, and the co-pilot's SQL sandbox.
#[derive(Debug, Clone)]
pub struct AiConfig {
    /// `None`: every AI feature answers rule-based (`model: "rule-based"`).
    pub openai_api_key: Option<Secret<String>>,
    /// Any OpenAI-compatible server (`https://api.openai.com/v1` when unset). Secret: a URL
    /// may carry credentials (`user:pass@`, `?api-key=`).
    pub base_url: Option<Secret<String>>,
    pub model: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Retries after a 429 or 5xx answer (0: none).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
    /// Rows — of the dataset, or of a co-pilot query's result — a prompt may carry (personal
    /// data masked); 0 sends none.
    pub sample_rows: usize,
    /// Rows the co-pilot's SQL tool returns at most.
    pub sql_max_rows: usize,
    pub sql_timeout: Duration,
    /// DuckDB's memory limit of one co-pilot query, in bytes.
    pub sql_memory_bytes: u64,
    /// The program each co-pilot query runs in (this binary's `sandbox-query` command):
    /// `None` for the running binary itself.
    pub sql_program: Option<PathBuf>,
    /// Co-pilot questions one user may ask per minute.
    pub questions_per_minute: u32,
}

/// The whole configuration of a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub cors_origins: CorsOrigins,
    pub database: DatabaseConfig,
    pub data_dir: PathBuf,
    /// `None`: dataset files stay under `DATA_DIR/datasets`.
    pub object_store: Option<ObjectStoreConfig>,
    /// `None`: generate one into the data directory on first start and keep using it.
    pub secret_key: Option<Secret<Vec<u8>>>,
    pub jwt_algorithm: JwtAlgorithm,
    pub ai: AiConfig,
    pub engine: EngineConfig,
    pub max_body_bytes: usize,
    pub max_upload_bytes: u64,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Whether `RUST_LOG` was set (the command-line profiler is quiet otherwise).
    pub log_filter_given: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub graphql_limits: GraphqlLimits,
    pub sign_in_limits: SignInLimits,
    pub trust_proxy_headers: bool,
    pub shutdown_timeout: Duration,
    /// An HTTP connection with no traffic for this long is closed (`IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// A WebSocket that has not been acknowledged (`connection_init`) within this is closed
    /// with 4408 (`WS_CONNECTION_INIT_TIMEOUT`).
    pub ws_init_timeout: Duration,
    pub role: ServerRole,
    pub jobs: JobsConfig,
}

/// Every variable this module reads, for the README and for `Config::from_map`.
pub const VARIABLES: &[&str] = &[
    "HOST",
    "PORT",
    "FRONTEND_URL",
    "DATABASE_URL",
    "DATA_DIR",
    "STORAGE_URL",
    "STORAGE_ENDPOINT",
    "STORAGE_REGION",
    "STORAGE_ACCESS_KEY_ID",
    "STORAGE_SECRET_ACCESS_KEY",
    "STORAGE_ALLOW_HTTP",
    "SECRET_KEY",
    "ALGORITHM",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "OPENAI_TIMEOUT",
    "OPENAI_MAX_RETRIES",
    "OPENAI_RETRY_BACKOFF",
    "AI_SAMPLE_ROWS",
    "COPILOT_SQL_MAX_ROWS",
    "COPILOT_SQL_TIMEOUT",
    "COPILOT_SQL_MEMORY_LIMIT",
    "COPILOT_SQL_PROGRAM",
    "COPILOT_QUESTIONS_PER_MINUTE",
    "DUCKDB_MEMORY_LIMIT",
    "DUCKDB_THREADS",
    "DUCKDB_TEMP_DIR",
    "MAX_CONCURRENT_INGESTS",
    "MAX_BODY_SIZE",
    "MAX_UPLOAD_SIZE",
    "LOG_FORMAT",
    "RUST_LOG",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "GRAPHQL_MAX_DEPTH",
    "GRAPHQL_MAX_COMPLEXITY",
    "GRAPHQL_MAX_ALIASES",
    "SIGNIN_MAX_ATTEMPTS_PER_ACCOUNT",
    "SIGNIN_MAX_ATTEMPTS_PER_ADDRESS",
    "SIGNIN_WINDOW",
    "TRUST_PROXY_HEADERS",
    "SHUTDOWN_TIMEOUT",
    "IDLE_TIMEOUT",
    "WS_CONNECTION_INIT_TIMEOUT",
    "SERVER_ROLE",
    "WORKER_CONCURRENCY",
    "JOB_LEASE",
    "JOB_MAX_ATTEMPTS",
    "JOB_POLL_INTERVAL",
    "PREVIEW_TIMEOUT",
    "MAX_ACTIVE_JOBS_PER_USER",
    "MAX_SUBSCRIPTIONS_PER_USER",
];

impl Config {
    /// Reads the process environment. Empty values count as unset.
    pub fn from_env() -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = VARIABLES
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
            .collect();
        Config::from_map(&vars)
    }

    /// Builds a configuration from explicit variables (tests use this).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let host = match get("HOST") {
            Some(h) => h.parse().map_err(|_| invalid("HOST", "expected an IP address"))?,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        let port = match get("PORT") {
            Some(p) => p.parse::<u16>().map_err(|_| invalid("PORT", "expected 0-65535"))?,
            None => 8000,
        };
        let cors_origins = parse_origins(get("FRONTEND_URL").as_deref())?;
        let database = parse_database_url(get("DATABASE_URL").as_deref(), &data_dir)?;
        let object_store = parse_object_store(&get)?;
        let secret_key = match get("SECRET_KEY") {
            Some(k) if k.len() < 32 => {
                return Err(invalid("SECRET_KEY", "must be at least 32 bytes long"));
            }
            Some(k) => Some(Secret::new(k.into_bytes())),
            None => None,
        };
        let jwt_algorithm = match get("ALGORITHM").as_deref() {
            None | Some("HS256") => JwtAlgorithm::Hs256,
            Some("HS384") => JwtAlgorithm::Hs384,
            Some("HS512") => JwtAlgorithm::Hs512,
            Some(other) => {
                return Err(invalid(
                    "ALGORITHM",
                    format!("{other:?} is not accepted; use HS256, HS384 or HS512"),
                ));
            }
        };
        let engine = EngineConfig {
            // Given to DuckDB in bytes (it refuses a bare number or `1.5`), and at least what
            // an upload needs (below it, every upload failed as too large).
            memory_limit: match get("DUCKDB_MEMORY_LIMIT") {
                Some(v) => match parse_bytes(&v).map_err(|m| invalid("DUCKDB_MEMORY_LIMIT", m))? {
                    bytes if bytes < MIN_ENGINE_MEMORY => {
                        return Err(invalid("DUCKDB_MEMORY_LIMIT", "at least 16MiB"));
                    }
                    bytes => Some(format!("{bytes}B")),
                },
                None => None,
            },
            threads: get("DUCKDB_THREADS")
                .map(|v| match v.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => Ok(n),
                    _ => Err(invalid("DUCKDB_THREADS", "expected a whole number from 1 to 1024")),
                })
                .transpose()?,
            temp_dir: get("DUCKDB_TEMP_DIR").map(PathBuf::from),
            max_concurrent_ingests: match get("MAX_CONCURRENT_INGESTS") {
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if (1..=64).contains(&n) => n,
                    _ => {
                        return Err(invalid(
                            "MAX_CONCURRENT_INGESTS",
                            "expected a whole number from 1 to 64",
                        ));
                    }
                },
                None => 1,
            },
        };
        let max_body_bytes = match get("MAX_BODY_SIZE") {
            Some(v) => {
                let n = parse_bytes(&v).map_err(|m| invalid("MAX_BODY_SIZE", m))?;
                usize::try_from(n).map_err(|_| invalid("MAX_BODY_SIZE", "too large"))?
            }
            None => 1024 * 1024,
        };
        let max_upload_bytes = match get("MAX_UPLOAD_SIZE") {
            Some(v) => parse_bytes(&v).map_err(|m| invalid("MAX_UPLOAD_SIZE", m))?,
            None => 5 * 1024 * 1024 * 1024,
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid("LOG_FORMAT", format!("{other:?}: use text or json")));
            }
        };
        let log_filter_given = get("RUST_LOG").is_some();
        let log_filter = get("RUST_LOG").unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| invalid("RUST_LOG", e.to_string()))?;

        let duration = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(name) {
                Some(v) => parse_duration(&v).map_err(|m| invalid(name, m)),
                None => Ok(default),
            }
        };
        let count = |name: &'static str, default: usize| -> Result<usize, ConfigError> {
            match get(name) {
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(invalid(name, "expected a positive whole number")),
                },
                None => Ok(default),
            }
        };

        let access_token_ttl = duration("ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60))?;
        let refresh_token_ttl = duration("REFRESH_TOKEN_TTL", Duration::from_secs(30 * 24 * 3600))?;
        let graphql_limits = GraphqlLimits {
            max_depth: count("GRAPHQL_MAX_DEPTH", 15)?,
            max_complexity: count("GRAPHQL_MAX_COMPLEXITY", 5000)?,
            max_aliases: count("GRAPHQL_MAX_ALIASES", 30)?,
        };
        let sign_in_limits = SignInLimits {
            per_account: count_u32(count("SIGNIN_MAX_ATTEMPTS_PER_ACCOUNT", 5)?),
            per_address: count_u32(count("SIGNIN_MAX_ATTEMPTS_PER_ADDRESS", 30)?),
            window: duration("SIGNIN_WINDOW", Duration::from_secs(15 * 60))?,
        };
        let trust_proxy_headers = match get("TRUST_PROXY_HEADERS").as_deref() {
            None => false,
            Some(v) => {
                parse_bool(v).ok_or_else(|| invalid("TRUST_PROXY_HEADERS", "expected true or false"))?
            }
        };
        let shutdown_timeout = duration("SHUTDOWN_TIMEOUT", Duration::from_secs(30))?;
        let idle_timeout = duration("IDLE_TIMEOUT", Duration::from_secs(60))?;
        let ws_init_timeout = duration("WS_CONNECTION_INIT_TIMEOUT", Duration::from_secs(10))?;
        let role = match get("SERVER_ROLE") {
            Some(v) => v.parse().map_err(|m: String| invalid("SERVER_ROLE", m))?,
            None => ServerRole::All,
        };
        let jobs = JobsConfig {
            concurrency: match count("WORKER_CONCURRENCY", 1)? {
                n if n <= 64 => n,
                _ => return Err(invalid("WORKER_CONCURRENCY", "expected a whole number from 1 to 64")),
            },
            lease: duration("JOB_LEASE", Duration::from_secs(30))?,
            max_attempts: count_u32(count("JOB_MAX_ATTEMPTS", 3)?),
            poll_interval: duration("JOB_POLL_INTERVAL", Duration::from_secs(1))?,
            preview_timeout: duration("PREVIEW_TIMEOUT", Duration::from_secs(60))?,
            max_active_per_user: count("MAX_ACTIVE_JOBS_PER_USER", 100)? as u64,
            max_subscriptions_per_user: count("MAX_SUBSCRIPTIONS_PER_USER", 200)?,
        };
        let at_most = |name: &'static str, default: usize, max: usize| -> Result<usize, ConfigError> {
            match get(name) {
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(invalid(name, format!("expected a whole number from 0 to {max}"))),
                },
                None => Ok(default),
            }
        };
        let ai = AiConfig {
            openai_api_key: get("OPENAI_API_KEY").map(Secret::new),
            base_url: match get("OPENAI_BASE_URL") {
                Some(v) => {
                    let url = url::Url::parse(&v)
                        .map_err(|e| invalid("OPENAI_BASE_URL", format!("not a URL: {e}")))?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err(invalid("OPENAI_BASE_URL", "use an http or https URL"));
                    }
                    Some(Secret::new(v.trim_end_matches('/').to_string()))
                }
                None => None,
            },
            model: match get("OPENAI_MODEL") {
                Some(m) if m.chars().count() > 200 => {
                    return Err(invalid("OPENAI_MODEL", "at most 200 characters"));
                }
                Some(m) => m,
                None => "gpt-4o-mini".into(),
            },
            timeout: duration("OPENAI_TIMEOUT", Duration::from_secs(30))?,
            max_retries: count_u32(at_most("OPENAI_MAX_RETRIES", 2, 10)?),
            retry_backoff: duration("OPENAI_RETRY_BACKOFF", Duration::from_millis(500))?,
            sample_rows: at_most("AI_SAMPLE_ROWS", 10, 100)?,
            sql_max_rows: match at_most("COPILOT_SQL_MAX_ROWS", 200, 10_000)? {
                0 => return Err(invalid("COPILOT_SQL_MAX_ROWS", "expected a whole number from 1 to 10000")),
                n => n,
            },
            sql_timeout: duration("COPILOT_SQL_TIMEOUT", Duration::from_secs(5))?,
            // Handed to DuckDB in bytes, as this parser read it (`1g` is GiB here, not DuckDB's GB).
            sql_memory_bytes: match get("COPILOT_SQL_MEMORY_LIMIT") {
                Some(v) => match parse_bytes(&v).map_err(|m| invalid("COPILOT_SQL_MEMORY_LIMIT", m))? {
                    n if n < 16 * 1024 * 1024 => {
                        return Err(invalid("COPILOT_SQL_MEMORY_LIMIT", "at least 16MiB"));
                    }
                    n => n,
                },
                None => 256 * 1024 * 1024,
            },
            // Absolute: the child starts in a folder of its own, and with no PATH.
            sql_program: match get("COPILOT_SQL_PROGRAM") {
                Some(p) => {
                    Some(std::path::absolute(&p).map_err(|e| invalid("COPILOT_SQL_PROGRAM", e.to_string()))?)
                }
                None => None,
            },
            questions_per_minute: count_u32(count("COPILOT_QUESTIONS_PER_MINUTE", 20)?),
        };
        if jobs.lease < Duration::from_secs(1) {
            return Err(invalid("JOB_LEASE", "must be at least 1s"));
        }

        Ok(Config {
            host,
            port,
            cors_origins,
            database,
            data_dir,
            object_store,
            secret_key,
            jwt_algorithm,
            ai,
            engine,
            max_body_bytes,
            max_upload_bytes,
            log_format,
            log_filter,
            log_filter_given,
            access_token_ttl,
            refresh_token_ttl,
            graphql_limits,
            sign_in_limits,
            trust_proxy_headers,
            shutdown_timeout,
            idle_timeout,
            ws_init_timeout,
            role,
            jobs,
        })
    }

    /// Where DuckDB spills: `DUCKDB_TEMP_DIR`, or `DATA_DIR/duckdb-tmp`.
    pub fn engine_temp_dir(&self) -> PathBuf {
        self.engine.temp_dir.clone().unwrap_or_else(|| self.data_dir.join("duckdb-tmp"))
    }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_origins(value: Option<&str>) -> Result<CorsOrigins, ConfigError> {
    let Some(value) = value else {
        return Ok(CorsOrigins::List(vec!["http://localhost:3000".into()]));
    };
    if value == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = origin.trim_end_matches('/');
        let rest =
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).ok_or_else(|| {
                invalid("FRONTEND_URL", format!("{origin:?} must start with http:// or https://"))
            })?;
        if rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace) {
            return Err(invalid(
                "FRONTEND_URL",
                format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
            ));
        }
        origins.push(origin.to_string());
    }
    if origins.is_empty() {
        return Err(invalid("FRONTEND_URL", "no origin given"));
    }
    Ok(CorsOrigins::List(origins))
}

fn parse_object_store(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ObjectStoreConfig>, ConfigError> {
    let Some(url) = get("STORAGE_URL") else {
        for name in
            ["STORAGE_ENDPOINT", "STORAGE_REGION", "STORAGE_ACCESS_KEY_ID", "STORAGE_SECRET_ACCESS_KEY"]
        {
            if get(name).is_some() {
                return Err(invalid(name, "is set but STORAGE_URL is not"));
            }
        }
        return Ok(None);
    };
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "s3" | "s3a" => {
            let bucket = url.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or_default());
            if bucket.is_none_or(str::is_empty) {
                return Err(invalid("STORAGE_URL", "s3:// needs a bucket: s3://bucket/prefix"));
            }
        }
        "file" => {
            if !url.starts_with("file:///") {
                return Err(invalid("STORAGE_URL", "file:// needs an absolute path: file:///srv/agensium"));
            }
        }
        _ => return Err(invalid("STORAGE_URL", "use s3://bucket/prefix or file:///absolute/path")),
    }
    let endpoint = get("STORAGE_ENDPOINT");
    if let Some(e) = &endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(invalid("STORAGE_ENDPOINT", "expected http://host:port or https://host"));
    }
    let allow_http = match get("STORAGE_ALLOW_HTTP") {
        None => endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
        Some(v) => parse_bool(&v).ok_or_else(|| invalid("STORAGE_ALLOW_HTTP", "expected true or false"))?,
    };
    Ok(Some(ObjectStoreConfig {
        url,
        // A custom endpoint is an S3-compatible server: path-style requests.
        path_style: endpoint.is_some(),
        endpoint,
        region: get("STORAGE_REGION"),
        access_key_id: get("STORAGE_ACCESS_KEY_ID").map(Secret::new),
        secret_access_key: get("STORAGE_SECRET_ACCESS_KEY").map(Secret::new),
        allow_http,
    }))
}

fn parse_database_url(
    value: Option<&str>,
    data_dir: &std::path::Path,
) -> Result<DatabaseConfig, ConfigError> {
    let Some(url) = value else {
        return Ok(DatabaseConfig::Sqlite { path: data_dir.join("agensium.sqlite3") });
    };
    let (scheme, rest) = url
        .split_once("://")
        .or_else(|| url.split_once(':'))
        .ok_or_else(|| invalid("DATABASE_URL", "expected mysql://… or sqlite://PATH"))?;
    // The first version used SQLAlchemy URLs such as `mysql+mysqlconnector://`.
    let scheme = scheme.split('+').next().unwrap_or(scheme);
    match scheme {
        "mysql" | "mariadb" => {
            let url = format!("mysql://{rest}");
            mysql_async::Opts::from_url(&url)
                .map_err(|e| invalid("DATABASE_URL", format!("not a usable MySQL URL: {e}")))?;
            Ok(DatabaseConfig::Mysql { url: Secret::new(url) })
        }
        "sqlite" => {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(invalid("DATABASE_URL", "sqlite:// needs a file path"));
            }
            Ok(DatabaseConfig::Sqlite { path: PathBuf::from(path) })
        }
        other => {
            Err(invalid("DATABASE_URL", format!("unsupported scheme {other:?}; use mysql:// or sqlite://")))
        }
    }
}

/// Parses `1048576`, `512MB`, `1.5GiB`, `64kb` into bytes.
/// The least memory the engine may be given (`DUCKDB_MEMORY_LIMIT`).
const MIN_ENGINE_MEMORY: u64 = 16 * 1024 * 1024;

pub fn parse_bytes(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{value:?} is not a size such as 512MB"))?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit {other:?}; use B, KB, MB, GB, KiB, MiB, GiB")),
    };
    let bytes = number * multiplier;
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!("{value:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// Parses `900`, `900s`, `15m`, `12h`, `30d` (and `250ms`) into a duration.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{value:?} is not a duration such as 15m"))?;
    if unit == "ms" {
        return match number {
            0 => Err("must be more than zero".into()),
            n if n > 3_600_000 => Err("use s, m, h or d for durations over an hour".into()),
            n => Ok(Duration::from_millis(n)),
        };
    }
    let seconds = match unit {
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        "d" => number.saturating_mul(86400),
        other => return Err(format!("unknown unit {other:?}; use ms, s, m, h or d")),
    };
    if seconds == 0 {
        return Err("must be more than zero".into());
    }
    if seconds > 3650 * 86400 {
        return Err("must be at most 3650d (ten years)".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_need_no_variable() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.jwt_algorithm, JwtAlgorithm::Hs256);
        assert!(matches!(c.database, DatabaseConfig::Sqlite { .. }));
        assert_eq!(c.max_upload_bytes, 5 * 1024 * 1024 * 1024);
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("ALGORITHM", "none"),
            ("ALGORITHM", "RS256"),
            ("SECRET_KEY", "short"),
            ("DATABASE_URL", "postgres://x"),
            ("FRONTEND_URL", "localhost:3000"),
            ("DUCKDB_MEMORY_LIMIT", "lots"),
            ("DUCKDB_MEMORY_LIMIT", "1B"),
            ("DUCKDB_THREADS", "0"),
            ("MAX_UPLOAD_SIZE", "5 parsecs"),
            ("LOG_FORMAT", "xml"),
            ("ACCESS_TOKEN_TTL", "soon"),
            ("REFRESH_TOKEN_TTL", "400000d"),
            ("TRUST_PROXY_HEADERS", "maybe"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn first_version_urls_still_work() {
        let c = config(&[("DATABASE_URL", "mysql+mysqlconnector://u:p@db:3306/agensium")]).unwrap();
        let DatabaseConfig::Mysql { url } = c.database else { panic!("not mysql") };
        assert_eq!(url.expose(), "mysql://u:p@db:3306/agensium");
        assert!(!format!("{:?}", Config::from_map(&HashMap::new()).unwrap()).contains("p@db"));
        let c = config(&[("DATABASE_URL", "sqlite:///var/lib/a.db")]).unwrap();
        assert!(
            matches!(c.database, DatabaseConfig::Sqlite { path } if path == std::path::Path::new("/var/lib/a.db"))
        );
    }

    #[test]
    fn the_engine_memory_limit_reaches_duckdb_in_bytes() {
        // DuckDB refuses a bare number or `1.5` (start-up failed with "Unknown error code").
        for (value, bytes) in [("33554432", "33554432B"), ("1.5GB", "1500000000B"), ("512MiB", "536870912B")]
        {
            let c = config(&[("DUCKDB_MEMORY_LIMIT", value)]).unwrap();
            assert_eq!(c.engine.memory_limit.as_deref(), Some(bytes), "{value}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[
            ("SECRET_KEY", "0123456789abcdef0123456789abcdef-very-secret"),
            ("OPENAI_API_KEY", "sk-live-123"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("DATABASE_URL", "mysql://root:hunter2@localhost/db"),
            ("STORAGE_URL", "s3://bucket/prefix"),
            ("STORAGE_ACCESS_KEY_ID", "AKIA-ACCESS-ID"),
            ("STORAGE_SECRET_ACCESS_KEY", "storage-secret"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("very-secret"));
        assert!(!printed.contains("sk-live"));
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("AKIA-ACCESS-ID") && !printed.contains("storage-secret"), "{printed}");
    }

    #[test]
    fn origins_sizes_and_durations_parse() {
        let c = config(&[("FRONTEND_URL", "https://a.example, http://localhost:5173/")]).unwrap();
        assert_eq!(
            c.cors_origins,
            CorsOrigins::List(vec!["https://a.example".into(), "http://localhost:5173".into()])
        );
        assert_eq!(parse_bytes("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    }
}
