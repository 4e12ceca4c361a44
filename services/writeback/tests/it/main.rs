//! The writeback binary as a process of its own.

mod kill;
mod startup;
