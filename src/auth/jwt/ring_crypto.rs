//! The cryptography behind `jsonwebtoken`, done by *ring*.
//!
//! The gateway keeps one crypto stack: *ring*, the one rustls already uses for TLS and the
//! one that generates the Ed25519 signing keys. `jsonwebtoken` 11 lets a process install its
//! own [`CryptoProvider`]; this module is that provider, so the crate's `rust_crypto` feature
//! (ed25519-dalek, p256/p384, hmac, sha2 0.10, and the `rsa` crate with its open advisory)
//! is not built at all.
//!
//! It owns, for every algorithm `jsonwebtoken` names:
//!
//! - signing ([`PROVIDER`]'s `signer_factory`): HS256/384/512, EdDSA (Ed25519, PKCS#8 v1 or
//!   v2 as the key file stores it), ES256/384 (PKCS#8 with the public key inside; fixed-size
//!   `r || s` signatures, as JWS requires), RS256/384/512 and PS256/384/512 (PKCS#1
//!   `RSAPrivateKey` DER, which is what `EncodingKey::from_rsa_pem` holds, or PKCS#8);
//! - verification (`verifier_factory`): the same algorithms, with the public key as
//!   `DecodingKey` holds it: the raw 32-byte Ed25519 key, the uncompressed SEC1 EC point, and
//!   an RSA key as PKCS#1 `RSAPublicKey` DER or as the `(n, e)` of a JWK — so
//!   `DecodingKey::from_jwk` works for the RS256, ES256 and EdDSA keys an OpenID provider
//!   publishes. RSA keys below 2048 bits are refused, as *ring* refuses them.
//! - the JWK helpers ([`KeyUtils`]): thumbprint digests, and the public half of a private
//!   key. Deriving `(n, e)` from RSA public-key DER is the one thing *ring* cannot do; it is an
//!   error, not a panic.
//!
//! A key of the wrong family for the algorithm (an RSA public key offered as an HMAC secret,
//! say), a malformed key, or an algorithm this module does not know is an error, never a
//! panic, and never a fallback to another algorithm.
//!
//! [`install`] makes [`PROVIDER`] the process default. It must run before the first
//! `jsonwebtoken::encode`/`decode` in the process: `jsonwebtoken` settles on a provider the
//! first time it needs one, and with no crypto feature enabled, what it settles on panics.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, RsaEncoding, RsaKeyPair,
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
};
use ring::{digest, hmac};

/// The *ring*-backed provider. Install it with [`install`].
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key,
        ed_pub_components_from_private_key,
        compute_digest,
    },
};

/// Makes [`PROVIDER`] the process-wide `jsonwebtoken` provider. Idempotent and cheap: every
/// entry point that may be first to touch a JWT calls it (`Tokens::new`, tests), and a call
/// after the first finds a provider installed and leaves it be.
pub fn install() {
    if let Err(installed) = CryptoProvider::install_default(&PROVIDER) {
        // Installed earlier, by an earlier call (a test, say). Anything else means some
        // `encode`/`decode` ran before the first `install`, and `jsonwebtoken` has fixed a
        // provider that panics on use: a bug in whoever skipped `install`, caught here in
        // debug builds rather than at the first token.
        debug_assert!(
            std::ptr::eq(installed, &PROVIDER),
            "a jsonwebtoken CryptoProvider other than ring_crypto::PROVIDER was fixed first; \
             call ring_crypto::install() before any JWT is signed or verified"
        );
    }
}

// --- choosing ---------------------------------------------------------------------------

/// The key must be of the algorithm's family, so that no key is ever used as another kind:
/// an RSA or EC public key handed to HS256 as a "secret" is refused here.
fn check_family(algorithm: Algorithm, family: AlgorithmFamily) -> Result<()> {
    if algorithm.family() == family {
        Ok(())
    } else {
        Err(ErrorKind::InvalidKeyFormat.into())
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let algorithm = *algorithm;
    check_family(algorithm, key.family())?;
    let der = key.as_bytes();
    match algorithm {
        Algorithm::HS256 => hmac_signer(algorithm, hmac::HMAC_SHA256, der),
        Algorithm::HS384 => hmac_signer(algorithm, hmac::HMAC_SHA384, der),
        Algorithm::HS512 => hmac_signer(algorithm, hmac::HMAC_SHA512, der),
        Algorithm::ES256 => ecdsa_signer(
            algorithm,
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
        ),
        Algorithm::ES384 => ecdsa_signer(
            algorithm,
            &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            der,
        ),
        Algorithm::RS256 => rsa_signer(algorithm, &ring::signature::RSA_PKCS1_SHA256, der),
        Algorithm::RS384 => rsa_signer(algorithm, &ring::signature::RSA_PKCS1_SHA384, der),
        Algorithm::RS512 => rsa_signer(algorithm, &ring::signature::RSA_PKCS1_SHA512, der),
        Algorithm::PS256 => rsa_signer(algorithm, &ring::signature::RSA_PSS_SHA256, der),
        Algorithm::PS384 => rsa_signer(algorithm, &ring::signature::RSA_PSS_SHA384, der),
        Algorithm::PS512 => rsa_signer(algorithm, &ring::signature::RSA_PSS_SHA512, der),
        Algorithm::EdDSA => {
            let key_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Ok(Box::new(Ed25519Signer(key_pair)))
        }
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let algorithm = *algorithm;
    check_family(algorithm, key.family())?;
    match algorithm {
        Algorithm::HS256 => hmac_verifier(algorithm, hmac::HMAC_SHA256, key),
        Algorithm::HS384 => hmac_verifier(algorithm, hmac::HMAC_SHA384, key),
        Algorithm::HS512 => hmac_verifier(algorithm, hmac::HMAC_SHA512, key),
        Algorithm::ES256 => ecdsa_verifier(
            algorithm,
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            32,
            key,
        ),
        Algorithm::ES384 => ecdsa_verifier(
            algorithm,
            &ring::signature::ECDSA_P384_SHA384_FIXED,
            48,
            key,
        ),
        Algorithm::RS256 => {
            rsa_verifier(algorithm, &ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        }
        Algorithm::RS384 => {
            rsa_verifier(algorithm, &ring::signature::RSA_PKCS1_2048_8192_SHA384, key)
        }
        Algorithm::RS512 => {
            rsa_verifier(algorithm, &ring::signature::RSA_PKCS1_2048_8192_SHA512, key)
        }
        Algorithm::PS256 => {
            rsa_verifier(algorithm, &ring::signature::RSA_PSS_2048_8192_SHA256, key)
        }
        Algorithm::PS384 => {
            rsa_verifier(algorithm, &ring::signature::RSA_PSS_2048_8192_SHA384, key)
        }
        Algorithm::PS512 => {
            rsa_verifier(algorithm, &ring::signature::RSA_PSS_2048_8192_SHA512, key)
        }
        Algorithm::EdDSA => {
            let public_key = key.try_get_as_bytes()?;
            if public_key.len() != ring::signature::ED25519_PUBLIC_KEY_LEN {
                return Err(ErrorKind::InvalidEddsaKey.into());
            }
            Ok(Box::new(PublicKeyVerifier {
                algorithm,
                verification: &ring::signature::ED25519,
                public_key: public_key.to_vec(),
            }))
        }
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

// --- HMAC -------------------------------------------------------------------------------

/// An empty secret would let anyone mint tokens; no caller means one.
fn hmac_key(algorithm: hmac::Algorithm, secret: &[u8]) -> Result<hmac::Key> {
    if secret.is_empty() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(hmac::Key::new(algorithm, secret))
}

fn hmac_signer(
    algorithm: Algorithm,
    hmac_algorithm: hmac::Algorithm,
    secret: &[u8],
) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(HmacSigner {
        algorithm,
        key: hmac_key(hmac_algorithm, secret)?,
    }))
}

fn hmac_verifier(
    algorithm: Algorithm,
    hmac_algorithm: hmac::Algorithm,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(HmacVerifier {
        algorithm,
        key: hmac_key(hmac_algorithm, key.try_get_as_bytes()?)?,
    }))
}

struct HmacSigner {
    algorithm: Algorithm,
    key: hmac::Key,
}

impl Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        Ok(hmac::sign(&self.key, msg).as_ref().to_vec())
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct HmacVerifier {
    algorithm: Algorithm,
    key: hmac::Key,
}

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        // Constant time in the tag.
        hmac::verify(&self.key, msg, signature).map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

// --- EdDSA ------------------------------------------------------------------------------

struct Ed25519Signer(Ed25519KeyPair);

impl Signer<Vec<u8>> for Ed25519Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        Ok(self.0.sign(msg).as_ref().to_vec())
    }
}

impl JwtSigner for Ed25519Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

// --- ECDSA ------------------------------------------------------------------------------

fn ecdsa_signer(
    algorithm: Algorithm,
    signing: &'static EcdsaSigningAlgorithm,
    pkcs8: &[u8],
) -> Result<Box<dyn JwtSigner>> {
    let rng = SystemRandom::new();
    let key_pair =
        EcdsaKeyPair::from_pkcs8(signing, pkcs8, &rng).map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    Ok(Box::new(EcdsaSigner {
        algorithm,
        key_pair,
        rng,
    }))
}

/// The uncompressed SEC1 point `04 || x || y`, which is what `DecodingKey` holds for an EC
/// key (from a JWK's `x` and `y`, or from PEM). Checked here so that a P-384 key offered for
/// ES256 is a key error, not a bad signature.
fn ecdsa_verifier(
    algorithm: Algorithm,
    verification: &'static dyn VerificationAlgorithm,
    coordinate_len: usize,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>> {
    let point = key.try_get_as_bytes()?;
    if point.len() != 1 + 2 * coordinate_len || point[0] != 0x04 {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    Ok(Box::new(PublicKeyVerifier {
        algorithm,
        verification,
        public_key: point.to_vec(),
    }))
}

struct EcdsaSigner {
    algorithm: Algorithm,
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer<Vec<u8>> for EcdsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        let signature = self
            .key_pair
            .sign(&self.rng, msg)
            .map_err(|_| SignatureError::new())?;
        Ok(signature.as_ref().to_vec())
    }
}

impl JwtSigner for EcdsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

// --- RSA --------------------------------------------------------------------------------

/// An RSA private key as `EncodingKey` holds it: PKCS#1 `RSAPrivateKey` DER (what
/// `from_rsa_pem` extracts, from either PEM form) or, handed to `from_rsa_der`, PKCS#8.
fn rsa_key_pair(der: &[u8]) -> Result<RsaKeyPair> {
    match RsaKeyPair::from_der(der) {
        Ok(key_pair) => Ok(key_pair),
        Err(pkcs1) => RsaKeyPair::from_pkcs8(der).map_err(|pkcs8| {
            Error::from(ErrorKind::InvalidRsaKey(format!(
                "not PKCS#1 ({pkcs1}) nor PKCS#8 ({pkcs8})"
            )))
        }),
    }
}

fn rsa_signer(
    algorithm: Algorithm,
    padding: &'static dyn RsaEncoding,
    der: &[u8],
) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(RsaSigner {
        algorithm,
        key_pair: rsa_key_pair(der)?,
        padding,
        rng: SystemRandom::new(),
    }))
}

fn rsa_verifier(
    algorithm: Algorithm,
    params: &'static RsaParameters,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>> {
    let verifier: Box<dyn JwtVerifier> = match key.kind() {
        // PKCS#1 `RSAPublicKey` DER (`from_rsa_pem`, `from_rsa_der`).
        DecodingKeyKind::SecretOrDer(der) => Box::new(PublicKeyVerifier {
            algorithm,
            verification: params,
            public_key: der.clone(),
        }),
        // A JWK's `n` and `e` (`from_jwk`, `from_rsa_components`).
        DecodingKeyKind::RsaModulusExponent { n, e } => Box::new(RsaComponentsVerifier {
            algorithm,
            params,
            n: without_leading_zeros(n).to_vec(),
            e: without_leading_zeros(e).to_vec(),
        }),
    };
    Ok(verifier)
}

/// RFC 7518 §6.3.1 wants the shortest encoding, and *ring* refuses a leading zero octet; a
/// JWKS that pads `n` to the modulus length anyway is tolerated.
fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

struct RsaSigner {
    algorithm: Algorithm,
    key_pair: RsaKeyPair,
    padding: &'static dyn RsaEncoding,
    rng: SystemRandom,
}

impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(self.padding, &self.rng, msg, &mut signature)
            .map_err(|_| SignatureError::new())?;
        Ok(signature)
    }
}

impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct RsaComponentsVerifier {
    algorithm: Algorithm,
    params: &'static RsaParameters,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Verifier<Vec<u8>> for RsaComponentsVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        RsaPublicKeyComponents {
            n: self.n.as_slice(),
            e: self.e.as_slice(),
        }
        .verify(self.params, msg, signature)
        .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RsaComponentsVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

// --- public-key verification (EdDSA, ECDSA, RSA DER) -----------------------------------

struct PublicKeyVerifier {
    algorithm: Algorithm,
    verification: &'static dyn VerificationAlgorithm,
    public_key: Vec<u8>,
}

impl Verifier<Vec<u8>> for PublicKeyVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        UnparsedPublicKey::new(self.verification, self.public_key.as_slice())
            .verify(msg, signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for PublicKeyVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

// --- JWK helpers ------------------------------------------------------------------------

/// For `Jwk::from_encoding_key` with an RSA key.
fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let key_pair = rsa_key_pair(der)?;
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(key_pair.public());
    Ok((components.n, components.e))
}

/// For `Jwk::from_decoding_key` with an RSA key held as DER. *ring* has no public parser for
/// a bare RSA public key, so this is refused; a key from a JWK carries `(n, e)` already.
fn rsa_pub_components_from_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

/// For `Jwk::from_encoding_key` with an EC key: the curve and the point's `x` and `y`.
fn ec_pub_components_from_private_key(
    pkcs8: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (signing, curve, coordinate_len) = match algorithm {
        Algorithm::ES256 => (
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        Algorithm::ES384 => (
            &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let key_pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8, &SystemRandom::new())
        .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    match key_pair.public_key().as_ref().split_first() {
        Some((&0x04, xy)) if xy.len() == 2 * coordinate_len => {
            let (x, y) = xy.split_at(coordinate_len);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

/// For `Jwk::from_encoding_key` with an Ed25519 key: the raw public key.
fn ed_pub_components_from_private_key(pkcs8: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    match curve {
        EllipticCurve::Ed25519 => {
            let key_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Ok(key_pair.public_key().as_ref().to_vec())
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

/// For `Jwk::thumbprint` (RFC 7638).
fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests;
