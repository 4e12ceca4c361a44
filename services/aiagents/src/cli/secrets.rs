//! `aiagents secrets` and `aiagents keygen`: the application keys that
//! encrypt secrets at rest.

use aia_store::Keyring;

use super::{env, keyring};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Re-encrypt every stored secret with the first key of AI_AGENTS_SECRET_KEYS.
    Reencrypt,
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// The key id stored with every secret it encrypts.
    #[arg(long, default_value = "k1")]
    key_id: String,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Reencrypt => {
            let keyring = keyring()?;
            let (n_tenants, n_values) = crate::ops::reencrypt_secrets(
                &env("DATABASE_URL")?,
                &env("ADMIN_DATABASE_URL")?,
                &keyring,
            )
            .await?;
            println!(
                "{n_tenants} tenants checked, {n_values} secrets re-encrypted with key {}",
                keyring.primary_key_id()
            );
        }
    }
    Ok(())
}

/// Prints a new key for `AI_AGENTS_SECRET_KEYS`.
pub fn keygen(args: KeygenArgs) {
    println!("{}", Keyring::generate_spec(&args.key_id));
}
