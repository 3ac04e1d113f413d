//! A TLS listener (rustls) serving the API to a client that trusts only the test CA.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use common::Server;

#[tokio::test(flavor = "multi_thread")]
async fn tls_listener_serves_health_to_a_client_that_trusts_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path(), "IP:127.0.0.1,DNS:localhost");
    let config = dir.path().join("tls.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    assert!(server.addr.starts_with("https://"), "{}", server.addr);

    let _ = common::http(); // installs the crypto provider
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let response = client.get(server.url("sys/health")).send().await.unwrap();
    assert_eq!(response.status(), 501, "uninitialised");
    assert_eq!(response.headers()["content-type"], "application/json");

    // A client that does not trust the certificate cannot talk to it.
    let untrusting = common::http();
    assert!(
        untrusting
            .get(server.url("sys/health"))
            .send()
            .await
            .is_err()
    );
    // Nor does plain HTTP get an answer on the TLS port.
    let plain = server.addr.replace("https://", "http://");
    let r = common::http()
        .get(format!("{plain}/v1/sys/health"))
        .send()
        .await;
    assert!(r.map(|r| r.status() != 501).unwrap_or(true));
}
