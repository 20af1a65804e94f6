use super::*;
use crate::store::UserRecord;

fn user() -> UserRecord {
    UserRecord {
        id: 42,
        username: "alice".into(),
        password_hash: String::new(),
        roles: vec!["ops".into()],
        is_admin: false,
        is_active: true,
        tokens_valid_after: 0,
        created_at: 0,
        updated_at: 0,
    }
}

fn tokens(file: &KeyFile, alg: JwtAlgorithm) -> Tokens {
    let config = AuthConfig {
        algorithm: alg,
        ..AuthConfig::default()
    };
    Tokens::new(&config, Keyring::from_file(file, alg).unwrap())
}

fn now() -> u64 {
    crate::clock::now_secs()
}

#[test]
fn issued_tokens_verify_with_their_type_only() {
    for alg in [JwtAlgorithm::HS256, JwtAlgorithm::EdDSA] {
        let file = KeyFile {
            keys: vec![generate_key(alg, now()).unwrap()],
        };
        let tokens = tokens(&file, alg);
        let access = tokens
            .issue(
                &UserState::from_record(&user()),
                TokenType::Access,
                "s1",
                now(),
            )
            .unwrap();
        let claims = tokens.verify(&access.token, TokenType::Access).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_str(), claims.user_id()),
            ("42", "s1", Some(42))
        );
        assert!(
            tokens.verify(&access.token, TokenType::Refresh).is_err(),
            "{alg:?}"
        );
    }
}

#[test]
fn rotation_signs_with_the_new_key_and_still_verifies_the_old() {
    let mut file = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::HS256, now()).unwrap()],
    };
    let before = tokens(&file, JwtAlgorithm::HS256)
        .issue(
            &UserState::from_record(&user()),
            TokenType::Access,
            "s",
            now(),
        )
        .unwrap();
    file.rotate(JwtAlgorithm::HS256, now(), 3600).unwrap();
    assert_eq!(file.keys.len(), 2);
    let rotated = tokens(&file, JwtAlgorithm::HS256);
    assert!(rotated.verify(&before.token, TokenType::Access).is_ok());
    let after = rotated
        .issue(
            &UserState::from_record(&user()),
            TokenType::Access,
            "s",
            now(),
        )
        .unwrap();
    let kid = jsonwebtoken::decode_header(&after.token)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid, file.keys[1].kid);
}

#[test]
fn rotation_drops_keys_retired_longer_than_any_token_lives() {
    let old = generate_key(JwtAlgorithm::HS256, 1_000).unwrap();
    let middle = generate_key(JwtAlgorithm::HS256, 2_000).unwrap();
    let mut file = KeyFile {
        keys: vec![old, middle.clone()],
    };
    // `old` was retired at 2000; at 5000 with tokens living 1000 s it can go, `middle` stays.
    file.rotate(JwtAlgorithm::HS256, 5_000, 1_000).unwrap();
    let kids: Vec<&str> = file.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0], middle.kid);
}

#[test]
fn a_key_file_for_another_algorithm_is_refused_with_advice() {
    let file = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::HS256, now()).unwrap()],
    };
    let error = Keyring::from_file(&file, JwtAlgorithm::EdDSA)
        .err()
        .unwrap();
    assert!(error.contains("keys rotate"), "{error}");
    assert!(Keyring::from_file(&KeyFile::default(), JwtAlgorithm::HS256).is_err());
}

#[test]
fn hs256_tokens_are_refused_when_eddsa_is_configured() {
    let hs = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::HS256, now()).unwrap()],
    };
    let token = tokens(&hs, JwtAlgorithm::HS256)
        .issue(
            &UserState::from_record(&user()),
            TokenType::Access,
            "s",
            now(),
        )
        .unwrap();
    let ed = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::EdDSA, now()).unwrap()],
    };
    assert!(
        tokens(&ed, JwtAlgorithm::EdDSA)
            .verify(&token.token, TokenType::Access)
            .is_err()
    );
}

#[test]
fn jwks_publishes_only_public_keys() {
    let ed = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::EdDSA, now()).unwrap()],
    };
    let jwks = tokens(&ed, JwtAlgorithm::EdDSA).jwks().unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(key["x"].as_str().unwrap().len(), 43, "32-byte public key");
    assert!(key.get("d").is_none());
    let hs = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::HS256, now()).unwrap()],
    };
    assert!(
        tokens(&hs, JwtAlgorithm::HS256).jwks().is_none(),
        "a shared secret is never published"
    );
}

#[test]
fn iat_never_precedes_tokens_valid_after() {
    let file = KeyFile {
        keys: vec![generate_key(JwtAlgorithm::HS256, now()).unwrap()],
    };
    let tokens = tokens(&file, JwtAlgorithm::HS256);
    let mut revoked = user();
    revoked.tokens_valid_after = now() + 1;
    let issued = tokens
        .issue(
            &UserState::from_record(&revoked),
            TokenType::Access,
            "s",
            now(),
        )
        .unwrap();
    let claims = tokens.verify(&issued.token, TokenType::Access).unwrap();
    assert!(claims.iat >= revoked.tokens_valid_after);
}
