//! Records the commit date for `sys/seal-status`'s `commit_date`, as OpenBao reports it.
use std::process::Command;

fn main() {
    let date = std::env::var("SOURCE_DATE")
        .ok()
        .or_else(|| {
            Command::new("git")
                .args([
                    "log",
                    "-1",
                    "--format=%cd",
                    "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
                ])
                .env("TZ", "UTC")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    println!("cargo:rustc-env=TRESOR_COMMIT_DATE={date}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE");
}
