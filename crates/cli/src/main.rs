//! `broker`: the command line of senders and recipients of a Broker (Altinn 3 Broker API).
//!
//! `main` only parses the command line, runs one command and turns its error into a message and
//! an exit code; the commands live in `commands/`, HTTP in `api.rs`, tokens in `auth/`.

mod api;
mod auth;
mod cli;
mod commands;
mod config;
mod error;
mod party;
mod progress;
mod size;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use commands::Context;
use config::{ConfigFile, Overrides};
use error::CliError;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                eprintln!("{}", error.to_json());
            } else {
                eprintln!("error: {error}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context {
        json: cli.json,
        config_path: ConfigFile::path()?,
        profile_name: cli.profile,
        overrides: Overrides {
            url: cli.identity.url,
            client_id: cli.identity.client_id,
            org: cli.identity.org,
            key_file: cli.identity.key_file,
        },
    };
    match cli.command {
        Command::Profile(command) => commands::profile::run(&ctx, command),
        Command::Keygen { out, kid, force } => commands::keygen::run(&ctx, &out, kid, force),
        Command::Token { scopes } => commands::token::run(&ctx, &scopes).await,
        Command::Send(args) => commands::send::run(&ctx, args).await,
        Command::Inbox { resource } => commands::transfers::inbox(&ctx, &resource).await,
        Command::Search {
            resource,
            status,
            role,
        } => commands::transfers::search(&ctx, &resource, status.as_deref(), role.as_deref()).await,
        Command::Show { id, details } => commands::transfers::show(&ctx, &id, details).await,
        Command::Download { id, output, force } => {
            commands::download::run(&ctx, &id, output, force).await
        }
        Command::Confirm { id } => commands::transfers::confirm(&ctx, &id).await,
        Command::Subscribe {
            resource,
            endpoint,
            event_type,
            sign,
        } => {
            commands::events::subscribe(&ctx, &resource, &endpoint, event_type.as_deref(), sign)
                .await
        }
        Command::Subscriptions => commands::events::subscriptions(&ctx).await,
        Command::Unsubscribe { id } => commands::events::unsubscribe(&ctx, &id).await,
        Command::Watch {
            resource,
            after,
            event_type,
            interval,
            once,
            all_subjects,
        } => {
            commands::events::watch(
                &ctx,
                &resource,
                after,
                event_type.as_deref(),
                interval,
                once,
                all_subjects,
            )
            .await
        }
    }
}
