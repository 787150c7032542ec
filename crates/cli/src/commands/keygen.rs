//! `keygen`: a new client key. The private half goes to a file only its owner can read; the
//! public half is printed as the JWK set the operator registers (`POST /admin/v1/clients`).

use std::io::Write;
use std::path::Path;

use super::Context;
use crate::auth::keys::ClientKey;
use crate::error::CliError;

/// Writes a new key to `out` and prints its JWK set.
pub fn run(ctx: &Context, out: &Path, kid: Option<String>, force: bool) -> Result<(), CliError> {
    if out.exists() && !force {
        return Err(CliError::Config(format!(
            "{} exists; pass --force to replace it",
            out.display()
        )));
    }
    let (key, pem) = ClientKey::generate(kid)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .map_err(|error| CliError::io(out, error))?;
    file.write_all(pem.as_bytes())
        .map_err(|error| CliError::io(out, error))?;
    let jwks = key.jwks();
    // The JWK set is the output in both modes; the hint goes to stderr so stdout stays JSON.
    println!("{jwks}");
    if !ctx.json {
        eprintln!(
            "wrote the private key to {}; register the JWK set above (kid {}) with the operator",
            out.display(),
            key.kid()
        );
    }
    Ok(())
}
