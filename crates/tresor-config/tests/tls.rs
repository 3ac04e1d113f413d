#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

//! Key material comes from the `openssl` CLI so every PEM flavour we claim to read (PKCS#8,
//! PKCS#1, SEC1) is produced by the tool operators actually use.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;
use tresor_config::{ConfigError, TlsFiles, load_tls};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed to generate test certificates");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A self-signed certificate for `key`, written next to it as `cert`.
fn self_signed(dir: &Path, key: &str, cert: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=tresor-test",
        ],
    );
}

fn files(dir: &TempDir, cert: &str, key: &str) -> TlsFiles {
    TlsFiles {
        cert_file: dir.path().join(cert),
        key_file: dir.path().join(key),
    }
}

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// An EC P-256 key in PKCS#8 plus its certificate, the quickest pair to make.
fn ec_pair(dir: &TempDir, stem: &str) -> TlsFiles {
    let key = format!("{stem}.key");
    let cert = format!("{stem}.crt");
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    );
    self_signed(dir.path(), &key, &cert);
    files(dir, &cert, &key)
}

#[test]
fn good_pair_loads_with_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let pair = ec_pair(&dir, "ec");
    assert_eq!(first_line(&pair.key_file), "-----BEGIN PRIVATE KEY-----");
    let config = load_tls(&pair).unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn rsa_keys_load_as_pkcs8_and_pkcs1() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa8.key",
        ],
    );
    openssl(
        dir.path(),
        &["rsa", "-in", "rsa8.key", "-traditional", "-out", "rsa1.key"],
    );
    self_signed(dir.path(), "rsa8.key", "rsa.crt");

    let pkcs8 = files(&dir, "rsa.crt", "rsa8.key");
    let pkcs1 = files(&dir, "rsa.crt", "rsa1.key");
    assert_eq!(
        first_line(&pkcs1.key_file),
        "-----BEGIN RSA PRIVATE KEY-----"
    );
    load_tls(&pkcs8).unwrap();
    load_tls(&pkcs1).unwrap();
}

#[test]
fn sec1_ec_key_loads() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.key",
        ],
    );
    self_signed(dir.path(), "sec1.key", "sec1.crt");
    let pair = files(&dir, "sec1.crt", "sec1.key");
    assert_eq!(first_line(&pair.key_file), "-----BEGIN EC PRIVATE KEY-----");
    load_tls(&pair).unwrap();
}

#[test]
fn missing_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let pair = ec_pair(&dir, "ec");

    let no_cert = TlsFiles {
        cert_file: dir.path().join("absent.crt"),
        key_file: pair.key_file.clone(),
    };
    let err = load_tls(&no_cert).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::TlsRead {
                what: "certificate",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&display(&no_cert.cert_file)),
        "{err}"
    );

    let no_key = TlsFiles {
        cert_file: pair.cert_file.clone(),
        key_file: dir.path().join("absent.key"),
    };
    let err = load_tls(&no_key).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::TlsRead {
                what: "private key",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&display(&no_key.key_file)),
        "{err}"
    );
}

#[test]
fn garbage_pem_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pair = ec_pair(&dir, "ec");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM at all\n").unwrap();

    let err = load_tls(&TlsFiles {
        cert_file: garbage.clone(),
        key_file: pair.key_file.clone(),
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains(&display(&garbage)), "{err}");

    let err = load_tls(&TlsFiles {
        cert_file: pair.cert_file.clone(),
        key_file: garbage.clone(),
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::NoPrivateKey { .. }), "{err:?}");

    // A certificate file holding only a key is a common mix-up.
    let err = load_tls(&TlsFiles {
        cert_file: pair.key_file.clone(),
        key_file: pair.key_file.clone(),
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificate { .. }), "{err:?}");
}

#[test]
fn malformed_pem_never_echoes_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let pair = ec_pair(&dir, "ec");
    let bad_key = dir.path().join("bad.key");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nSECRETSECRET!!!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = load_tls(&TlsFiles {
        cert_file: pair.cert_file.clone(),
        key_file: bad_key,
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::MalformedPem {
                what: "private key",
                ..
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[test]
fn well_formed_pem_that_is_not_a_certificate_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pair = ec_pair(&dir, "ec");
    let fake = dir.path().join("fake.crt");
    std::fs::write(
        &fake,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = load_tls(&TlsFiles {
        cert_file: fake,
        key_file: pair.key_file.clone(),
    })
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidCertificate { .. }),
        "{err:?}"
    );
}

#[test]
fn key_that_does_not_match_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = ec_pair(&dir, "first");
    let second = ec_pair(&dir, "second");
    let mixed = TlsFiles {
        cert_file: first.cert_file.clone(),
        key_file: second.key_file.clone(),
    };
    let err = load_tls(&mixed).unwrap_err();
    assert!(matches!(err, ConfigError::KeyMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&display(&mixed.cert_file)), "{message}");
    assert!(message.contains(&display(&mixed.key_file)), "{message}");
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
