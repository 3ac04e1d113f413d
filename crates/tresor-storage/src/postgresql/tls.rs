//! TLS to PostgreSQL, set by libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` in
//! `connection_url` (what OpenBao's and Vault's `postgresql` storage accept).
//!
//! tokio-postgres understands only `sslmode=disable|prefer|require` and no certificate
//! settings at all, so these four are taken out of the URL here, before tokio-postgres parses
//! the rest, and TLS itself is rustls (ring) behind tokio-postgres's `MakeTlsConnect`.
//!
//! Semantics follow libpq: `require` encrypts without checking the certificate unless
//! `sslrootcert` is given (then the chain is checked, as `verify-ca`); `verify-ca` checks the
//! chain; `verify-full` also checks that the certificate names the host. Without `sslmode`
//! the mode is `prefer` (libpq's and pgx's default, and what OpenBao's storage gets): TLS when
//! the server offers it, plain otherwise, so URLs that worked before keep working.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                ));
            }
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told for the first attempt. `allow` starts without TLS (and
    /// [`Tls::retry_mode`] says what the second attempt uses).
    pub(super) fn first_attempt(self) -> PgSslMode {
        match self {
            Self::Disable | Self::Allow => PgSslMode::Disable,
            Self::Prefer => PgSslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => PgSslMode::Require,
        }
    }
}

/// The TLS settings taken out of `connection_url`.
#[derive(Debug, Default)]
pub(super) struct Settings {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

impl Settings {
    /// Takes `key`=`value` if it is one of these settings; `false` leaves it to tokio-postgres.
    fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            _ => return false,
        };
        // As libpq: the last one written wins.
        *slot = Some(value);
        true
    }
}

/// Splits `url` into what tokio-postgres parses and the TLS settings. A URL
/// (`postgres://…?sslmode=…`) and a libpq `key=value` string are both understood; a string
/// this cannot read is returned whole, for tokio-postgres to word the error.
pub(super) fn extract(url: &str) -> (String, Settings) {
    let mut settings = Settings::default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), settings);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                !settings.take(key, super::connection::percent_decode(value))
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, settings);
    }
    match key_value_pairs(url) {
        Some(pairs) => {
            let kept: Vec<&str> = pairs
                .into_iter()
                .filter(|(key, value, _)| !settings.take(key, value.clone()))
                .map(|(_, _, written)| written)
                .collect();
            (kept.join(" "), settings)
        }
        None => (url.to_owned(), settings),
    }
}

/// A libpq `key = value …` string as (key, value as meant, the pair as written).
fn key_value_pairs(text: &str) -> Option<Vec<(String, String, &str)>> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace())?;
        let key = rest.get(..key_end)?.to_owned();
        rest = rest
            .get(key_end..)?
            .trim_start()
            .strip_prefix('=')?
            .trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = if rest.starts_with('\'') {
            chars.next();
            loop {
                match chars.next()? {
                    (_, '\\') => value.push(chars.next()?.1),
                    (i, '\'') => break i + 1,
                    (_, c) => value.push(c),
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => break rest.len(),
                    Some((i, c)) if c.is_whitespace() => break i,
                    Some((_, '\\')) => value.push(chars.next()?.1),
                    Some((_, c)) => value.push(c),
                }
            }
        };
        let written_len = start.len() - rest.len() + end;
        pairs.push((key, value, start.get(..written_len)?));
        rest = rest.get(end..)?.trim_start();
    }
    Some(pairs)
}

/// What `connect` needs: the mode, and the rustls connector (unused with `disable`).
#[derive(Clone)]
pub(super) struct Tls {
    pub mode: SslMode,
    pub connector: MakeRustls,
    /// `sslmode=… sslrootcert=…`, for errors: which settings a failed handshake used.
    pub describe: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Tls {
    /// Reads the certificate files now (at open), so a wrong path or file fails at once and
    /// names itself. Errors say which setting and which file.
    pub(super) fn new(settings: Settings) -> Result<Self, String> {
        let mode = match settings.sslmode.as_deref() {
            None | Some("") => SslMode::Prefer,
            Some(value) => SslMode::parse(value)?,
        };
        let mut describe = format!("sslmode={}", mode.name());
        if let Some(root) = &settings.sslrootcert {
            describe.push_str(&format!(" sslrootcert={root}"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match settings.sslrootcert.as_deref() {
            Some(path) if mode != SslMode::Disable => Some(read_roots(Path::new(path))?),
            _ => None,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={} needs sslrootcert: the file of the CA certificates that sign \
                     the server's certificate",
                    mode.name()
                ));
            }
            (_, Some(roots)) => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| format!("sslrootcert: {e}"))?;
                Arc::new(Verifier {
                    webpki: Some(webpki),
                    check_name: mode == SslMode::VerifyFull,
                    provider: provider.clone(),
                })
            }
            (_, None) => Arc::new(Verifier {
                webpki: None,
                check_name: false,
                provider: provider.clone(),
            }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (settings.sslcert.as_deref(), settings.sslkey.as_deref()) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) if mode != SslMode::Disable => {
                let chain = read_certs("sslcert", Path::new(cert))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!(
                        "sslkey {key}: cannot read a PEM private key: {}",
                        pem_error(&e)
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("sslcert {cert} and sslkey: {e}"))?
            }
            (Some(_), Some(_)) => builder.with_no_client_auth(),
            (Some(_), None) => return Err("sslcert is set but sslkey is not".to_owned()),
            (None, Some(_)) => return Err("sslkey is set but sslcert is not".to_owned()),
        };
        // PostgreSQL 17 checks ALPN on direct TLS (`sslnegotiation=direct`); older servers
        // ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Self {
            mode,
            connector: MakeRustls {
                config: Arc::new(config),
            },
            describe,
        })
    }
}

fn pem_error(err: &rustls::pki_types::pem::Error) -> String {
    match err {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM block of that kind in it".to_owned(),
        other => format!("{other:?}"),
    }
}

fn read_certs(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{setting} {}: {}", path.display(), pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{setting} {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} {}: holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The CAs of `path`. Certificates webpki cannot use are skipped rather than refused, so an
/// operating system's whole bundle (`/etc/ssl/certs/ca-certificates.crt`) may be given.
fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let (added, _skipped) = roots.add_parsable_certificates(read_certs("sslrootcert", path)?);
    if added == 0 {
        return Err(format!(
            "sslrootcert {}: none of its certificates is usable as a CA",
            path.display()
        ));
    }
    Ok(roots)
}

/// Checks the server's certificate as the mode asks: not at all (`prefer`/`require` without
/// `sslrootcert`: encryption against a passive listener only, as libpq), the chain
/// (`verify-ca`, or any mode with `sslrootcert`), or the chain and the host name
/// (`verify-full`). Handshake signatures are always checked.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name only after the chain, so this error means the chain is
            // good: enough for verify-ca.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres's connector factory over rustls.
#[derive(Clone)]
pub(super) struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    /// Never fails: tokio-postgres asks before it knows whether TLS will be used, with `""`
    /// for a Unix socket (where the server declines TLS and `prefer` goes on plain). A name
    /// TLS cannot use fails the handshake instead, if there is one.
    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name: ServerName::try_from(domain.to_owned()).map_err(|_| domain.to_owned()),
        })
    }
}

pub(super) struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    /// The host to check the certificate against, or the text that is no host name.
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(|text| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("`{text}` is no host name or IP address TLS can check"),
                )
            })?;
            self.connector.connect(name, stream).await.map(RustlsStream)
        })
    }
}

/// A TLS session to PostgreSQL.
pub(super) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// No `tls-server-end-point` binding: SCRAM runs without channel binding (PostgreSQL's
    /// default `channel_binding=prefer` accepts that; `channel_binding=require` is refused).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn settings_leave_the_url_and_the_rest_stays() {
        let (rest, s) = extract(
            "postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(rest, "postgres://u:p@h:5/db?connect_timeout=3");
        assert_eq!(s.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/tmp/ca.pem"));

        let (rest, s) = extract("postgres://u@h/db?sslmode=require");
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!(s.sslmode.as_deref(), Some("require"));

        let (rest, s) = extract(
            "host=h user=u sslmode = 'verify-ca' password='a b' sslrootcert=/x/ca\\ 1.pem dbname=d",
        );
        assert_eq!(rest, "host=h user=u password='a b' dbname=d");
        assert_eq!(s.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/x/ca 1.pem"));
    }

    #[test]
    fn modes_and_their_errors() {
        let bad = Tls::new(Settings {
            sslmode: Some("verify_full".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(bad.contains("sslmode `verify_full` is not one of"), "{bad}");
        let needs = Tls::new(Settings {
            sslmode: Some("verify-full".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(needs.contains("needs sslrootcert"), "{needs}");
        let missing = Tls::new(Settings {
            sslmode: Some("verify-ca".into()),
            sslrootcert: Some("/nonexistent/ca.pem".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(
            missing.contains("sslrootcert /nonexistent/ca.pem"),
            "{missing}"
        );
        // An operating system's bundle works as sslrootcert.
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        if Path::new(bundle).exists() {
            Tls::new(Settings {
                sslmode: Some("verify-full".into()),
                sslrootcert: Some(bundle.into()),
                ..Settings::default()
            })
            .unwrap();
        }
        assert_eq!(
            Tls::new(Settings::default()).unwrap().mode,
            SslMode::Prefer,
            "no sslmode means prefer"
        );
    }
}
