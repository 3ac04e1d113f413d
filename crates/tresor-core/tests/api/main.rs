//! The core's leases, logins and policies, in process. Every file here was its own test
//! binary, each linking the same dependencies; one binary links once, and libtest runs them
//! all side by side (each test builds its own core). `lease_memory.rs` stays a binary of its
//! own: it measures this process's resident set, which other tests' allocations would swell.

mod leases;
mod login;
mod policy_matching;
mod policy_params;
mod policy_parse;
mod policy_proptest;
