//! The operator CLI's library: the commands' implementations, the
//! all-in-one runner that starts every service in one process (for the demo,
//! development and end-to-end tests), and data-set loading.

pub mod all_in_one;
pub mod cli;
pub mod dataset;
pub mod demo;
pub mod eval;
pub mod import;
pub mod ops;
pub mod reembed;
/// Replay lives with the operations the admin console runs too.
pub use aia_ops::replay;
pub mod webhook;
