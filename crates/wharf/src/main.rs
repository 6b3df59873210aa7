//! `wharf`: the command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use wharf::{App, Config, Overrides};

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "A self-hosted container hub and OCI registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage personal access tokens (usable as the password for docker login).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Review trusted-content program applications (Verified Publisher, Sponsored Open Source).
    #[command(subcommand)]
    Program(ProgramCommand),
    /// Manage teams inside organizations.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Pull analytics: export the reports as CSV, classify pending events, seed test data.
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
    /// Exempt users, organizations and address ranges from pull rate limits, or give them a
    /// limit of their own.
    #[command(subcommand, name = "ratelimit")]
    RateLimit(RateLimitCommand),
    /// Check that the configured database and blob store are reachable and writable.
    Check {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Write a report of a namespace as CSV, with the seeds' columns, for one week
    /// (Monday to Sunday) or one month.
    Export {
        /// The organization or user whose repositories the report covers.
        #[arg(long)]
        namespace: String,
        /// summary, trends, technographic, technographic-companies, tracked-companies, raw,
        /// repository-summary, reference-summary, extension-core or extension-premium.
        #[arg(long, value_parser = report_name)]
        report: String,
        /// For the extension reports (one file per extension): the extension's repository,
        /// without the namespace. Without it, `--out` names a directory that gets one file
        /// per extension.
        #[arg(long)]
        repository: Option<String>,
        /// An ISO week, e.g. 2026-W47.
        #[arg(long, conflicts_with = "month", required_unless_present = "month")]
        week: Option<String>,
        /// A month, e.g. 2026-11 (available from the first day of the next month).
        #[arg(long)]
        month: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Export a period that has not ended yet (its numbers will still change).
        #[arg(long)]
        partial: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Classify the pull events stored so far into actions (the server does it every 10 s,
    /// leaving the last 75 s for requests still to come).
    Classify {
        /// Classify up to now, the last seconds included: only when no wharf is serving
        /// (events that arrive later for that time would never be classified).
        #[arg(long = "final")]
        final_: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Store synthetic pull events (for benchmarks and demonstrations) and classify them.
    Seed {
        #[arg(long)]
        namespace: String,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Spread over this many days before now.
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 50)]
        repos: u32,
        #[arg(long, default_value_t = 20_000)]
        clients: u32,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum RateLimitCommand {
    /// List the rules.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Set the rule for a user, an organization (its members and tokens) or an address range
    /// (CIDR, e.g. 10.0.0.0/8): `--pulls N` per window, or `--exempt` for no limit at all.
    Set {
        #[arg(value_parser = ["user", "org", "range"])]
        kind: String,
        subject: String,
        #[arg(long, conflicts_with = "exempt", required_unless_present = "exempt")]
        pulls: Option<u64>,
        #[arg(long)]
        exempt: bool,
        /// Why (shown in the list).
        #[arg(long, default_value = "")]
        note: String,
        /// The administrator making the change.
        #[arg(long = "as")]
        admin: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a rule: the subject gets the default limits again.
    Remove {
        #[arg(value_parser = ["user", "org", "range"])]
        kind: String,
        subject: String,
        /// The administrator making the change.
        #[arg(long = "as")]
        admin: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    /// Create a team in an organization.
    Add {
        org: String,
        team: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Add a member of the organization to a team.
    Member {
        org: String,
        team: String,
        user: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Make a repository private: only its namespace's owner, an organization's members and
    /// administrators see it. Creates the repository if it does not exist.
    Private {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Make a repository public: anyone may pull it.
    Public {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Grant a user (`alice`) or a team (`acme/devs`) read, write (push) or admin (delete)
    /// on a repository.
    Grant {
        name: String,
        grantee: String,
        #[arg(long, value_parser = ["read", "write", "admin"])]
        permission: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum ProgramCommand {
    /// List applications, newest first.
    List {
        /// Only applications with this status.
        #[arg(long, value_parser = ["pending", "approved", "rejected", "revoked"])]
        status: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Approve, reject or revoke an application, as the administrator `--as`.
    Decide {
        id: i64,
        #[arg(value_parser = ["approve", "reject", "revoke"])]
        decision: String,
        /// The administrator deciding.
        #[arg(long = "as")]
        admin: String,
        /// A note shown to the organization.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an access token for a user and print its secret (shown this once only).
    Add {
        user: String,
        /// What the token may do: read, read-write, delete or admin.
        #[arg(long, value_parser = ["read", "read-write", "delete", "admin"])]
        scope: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Days until the token expires [default: never].
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
        /// Make an organization access token for ORG (USER must own ORG); docker logs in with
        /// the organization's name as the username.
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a user's access tokens (never their secrets).
    List {
        user: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke an access token by its id.
    Revoke {
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where the data is, for the management commands.
#[derive(clap::Args)]
struct DataArgs {
    /// Directory for the database and blobs [default: ./wharf-data; env WHARF_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Metadata database: postgres://USER:PASSWORD@HOST:PORT/DB or sqlite://PATH
    /// [default: SQLite in the data directory; env WHARF_DATABASE].
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Blob storage: s3://BUCKET/PREFIX?endpoint=URL&region=R or a directory
    /// [default: the data directory; env WHARF_STORAGE].
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// Configuration file [default: ./wharf.toml when present].
    #[arg(long, value_name = "FILE", env = "WHARF_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; their name becomes their namespace. The password is read from stdin.
    Add {
        name: String,
        /// The user's email address (unique) [default: NAME@localhost].
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization owned by an existing user.
    Add {
        name: String,
        #[arg(long, value_name = "USER")]
        owner: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Add a user to an organization, or change their role.
    Member {
        org: String,
        user: String,
        #[arg(long, value_parser = ["owner", "editor", "member"])]
        role: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address and port to listen on [default: 0.0.0.0:5000; env WHARF_LISTEN].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Directory for the database and blobs [default: ./wharf-data; env WHARF_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Metadata database: postgres://USER:PASSWORD@HOST:PORT/DB (shared by several nodes) or
    /// sqlite://PATH [default: SQLite in the data directory; env WHARF_DATABASE].
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Blob storage: s3://BUCKET/PREFIX?endpoint=URL&region=R (shared by several nodes;
    /// credentials from WHARF_S3_ACCESS_KEY_ID/WHARF_S3_SECRET_ACCESS_KEY or AWS_*) or a
    /// directory [default: the data directory; env WHARF_STORAGE].
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Configuration file [default: ./wharf.toml when present].
    #[arg(long, value_name = "FILE", env = "WHARF_CONFIG")]
    config: Option<PathBuf>,
    /// Limit pulls per client as Docker Hub does (100 per 6 hours anonymous, 200 signed in;
    /// see the rate limit keys in the configuration) [env WHARF_RATE_LIMITS].
    #[arg(long)]
    rate_limits: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::User(cmd) => user(cmd).await,
            Command::Org(cmd) => org(cmd).await,
            Command::Token(cmd) => token(cmd).await,
            Command::Repo(cmd) => repo(cmd).await,
            Command::Team(cmd) => team(cmd).await,
            Command::Program(cmd) => program(cmd).await,
            Command::RateLimit(cmd) => rate_limit(cmd).await,
            Command::Analytics(cmd) => analytics(cmd).await,
            Command::Check { data } => check(data).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(
        args.config.as_deref(),
        Overrides {
            listen: args.listen,
            data_dir: args.data_dir,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            database: args.database,
            storage: args.storage,
            rate_limits: args.rate_limits.then_some(true),
        },
    )?;
    let state = App::open(&config).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let sweeper = tokio::spawn(wharf::jobs::sweep_uploads(
        state.registry.clone(),
        Duration::from_secs(config.upload_sweep_interval_secs),
        stop_rx.clone(),
    ));
    let pulls = tokio::spawn(wharf::jobs::flush_pulls(
        state.hub.clone(),
        Duration::from_secs(5),
        stop_rx.clone(),
    ));
    let limits = tokio::spawn(wharf::jobs::sync_rate_limits(
        state.hub.clone(),
        Duration::from_millis(config.rate_limit_sync_ms),
        stop_rx.clone(),
    ));
    let writer = tokio::spawn(state.analytics.clone().run_writer(stop_rx.clone()));
    let classifier = tokio::spawn(wharf::jobs::classify_pulls(
        state.analytics.clone(),
        // Every 10 s rather than 30: the same work spread more evenly, which disturbs the
        // threads serving pulls less; measured under a saturating manifest GET load (before
        // runs were bounded by events), 30 s cost about 4% of req/s more than 10 s.
        Duration::from_secs(10),
        stop_rx.clone(),
    ));
    let data_dir = config.data_dir.clone();
    wharf::server::serve(
        &config,
        App::router(state.clone()),
        stop_rx,
        |addr, scheme| {
            // Scripts wait for this line, so it is printed even when the log level hides INFO.
            if tracing::enabled!(tracing::Level::INFO) {
                tracing::info!(data_dir = %data_dir.display(), "wharf ready on {scheme}://{addr}");
            } else {
                eprintln!("wharf ready on {scheme}://{addr}");
            }
        },
    )
    .await?;
    let _ = sweeper.await;
    let _ = pulls.await;
    let _ = limits.await;
    let _ = writer.await;
    let _ = classifier.await;
    state.registry.db().close().await;
    tracing::info!("wharf stopped");
    Ok(())
}

/// The configuration the management commands use: the layers plus their flags.
fn data_config(data: DataArgs) -> anyhow::Result<Config> {
    Config::load(
        data.config.as_deref(),
        Overrides {
            data_dir: data.data_dir,
            database: data.database,
            storage: data.storage,
            ..Overrides::default()
        },
    )
}

async fn open_data(data: DataArgs) -> anyhow::Result<wharf::AppState> {
    App::open(&data_config(data)?).await
}

async fn check(data: DataArgs) -> anyhow::Result<()> {
    let config = data_config(data)?;
    let db_name = match &config.database {
        Some(url) => wharf_db::redact_url(url),
        None => format!("sqlite://{}", config.data_dir.join("wharf.db").display()),
    };
    let store_name = match &config.storage {
        Some(s) => s.clone(),
        None => config.data_dir.join("storage").display().to_string(),
    };
    let (db, store) = wharf::app::open_backends(&config).await?;
    db.check_writable()
        .await
        .map_err(|e| anyhow::anyhow!("database {db_name}: not writable: {e}"))?;
    println!("database {db_name}: reachable, migrated and writable");
    store
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("storage {store_name}: not writable: {e}"))?;
    println!("storage {store_name}: reachable and writable");
    db.close().await;
    Ok(())
}

async fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            email,
            password_stdin: _,
            admin,
            data,
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let email = email.unwrap_or_else(|| format!("{name}@localhost"));
            let state = open_data(data).await?;
            state.hub.add_user(&name, &email, password, admin).await?;
            state.registry.db().close().await;
            println!(
                "user {name} created{}",
                if admin { " (administrator)" } else { "" }
            );
            Ok(())
        }
    }
}

async fn org(cmd: OrgCommand) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Add { name, owner, data } => {
            let state = open_data(data).await?;
            state.hub.add_org(&name, &owner).await?;
            state.registry.db().close().await;
            println!("organization {name} created, owned by {owner}");
        }
        OrgCommand::Member {
            org,
            user,
            role,
            data,
        } => {
            let role = wharf_hub::OrgRole::parse(&role).expect("clap checked the role");
            let state = open_data(data).await?;
            state.hub.set_org_member(&org, &user, role).await?;
            state.registry.db().close().await;
            println!("{user} is now {} of {org}", role.as_str());
        }
    }
    Ok(())
}

/// A report name `--report` accepts: the pull reports and the two extension summaries.
fn report_name(name: &str) -> Result<String, String> {
    match name {
        "extension-core" | "extension-premium" => Ok(name.to_owned()),
        _ => report_kind(name)
            .map(|_| name.to_owned())
            .map_err(|e| format!("{e}, extension-core, extension-premium")),
    }
}

fn report_kind(name: &str) -> Result<wharf_hub::ReportKind, String> {
    wharf_hub::ReportKind::from_name(name).ok_or_else(|| {
        let names: Vec<_> = wharf_hub::ReportKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        format!("unknown report {name:?}; one of {}", names.join(", "))
    })
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The Extension core or premium summary: the seeds' columns, so one file per extension
/// (one row each), either the one `--repository` names (to `--out` or standard output) or
/// every extension of the namespace with events, each to `DIR/<repository>.<report>.<period>.csv`.
async fn extension_export(
    state: &wharf::AppState,
    namespace: &str,
    report: &str,
    period: &wharf_analytics::report::Period,
    repository: Option<&str>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    // `acme/my-extension` names the same extension as `my-extension`.
    let repository = repository.map(|r| {
        r.strip_prefix(namespace)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(r)
    });
    let mut files = state
        .extensions
        .summary_files(namespace, report, period, repository)
        .await?;
    if let (Some(repo), Some(f)) = (repository, files.first())
        && !f.had_events
    {
        eprintln!("note: no events of {repo} up to the end of this period: all zeros");
    }
    match (repository, out) {
        (Some(repo), out) => {
            let csv = files.pop().map(|f| f.csv).unwrap_or_default();
            match out {
                Some(path) => std::fs::write(path, &csv)
                    .map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().lock().write_all(&csv)?;
                }
            }
            eprintln!(
                "{report} report of {namespace}/{repo} for {}",
                period.name()
            );
        }
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("--out {}: cannot create the directory: {e}", dir.display())
            })?;
            for f in &files {
                let path = dir.join(format!("{}.{report}.{}.csv", f.repository, period.name()));
                std::fs::write(&path, &f.csv)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                println!("{}", path.display());
            }
            eprintln!(
                "{report} report of {namespace} for {}: {} extensions",
                period.name(),
                files.len()
            );
        }
        (None, None) => anyhow::bail!(
            "the extension reports are one file per extension: name one with --repository NAME, or a directory for all of them with --out DIR"
        ),
    }
    Ok(())
}

async fn analytics(cmd: AnalyticsCommand) -> anyhow::Result<()> {
    use wharf_analytics::report::{Granularity, Period};
    match cmd {
        AnalyticsCommand::Export {
            namespace,
            report,
            repository,
            week,
            month,
            out,
            partial,
            data,
        } => {
            let period: Period = match (&week, &month) {
                (Some(w), _) => w.parse().map_err(|e| anyhow::anyhow!("--week {w}: {e}"))?,
                (None, Some(m)) => m.parse().map_err(|e| anyhow::anyhow!("--month {m}: {e}"))?,
                (None, None) => unreachable!("clap requires --week or --month"),
            };
            let today = time::OffsetDateTime::now_utc().date();
            if !partial && !period.is_available(today) {
                anyhow::bail!(
                    "the {} {} is available from {} (when it has ended); add --partial for the numbers so far",
                    if period.granularity() == Granularity::Weekly {
                        "week"
                    } else {
                        "month"
                    },
                    period.name(),
                    wharf_analytics::report::period::format_date(period.available_from()),
                );
            }
            if report.starts_with("extension-") {
                let state = open_data(data).await?;
                let done = extension_export(
                    &state,
                    &namespace,
                    &report,
                    &period,
                    repository.as_deref(),
                    out.as_deref(),
                )
                .await;
                state.registry.db().close().await;
                return done;
            }
            if repository.is_some() {
                anyhow::bail!(
                    "--repository applies to the extension reports only (extension-core, extension-premium)"
                );
            }
            let report = report_kind(&report).map_err(|e| anyhow::anyhow!("--report: {e}"))?;
            let state = open_data(data).await?;
            let a = &state.analytics;
            a.classify_pending().await?;
            let sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let total = if report == wharf_hub::ReportKind::Raw {
                a.count_actions(&namespace, &period).await?
            } else {
                1
            };
            let bar = progress_bar(total, report.name());
            let (tx, mut rx) = tokio::sync::mpsc::channel::<wharf_hub::ReportChunk>(4);
            let write = async move {
                let mut sink = sink;
                while let Some(chunk) = rx.recv().await {
                    sink.write_all(&chunk.bytes)?;
                    bar.inc(if report == wharf_hub::ReportKind::Raw {
                        chunk.rows
                    } else {
                        1
                    });
                }
                sink.flush()?;
                bar.finish_and_clear();
                Ok::<_, std::io::Error>(())
            };
            let (rows, written) =
                tokio::join!(a.stream_report(&namespace, report, &period, tx), write);
            let rows = rows?;
            written.map_err(|e| anyhow::anyhow!("writing the report: {e}"))?;
            state.registry.db().close().await;
            eprintln!(
                "{} report of {namespace} for {}: {rows} rows",
                report.name(),
                period.name()
            );
        }
        AnalyticsCommand::Classify { final_, data } => {
            let state = open_data(data).await?;
            let n = if final_ {
                state.analytics.classify_final().await?
            } else {
                state.analytics.classify_pending().await?
            };
            state.registry.db().close().await;
            println!("{n} actions classified");
        }
        AnalyticsCommand::Seed {
            namespace,
            events,
            days,
            repos,
            clients,
            data,
        } => {
            wharf_hub::validate_account_name(&namespace)?;
            let state = open_data(data).await?;
            let a = &state.analytics;
            let plan = wharf_hub::analytics::SeedPlan {
                namespace: namespace.clone(),
                events,
                days,
                repos,
                clients,
                end_ms: wharf_hub::analytics::now_ms() - 60_000,
                seed: 7,
            };
            let started = std::time::Instant::now();
            let bar = progress_bar(events, "storing events");
            let stored = a.seed(&plan, |n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            let store_s = started.elapsed().as_secs_f64();
            eprintln!(
                "{stored} events stored in {store_s:.1} s ({:.0} events/s); classifying…",
                stored as f64 / store_s.max(0.001)
            );
            let started = std::time::Instant::now();
            let actions = a.classify_pending().await?;
            state.registry.db().close().await;
            println!(
                "{stored} events for {namespace} over {days} days; {actions} actions classified in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// An administrator by name, for the commands that act as one.
async fn admin_user(state: &wharf::AppState, name: &str) -> anyhow::Result<wharf_hub::User> {
    state
        .hub
        .user(name)
        .await?
        .filter(|u| u.is_admin)
        .ok_or_else(|| anyhow::anyhow!("{name:?} is not an administrator"))
}

fn describe_rule(pulls: Option<i64>) -> String {
    match pulls {
        None => "exempt".into(),
        Some(n) => format!("{n} pulls per window"),
    }
}

async fn rate_limit(cmd: RateLimitCommand) -> anyhow::Result<()> {
    match cmd {
        RateLimitCommand::List { data } => {
            let state = open_data(data).await?;
            let rules = state.registry.db().rate_rules().await?;
            state.registry.db().close().await;
            if rules.is_empty() {
                println!("no rules: every client has the default limits");
            }
            for r in rules {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.kind,
                    r.subject,
                    describe_rule(r.pulls),
                    r.note
                );
            }
        }
        RateLimitCommand::Set {
            kind,
            subject,
            pulls,
            exempt,
            note,
            admin,
            data,
        } => {
            let state = open_data(data).await?;
            let user = admin_user(&state, &admin).await?;
            let pulls = if exempt { None } else { pulls };
            let rule = state
                .hub
                .set_rate_rule(&user, &kind, &subject, pulls, &note)
                .await?;
            state.registry.db().close().await;
            println!(
                "{} {}: {}",
                rule.kind,
                rule.subject,
                describe_rule(rule.pulls)
            );
        }
        RateLimitCommand::Remove {
            kind,
            subject,
            admin,
            data,
        } => {
            let state = open_data(data).await?;
            let user = admin_user(&state, &admin).await?;
            state.hub.delete_rate_rule(&user, &kind, &subject).await?;
            state.registry.db().close().await;
            println!("{kind} {subject}: default limits again");
        }
    }
    Ok(())
}

async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Add {
            user,
            scope,
            label,
            expires_days,
            org,
            data,
        } => {
            let state = open_data(data).await?;
            let new = match &org {
                Some(org) => {
                    state
                        .hub
                        .add_org_access_token(&user, org, &label, &scope, expires_days)
                        .await?
                }
                None => {
                    state
                        .hub
                        .add_access_token(&user, &label, &scope, expires_days)
                        .await?
                }
            };
            state.registry.db().close().await;
            eprintln!(
                "access token {} for {user} (scope {scope}); the secret is shown only now:",
                new.token.id
            );
            println!("{}", new.secret);
        }
        TokenCommand::List { user, data } => {
            let state = open_data(data).await?;
            let tokens = state.hub.access_tokens(&user).await?;
            state.registry.db().close().await;
            println!("ID\tLABEL\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tREVOKED");
            let t = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |s| s.to_string());
            for k in tokens {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.label,
                    k.scope,
                    k.created_at,
                    t(k.expires_at),
                    t(k.last_used_at),
                    t(k.revoked_at)
                );
            }
        }
        TokenCommand::Revoke { id, data } => {
            let state = open_data(data).await?;
            state.hub.revoke_access_token(&id).await?;
            state.registry.db().close().await;
            println!("access token {id} revoked");
        }
    }
    Ok(())
}

async fn repo(cmd: RepoCommand) -> anyhow::Result<()> {
    let (name, data, private) = match cmd {
        RepoCommand::Private { name, data } => (name, data, true),
        RepoCommand::Public { name, data } => (name, data, false),
        RepoCommand::Grant {
            name,
            grantee,
            permission,
            data,
        } => {
            let repo: wharf_oci::RepoName = name.parse()?;
            let permission =
                wharf_hub::RepoPermission::parse(&permission).expect("clap checked the permission");
            let state = open_data(data).await?;
            state.hub.grant(&repo, &grantee, permission).await?;
            state.registry.db().close().await;
            println!("{grantee} now has {} on {repo}", permission.as_str());
            return Ok(());
        }
    };
    let repo: wharf_oci::RepoName = name.parse()?;
    let state = open_data(data).await?;
    state.hub.set_repo_private(&repo, private).await?;
    state.registry.db().close().await;
    println!(
        "{repo} is now {}",
        if private { "private" } else { "public" }
    );
    Ok(())
}

async fn program(cmd: ProgramCommand) -> anyhow::Result<()> {
    match cmd {
        ProgramCommand::List { status, data } => {
            let state = open_data(data).await?;
            // Listing is an administrator's view of the whole hub.
            let all = wharf_hub::User::password(0, String::new(), true);
            let (count, apps) = state
                .hub
                .all_applications(&all, status.as_deref(), 0, 1000)
                .await?;
            state.registry.db().close().await;
            println!("{count} application(s)");
            println!(
                "{:<6} {:<20} {:<20} {:<10} {:<30} WEBSITE",
                "ID", "ORGANIZATION", "PROGRAM", "STATUS", "LEGAL ENTITY"
            );
            for a in apps {
                println!(
                    "{:<6} {:<20} {:<20} {:<10} {:<30} {}",
                    a.id, a.namespace, a.program, a.status, a.legal_name, a.website
                );
            }
        }
        ProgramCommand::Decide {
            id,
            decision,
            admin,
            note,
            data,
        } => {
            let state = open_data(data).await?;
            let user = admin_user(&state, &admin).await?;
            let decision =
                wharf_hub::Decision::parse(&decision).expect("clap checked the decision");
            let a = state.hub.decide_program(&user, id, decision, &note).await?;
            state.registry.db().close().await;
            println!(
                "application {} of {} ({}) is now {}",
                a.id, a.namespace, a.program, a.status
            );
        }
    }
    Ok(())
}

async fn team(cmd: TeamCommand) -> anyhow::Result<()> {
    match cmd {
        TeamCommand::Add { org, team, data } => {
            let state = open_data(data).await?;
            state.hub.add_team(&org, &team).await?;
            state.registry.db().close().await;
            println!("team {org}/{team} created");
        }
        TeamCommand::Member {
            org,
            team,
            user,
            data,
        } => {
            let state = open_data(data).await?;
            state.hub.add_team_member(&org, &team, &user).await?;
            state.registry.db().close().await;
            println!("{user} joined {org}/{team}");
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
