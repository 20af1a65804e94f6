//! Fuzzes presented-credential parsing: `Tokens::verify` (JWT) and `apikey::parse`. Any
//! string must be refused without a panic: random input cannot carry a valid HMAC, so
//! `verify` must return `Err`. The signing key's `kid` is pinned to "fuzz" so inputs can get
//! past key lookup into header/claim decoding and signature checking. `apikey::parse` may
//! only accept `pcs_<16 lowercase hex>_<43 base64url>`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::auth::apikey;
use portcullis::auth::jwt::{KeyFile, Keyring, TokenType, Tokens, generate_key};
use portcullis::config::{AuthConfig, JwtAlgorithm};

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let mut key = generate_key(JwtAlgorithm::HS256, 0).unwrap();
        key.kid = "fuzz".into();
        let file = KeyFile { keys: vec![key] };
        let keyring = Keyring::from_file(&file, JwtAlgorithm::HS256).unwrap();
        Tokens::new(&AuthConfig::default(), keyring)
    })
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);

    for expected in [TokenType::Access, TokenType::Refresh] {
        assert!(
            tokens().verify(&input, expected).is_err(),
            "forged token accepted: {input:?}"
        );
    }

    if let Some((id, secret)) = apikey::parse(&input) {
        assert!(
            id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "bad id {id:?} from {input:?}"
        );
        assert!(
            secret.len() == 43
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "bad secret {secret:?} from {input:?}"
        );
        assert_eq!(input, format!("pcs_{id}_{secret}"));
    }
});
