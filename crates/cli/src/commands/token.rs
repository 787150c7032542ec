//! `token`: an access token for scripts and other tools (`curl -H "Authorization: Bearer …"`).

use serde_json::json;

use super::{Context, READ, WRITE};
use crate::error::CliError;

/// Prints a token for `scopes` (default: the profile's, else the broker's read and write).
pub async fn run(ctx: &Context, scopes: &[String]) -> Result<(), CliError> {
    let profile = ctx.profile()?;
    let token = if scopes.is_empty() {
        ctx.token(&profile, &[READ, WRITE]).await?
    } else {
        // Asked-for scopes win over the profile's list.
        let (name, mut explicit) = profile;
        explicit.scopes = Some(scopes.to_vec());
        ctx.token(&(name, explicit), &[]).await?
    };
    ctx.print(
        &json!({
            "access_token": token.access_token,
            "scope": token.scope,
            "expires_at": token.expires_at,
        }),
        || token.access_token.clone(),
    );
    Ok(())
}
