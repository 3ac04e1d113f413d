//! Micro-benchmark of the per-request authorisation cost: policy-set cache lookup plus
//! `Acl::check`, for a token holding 50 policies of 20 rules each (exact, glob, mid-segment
//! glob and `+` rules), over 10 000 random request paths.
//!
//! Run with `cargo run --release -p tresor-core --example acl_bench`.

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use tresor_core::policy::{Acl, AclCache, AclRequest, Policy, PolicySetKey};

const POLICIES: usize = 50;
const RULES_PER_POLICY: usize = 20;
const PATHS: usize = 10_000;
const RUNS: usize = 15;

const MOUNTS: &[&str] = &["secret", "kv", "database", "pki", "transit", "auth/approle"];
const LEAVES: &[&str] = &[
    "config",
    "creds",
    "data",
    "shared/key",
    "shared/deep/x",
    "roles/r1",
];
const CAPABILITY_SETS: &[&str] = &[
    r#"["read"]"#,
    r#"["read", "list"]"#,
    r#"["create", "update"]"#,
    r#"["create", "read", "update", "delete", "list"]"#,
    r#"["read", "sudo"]"#,
    r#"["deny"]"#,
];
const OPERATIONS: &[&str] = &["read", "update", "list", "create", "delete"];

/// xorshift64*: deterministic, dependency-free, good enough to spread paths.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get(self.below(items.len()))
            .copied()
            .unwrap_or_default()
    }
}

fn policy_text(rng: &mut Rng, team: usize) -> String {
    let mut text = String::new();
    for rule in 0..RULES_PER_POLICY {
        let mount = rng.pick(MOUNTS);
        let app = rng.below(30);
        let pattern = match rule % 5 {
            0 => format!("{mount}/team-{team}/app-{app}/{}", rng.pick(LEAVES)),
            1 => format!("{mount}/team-{team}/app-{app}/*"),
            2 => format!("{mount}/team-{team}/ap*"),
            3 => format!("{mount}/+/app-{app}/{}", rng.pick(LEAVES)),
            _ => format!("{mount}/team-{team}/+/shared/*"),
        };
        let capabilities = if rng.below(10) == 0 {
            r#"["deny"]"#
        } else {
            rng.pick(CAPABILITY_SETS)
        };
        text.push_str(&format!(
            "path \"{pattern}\" {{\n  capabilities = {capabilities}\n}}\n"
        ));
    }
    text
}

fn request_path(rng: &mut Rng) -> String {
    format!(
        "{}/team-{}/app-{}/{}",
        rng.pick(MOUNTS),
        rng.below(60),
        rng.below(40),
        rng.pick(LEAVES)
    )
}

/// Median of per-run averages, in nanoseconds per call.
fn median_ns(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs.get(runs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut policies = Vec::with_capacity(POLICIES);
    let mut names = Vec::with_capacity(POLICIES);
    for team in 0..POLICIES {
        let name = format!("team-{team}");
        policies.push(Arc::new(Policy::parse(
            &name,
            &policy_text(&mut rng, team),
        )?));
        names.push(name);
    }

    let started = Instant::now();
    let acl = Acl::new(&policies);
    let compile = started.elapsed();

    let cache = AclCache::new();
    // A token keeps its policy-set key, computed once when the token entry is loaded.
    let key = PolicySetKey::new(&names);
    cache.insert(key.clone(), acl, cache.generation());

    let paths: Vec<String> = (0..PATHS).map(|_| request_path(&mut rng)).collect();
    let operations: Vec<&str> = (0..PATHS).map(|_| rng.pick(OPERATIONS)).collect();

    let acl = cache.get(&key).ok_or("cache miss")?;
    let allowed = paths
        .iter()
        .zip(&operations)
        .filter(|(path, op)| {
            acl.check(&AclRequest {
                path,
                capability: op,
                params: None,
            })
            .allowed
        })
        .count();

    let time_runs = |body: &dyn Fn()| -> f64 {
        body(); // warm-up
        let runs = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                body();
                start.elapsed().as_nanos() as f64 / PATHS as f64
            })
            .collect();
        median_ns(runs)
    };

    let with_cache = time_runs(&|| {
        for (path, op) in paths.iter().zip(&operations) {
            let Some(acl) = cache.get(black_box(&key)) else {
                continue;
            };
            black_box(acl.check(&AclRequest {
                path: black_box(path),
                capability: op,
                params: None,
            }));
        }
    });
    let check_only = time_runs(&|| {
        for (path, op) in paths.iter().zip(&operations) {
            black_box(acl.check(&AclRequest {
                path: black_box(path),
                capability: op,
                params: None,
            }));
        }
    });
    let key_per_request = time_runs(&|| {
        for (path, op) in paths.iter().zip(&operations) {
            let key = PolicySetKey::new(black_box(&names));
            let Some(acl) = cache.get(&key) else {
                continue;
            };
            black_box(acl.check(&AclRequest {
                path: black_box(path),
                capability: op,
                params: None,
            }));
        }
    });

    println!(
        "{POLICIES} policies x {RULES_PER_POLICY} rules -> {} merged patterns, compiled in {compile:?}",
        acl.rule_count()
    );
    println!("{PATHS} random paths, {allowed} allowed; median of {RUNS} runs:");
    println!("  cache lookup (kept key) + check: {with_cache:.0} ns/check");
    println!("  check alone:                     {check_only:.0} ns/check");
    println!("  key rebuilt from 50 names + lookup + check: {key_per_request:.0} ns/check");
    Ok(())
}
