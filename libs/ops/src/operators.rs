//! The admin console's operators: who they are (a user name, an Argon2id
//! password hash, a role) and how one is made. The CLI makes the first
//! admin; the console signs them in (its sessions and sign-in limits live
//! with the console).

use aia_store::{Pool, StoreError};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore as _;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read only: every state-changing request is refused with 403.
    Viewer,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the user name must be 2–63 characters: lower-case letters, digits, '.', '_', '@' or '-'"
    )]
    InvalidUsername,
    #[error("the password is refused: {0}")]
    WeakPassword(PasswordProblem),
    #[error("user {0} already exists")]
    Duplicate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for AuthError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Store(err.into())
    }
}

pub fn valid_username(name: &str) -> bool {
    let bytes = name.as_bytes();
    (2..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        })
}

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("it must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("it is only white space")]
    Blank,
    #[error("it is one character repeated")]
    Repeated,
    #[error("it is the user name")]
    UserName,
    #[error("it is one of the most common passwords")]
    Common,
}

pub const MIN_PASSWORD_CHARS: usize = 12;

/// The most common passwords, lower-case (see `data/COMMON-PASSWORDS-LICENSE`).
fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static COMMON: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    COMMON.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .filter(|line| !line.is_empty())
            .collect()
    })
}

/// Whether `lowered` is a common password, or one with digits and symbols
/// added at its end, or one written twice.
fn is_common(lowered: &str) -> bool {
    let common = common_passwords();
    let stem = lowered.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    // Two equal halves meet at a character boundary; a middle inside a
    // character (`ä` is two bytes) is no such password.
    let halves = lowered.len().is_multiple_of(2)
        && lowered
            .split_at_checked(lowered.len() / 2)
            .is_some_and(|(first, second)| first == second && common.contains(first));
    common.contains(lowered) || (stem.chars().count() >= 4 && common.contains(stem)) || halves
}

/// Refuses a password an operator must not have: short, blank, one
/// character repeated, the user name, or common.
pub fn check_password(username: &str, password: &str) -> Result<(), PasswordProblem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if password.trim().is_empty() {
        return Err(PasswordProblem::Blank);
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(PasswordProblem::Repeated);
    }
    let lowered = password.to_lowercase();
    if lowered.trim() == username.to_lowercase()
        || lowered.contains(&username.to_lowercase()) && lowered.len() <= username.len() + 2
    {
        return Err(PasswordProblem::UserName);
    }
    if is_common(&lowered) {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

/// An Argon2id hash (PHC string) of `password` with a fresh salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

pub fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that an
/// unknown name costs as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing"))
}

/// Creates an operator (the CLI's `aiagents console-user add`).
pub async fn create_user(
    admin: &Pool,
    username: &str,
    password: &str,
    role: Role,
) -> Result<(), AuthError> {
    if !valid_username(username) {
        return Err(AuthError::InvalidUsername);
    }
    check_password(username, password).map_err(AuthError::WeakPassword)?;
    let hash = hash_password(password);
    let client = admin.get().await.map_err(StoreError::from)?;
    let inserted = client
        .execute(
            "insert into console_users (username, password_hash, role) values ($1, $2, $3)
             on conflict (username) do nothing",
            &[&username, &hash, &role.as_str()],
        )
        .await?;
    if inserted == 0 {
        return Err(AuthError::Duplicate(username.to_owned()));
    }
    Ok(())
}

/// A password for a throw-away operator (the demo's): 24 hex digits.
pub fn random_password() -> String {
    random_token()[..24].to_owned()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_own_hash_only() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterz", &hash));
        assert!(!password_matches("correct horse battery", "not a hash"));
        assert_ne!(hash, hash_password("correct horse battery"), "salted");
    }

    #[test]
    fn passwords_that_are_short_blank_repeated_the_user_name_or_common_are_refused() {
        for (password, problem) in [
            ("short", PasswordProblem::TooShort),
            ("            ", PasswordProblem::Blank),
            ("\t\t\t\t\t\t\t\t\t\t\t\t", PasswordProblem::Blank),
            ("aaaaaaaaaaaaaa", PasswordProblem::Repeated),
            ("ops.admin@msp", PasswordProblem::UserName),
            ("OPS.ADMIN@MSP", PasswordProblem::UserName),
            ("ops.admin@msp1", PasswordProblem::UserName),
            ("qwerty123456", PasswordProblem::Common),
            ("1qaz2wsx3edc", PasswordProblem::Common),
            ("Password123456!", PasswordProblem::Common),
            ("iloveyouiloveyou", PasswordProblem::Common),
        ] {
            assert_eq!(
                check_password("ops.admin@msp", password),
                Err(problem),
                "{password:?}"
            );
        }
    }

    #[test]
    fn a_long_uncommon_password_is_accepted() {
        for password in [
            "correct horse battery staple",
            "a long admin password",
            "Tr0ub4dor&3-with-more",
            // Its middle byte falls inside `ä`.
            "aaaaaaäaaaaaa",
            "Grüße aus Köln, Straße 12",
        ] {
            assert_eq!(check_password("ops", password), Ok(()), "{password:?}");
        }
    }

    #[test]
    fn the_shipped_list_is_the_common_passwords_not_a_stub() {
        let common = common_passwords();
        assert!(common.len() > 10_000, "{}", common.len());
        for known in [
            "123456", "password", "qwerty", "iloveyou", "monkey", "dragon",
        ] {
            assert!(common.contains(known), "{known}");
        }
    }

    #[test]
    fn user_names_are_plain() {
        assert!(valid_username("ops.admin@msp"));
        assert!(!valid_username("Admin"));
        assert!(!valid_username("a"));
        assert!(!valid_username("-x"));
        assert!(!valid_username("a b"));
    }
}
