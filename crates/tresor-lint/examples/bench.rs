//! Throughput of `tresor lint` against a plain YAML parser pass over the same files, in the
//! same run (the ratio is what counts on a shared machine).
//!
//! ```text
//! cargo run --release -p tresor-lint --example bench -- [--size-mb 50] [--dir /tmp/lint-bench] [--rounds 3]
//! ```
//!
//! It writes a corpus of multi-document manifests (Deployments, CronJobs, Secrets with
//! templated and some literal values, ConfigMaps with embedded config files, ExternalSecrets,
//! stores, Services), about 1 MiB per file, then times, best of `--rounds`:
//! - baseline: read each file and pull every event from `saphyr-parser` (the parser the
//!   linter itself uses; no tree, no rules);
//! - lint: `tresor_lint::lint_paths` over the directory (read, parse into the positioned
//!   tree, all rules over the whole set, suppressions, sorting).
//!
//! and prints lines/s and MB/s of each and their ratio.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tresor_lint::input::Ignore;
use tresor_lint::{Config, Options, lint_paths};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One "application": the resources a chart would render for it.
fn app(out: &mut String, i: usize) {
    let ns = format!("team-{}", i % 17);
    let _ = write!(
        out,
        "---
# Source: app-{i}/templates/externalsecret.yaml
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: app-{i}-db
  namespace: {ns}
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: vault
    kind: ClusterSecretStore
  target:
    name: app-{i}-db
  data:
  - secretKey: password
    remoteRef: {{key: apps/app-{i}, property: password}}
  - secretKey: username
    remoteRef: {{key: apps/app-{i}, property: username}}
---
# Source: app-{i}/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: app-{i}-extra
  namespace: {ns}
  labels: {{app.kubernetes.io/name: app-{i}, app.kubernetes.io/managed-by: Helm}}
type: Opaque
stringData:
  username: app
  password: \"{{{{ .Values.password }}}}\"
  token: ${{APP_TOKEN}}
---
# Source: app-{i}/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{i}-config
  namespace: {ns}
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: \"a,b,c\"
  application.yaml: |
    server:
      port: 8080
      shutdown: graceful
    spring:
      datasource:
        url: jdbc:postgresql://db-{i}.{ns}.svc:5432/app
        username: app
        password: ${{DB_PASSWORD}}
    management:
      endpoints: {{web: {{exposure: {{include: health,info,prometheus}}}}}}
---
# Source: app-{i}/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: {ns}
  labels: &labels
    app.kubernetes.io/name: app-{i}
    app.kubernetes.io/instance: release-{i}
spec:
  replicas: 3
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
      annotations:
        checksum/config: 3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed
    spec:
      serviceAccountName: app-{i}
      imagePullSecrets:
      - name: app-{i}-extra
      containers:
      - name: app
        image: registry.example.com/team/app-{i}:1.{i}.0@sha256:5b161f051d017e55d358435f295f5e9a297e66158f136321d9b04520ec6c48a3
        args: [\"--port=8080\", \"--log-format=json\"]
        ports:
        - {{containerPort: 8080, name: http}}
        env:
        - name: DB_USER
          valueFrom: {{secretKeyRef: {{name: app-{i}-db, key: username}}}}
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: app-{i}-db
              key: password
        - name: JAVA_OPTS
          value: \"-Xmx512m -XX:+UseG1GC\"
        envFrom:
        - configMapRef: {{name: app-{i}-config}}
        - secretRef: {{name: app-{i}-extra, optional: true}}
        resources:
          requests: {{cpu: 100m, memory: 256Mi}}
          limits: {{cpu: \"1\", memory: 512Mi}}
        readinessProbe:
          httpGet: {{path: /health, port: http}}
        volumeMounts:
        - {{name: config, mountPath: /etc/app}}
      volumes:
      - name: config
        configMap: {{name: app-{i}-config}}
---
# Source: app-{i}/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: app-{i}-cleanup
  namespace: {ns}
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: cleanup
            image: registry.example.com/team/cleanup:2.0.1
            env:
            - {{name: RETENTION_DAYS, value: \"30\"}}
            - {{name: DB_PASSWORD, valueFrom: {{secretKeyRef: {{name: app-{i}-db, key: password}}}}}}
---
# Source: app-{i}/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: app-{i}
  namespace: {ns}
spec:
  selector: {{app.kubernetes.io/name: app-{i}}}
  ports:
  - {{port: 80, targetPort: http}}
"
    );
    // One app in 50 carries a literal credential, as real trees do.
    if i.is_multiple_of(50) {
        let _ = write!(
            out,
            "---
apiVersion: v1
kind: Secret
metadata:
  name: app-{i}-legacy
  namespace: {ns}
stringData:
  password: legacy-literal-{i}
"
        );
    }
}

fn generate(dir: &Path, size_mb: usize) -> std::io::Result<(usize, u64)> {
    std::fs::create_dir_all(dir)?;
    let store = "apiVersion: external-secrets.io/v1beta1\nkind: ClusterSecretStore\nmetadata:\n  name: vault\nspec:\n  provider:\n    vault: {server: \"https://vault.example.com\", path: secret, version: v2}\n";
    std::fs::write(dir.join("00-store.yaml"), store)?;
    let mut files = 1;
    let mut total = store.len() as u64;
    let mut i = 0;
    while total < (size_mb as u64) << 20 {
        let mut text = String::with_capacity(1 << 20);
        while text.len() < 1 << 20 {
            app(&mut text, i);
            i += 1;
        }
        total += text.len() as u64;
        std::fs::write(dir.join(format!("apps-{files:04}.yaml")), &text)?;
        files += 1;
    }
    Ok((files, total))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Reads every file and pulls every event from the parser; returns lines and events.
fn baseline(files: &[PathBuf]) -> (u64, u64) {
    let mut lines = 0u64;
    let mut events = 0u64;
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        lines += text.lines().count() as u64;
        for ev in saphyr_parser::Parser::new_from_str(&text) {
            if ev.is_err() {
                break;
            }
            events += 1;
        }
    }
    (lines, events)
}

fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        if best.as_ref().is_none_or(|(d, _)| took < *d) {
            best = Some((took, out));
        }
    }
    match best {
        Some(b) => b,
        None => (Duration::ZERO, f()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size_mb: usize = arg(&args, "--size-mb")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let rounds: usize = arg(&args, "--rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = PathBuf::from(arg(&args, "--dir").unwrap_or_else(|| "/tmp/tresor-lint-bench".into()));
    let (nfiles, bytes) = match generate(&dir, size_mb) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot write the corpus in {}: {e}", dir.display());
            std::process::exit(2);
        }
    };
    let files = files_in(&dir);
    let mb = bytes as f64 / f64::from(1 << 20);
    println!("corpus: {} files, {mb:.1} MiB in {}", nfiles, dir.display());
    let (t_base, (lines, events)) = best(rounds, || baseline(&files));
    let options = Options {
        max_file_size: 64 << 20,
        ..Options::default()
    };
    let ignore = Ignore::new(&[]).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let (t_lint, report) = best(rounds, || {
        lint_paths(
            std::slice::from_ref(&dir),
            &ignore,
            &Config::default(),
            options,
        )
    });
    let lps = |d: Duration| lines as f64 / d.as_secs_f64();
    let mbps = |d: Duration| mb / d.as_secs_f64();
    println!(
        "lines: {lines}, parser events: {events}, resources: {}, findings: {}, problems: {}",
        report.resource_count(),
        report.findings.len(),
        report.problems.len()
    );
    println!(
        "baseline (read + saphyr-parser events): {:>8.3} s  {:>12.0} lines/s  {:>7.1} MiB/s",
        t_base.as_secs_f64(),
        lps(t_base),
        mbps(t_base)
    );
    println!(
        "tresor lint (all rules, whole set):     {:>8.3} s  {:>12.0} lines/s  {:>7.1} MiB/s",
        t_lint.as_secs_f64(),
        lps(t_lint),
        mbps(t_lint)
    );
    println!(
        "ratio lint/baseline throughput: {:.2} (lint takes {:.2}x the parser-only time)",
        t_base.as_secs_f64() / t_lint.as_secs_f64(),
        t_lint.as_secs_f64() / t_base.as_secs_f64()
    );
}
