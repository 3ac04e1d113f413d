//! Turning a listener's PEM files into a rustls server config.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error as TlsError, InconsistentKeys};
use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::model::TlsFiles;

/// Offered in this order, so HTTP/2-capable clients get HTTP/2.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Loads the certificate chain and private key and builds a server config on the `ring`
/// provider, whatever process-wide default provider may or may not be installed.
///
/// Keys may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC). Errors name the offending file but never
/// quote its contents.
pub fn load_tls(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let certs = read_certs(&files.cert_file)?;
    let key = read_key(&files.key_file)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Loaded separately from the builder so each failure gets the file it belongs to.
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| ConfigError::UnusableKey {
            path: files.key_file.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key type cannot report its public half; rustls accepts that too.
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(ConfigError::KeyMismatch {
                cert_file: files.cert_file.clone(),
                key_file: files.key_file.clone(),
            });
        }
        Err(source) => {
            return Err(ConfigError::InvalidCertificate {
                path: files.cert_file.clone(),
                source,
            });
        }
    }

    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ConfigError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = ALPN.iter().map(|proto| proto.to_vec()).collect();
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    const WHAT: &str = "certificate";
    let pem = read(WHAT, path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ConfigError::MalformedPem {
            what: WHAT,
            path: path.to_path_buf(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    const WHAT: &str = "private key";
    let pem = read(WHAT, path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|_| ConfigError::MalformedPem {
            what: WHAT,
            path: path.to_path_buf(),
        })?
        .ok_or_else(|| ConfigError::NoPrivateKey {
            path: path.to_path_buf(),
        })
}

// Zeroized on drop: the key file's PEM text is the key.
fn read(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| ConfigError::TlsRead {
            what,
            path: path.to_path_buf(),
            source,
        })
}
