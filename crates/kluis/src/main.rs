//! `kluis`: the server (`kluis serve`) and the admin CLI in one binary.

mod backup;
mod commands;
mod config;
mod serve;
mod witness;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kluis",
    version,
    about = "Kluis: a security-first multi-tenant CRM server"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Debug)]
pub struct GlobalArgs {
    /// Config file (TOML). Default: <data-dir>/kluis.toml if it exists.
    #[arg(long, global = true, env = "KLUIS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, keys, certificate). Default: ./kluis-data
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://... (application role).
    #[arg(long, global = true)]
    database_url: Option<config::Secret>,
    /// PostgreSQL owner role URL, used to run migrations.
    #[arg(long, global = true)]
    database_owner_url: Option<config::Secret>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS server.
    Serve {
        /// Listen address, e.g. 127.0.0.1:8443 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Run even as root (uid 0); also `KLUIS_ALLOW_ROOT=true`. Refused otherwise.
        #[arg(long)]
        allow_root: bool,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(commands::TenantCmd),
    /// Manage users of a tenant.
    #[command(subcommand)]
    User(commands::UserCmd),
    /// Manage API keys of a tenant.
    #[command(subcommand)]
    Apikey(commands::ApiKeyCmd),
    /// Manage platform administration keys (for /api/v1/platform).
    #[command(subcommand)]
    PlatformKey(commands::PlatformKeyCmd),
    /// Support operators (platform staff who reach a tenant only through a grant).
    #[command(subcommand)]
    Operator(commands::OperatorCmd),
    /// Key management.
    #[command(subcommand)]
    Keys(commands::KeysCmd),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(commands::AuditCmd),
    /// Import contacts or companies from a CSV file (large files: progress on stderr).
    Import(commands::ImportArgs),
    /// Check the hardening of this installation; exits non-zero if a check fails.
    Doctor,
    /// Print the OpenAPI document.
    Openapi,
    /// Print a shell completion script: `kluis completions bash > /etc/bash_completion.d/kluis`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Backups: create, list, verify, restore (to a point in time), prune, drill.
    #[command(subcommand)]
    Backup(backup::BackupCmd),
    /// An audit-log witness (C2SP tlog-witness): cosigns consistent checkpoints only.
    #[command(subcommand)]
    Witness(witness::WitnessCmd),
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kluis: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(cli));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kluis: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = |listen| config::Overrides {
        data_dir: cli.global.data_dir.clone(),
        listen,
        database_url: cli.global.database_url.clone(),
        database_owner_url: cli.global.database_owner_url.clone(),
    };
    match cli.command {
        Command::Serve { listen, allow_root } => {
            let mut cfg = config::Config::load(cli.global.config.as_deref(), &overrides(listen))?;
            cfg.allow_root |= allow_root;
            serve::refuse_root(serve::effective_uid(), cfg.allow_root)?;
            serve::run(cfg).await
        }
        Command::Doctor => {
            let cfg = config::Config::load(cli.global.config.as_deref(), &overrides(None))?;
            let kluis = serve::open(&cfg).await?;
            let r = commands::doctor(&kluis, &cfg).await;
            commands::finish(&kluis).await;
            r
        }
        Command::Backup(c) => {
            let cfg = config::Config::load(cli.global.config.as_deref(), &overrides(None))?;
            backup::run(&cfg, c).await
        }
        Command::Witness(c) => witness::run(c).await,
        Command::Openapi => {
            println!("{}", kluis_http::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "kluis", &mut std::io::stdout());
            Ok(())
        }
        Command::Audit(commands::AuditCmd::VerifyCheckpoints {
            vkey,
            checkpoints,
            proof,
        }) => commands::verify_checkpoints_offline(&vkey, &checkpoints, proof.as_deref()),
        Command::Keys(commands::KeysCmd::HsmCreateKey {
            module,
            token_label,
            key_label,
            pin_file,
        }) => commands::hsm_create_key(&module, &token_label, &key_label, &pin_file),
        Command::Keys(commands::KeysCmd::RotateKek) => {
            let cfg = config::Config::load(cli.global.config.as_deref(), &overrides(None))?;
            let kluis = serve::open_with(&cfg, true).await?;
            let r = commands::rotate_kek(&kluis, &cfg.kek_path()).await;
            commands::finish(&kluis).await;
            r
        }
        other => {
            let cfg = config::Config::load(cli.global.config.as_deref(), &overrides(None))?;
            let kluis = serve::open(&cfg).await?;
            let r = match other {
                Command::Tenant(c) => {
                    let shred = matches!(c, commands::TenantCmd::Shred { .. });
                    let r = commands::tenant(&kluis, c).await;
                    if shred && r.is_ok() {
                        backup::after_shred(&cfg).await?;
                    }
                    r
                }
                Command::User(c) => commands::user(&kluis, c).await,
                Command::Apikey(c) => commands::apikey(&kluis, c).await,
                Command::PlatformKey(c) => commands::platform_key(&kluis, c).await,
                Command::Operator(c) => commands::operator(&kluis, c).await,
                Command::Audit(c) => commands::audit(&kluis, c, cfg.audit_retention_days).await,
                Command::Keys(c) => commands::keys(&kluis, c).await,
                Command::Import(a) => commands::import(&kluis, a).await,
                Command::Serve { .. }
                | Command::Openapi
                | Command::Doctor
                | Command::Completions { .. }
                | Command::Witness(_)
                | Command::Backup(_) => Ok(()),
            };
            commands::finish(&kluis).await;
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and every flag says what it is for: walks clap's whole command tree.
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " kluis" {
                missing.push(format!("{path}: no description"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let empty = arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty());
                if empty {
                    missing.push(format!("{path} --{id}: no help text"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
