//! The command line as clap reads it: global flags, then one command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::size::ByteSize;

/// Send and receive files through a Broker (Altinn 3 Broker API) as a sender or recipient.
#[derive(Debug, Parser)]
#[command(name = "broker", version)]
pub struct Cli {
    /// Print JSON for scripts (one object per line for `watch`); errors too, on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// The profile to use (default: the configuration's default, or its only profile).
    #[arg(long, global = true, env = "BROKER_CLI_PROFILE")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub identity: Identity,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Who to be and where: each overrides the profile's value.
#[derive(Debug, Args)]
pub struct Identity {
    /// The broker's base URL.
    #[arg(long, global = true, env = "BROKER_CLI_URL")]
    pub url: Option<String>,
    /// The OAuth2 client id.
    #[arg(long, global = true, env = "BROKER_CLI_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The organisation number the client acts for.
    #[arg(long, global = true, env = "BROKER_CLI_ORG")]
    pub org: Option<String>,
    /// The client's private key (PEM).
    #[arg(long, global = true, env = "BROKER_CLI_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage profiles in the configuration file.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Make an RSA-2048 key and print its public JWK set for the operator to register.
    Keygen {
        /// Where to write the private key (PKCS#8 PEM).
        #[arg(long)]
        out: PathBuf,
        /// The key id (default: the key's JWK thumbprint).
        #[arg(long)]
        kid: Option<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print an access token.
    Token {
        /// A scope to ask for (repeatable; default: the profile's scopes, else the broker's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Send a file: initialize the transfer, then upload it (resumably with tus above a size).
    Send(SendArgs),
    /// The published transfers waiting for you as a recipient.
    Inbox {
        /// The resource.
        #[arg(long)]
        resource: String,
    },
    /// Search your transfers of a resource.
    Search {
        /// The resource.
        #[arg(long)]
        resource: String,
        /// Only transfers in this status (`Published`, `Failed`, …).
        #[arg(long)]
        status: Option<String>,
        /// As `Sender`, `Recipient` or `Both`.
        #[arg(long)]
        role: Option<String>,
    },
    /// Show a transfer.
    Show {
        /// The file transfer id.
        id: String,
        /// Include the status histories.
        #[arg(long)]
        details: bool,
    },
    /// Download a transfer's file, resuming a partial download.
    Download {
        /// The file transfer id.
        id: String,
        /// Where to save it (default: the transfer's file name, in this directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace an existing file (never a symbolic link).
        #[arg(long)]
        force: bool,
    },
    /// Confirm that you downloaded a transfer.
    Confirm {
        /// The file transfer id.
        id: String,
    },
    /// Subscribe a webhook to a resource's events for your organisation.
    Subscribe {
        /// The resource.
        #[arg(long)]
        resource: String,
        /// The webhook URL.
        #[arg(long)]
        endpoint: String,
        /// Only this event type (`no.altinn.broker.published`, …).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Sign deliveries; the signing secret is printed once.
        #[arg(long)]
        sign: bool,
    },
    /// List your subscriptions.
    Subscriptions,
    /// Delete a subscription.
    Unsubscribe {
        /// The subscription id.
        id: String,
    },
    /// Poll a resource's events and print each as it arrives.
    Watch {
        /// The resource.
        #[arg(long)]
        resource: String,
        /// Start after this event id (default: from the beginning).
        #[arg(long)]
        after: Option<String>,
        /// Only this event type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// How long to wait between polls (`2s`, `500ms`, `1m`).
        #[arg(long, default_value = "2s", value_parser = parse_interval)]
        interval: std::time::Duration,
        /// Stop when there are no more events instead of waiting for new ones.
        #[arg(long)]
        once: bool,
        /// Every party's events, for the resource's owner (by default only this
        /// organisation's: the broker leaves out of each page what the caller may not see, so
        /// asking for one's own keeps pages full).
        #[arg(long)]
        all_subjects: bool,
    },
}

/// `send`'s arguments.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The resource.
    #[arg(long, required_unless_present = "resume")]
    pub resource: Option<String>,
    /// A recipient, `0192:<orgnr>` or `<orgnr>` (repeatable).
    #[arg(long = "recipient", required_unless_present = "resume")]
    pub recipients: Vec<String>,
    /// A property `key=value` (repeatable).
    #[arg(long = "property", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
    /// Your own reference for the transfer (the file's name when left out).
    #[arg(long)]
    pub reference: Option<String>,
    /// Wait until the transfer is published (or fails).
    #[arg(long)]
    pub wait: bool,
    /// Resume the interrupted upload of this transfer (its id, as `send` printed it) from
    /// where the broker's copy ends, instead of initializing a new one.
    #[arg(
        long,
        value_name = "FILE_TRANSFER_ID",
        conflicts_with_all = ["resource", "recipients", "properties", "reference"]
    )]
    pub resume: Option<String>,
    /// Upload files above this size resumably with tus (`64MiB`, `1GiB`, bytes; default: the
    /// profile's `tus_threshold`, else 64MiB).
    #[arg(long, value_name = "SIZE")]
    pub tus_threshold: Option<ByteSize>,
    /// Bytes per tus request (default: the profile's `tus_chunk_size`, else 32MiB).
    #[arg(long, value_name = "SIZE")]
    pub tus_chunk_size: Option<ByteSize>,
    /// Send each tus request's MD5 (`Upload-Checksum`), so a damaged chunk is sent again
    /// rather than failing the whole transfer at its end; costs throughput.
    #[arg(long)]
    pub tus_checksum: bool,
    /// The file.
    pub file: PathBuf,
}

/// `profile` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Add (or replace) a profile from --url, --client-id, --org and --key-file.
    Add {
        /// The profile's name.
        name: String,
        /// The key id, when it is not the key's thumbprint.
        #[arg(long)]
        kid: Option<String>,
        /// The scopes `token` asks for by default (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Make it the default profile.
        #[arg(long)]
        default: bool,
    },
    /// List the profiles.
    List,
    /// Show a profile (default: the one in use).
    Show {
        /// The profile's name.
        name: Option<String>,
    },
}

/// `key=value` into its halves.
fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

/// `500ms`, `2s`, `1m` or a bare number of seconds.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 2s"))?;
    let millis = match unit {
        "ms" => value,
        "" | "s" => value * 1000,
        "m" => value * 60_000,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    if millis == 0 {
        return Err("the interval must be above zero".to_owned());
    }
    Ok(std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_interval("3"), Ok(Duration::from_secs(3)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("2h").is_err());
        assert!(parse_interval("s").is_err());
    }

    #[test]
    fn properties() {
        assert_eq!(parse_property("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_property("=x").is_err());
        assert!(parse_property("nothing").is_err());
    }

    #[test]
    fn a_resumed_send_needs_only_the_id_and_the_file() {
        let parsed = Cli::try_parse_from(["broker", "send", "--resume", "id", "big.bin"])
            .expect("--resume stands in for the resource and recipients");
        let Command::Send(args) = parsed.command else {
            panic!("not send: {parsed:?}");
        };
        assert_eq!(args.resume.as_deref(), Some("id"));
        assert!(Cli::try_parse_from(["broker", "send", "big.bin"]).is_err());
        let both = [
            "broker",
            "send",
            "--resume",
            "id",
            "--resource",
            "r",
            "big.bin",
        ];
        assert!(Cli::try_parse_from(both).is_err());
        let sized = [
            "broker",
            "send",
            "--resource",
            "r",
            "--recipient",
            "1",
            "--tus-threshold",
            "1MiB",
            "--tus-chunk-size",
            "256KiB",
            "big.bin",
        ];
        let Command::Send(args) = Cli::try_parse_from(sized).expect("sizes").command else {
            panic!("not send");
        };
        assert_eq!(args.tus_threshold, Some(ByteSize(1 << 20)));
        assert_eq!(args.tus_chunk_size, Some(ByteSize(256 << 10)));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
