//! Jira Cloud and Jira Service Management.

pub mod adf;
pub mod webhook;
