//! `aiagents console-user`: the admin console's operators. The first admin
//! is created here; the password is read from standard input, never from
//! the command line (where `ps` and shell history would keep it).

use std::io::BufRead as _;

use aia_ops::operators::{self, Role};
use anyhow::Context as _;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an operator; the password (at least 12 characters) is the
    /// first line of standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let admin_database_url = super::env("ADMIN_DATABASE_URL")?;
    match command {
        Command::Add { username, role } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Viewer => Role::Viewer,
            };
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let pool = aia_store::pool(&admin_database_url, 1)?;
            operators::create_user(&pool, &username, password, role).await?;
            println!("Console user {username} ({}) created.", role.as_str());
        }
    }
    Ok(())
}
