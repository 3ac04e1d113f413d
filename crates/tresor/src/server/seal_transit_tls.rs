//! The transit seal's TLS when `tls_server_name` is set: the transit server's certificate is
//! checked against that name instead of the host in `address` (Go's `tls.Config.ServerName`,
//! which Vault and OpenBao use), e.g. for a server reached by IP or through a tunnel.
//!
//! reqwest has no such option, so this builds the rustls configuration itself: the CA file as
//! the only roots when `tls_ca_cert` is set, else the system's roots; webpki's usual checks
//! (chain, validity, key usage), with the configured name in place of the address's host; and
//! the client certificate when one is configured. The SNI sent is still the address's host
//! (none for an IP address): rustls takes it from the connection, not from the verifier.

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Checks certificates with webpki, always against one configured name.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls client configuration for a transit seal whose server's certificate names
/// `server_name`.
pub fn client_config(
    server_name: &str,
    ca_cert: Option<&str>,
    client_cert: Option<(&str, &str)>,
) -> anyhow::Result<rustls::ClientConfig> {
    let name = ServerName::try_from(server_name.to_owned()).with_context(|| {
        format!("tls_server_name {server_name:?} is not a DNS name or an IP address")
    })?;
    let mut roots = rustls::RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading tls_ca_cert {path}"))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.with_context(|| format!("parsing tls_ca_cert {path}"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("adding a certificate of tls_ca_cert {path}"))?;
            }
            if roots.is_empty() {
                bail!("tls_ca_cert {path} holds no certificate");
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // One unreadable system certificate must not keep the others out.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the certificate verifier")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner, name }));
    match client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let pem =
                std::fs::read(cert).with_context(|| format!("reading tls_client_cert {cert}"))?;
            let chain = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing tls_client_cert {cert}"))?;
            let pem =
                std::fs::read(key).with_context(|| format!("reading tls_client_key {key}"))?;
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .ok()
                .flatten()
                .with_context(|| format!("tls_client_key {key} holds no private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("tls_client_cert and tls_client_key do not make a client identity")
        }
    }
}
