//! The linter's rules, outputs and real-world corpus, in process. Every file here was its own
//! test binary, each linking the same dependencies and recompiling `support`; one binary links
//! once, and libtest runs them all side by side. `memory.rs` stays a binary of its own: it
//! measures this process's peak resident set, which other tests' allocations would raise.

#[path = "../support/mod.rs"]
mod support;

mod corpus;
mod outputs;
mod rules;
