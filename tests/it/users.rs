//! The users API, and what changing a user does to the credentials they hold.

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, assert_detail, json_of};

const PASSWORD: &str = "correct horse battery";

async fn patch(gw: &TestGateway, admin: &str, id: u64, body: Value) -> reqwest::Response {
    gw.client
        .patch(gw.api(&format!("/users/{id}/")))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_manage_users_and_others_are_forbidden() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let id = gw
        .create_user(&admin, "alice", PASSWORD, &["billing"])
        .await;
    let (alice, _) = gw.login("alice", PASSWORD).await;

    let (status, users) = json_of(
        gw.client
            .get(gw.api("/users/"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice"]);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("password_hash").is_none())
    );

    // Listing, creating, changing and reading others are for admins.
    let forbidden = "You do not have permission to perform this action.";
    let mallory = json!({"username": "mallory", "password": PASSWORD, "is_admin": true});
    let as_alice = [
        gw.client.get(gw.api("/users/")),
        gw.client.post(gw.api("/users/")).json(&mallory),
        gw.client
            .patch(gw.api(&format!("/users/{id}/")))
            .json(&json!({"roles": ["admin"]})),
        gw.client.get(gw.api("/users/1/")),
        gw.client.get(gw.api("/users/999/")),
    ];
    for request in as_alice {
        let request = request.bearer_auth(&alice).build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        let (status, body) = json_of(gw.client.execute(request).await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(body["detail"], forbidden, "{what}");
    }

    // A user may read themselves.
    let (status, me) = json_of(
        gw.client
            .get(gw.api(&format!("/users/{id}/")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["roles"], json!(["billing"]));
    assert_eq!(me["is_active"], true);

    let (status, permissions) = json_of(
        gw.client
            .get(gw.api("/permissions/"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(permissions["roles"], json!(["admin"]));
}

#[tokio::test]
async fn user_creation_validates_every_field() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let post = |body: Value| {
        gw.client
            .post(gw.api("/users/"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    assert_detail(
        post(json!({"username": "bob"})).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "password: This field is required.",
    )
    .await;
    assert_detail(
        post(json!({"username": "bob", "password": "short"}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "password: Ensure this field has at least 8 characters.",
    )
    .await;
    assert_detail(
        post(json!({"username": "bob smith", "password": PASSWORD}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "username: may contain only letters, digits and @ . + - _",
    )
    .await;
    assert_detail(
        post(json!({"username": "bob", "password": PASSWORD, "roles": ["Bad Role"]}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "roles: may contain only lowercase letters, digits and _ - . :",
    )
    .await;
    assert_detail(
        post(json!({"username": "bob", "password": PASSWORD, "roles": "admin"}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "roles: Expected a list of strings.",
    )
    .await;
    assert_detail(
        post(json!({"username": "bob", "password": PASSWORD, "is_admin": "yes"}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "is_admin: Must be a valid boolean.",
    )
    .await;
    assert_eq!(
        post(json!({"username": "bob", "password": PASSWORD}))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    assert_detail(
        post(json!({"username": "BOB", "password": PASSWORD}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "username: A user with that username already exists.",
    )
    .await;
}

#[tokio::test]
async fn password_change_revokes_every_outstanding_token() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let id = gw.create_user(&admin, "carol", PASSWORD, &[]).await;
    let (access, refresh) = gw.login("carol", PASSWORD).await;
    assert_eq!(gw.get("/app", Some(&access)).await.status(), StatusCode::OK);

    assert_eq!(
        patch(&gw, &admin, id, json!({"password": "a brand new password"}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_detail(
        gw.get("/app", Some(&access)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    let response = gw
        .client
        .post(gw.api("/token/refresh/"))
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .unwrap();
    assert_detail(response, StatusCode::UNAUTHORIZED, "Invalid token.").await;
    // The old password no longer logs in; the new one does, at once.
    let response = gw
        .client
        .post(gw.api("/token/"))
        .json(&json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (fresh, _) = gw.login("carol", "a brand new password").await;
    assert_eq!(gw.get("/app", Some(&fresh)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deactivation_revokes_tokens_and_blocks_login_until_reactivated() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let id = gw.create_user(&admin, "dave", PASSWORD, &[]).await;
    let (access, _) = gw.login("dave", PASSWORD).await;
    assert_eq!(
        patch(&gw, &admin, id, json!({"is_active": false}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_detail(
        gw.get("/app", Some(&access)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    let response = gw
        .client
        .post(gw.api("/token/"))
        .json(&json!({"username": "dave", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::UNAUTHORIZED,
        "No active account found with the given credentials",
    )
    .await;

    assert_eq!(
        patch(&gw, &admin, id, json!({"is_active": true}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_detail(
        gw.get("/app", Some(&access)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    gw.login("dave", PASSWORD).await;
}

#[tokio::test]
async fn role_changes_reach_the_upstream_on_the_next_request() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let id = gw.create_user(&admin, "erin", PASSWORD, &["viewer"]).await;
    let (access, _) = gw.login("erin", PASSWORD).await;
    gw.get("/app", Some(&access)).await;
    assert_eq!(
        gw.upstream.last().headers["x-authenticated-roles"],
        "viewer"
    );
    assert_eq!(
        patch(&gw, &admin, id, json!({"roles": ["editor", "viewer"]}))
            .await
            .status(),
        StatusCode::OK
    );
    gw.get("/app", Some(&access)).await;
    assert_eq!(
        gw.upstream.last().headers["x-authenticated-roles"],
        "editor,viewer"
    );
}

#[tokio::test]
async fn deleting_a_user_ends_their_access() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let id = gw.create_user(&admin, "frank", PASSWORD, &[]).await;
    let (access, _) = gw.login("frank", PASSWORD).await;
    let response = gw
        .client
        .delete(gw.api(&format!("/users/{id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_detail(
        gw.get("/app", Some(&access)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    let response = gw
        .client
        .get(gw.api(&format!("/users/{id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_detail(response, StatusCode::NOT_FOUND, "Not found.").await;
    // The name is free again.
    gw.create_user(&admin, "frank", PASSWORD, &[]).await;
}

#[tokio::test]
async fn an_admin_cannot_lock_themselves_out() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    assert_detail(
        patch(&gw, &admin, 1, json!({"is_active": false})).await,
        StatusCode::BAD_REQUEST,
        "You cannot deactivate or demote your own account.",
    )
    .await;
    assert_detail(
        patch(&gw, &admin, 1, json!({"is_admin": false})).await,
        StatusCode::BAD_REQUEST,
        "You cannot deactivate or demote your own account.",
    )
    .await;
    let response = gw
        .client
        .delete(gw.api("/users/1/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::BAD_REQUEST,
        "You cannot delete your own account.",
    )
    .await;
    assert_eq!(gw.get("/app", Some(&admin)).await.status(), StatusCode::OK);
}
