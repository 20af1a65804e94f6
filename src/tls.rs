//! TLS: the rustls server configuration (ALPN `h2` + `http/1.1`), the self-signed
//! certificate generated on first start, and a certificate that can be swapped while serving.
//!
//! The certificate lives behind a resolver rather than in the `ServerConfig`, so reloading
//! (SIGHUP, or cert-manager rewriting a Secret) replaces it for the next handshake while
//! every open connection keeps the one it negotiated.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{Config, TlsMode, TlsVersion};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Config(String),
}

/// Serves whichever certificate was loaded last.
#[derive(Debug)]
pub struct CertificateSlot {
    /// Read on every handshake, written only on reload; never held across an await.
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl CertificateSlot {
    /// Loads `cert` and `key`; on error the slot keeps serving what it had.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let loaded = load_certified_key(cert, key, &self.provider)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(loaded);
        }
        Ok(())
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// The listener's TLS: the rustls configuration and the slot its certificate comes from.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub certificate: Arc<CertificateSlot>,
}

/// The listener's TLS, or `None` when `tls = "off"`.
pub fn server_config(config: &Config) -> Result<Option<Tls>, TlsError> {
    if config.server.tls == TlsMode::Off {
        return Ok(None);
    }
    let (cert, key) = config.tls_paths();
    if config.server.tls == TlsMode::SelfSigned && !(cert.exists() && key.exists()) {
        generate_self_signed(&config.server.self_signed_names, &cert, &key)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let slot = Arc::new(CertificateSlot {
        current: RwLock::new(Arc::new(load_certified_key(&cert, &key, &provider)?)),
        provider: provider.clone(),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = match config.server.tls_min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(slot.clone());
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Tls {
        config: Arc::new(server),
        certificate: slot,
    }))
}

fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no certificate found".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| file_error(key, e.to_string()))?;
    // A key that loads but does not match is the certificate's problem as often as the key's:
    // name the certificate, which is what a renewal usually replaced.
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(file_error(
            cert,
            format!("does not match the private key in {}", key.display()),
        )),
        Err(e) => Err(file_error(cert, e.to_string())),
    }
}

/// A certificate for `names`, valid for the usual rcgen period, key written 0600.
fn generate_self_signed(names: &[String], cert: &Path, key: &Path) -> Result<(), TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let write = |path: &Path, pem: String| {
        crate::files::write_private(path, pem.as_bytes()).map_err(|e| TlsError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    write(key, generated.signing_key.serialize_pem())?;
    write(cert, generated.cert.pem())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed certificate");
    Ok(())
}
