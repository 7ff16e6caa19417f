//! The command line: `serve` (default), `migrate`, `export-schema`, `healthcheck`,
//! `user create`, and `profile`, the profiler for a local file without a server.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::{Application, shutdown_signal};
use crate::auth::{PasswordHasher, create_user};
use crate::config::Config;
use crate::domain::Role;

/// Agensium: a data-quality server with a GraphQL API over an embedded DuckDB engine.
/// Configuration comes from environment variables (see README.md).
#[derive(Debug, Parser)]
#[command(name = "agensium", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// Whether this process is a co-pilot query's own (`sandbox-query`), not a server.
    pub fn is_sandbox_query(&self) -> bool {
        matches!(self.command, Some(Command::SandboxQuery))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// api: GraphQL only; worker: run jobs only; all: both. Overrides SERVER_ROLE.
        #[arg(long)]
        role: Option<crate::config::ServerRole>,
    },
    /// Apply pending metadata-store migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    ExportSchema,
    /// Exit 0 when the server on PORT (this host) is ready.
    Healthcheck {
        /// Check this URL instead of http://$HOST:$PORT/readyz (127.0.0.1 when HOST is 0.0.0.0
        /// or ::).
        #[arg(long)]
        url: Option<String>,
    },
    /// Profile a local file with the same engine and agents as the server, and write a
    /// report (no server, no database needed).
    Profile(ProfileArgs),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Answer one co-pilot query read from standard input: the server starts this for each
    /// query, in a process of its own (`engine::sandbox::process`).
    #[command(name = "sandbox-query", hide = true)]
    SandboxQuery,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Give the user the ADMIN role.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, clap::Args)]
struct ProfileArgs {
    /// The file to profile: CSV, TSV, Excel, JSON, NDJSON or Parquet.
    file: std::path::PathBuf,
    /// A baseline version of the file: adds the drift detector.
    #[arg(long)]
    baseline: Option<std::path::PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "html")]
    format: CliReportFormat,
    /// Where to write the report (default: `<file stem>-report.<format>` here).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// For Excel workbooks: the sheet to read (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// For CSV, TSV and Excel: whether the first row holds the column names, `true` or
    /// `false` (default: detected; a first row of numbers, such as years, reads as data).
    #[arg(long)]
    header: Option<bool>,
    /// Agents to run, comma-separated (default: all that apply).
    #[arg(long, value_delimiter = ',')]
    agents: Option<Vec<String>>,
    /// Agent parameters as JSON: `{"unified-profiler": {"top_n_values": 20}}`.
    #[arg(long)]
    parameters: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CliReportFormat {
    Html,
    Json,
    Xlsx,
}

fn load_config() -> Result<Config, ExitCode> {
    Config::from_env().map_err(|e| {
        eprintln!("agensium: {e}");
        ExitCode::from(2)
    })
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve { role: None });
    match command {
        Command::ExportSchema => {
            print!("{}", crate::gql::sdl());
            return ExitCode::SUCCESS;
        }
        // (`main` runs it before starting the async runtime; this is for other callers.)
        Command::SandboxQuery => return crate::engine::sandbox::process::child_main(),
        _ => {}
    }
    let mut config = match load_config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Command::Serve { role: Some(role) } = command {
        config.role = role;
    }
    // The command-line profiler talks to a person: its logs stay quiet unless asked for.
    let filter = match &command {
        Command::Profile(_) if !config.log_filter_given => "warn".to_string(),
        _ => config.log_filter.clone(),
    };
    crate::telemetry::init(config.log_format, &filter);
    let result = match command {
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Healthcheck { url } => return healthcheck(&config, url).await,
        Command::Profile(args) => return crate::profile_cli::run(&config, args.into()).await,
        Command::User { command: UserCommand::Create { email, admin } } => {
            user_create(config, &email, admin).await
        }
        Command::ExportSchema | Command::SandboxQuery => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "agensium failed");
            eprintln!("agensium: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = crate::store::open(&config.database).await?;
    let report = store.migrate().await?;
    println!("applied: {:?}; already applied: {:?}", report.applied, report.already_applied);
    Ok(())
}

/// Where this host reaches a server listening on `host:port`: the loopback address of its
/// family when it listens on every address, else `host` itself.
fn local_address(host: std::net::IpAddr, port: u16) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr};
    let host = match host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        // (`::` takes IPv4 too, and a container's loopback may have no IPv6 address.)
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    std::net::SocketAddr::new(host, port)
}

async fn healthcheck(config: &Config, url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| format!("http://{}/readyz", local_address(config.host, config.port)));
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agensium: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("agensium: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("agensium: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn user_create(config: Config, email: &str, admin: bool) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password =
        password.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&password);
    let store = crate::store::open(&config.database).await?;
    store.migrate().await?;
    let role = if admin { Role::Admin } else { Role::User };
    let user = create_user(store.as_ref(), &PasswordHasher::default(), email, password.to_string(), role)
        .await
        .map_err(|e| anyhow::anyhow!(e.report()))?;
    println!("created {} ({}) with id {}", user.email, user.role.as_str(), user.id);
    Ok(())
}

impl From<ProfileArgs> for crate::profile_cli::Options {
    fn from(a: ProfileArgs) -> Self {
        let format = match a.format {
            CliReportFormat::Html => crate::reports::ReportFormat::Html,
            CliReportFormat::Json => crate::reports::ReportFormat::Json,
            CliReportFormat::Xlsx => crate::reports::ReportFormat::Xlsx,
        };
        crate::profile_cli::Options {
            file: a.file,
            baseline: a.baseline,
            format,
            out: a.out,
            sheet: a.sheet,
            header: a.header,
            agents: a.agents,
            parameters: a.parameters,
            quiet: a.quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_healthcheck_asks_the_address_the_server_listens_on() {
        let at = |host: &str| local_address(host.parse().unwrap(), 8000).to_string();
        assert_eq!(at("0.0.0.0"), "127.0.0.1:8000");
        assert_eq!(at("::"), "127.0.0.1:8000");
        assert_eq!(at("::1"), "[::1]:8000");
        assert_eq!(at("10.1.2.3"), "10.1.2.3:8000");
    }
}
