//! `profile add|list|show`: the configuration file, edited so users need not write TOML.

use serde_json::json;

use super::Context;
use crate::cli::ProfileCommand;
use crate::config::Profile;
use crate::error::CliError;

/// Runs a `profile` subcommand.
pub fn run(ctx: &Context, command: ProfileCommand) -> Result<(), CliError> {
    match command {
        ProfileCommand::Add {
            name,
            kid,
            scopes,
            default,
        } => {
            let mut profile = Profile::resolve(None, &ctx.overrides)?;
            profile.kid = kid;
            profile.scopes = (!scopes.is_empty()).then_some(scopes);
            // A relative key path would break as soon as the command runs elsewhere.
            if profile.key_file.is_relative()
                && let Ok(absolute) = std::path::absolute(&profile.key_file)
            {
                profile.key_file = absolute;
            }
            let mut config = ctx.config()?;
            let first = config.profiles.is_empty();
            config.profiles.insert(name.clone(), profile.clone());
            if default || first {
                config.default = Some(name.clone());
            }
            config.save(&ctx.config_path)?;
            ctx.print(&json!({"name": name, "profile": profile}), || {
                format!("saved profile `{name}` in {}", ctx.config_path.display())
            });
        }
        ProfileCommand::List => {
            let config = ctx.config()?;
            let names: Vec<_> = config.profiles.keys().collect();
            ctx.print(
                &json!({"default": config.default, "profiles": names}),
                || {
                    names
                        .iter()
                        .map(|name| {
                            let mark = if config.default.as_deref() == Some(name.as_str()) {
                                " (default)"
                            } else {
                                ""
                            };
                            format!("{name}{mark}")
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        ProfileCommand::Show { name } => {
            let (name, profile) = match name {
                Some(name) => ctx
                    .config()?
                    .select(Some(&name))?
                    .ok_or_else(|| CliError::Config(format!("no profile named `{name}`")))?,
                None => ctx.profile()?,
            };
            ctx.print(&json!({"name": name, "profile": profile}), || {
                let mut lines = vec![
                    format!("profile    {name}"),
                    format!("url        {}", profile.url),
                    format!("client id  {}", profile.client_id),
                    format!("org        {}", profile.org),
                    format!("key file   {}", profile.key_file.display()),
                ];
                if let Some(kid) = &profile.kid {
                    lines.push(format!("kid        {kid}"));
                }
                if let Some(scopes) = &profile.scopes {
                    lines.push(format!("scopes     {}", scopes.join(" ")));
                }
                lines.push(format!("tus above  {}", profile.tus_threshold()));
                lines.push(format!("tus chunks {}", profile.tus_chunk_size()));
                lines.join("\n")
            });
        }
    }
    Ok(())
}
