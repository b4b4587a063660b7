//! The `switchyard` binary: command-line parsing and the subcommands, nothing else.
//!
//! `serve` runs the gateway, `simulate` the provider simulator, `demo` both with every catalog
//! provider pointed at the simulator; `accounts`, `credits`, `keys`, `byok`, `activity` and
//! `migrate` administer the database directly. Every admin command prints text, or JSON with `--json`.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use switchyard_core::catalog::{Catalog, Protocol, BUNDLED};
use switchyard_core::discovery::find_model;
use switchyard_core::generation::format_rfc3339_ms;
use switchyard_core::money::{Money, Price};
use switchyard_server::config::{Config, Overrides};
use switchyard_server::{activity, byok};
use switchyard_server::{bootstrap_operator, create_key, new_account_id, unix_ms, Gateway};
use switchyard_store::Store;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A self-hosted, OpenRouter-compatible LLM gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run the provider simulator.
    Simulate {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
    },
    /// Run gateway and simulator in one process, every provider pointed at the simulator.
    Demo {
        /// Gateway address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Simulator address.
        #[arg(long, default_value = "127.0.0.1:8090")]
        simulator_listen: String,
        /// Database URL (default: sqlite file switchyard-demo.db).
        #[arg(long, default_value = "sqlite://switchyard-demo.db")]
        database: String,
        /// Print the URLs and keys as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Grant and show credits.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// Create and list API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Store, list and remove accounts' own provider keys (BYOK), encrypted with [byok] encryption_key.
    Byok {
        #[command(subcommand)]
        command: ByokCommand,
    },
    /// Export usage: one CSV row per generation.
    Activity {
        #[command(subcommand)]
        command: ActivityCommand,
    },
    /// List, show and check the model catalog (with the config's overrides applied).
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Create or upgrade the database schema.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
}

/// Options every database command takes.
#[derive(Args, Clone)]
struct Common {
    /// TOML config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Database URL (default sqlite://switchyard.db).
    #[arg(long)]
    database: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List models (or providers), with the cheapest enabled price.
    List {
        #[command(flatten)]
        common: Common,
        /// List providers instead of models.
        #[arg(long)]
        providers: bool,
        /// Only models served by this provider slug.
        #[arg(long)]
        provider: Option<String>,
        /// Only models whose id or name contains this text.
        #[arg(long)]
        search: Option<String>,
        /// Only models with an enabled provider.
        #[arg(long)]
        enabled: bool,
    },
    /// Show one model and its endpoints.
    Show {
        #[command(flatten)]
        common: Common,
        /// Model id, permaslug or alias.
        model: String,
    },
    /// Validate the config's catalog overrides and print a summary.
    Check {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account.
    Create {
        #[command(flatten)]
        common: Common,
        /// Account name.
        #[arg(long)]
        name: String,
    },
    /// List accounts with balances.
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum CreditsCommand {
    /// Add credits (USD) to an account.
    Grant {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: String,
        /// Amount in USD, e.g. 10 or 2.50.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Show an account's credits and usage.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; the key is printed once.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "default")]
        name: String,
        /// A management key (admin endpoints) instead of an inference key.
        #[arg(long)]
        management: bool,
        /// Spending limit in USD.
        #[arg(long)]
        limit: Option<String>,
    },
    /// List keys (never the keys themselves).
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        include_disabled: bool,
    },
}

#[derive(Subcommand)]
enum ByokCommand {
    /// Store a provider key for an account (encrypted; shown afterwards only masked).
    Add {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: String,
        /// Provider slug, e.g. openai (see `switchyard catalog list --providers`).
        #[arg(long)]
        provider: String,
        /// The provider's API key; `-` reads it from standard input (keeps it out of shell history).
        #[arg(long)]
        api_key: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List an account's provider keys (masked).
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: String,
    },
    /// Remove a provider key.
    Remove {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: String,
        /// The credential id, as `byok list` shows it.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
enum ActivityCommand {
    /// Write generation records as CSV (all accounts unless --account), oldest first.
    Export {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<String>,
        /// First UTC day included, YYYY-MM-DD (default: the beginning).
        #[arg(long)]
        since: Option<String>,
        /// Last UTC day included, YYYY-MM-DD (default: today).
        #[arg(long)]
        until: Option<String>,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes on one line, without a backtrace: it is a message for people.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, listen } => serve(common, listen).await,
        Command::Simulate { listen } => simulate(listen).await,
        Command::Demo {
            listen,
            simulator_listen,
            database,
            json,
        } => demo(listen, simulator_listen, database, json).await,
        Command::Catalog { command } => catalog(command),
        Command::Accounts { command } => accounts(command).await,
        Command::Credits { command } => credits(command).await,
        Command::Keys { command } => keys(command).await,
        Command::Byok { command } => byok(command).await,
        Command::Activity { command } => activity(command).await,
        Command::Migrate { common } => {
            let (_, store) = open(&common).await?;
            print(
                common.json,
                json!({"migrated": true}),
                "database is up to date",
            );
            drop(store);
            Ok(())
        }
    }
}

fn init_logging() {
    // JSON logs when not on a terminal; the filter comes from RUST_LOG (default info).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        builder.init();
    } else {
        builder.json().init();
    }
}

fn load_config(common: &Common, listen: Option<String>) -> anyhow::Result<Config> {
    let env = |name: &str| std::env::var(name).ok();
    let overrides = Overrides {
        listen,
        database: common.database.clone(),
    };
    Ok(Config::load(common.config.as_deref(), &env, &overrides)?)
}

async fn open(common: &Common) -> anyhow::Result<(Config, Store)> {
    let config = load_config(common, None)?;
    let store = Store::connect(&config.database)
        .await
        .with_context(|| format!("opening database {}", config.database))?;
    Ok((config, store))
}

async fn serve(common: Common, listen: Option<String>) -> anyhow::Result<()> {
    init_logging();
    let config = load_config(&common, listen)?;
    let store = Store::connect(&config.database)
        .await
        .with_context(|| format!("opening database {}", config.database))?;
    if let Some(new) = bootstrap_operator(&store).await? {
        println!("Created the operator account {}.", new.row.account_id);
        println!("Management key (shown once, store it now): {}", new.key);
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let enabled: Vec<&String> = config.upstreams.keys().collect();
    println!("Switchyard listening on http://{}", listener.local_addr()?);
    tracing::info!(listen = %listener.local_addr()?, providers = ?enabled, "switchyard gateway listening");
    if enabled.is_empty() {
        tracing::warn!("no provider is enabled: set OPENAI_API_KEY (or another provider's key) or configure [providers]");
    }
    Gateway::new(config, store)?
        .serve(listener, shutdown_signal())
        .await?;
    tracing::info!("switchyard gateway stopped");
    Ok(())
}

async fn simulate(listen: String) -> anyhow::Result<()> {
    init_logging();
    let listener = bind(&listen).await?;
    println!("Simulator listening on http://{}", listener.local_addr()?);
    tracing::info!(listen = %listener.local_addr()?, "provider simulator listening");
    switchyard_simulator::serve(listener, shutdown_signal()).await?;
    Ok(())
}

async fn demo(
    listen: String,
    simulator_listen: String,
    database: String,
    json: bool,
) -> anyhow::Result<()> {
    init_logging();
    let sim_listener = bind(&simulator_listen).await?;
    let sim_addr = sim_listener.local_addr()?;
    let gateway_listener = bind(&listen).await?;
    let gateway_addr = gateway_listener.local_addr()?;

    // Every catalog provider points at its own simulated upstream, named by the provider's slug.
    let mut text = format!("database = \"{database}\"\n");
    let catalog = Catalog::from_files(BUNDLED)?;
    for provider in catalog.providers() {
        // Native upstreams keep their real base URL's path (`/v1beta`, `/v2`, `/openai`); the
        // simulator serves every OpenAI-compatible one under `/v1`.
        let path = match provider.protocol {
            Protocol::OpenAi => "/v1",
            _ => provider
                .base_url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                .unwrap_or("")
                .trim_end_matches('/'),
        };
        text.push_str(&format!(
            "[providers.{slug}]\nbase_url = \"http://{sim_addr}/{slug}{path}\"\napi_key = \"demo\"\n",
            slug = provider.slug
        ));
        // Vertex AI paths name a project; the key is taken as an express-mode API key.
        if provider.protocol == Protocol::Vertex {
            text.push_str("project = \"switchyard-demo\"\n");
        }
    }
    let env = |_: &str| None;
    let config = Config::from_toml(&text, &env, &Overrides::default())?;
    let store = Store::connect(&config.database).await?;
    let management = match bootstrap_operator(&store).await? {
        Some(new) => new,
        None => {
            let account = store
                .list_accounts()
                .await?
                .into_iter()
                .next()
                .context("the demo database has no account")?;
            create_key(&store, &account.id, "demo management key", true, None).await?
        }
    };
    let account_id = management.row.account_id.clone();
    store
        .grant_credits(
            &account_id,
            Money::parse_usd("10")?,
            Some("demo credits"),
            unix_ms(),
        )
        .await?;
    let inference = create_key(&store, &account_id, "demo key", false, None).await?;

    let gateway_url = format!("http://{gateway_addr}");
    let simulator_url = format!("http://{sim_addr}");
    if json {
        println!(
            "{}",
            json!({"gateway_url": gateway_url, "simulator_url": simulator_url,
                   "api_key": inference.key, "management_key": management.key})
        );
    } else {
        println!("Switchyard demo: everything offline.");
        println!("  gateway:        {gateway_url}/api/v1");
        println!("  simulator:      {simulator_url}");
        println!("  api key:        {} ($10 of demo credits)", inference.key);
        println!("  management key: {}", management.key);
        println!();
        println!(
            "Try: curl {gateway_url}/api/v1/chat/completions -H \"Authorization: Bearer {}\" \\",
            inference.key
        );
        println!("       -H 'Content-Type: application/json' -d '{{\"model\":\"openai/gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'");
    }

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut sim_stop = stop_tx.subscribe();
    let simulator = tokio::spawn(switchyard_simulator::serve(sim_listener, async move {
        let _ = sim_stop.recv().await;
    }));
    Gateway::new(config, store)?
        .serve(gateway_listener, shutdown_signal())
        .await?;
    let _ = stop_tx.send(());
    let _ = simulator.await;
    Ok(())
}

/// USD per million tokens, for people.
fn per_million(price: Price) -> String {
    let per_m = Price::from_picos(price.picos().saturating_mul(1_000_000));
    format!("${per_m}")
}

fn catalog(command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::List {
            common,
            providers,
            provider,
            search,
            enabled,
        } => {
            let config = load_config(&common, None)?;
            let catalog = &config.catalog;
            let is_enabled = |slug: &str| config.upstreams.contains_key(slug);
            if providers {
                let rows: Vec<_> = catalog
                    .providers()
                    .iter()
                    .map(|p| {
                        let endpoints = catalog
                            .models()
                            .iter()
                            .flat_map(|m| &m.endpoints)
                            .filter(|e| e.provider == p.slug)
                            .count();
                        (p, endpoints)
                    })
                    .collect();
                let list: Vec<_> = rows
                    .iter()
                    .map(|(p, n)| json!({"slug": p.slug, "name": p.name, "protocol": p.protocol.as_str(), "base_url": p.base_url,
                                         "enabled": is_enabled(&p.slug), "endpoints": n, "zdr": p.data_policy.zdr}))
                    .collect();
                let mut text = format!(
                    "{:<24} {:<28} {:<10} {:>9} {:>8}",
                    "SLUG", "NAME", "PROTOCOL", "ENDPOINTS", "ENABLED"
                );
                for (p, n) in &rows {
                    text.push_str(&format!(
                        "\n{:<24} {:<28} {:<10} {:>9} {:>8}",
                        p.slug,
                        p.name,
                        p.protocol.as_str(),
                        n,
                        if is_enabled(&p.slug) { "yes" } else { "no" }
                    ));
                }
                print(common.json, json!(list), &text);
                return Ok(());
            }
            let needle = search.map(|s| s.to_lowercase());
            let models: Vec<_> = catalog
                .models()
                .iter()
                .filter(|m| {
                    provider
                        .as_ref()
                        .is_none_or(|p| m.endpoints.iter().any(|e| &e.provider == p))
                })
                .filter(|m| {
                    needle.as_ref().is_none_or(|n| {
                        m.id.to_lowercase().contains(n) || m.name.to_lowercase().contains(n)
                    })
                })
                .filter(|m| !enabled || m.endpoints.iter().any(|e| is_enabled(&e.provider)))
                .collect();
            let list: Vec<_> = models
                .iter()
                .map(|m| {
                    let live = m
                        .endpoints
                        .iter()
                        .filter(|e| is_enabled(&e.provider))
                        .count();
                    json!({"id": m.id, "name": m.name, "context_length": m.context_length,
                           "endpoints": m.endpoints.len(), "enabled_endpoints": live,
                           "prompt": m.endpoints[0].pricing.prompt.to_string(),
                           "completion": m.endpoints[0].pricing.completion.to_string()})
                })
                .collect();
            let mut text = format!(
                "{:<52} {:>9} {:>9} {:>12} {:>12}",
                "MODEL", "CONTEXT", "ENDPOINTS", "PROMPT/M", "OUTPUT/M"
            );
            for m in &models {
                let live = m
                    .endpoints
                    .iter()
                    .filter(|e| is_enabled(&e.provider))
                    .count();
                text.push_str(&format!(
                    "\n{:<52} {:>9} {:>9} {:>12} {:>12}",
                    m.id,
                    m.context_length,
                    format!("{live}/{}", m.endpoints.len()),
                    per_million(m.endpoints[0].pricing.prompt),
                    per_million(m.endpoints[0].pricing.completion)
                ));
            }
            text.push_str(&format!(
                "\n{} models (ENDPOINTS: enabled/total)",
                models.len()
            ));
            print(common.json, json!(list), &text);
        }
        CatalogCommand::Show { common, model } => {
            let config = load_config(&common, None)?;
            let catalog = &config.catalog;
            let Some(m) = find_model(catalog, &model) else {
                bail!("no model `{model}` in the catalog; try `switchyard catalog list --search {model}`");
            };
            let value = json!({"data": switchyard_core::discovery::model_json(m),
                               "endpoints": switchyard_core::discovery::endpoints_json(catalog, m)["endpoints"]});
            let mut text = format!(
                "{} ({})\n  {}\n  context {} tokens, permaslug {}\n\n{:<28} {:<36} {:>12} {:>12} {:>8}",
                m.name, m.id, m.description, m.context_length, m.canonical_slug, "TAG", "UPSTREAM MODEL", "PROMPT/M", "OUTPUT/M", "ENABLED"
            );
            for e in &m.endpoints {
                text.push_str(&format!(
                    "\n{:<28} {:<36} {:>12} {:>12} {:>8}",
                    e.tag,
                    e.upstream_model,
                    per_million(e.pricing.prompt),
                    per_million(e.pricing.completion),
                    if config.upstreams.contains_key(&e.provider) {
                        "yes"
                    } else {
                        "no"
                    }
                ));
            }
            print(common.json, value, &text);
        }
        CatalogCommand::Check { common } => {
            let config = load_config(&common, None)?;
            let catalog = &config.catalog;
            let endpoints: usize = catalog.models().iter().map(|m| m.endpoints.len()).sum();
            let enabled: Vec<&String> = config.upstreams.keys().collect();
            print(
                common.json,
                json!({"ok": true, "version": catalog.version(), "models": catalog.models().len(),
                       "providers": catalog.providers().len(), "endpoints": endpoints, "enabled_providers": enabled}),
                &format!(
                    "ok: catalog {} with {} models, {} providers, {} endpoints; enabled providers: {}",
                    catalog.version(),
                    catalog.models().len(),
                    catalog.providers().len(),
                    endpoints,
                    if enabled.is_empty() { "none".to_owned() } else { enabled.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ") }
                ),
            );
        }
    }
    Ok(())
}

async fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Create { common, name } => {
            let (_, store) = open(&common).await?;
            let account = store
                .create_account(&new_account_id(), &name, unix_ms())
                .await?;
            print(
                common.json,
                json!({"id": account.id, "name": account.name}),
                &format!("Created account {} ({})", account.id, account.name),
            );
        }
        AccountsCommand::List { common } => {
            let (_, store) = open(&common).await?;
            let list = store.list_accounts().await?;
            let json_list: Vec<_> = list
                .iter()
                .map(|a| json!({"id": a.id, "name": a.name, "total_credits": a.total_credits.as_usd_f64(),
                                "total_usage": a.total_usage.as_usd_f64(), "balance": a.balance().as_usd_f64()}))
                .collect();
            let mut text = format!(
                "{:<22} {:<20} {:>14} {:>14}",
                "ID", "NAME", "CREDITS", "USAGE"
            );
            for a in &list {
                text.push_str(&format!(
                    "\n{:<22} {:<20} {:>14} {:>14}",
                    a.id,
                    a.name,
                    a.total_credits.to_string(),
                    a.total_usage.to_string()
                ));
            }
            print(common.json, json!(json_list), &text);
        }
    }
    Ok(())
}

async fn credits(command: CreditsCommand) -> anyhow::Result<()> {
    match command {
        CreditsCommand::Grant {
            common,
            account,
            amount,
            note,
        } => {
            let amount = Money::parse_usd(&amount).with_context(|| format!("--amount {amount}"))?;
            if amount <= Money::ZERO {
                bail!("--amount must be positive");
            }
            let (_, store) = open(&common).await?;
            let a = store
                .grant_credits(&account, amount, note.as_deref(), unix_ms())
                .await?;
            print(
                common.json,
                json!({"account": a.id, "granted": amount.as_usd_f64(), "total_credits": a.total_credits.as_usd_f64(),
                       "total_usage": a.total_usage.as_usd_f64(), "balance": a.balance().as_usd_f64()}),
                &format!("Granted ${amount} to {}; balance ${}", a.id, a.balance()),
            );
        }
        CreditsCommand::Show { common, account } => {
            let (_, store) = open(&common).await?;
            let a = store
                .account(&account)
                .await?
                .with_context(|| format!("no account {account}"))?;
            print(
                common.json,
                json!({"account": a.id, "total_credits": a.total_credits.as_usd_f64(),
                       "total_usage": a.total_usage.as_usd_f64(), "balance": a.balance().as_usd_f64()}),
                &format!(
                    "{}: credits ${}, usage ${}, balance ${}",
                    a.id,
                    a.total_credits,
                    a.total_usage,
                    a.balance()
                ),
            );
        }
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            common,
            account,
            name,
            management,
            limit,
        } => {
            let limit = limit
                .map(|l| Money::parse_usd(&l).with_context(|| format!("--limit {l}")))
                .transpose()?;
            let (_, store) = open(&common).await?;
            let new = create_key(&store, &account, &name, management, limit).await?;
            print(
                common.json,
                json!({"key": new.key, "hash": new.row.hash, "name": new.row.name, "account": new.row.account_id,
                       "management": management}),
                &format!(
                    "Created {} key {} for {}.\nKey (shown once): {}",
                    if management {
                        "management"
                    } else {
                        "inference"
                    },
                    new.row.hash,
                    new.row.account_id,
                    new.key
                ),
            );
        }
        KeysCommand::List {
            common,
            account,
            include_disabled,
        } => {
            let (_, store) = open(&common).await?;
            let list = store
                .list_keys(account.as_deref(), include_disabled, 0, i64::MAX)
                .await?;
            let json_list: Vec<_> = list
                .iter()
                .map(|k| json!({"hash": k.hash, "label": k.label, "name": k.name, "account": k.account_id,
                                "management": k.is_management, "disabled": k.disabled,
                                "limit": k.limit.map(Money::as_usd_f64), "usage": k.usage.as_usd_f64()}))
                .collect();
            let mut text = format!(
                "{:<24} {:<22} {:<20} {:>10} {:>12}",
                "LABEL", "ACCOUNT", "NAME", "KIND", "USAGE"
            );
            for k in &list {
                text.push_str(&format!(
                    "\n{:<24} {:<22} {:<20} {:>10} {:>12}",
                    k.label,
                    k.account_id,
                    k.name,
                    if k.is_management {
                        "management"
                    } else {
                        "inference"
                    },
                    k.usage.to_string()
                ));
            }
            print(common.json, json!(json_list), &text);
        }
    }
    Ok(())
}

async fn byok(command: ByokCommand) -> anyhow::Result<()> {
    match command {
        ByokCommand::Add {
            common,
            account,
            provider,
            api_key,
            name,
        } => {
            let api_key = if api_key == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading the API key from standard input")?;
                text
            } else {
                api_key
            };
            let (config, store) = open(&common).await?;
            let new = byok::NewCredential {
                account_id: &account,
                provider: &provider,
                api_key: &api_key,
                name: name.as_deref().unwrap_or(""),
                disabled: false,
            };
            let row = byok::add_credential(
                &store,
                config.byok.encryption_key.as_ref(),
                &config.catalog,
                &new,
                unix_ms(),
            )
            .await?;
            print(
                common.json,
                byok::credential_json(&row, 0),
                &format!(
                    "Stored {} key {} ({}) for {}; a running gateway uses it within {} s.",
                    row.provider,
                    row.id,
                    row.label,
                    row.account_id,
                    byok::TTL.as_secs()
                ),
            );
        }
        ByokCommand::List { common, account } => {
            let (_, store) = open(&common).await?;
            let rows = store.list_byok(&account).await?;
            let list = byok::credentials_json(rows.clone());
            let mut text = format!(
                "{:<36} {:<20} {:<20} {:<16} {:<8} {}",
                "ID", "PROVIDER", "NAME", "LABEL", "ENABLED", "CREATED"
            );
            for row in &rows {
                text.push_str(&format!(
                    "\n{:<36} {:<20} {:<20} {:<16} {:<8} {}",
                    row.id,
                    row.provider,
                    row.name,
                    row.label,
                    if row.disabled { "no" } else { "yes" },
                    &format_rfc3339_ms(row.created_at_ms)[..19]
                ));
            }
            print(common.json, json!(list), &text);
        }
        ByokCommand::Remove {
            common,
            account,
            id,
        } => {
            let (_, store) = open(&common).await?;
            if !store.delete_byok(&id, &account).await? {
                bail!("account {account} has no BYOK credential {id}; see `switchyard byok list --account {account}`");
            }
            print(
                common.json,
                json!({"deleted": true, "id": id}),
                &format!("Removed BYOK credential {id} of {account}."),
            );
        }
    }
    Ok(())
}

/// Midnight UTC of a `--since`/`--until` date.
fn day_start(flag: &str, text: &str) -> anyhow::Result<i64> {
    activity::parse_date(text)
        .with_context(|| format!("{flag} {text}: expected a UTC date as YYYY-MM-DD"))
}

async fn activity(command: ActivityCommand) -> anyhow::Result<()> {
    match command {
        ActivityCommand::Export {
            common,
            account,
            since,
            until,
            output,
        } => {
            let since_ms = since
                .as_deref()
                .map(|d| day_start("--since", d))
                .transpose()?
                .unwrap_or(0);
            let until_ms = match until.as_deref() {
                Some(d) => day_start("--until", d)? + activity::DAY_MS,
                None => unix_ms() + 1,
            };
            if until_ms <= since_ms {
                bail!("--until is before --since");
            }
            let (_, store) = open(&common).await?;
            let records = store
                .generations_between(account.as_deref(), since_ms, until_ms)
                .await?;
            match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    activity::write_csv(&mut out, &records)
                        .with_context(|| format!("writing {}", path.display()))?;
                    print(
                        common.json,
                        json!({"rows": records.len(), "output": path.display().to_string()}),
                        &format!("Wrote {} generations to {}.", records.len(), path.display()),
                    );
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    activity::write_csv(&mut out, &records).context("writing the CSV")?;
                }
            }
        }
    }
    Ok(())
}

fn print(as_json: bool, value: serde_json::Value, text: &str) {
    if as_json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("`{addr}` is not an address like 127.0.0.1:8080"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
