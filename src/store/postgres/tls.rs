//! TLS for the PostgreSQL store: libpq's `sslmode` and `sslrootcert` read from the store URL,
//! and the rustls client configuration each mode calls for.
//!
//! tokio-postgres parses connection strings itself, but it knows only `disable`, `prefer` and
//! `require`, and nothing of certificates: verifying them is left to the TLS connector. So the
//! two parameters are taken out here before tokio-postgres reads the rest, and become the one
//! [`MakeRustlsConnect`] every connection of the store uses (the pool's and the change feed's
//! alike). A URL then means what it means to `psql`:
//!
//! | `sslmode`     | encrypted         | the server's certificate                        |
//! |---------------|-------------------|-------------------------------------------------|
//! | `disable`     | no                | —                                               |
//! | `prefer`      | if the server can | not checked (its chain is, given `sslrootcert`) |
//! | `require`     | yes               | not checked (its chain is, given `sslrootcert`) |
//! | `verify-ca`   | yes               | chains to a CA in `sslrootcert`                 |
//! | `verify-full` | yes               | chains to a CA in `sslrootcert`, names the host |
//!
//! `prefer` is the default, as in libpq; a given `sslrootcert` makes libpq check the chain in
//! every mode but `disable`, and so it does here. An unchecked certificate keeps the traffic
//! from eavesdroppers but not from someone in the middle, who can present one of their own;
//! the handshake signatures are still verified, so the server holds the key it presents.
//!
//! Keyword/value strings (`host=db1 sslmode=verify-full ...`) are read the same way.

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::Config;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The store URL as tokio-postgres configuration, and the TLS connector its `sslmode` and
/// `sslrootcert` call for. Errors never quote the password.
pub fn parse(url: &str) -> Result<(Config, MakeRustlsConnect), String> {
    let parts = split(url)?;
    let mut config = Config::from_str(&parts.rest).map_err(|e| describe(&e))?;
    config.ssl_mode(parts.mode.ssl_mode());
    let client = client_config(parts.mode, parts.root_cert.as_deref())?;
    Ok((config, MakeRustlsConnect::new(client)))
}

/// An error with its causes, `outer: inner: innermost`: tokio-postgres's own messages leave
/// the cause out ("error performing TLS handshake", and not which certificate failed how).
/// A cause its parent already quotes is not repeated.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::Disable,
        Mode::Prefer,
        Mode::Require,
        Mode::VerifyCa,
        Mode::VerifyFull,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.name() == value)
            .ok_or_else(|| {
                let valid: Vec<&str> = Mode::ALL.iter().map(|mode| mode.name()).collect();
                format!(
                    "unknown sslmode {value:?}: expected one of {}",
                    valid.join(", ")
                )
            })
    }

    /// What tokio-postgres negotiates; the verification is the connector's.
    fn ssl_mode(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// A connection string with `sslmode` and `sslrootcert` taken out.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    /// Everything else, for tokio-postgres.
    rest: String,
    mode: Mode,
    root_cert: Option<String>,
}

fn split(url: &str) -> Result<Split, String> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            mode = Some(value);
            true
        }
        "sslrootcert" => {
            root_cert = Some(value);
            true
        }
        _ => false,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url, &mut take)?
    } else {
        split_keywords(url, &mut take)?
    };
    let mode = match mode {
        Some(value) => Mode::parse(&value)?,
        None => Mode::Prefer,
    };
    Ok(Split {
        rest,
        mode,
        // As in libpq, an empty value is no value.
        root_cert: root_cert.filter(|path| !path.is_empty()),
    })
}

/// `postgres://user:password@host:port,host:port/dbname?key=value&...`: the query without
/// the pairs `take` keeps. The rest is left to tokio-postgres, byte for byte.
fn split_url(url: &str, take: &mut impl FnMut(&str, String) -> bool) -> Result<String, String> {
    let scheme = url.find("://").map_or(0, |at| at + 3);
    // As tokio-postgres reads it: up to the first `@` is user and password, so a `?` there is
    // not the query's.
    let hosts = url[scheme..].find('@').map_or(scheme, |at| scheme + at + 1);
    let Some(query) = url[hosts..].find('?').map(|at| hosts + at) else {
        return Ok(url.to_string());
    };
    let mut kept = Vec::new();
    for pair in url[query + 1..].split('&') {
        if pair.is_empty() {
            continue;
        }
        let ours = match pair.split_once('=') {
            Some((key, value)) => match percent_decode(key) {
                Some(key) if key == "sslmode" || key == "sslrootcert" => {
                    let value = percent_decode(value)
                        .ok_or_else(|| format!("the value of {key} is not UTF-8"))?;
                    take(&key, value)
                }
                _ => false,
            },
            // tokio-postgres says what is wrong with it.
            None => false,
        };
        if !ours {
            kept.push(pair);
        }
    }
    let base = &url[..query];
    Ok(if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// `%XX` decoded, as tokio-postgres decodes URL parts (`+` stays a plus); `None` when the
/// result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match (bytes[at], hex(at + 1), hex(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                at += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// `key=value key='quoted \' value' ...`, read as tokio-postgres reads it, and written back
/// (every value quoted) without the pairs `take` keeps. Errors name keys, never values.
fn split_keywords(
    text: &str,
    take: &mut impl FnMut(&str, String) -> bool,
) -> Result<String, String> {
    let mut chars = text.chars().peekable();
    let mut kept = Vec::new();
    loop {
        while chars.next_if(|ch| ch.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(ch) = chars.next_if(|ch| !ch.is_whitespace() && *ch != '=') {
            key.push(ch);
        }
        if key.is_empty() {
            if chars.peek().is_none() {
                break;
            }
            return Err("invalid connection string: a `=` without a keyword".into());
        }
        while chars.next_if(|ch| ch.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("invalid connection string: no `=` after `{key}`"));
        }
        while chars.next_if(|ch| ch.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "invalid connection string: the quoted value of `{key}` does not end"
                        ));
                    }
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(ch) => value.push(ch),
                }
            }
        } else {
            while let Some(ch) = chars.next_if(|ch| !ch.is_whitespace()) {
                if ch == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(ch);
                }
            }
            if value.is_empty() {
                return Err(format!("invalid connection string: no value for `{key}`"));
            }
        }
        if !take(&key, value.clone()) {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok(kept.join(" "))
}

fn client_config(mode: Mode, root_cert: Option<&str>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match (mode, root_cert) {
        // Never used: no connection asks for TLS.
        (Mode::Disable, _) => None,
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(format!(
                "sslmode={} needs sslrootcert=<file of the CA certificates, PEM>",
                mode.name()
            ));
        }
        (_, Some(path)) => Some((path, load_roots(path)?)),
        (_, None) => None,
    };
    let webpki = |path: &str, roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("sslrootcert {path}: {e}"))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }),
        Some((path, roots)) if mode == Mode::VerifyFull => webpki(path, roots)?,
        Some((path, roots)) => Arc::new(ChainOnly(webpki(path, roots)?)),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for PostgreSQL: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What libpq 17 offers; PostgreSQL 17 requires it for sslnegotiation=direct, older
    // servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The CA certificates of a PEM file; an error names the file.
fn load_roots(path: &str) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("sslrootcert {path}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sslrootcert {path}: no certificate found (expected PEM)"
        ));
    }
    Ok(roots)
}

/// `disable`, `prefer` and `require` without `sslrootcert`: any certificate, as libpq, but
/// the handshake must be signed with its key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: everything webpki checks (chain, validity, usage) but the host name. The name
/// is checked last, so its failure means everything else passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
