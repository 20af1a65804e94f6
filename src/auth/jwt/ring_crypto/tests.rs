//! The *ring* provider against published vectors (RFC 7515 appendices A.1–A.3, RFC 8037
//! A.4, RFC 7638 §3.1), and through `jsonwebtoken::encode`/`decode` the way the gateway (HS256,
//! EdDSA) and OpenID Connect ID tokens (RS256, ES256, EdDSA keys from a JWKS) use it. No RSA
//! key is generated: the RFC 7515 A.2 key is embedded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{sign, verify};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::install;

// --- RFC 7515 (JWS), appendix A ---------------------------------------------------------

/// A.1: the HS256 key, as the JWK `k` the appendix prints.
const A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const A1_SIGNING_INPUT: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
    eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const A1_SIGNATURE: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A.2: the RSA key's public half, as the JWK the appendix prints.
const A2_N: &str = "\
    ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJ\
    PMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0\
    LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD\
    Zlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2\
    PAcDTW9gb54h4FRWyuXpoQ";
const A2_E: &str = "AQAB";
/// A.2's private key (n, e, d, p, q, dp, dq, qi of the appendix) as unencrypted PKCS#8 DER,
/// base64url.
const A2_PKCS8: &str = "\
    MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCh-BYK4uPJtGXOjS1lYmM2K5J9\
    vinh8CR3_BYlzJChNuOL2TSXxbbqY913EeZ8dCn5VrD7io8ImtxLaYk8wTM_U-3QGbh3hCUv7JFP\
    5IV3aVlL6kKA0ywPVb9ilE8TA5a8bpvfbr3SvaNnjuygxmj3AbONv_s4yDQs4v5tJ_reSlpIdJed\
    1LnPmt7Ex1sFhSwsD174pcF1A5L5ROjtZMEQxrZHYJqkeDrrnGya11UxMFBji4NmXG9veoKjlnAq\
    H2QbgtPr8jkiGUkftoaHLFcW9Qr4NY2ai50Xw0Byj3-H2JoY2PyrZ62EWQwuz3WTOTY8BwNNb2Bv\
    niHgVFbK5emhAgMBAAECggEAEq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88v\
    LNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKV\
    RUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdG\
    copV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDV\
    ZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQKBgQDgHMQQ60im\
    ZV1URk0KpLttoLhyt3SmqdEf_kgHePDdtzEafpAu-cS191R2JiuoF2yzWXnwFDcqGigp5BNr0AHQ\
    fD8_Lk8l1Mk09jxxCfui5nYooNyac8YFjm3vItzVCVDnEd3BbVWG8qf6deqElMGAg-C2V0L4oNXn\
    P7LZcPAZRwKBgQC5A8R-CZW2MvRTLLHzwZkUXV866cff7tx6kqa0finGG0KgeqlaZPxgCZnFp7Ae\
    AcCMtiynVlJ7vMVgePsLq6XtON4tB5kP9jAPrq3rbAOal78eUH5OcED6eNuCV8ixEu1eWcPNCS_l\
    1OW1EnXUEoEHKl54Xrrz2uNwkgMTP1FZ1wKBgAcCn1dwJKufzBWQxWQp1vsM5fggqPN1qGb5y0MA\
    k3g7_Ls5bkUp5u9SN0Ai3Ya6hNnvWJMb7sXQX6U_zyO2M_hTip7tUeh7CXgwo59dkpN75gJLVds2\
    9-DAncu3KXU4f2Fa-7bLNrur53k8KwPOq2bbuTG69QtV7Jr5MR0AHWKNAoGBAIf_evpitUf-4JYb\
    LpvNXWcY052Mpz22aR84mY3nh3F2LF2mjMJDpTg7FmuyPcVw6EcGyoAe9fa65iNqCq-jdw6PVNGo\
    2hxfjSiZ8IIzHdsPXI89__pMjZcQK9r-CCoRjaZjOYiIDktVWZzmevJuv6WywUqd57LE3Zar3dLS\
    Ikx1AoGAIYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScG\
    Lq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh\
    6A5603k2-ZQwVK0JKSHuLFkuQ3U";
/// A.2's public key as PKCS#1 `RSAPublicKey` DER, base64url: what `DecodingKey::from_rsa_pem`
/// holds.
const A2_PUBLIC_PKCS1: &str = "\
    MIIBCgKCAQEAofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp\
    -Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2j\
    Z47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2\
    R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NA\
    co9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQIDAQAB";
const A2_SIGNING_INPUT: &str = "eyJhbGciOiJSUzI1NiJ9.\
    eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
/// PKCS#1 v1.5 is deterministic: signing A.2's input with A.2's key must give exactly this.
const A2_SIGNATURE: &str = "\
    cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5j\
    ujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L\
    07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEU\
    ipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/// A.3: the P-256 key's public half, as the JWK the appendix prints.
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
/// A.3's private key (d, with x and y) as unencrypted PKCS#8 DER with the public key inside,
/// base64url.
const A3_PKCS8: &str = "\
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL-YBIffH1136cspYG6-\
    0iY7X1fCE9-E9LKhRANCAAR_zc4ncPbEXUGDy-5v20t7WAczNXvp7xO6z248e9FURcfxRM0bvZt-\
    hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt";
const A3_SIGNING_INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.\
    eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
/// ECDSA is randomized, so this one can only be verified, not reproduced.
const A3_SIGNATURE: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// --- RFC 8037 (EdDSA in JOSE), appendix A -----------------------------------------------

/// A.1: the Ed25519 private key (`d`, the seed) and public key (`x`).
const ED25519_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// A.4: header `{"alg":"EdDSA"}`, payload "Example of Ed25519 signing".
const ED25519_SIGNING_INPUT: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const ED25519_SIGNATURE: &str = "\
    hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

// --- RFC 7638 (JWK thumbprint), §3.1 ----------------------------------------------------

const RFC7638_N: &str = "\
    0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb\
    WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368Q\
    QMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2\
    NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RFC7638_SHA256: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

// --- helpers ----------------------------------------------------------------------------

const AUDIENCE: &str = "ring-crypto-test";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TestClaims {
    sub: String,
    aud: String,
    exp: u64,
}

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn from_jwk(jwk: Value) -> DecodingKey {
    let jwk: Jwk = serde_json::from_value(jwk).unwrap();
    DecodingKey::from_jwk(&jwk).unwrap()
}

fn a2_public_jwk() -> DecodingKey {
    from_jwk(
        json!({"kty": "RSA", "kid": "2010-12-29", "alg": "RS256", "use": "sig",
        "n": A2_N, "e": A2_E}),
    )
}

fn a3_public_jwk() -> DecodingKey {
    from_jwk(json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y}))
}

/// RFC 8037's key as PKCS#8 v1 (the seed alone), as `openssl genpkey` writes it; ring's own
/// `generate_pkcs8`, and so the key file, writes v2.
fn ed25519_pkcs8_v1() -> Vec<u8> {
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&b64(ED25519_D));
    pkcs8
}

/// The PKCS#1 `RSAPrivateKey` inside a 2048-bit key's PKCS#8 wrapper: what
/// `EncodingKey::from_rsa_pem` holds for the same key, from either PEM form.
fn pkcs1_of(pkcs8: &[u8]) -> &[u8] {
    const HEADER: [u8; 26] = [
        0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
        0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x82, 0x04, 0xa7,
    ];
    assert_eq!(&pkcs8[..HEADER.len()], &HEADER[..]);
    &pkcs8[HEADER.len()..]
}

/// A fresh Ed25519 key in the key file's form: PKCS#8 v2 to sign, the raw public key to
/// verify (as `Keyring::from_file` builds them).
fn ed25519_key(rng: &SystemRandom) -> (EncodingKey, DecodingKey) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref()).unwrap();
    (
        EncodingKey::from_ed_der(pkcs8.as_ref()),
        DecodingKey::from_ed_der(pair.public_key().as_ref()),
    )
}

/// A fresh EC key: PKCS#8 to sign, the uncompressed point to verify.
fn ec_key(
    signing: &'static EcdsaSigningAlgorithm,
    rng: &SystemRandom,
) -> (EncodingKey, DecodingKey) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), rng).unwrap();
    (
        EncodingKey::from_ec_der(pkcs8.as_ref()),
        DecodingKey::from_ec_der(pair.public_key().as_ref()),
    )
}

/// The token with one bit of its signature flipped, still valid base64url.
fn tamper(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut signature = b64(signature);
    signature[0] ^= 0x01;
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn error_kind<T: std::fmt::Debug>(result: Result<T>) -> ErrorKind {
    result.unwrap_err().into_kind()
}

fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[AUDIENCE]);
    validation
}

/// The RFC 7515 examples' claims expired in 2011 and carry no `aud`.
fn signature_only(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation
}

/// `encode` then `decode` gives the claims back; a flipped signature bit, or another key of
/// the same kind, is `InvalidSignature`.
fn round_trip(
    algorithm: Algorithm,
    signing: &EncodingKey,
    right: &DecodingKey,
    wrong: &DecodingKey,
) {
    let claims = TestClaims {
        sub: "42".into(),
        aud: AUDIENCE.into(),
        exp: jsonwebtoken::get_current_timestamp() + 600,
    };
    let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, signing).unwrap();
    let decoded =
        jsonwebtoken::decode::<TestClaims>(token.as_str(), right, &validation(algorithm)).unwrap();
    assert_eq!(decoded.claims, claims, "{algorithm:?}");
    assert_eq!(decoded.header.alg, algorithm);
    let tampered =
        jsonwebtoken::decode::<TestClaims>(tamper(&token), right, &validation(algorithm));
    assert_eq!(
        error_kind(tampered),
        ErrorKind::InvalidSignature,
        "{algorithm:?} tampered"
    );
    let other_key =
        jsonwebtoken::decode::<TestClaims>(token.as_str(), wrong, &validation(algorithm));
    assert_eq!(
        error_kind(other_key),
        ErrorKind::InvalidSignature,
        "{algorithm:?} wrong key"
    );
}

// --- tests ------------------------------------------------------------------------------

#[test]
fn install_is_idempotent() {
    install();
    install();
    let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
    assert!(sign(b"message", &key, Algorithm::HS256).is_ok());
}

#[test]
fn hmac_round_trips() {
    install();
    let secret = b"0123456789abcdef0123456789abcdef";
    let signing = EncodingKey::from_secret(secret);
    let right = DecodingKey::from_secret(secret);
    let wrong = DecodingKey::from_secret(b"fedcba9876543210fedcba9876543210");
    for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        round_trip(algorithm, &signing, &right, &wrong);
    }
}

#[test]
fn hs256_reproduces_rfc7515_a1() {
    install();
    let key = b64(A1_KEY);
    let input = A1_SIGNING_INPUT.as_bytes();
    let signed = sign(input, &EncodingKey::from_secret(&key), Algorithm::HS256).unwrap();
    assert_eq!(signed, A1_SIGNATURE);
    let secret = DecodingKey::from_secret(&key);
    assert!(verify(A1_SIGNATURE, input, &secret, Algorithm::HS256).unwrap());
    let oct = from_jwk(json!({"kty": "oct", "k": A1_KEY}));
    assert!(verify(A1_SIGNATURE, input, &oct, Algorithm::HS256).unwrap());
    assert!(!verify(A1_SIGNATURE, b"another message", &secret, Algorithm::HS256).unwrap());
    assert!(!verify(A1_SIGNATURE, input, &secret, Algorithm::HS384).unwrap());
}

#[test]
fn eddsa_reproduces_rfc8037_a4() {
    install();
    let input = ED25519_SIGNING_INPUT.as_bytes();
    let private = EncodingKey::from_ed_der(&ed25519_pkcs8_v1());
    assert_eq!(
        sign(input, &private, Algorithm::EdDSA).unwrap(),
        ED25519_SIGNATURE
    );
    let okp = from_jwk(json!({"kty": "OKP", "crv": "Ed25519", "x": ED25519_X}));
    let raw = DecodingKey::from_ed_components(ED25519_X).unwrap();
    for public in [&okp, &raw] {
        assert!(verify(ED25519_SIGNATURE, input, public, Algorithm::EdDSA).unwrap());
        let other_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmcu";
        assert!(!verify(ED25519_SIGNATURE, other_input, public, Algorithm::EdDSA).unwrap());
    }
}

#[test]
fn eddsa_round_trips_with_key_file_keys() {
    install();
    let rng = SystemRandom::new();
    let (signing, right) = ed25519_key(&rng);
    let (_, wrong) = ed25519_key(&rng);
    round_trip(Algorithm::EdDSA, &signing, &right, &wrong);
    // The RFC 8037 key, PKCS#8 v1, through the same path.
    let v1 = EncodingKey::from_ed_der(&ed25519_pkcs8_v1());
    let v1_public = DecodingKey::from_ed_components(ED25519_X).unwrap();
    round_trip(Algorithm::EdDSA, &v1, &v1_public, &right);
}

#[test]
fn rs256_reproduces_rfc7515_a2() {
    install();
    let input = A2_SIGNING_INPUT.as_bytes();
    let pkcs8 = b64(A2_PKCS8);
    for private in [
        EncodingKey::from_rsa_der(&pkcs8),
        EncodingKey::from_rsa_der(pkcs1_of(&pkcs8)),
    ] {
        assert_eq!(
            sign(input, &private, Algorithm::RS256).unwrap(),
            A2_SIGNATURE
        );
    }
    let by_jwk = a2_public_jwk();
    let by_der = DecodingKey::from_rsa_der(&b64(A2_PUBLIC_PKCS1));
    // `n` padded to a leading zero octet, as some JWKS endpoints send it.
    let mut padded_n = vec![0];
    padded_n.extend_from_slice(&b64(A2_N));
    let padded = DecodingKey::from_rsa_raw_components(&padded_n, &b64(A2_E));
    for public in [&by_jwk, &by_der, &padded] {
        assert!(verify(A2_SIGNATURE, input, public, Algorithm::RS256).unwrap());
        assert!(!verify(A2_SIGNATURE, b"another message", public, Algorithm::RS256).unwrap());
        // The same key, but PSS: a PKCS#1 v1.5 signature does not pass.
        assert!(!verify(A2_SIGNATURE, input, public, Algorithm::PS256).unwrap());
    }
    // The whole token through `decode`, as an ID token checked against a JWKS would go.
    let token = format!("{A2_SIGNING_INPUT}.{A2_SIGNATURE}");
    let data =
        jsonwebtoken::decode::<Value>(token.as_str(), &by_jwk, &signature_only(Algorithm::RS256))
            .unwrap();
    assert_eq!(data.claims["iss"], "joe");
    let tampered =
        jsonwebtoken::decode::<Value>(tamper(&token), &by_jwk, &signature_only(Algorithm::RS256));
    assert_eq!(error_kind(tampered), ErrorKind::InvalidSignature);
}

#[test]
fn every_rsa_algorithm_round_trips() {
    install();
    let signing = EncodingKey::from_rsa_der(&b64(A2_PKCS8));
    let by_jwk = a2_public_jwk();
    let by_der = DecodingKey::from_rsa_der(&b64(A2_PUBLIC_PKCS1));
    let wrong = from_jwk(json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}));
    for algorithm in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        round_trip(algorithm, &signing, &by_jwk, &wrong);
        round_trip(algorithm, &signing, &by_der, &wrong);
    }
}

#[test]
fn es256_verifies_rfc7515_a3() {
    install();
    let input = A3_SIGNING_INPUT.as_bytes();
    let public = a3_public_jwk();
    assert!(verify(A3_SIGNATURE, input, &public, Algorithm::ES256).unwrap());
    assert!(!verify(A3_SIGNATURE, b"another message", &public, Algorithm::ES256).unwrap());
    // A P-256 key is no ES384 key: refused as a key, before any signature is looked at.
    let es384 = verify(A3_SIGNATURE, input, &public, Algorithm::ES384);
    assert_eq!(error_kind(es384), ErrorKind::InvalidEcdsaKey);
    // Signing with A.3's private key gives a fixed-size `r || s` that verifies.
    let private = EncodingKey::from_ec_der(&b64(A3_PKCS8));
    let signed = sign(input, &private, Algorithm::ES256).unwrap();
    assert_eq!(b64(&signed).len(), 64);
    assert!(verify(&signed, input, &public, Algorithm::ES256).unwrap());
    // The whole token through `decode`.
    let token = format!("{A3_SIGNING_INPUT}.{A3_SIGNATURE}");
    let data =
        jsonwebtoken::decode::<Value>(token.as_str(), &public, &signature_only(Algorithm::ES256))
            .unwrap();
    assert_eq!(data.claims["iss"], "joe");
}

#[test]
fn ecdsa_round_trips() {
    install();
    let rng = SystemRandom::new();
    let a3 = EncodingKey::from_ec_der(&b64(A3_PKCS8));
    let (_, other_p256) = ec_key(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng);
    round_trip(Algorithm::ES256, &a3, &a3_public_jwk(), &other_p256);

    let p384 = &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING;
    let (signing, right) = ec_key(p384, &rng);
    let (_, wrong) = ec_key(p384, &rng);
    round_trip(Algorithm::ES384, &signing, &right, &wrong);
    let signed = sign(b"message", &signing, Algorithm::ES384).unwrap();
    assert_eq!(b64(&signed).len(), 96);
}

#[test]
fn jwk_helpers() {
    install();
    let rsa = Jwk::from_encoding_key(&EncodingKey::from_rsa_der(&b64(A2_PKCS8)), Algorithm::RS256);
    let rsa = serde_json::to_value(rsa.unwrap()).unwrap();
    assert_eq!(
        (&rsa["kty"], &rsa["n"], &rsa["e"]),
        (&json!("RSA"), &json!(A2_N), &json!(A2_E))
    );

    let ec = Jwk::from_encoding_key(&EncodingKey::from_ec_der(&b64(A3_PKCS8)), Algorithm::ES256);
    let ec = serde_json::to_value(ec.unwrap()).unwrap();
    assert_eq!(
        (&ec["crv"], &ec["x"], &ec["y"]),
        (&json!("P-256"), &json!(A3_X), &json!(A3_Y))
    );

    let ed = EncodingKey::from_ed_der(&ed25519_pkcs8_v1());
    let ed = serde_json::to_value(Jwk::from_encoding_key(&ed, Algorithm::EdDSA).unwrap()).unwrap();
    assert_eq!(
        (&ed["crv"], &ed["x"]),
        (&json!("Ed25519"), &json!(ED25519_X))
    );

    let rfc7638: Jwk = serde_json::from_value(json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB",
        "alg": "RS256", "kid": "2011-04-29"}))
    .unwrap();
    assert_eq!(
        rfc7638.thumbprint(ThumbprintHash::SHA256).unwrap(),
        RFC7638_SHA256
    );
    // SHA-384 and SHA-512 of the same RFC 7638 input, computed independently.
    assert_eq!(
        rfc7638.thumbprint(ThumbprintHash::SHA384).unwrap(),
        "R9_OfJjSjaw8Fuum86UzK5ixTdN9bo9BaqPSiseq89DWfmqCdpSgUHus-cxDUNc8"
    );
    assert_eq!(
        rfc7638.thumbprint(ThumbprintHash::SHA512).unwrap(),
        "DpvEwocfn3FjeWWQjcJHzWrpKTIymKwgoL1xVgQcud48-qZDSRCr1zfWZQdHAJn_ciqXqPTSARyg-L-NyNGpVA"
    );

    // (n, e) from RSA public-key DER is the one helper ring cannot do: an error, not a panic.
    let der = DecodingKey::from_rsa_der(&b64(A2_PUBLIC_PKCS1));
    assert!(Jwk::from_decoding_key(&der, Some(Algorithm::RS256)).is_err());
}

#[test]
fn bad_keys_are_errors_not_panics() {
    install();
    let message = b"message";
    let garbage = b"not a key at all";
    let sign_with = |key: EncodingKey, algorithm| error_kind(sign(message, &key, algorithm));
    assert_eq!(
        sign_with(EncodingKey::from_ed_der(garbage), Algorithm::EdDSA),
        ErrorKind::InvalidEddsaKey
    );
    assert_eq!(
        sign_with(EncodingKey::from_ec_der(garbage), Algorithm::ES256),
        ErrorKind::InvalidEcdsaKey
    );
    assert!(matches!(
        sign_with(EncodingKey::from_rsa_der(garbage), Algorithm::RS256),
        ErrorKind::InvalidRsaKey(_)
    ));
    // A P-256 key for ES384, an empty HMAC secret.
    assert_eq!(
        sign_with(EncodingKey::from_ec_der(&b64(A3_PKCS8)), Algorithm::ES384),
        ErrorKind::InvalidEcdsaKey
    );
    assert_eq!(
        sign_with(EncodingKey::from_secret(b""), Algorithm::HS256),
        ErrorKind::InvalidKeyFormat
    );

    // A key of another family is never used as this one: the RSA public key is no HMAC
    // secret, the HMAC secret no Ed25519 or RSA key.
    let input = A2_SIGNING_INPUT.as_bytes();
    let rsa_public = DecodingKey::from_rsa_der(&b64(A2_PUBLIC_PKCS1));
    let verify_with =
        |key: &DecodingKey, algorithm| error_kind(verify(A2_SIGNATURE, input, key, algorithm));
    assert_eq!(
        verify_with(&rsa_public, Algorithm::HS256),
        ErrorKind::InvalidKeyFormat
    );
    assert_eq!(
        verify_with(&a2_public_jwk(), Algorithm::HS256),
        ErrorKind::InvalidKeyFormat
    );
    let secret = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
    assert_eq!(
        verify_with(&secret, Algorithm::EdDSA),
        ErrorKind::InvalidKeyFormat
    );
    assert_eq!(
        verify_with(&secret, Algorithm::RS256),
        ErrorKind::InvalidKeyFormat
    );
    assert_eq!(
        sign_with(EncodingKey::from_secret(b"secret"), Algorithm::RS256),
        ErrorKind::InvalidKeyFormat
    );

    // Malformed public keys.
    assert_eq!(
        verify_with(&DecodingKey::from_ed_der(b"short"), Algorithm::EdDSA),
        ErrorKind::InvalidEddsaKey
    );
    assert_eq!(
        verify_with(&DecodingKey::from_ec_der(b"short"), Algorithm::ES256),
        ErrorKind::InvalidEcdsaKey
    );
    // RSA DER is parsed when a signature is checked: garbage verifies nothing.
    let garbage_rsa = DecodingKey::from_rsa_der(garbage);
    assert!(!verify(A2_SIGNATURE, input, &garbage_rsa, Algorithm::RS256).unwrap());
}
