//! The browser session, without a browser: the sign-in form, the cookie, CSRF, redirects.
//! `pages` covers what the sign-in pages say and where they lead; `cookie` the session cookie
//! itself, from sign-in to the end of the session.

mod cookie;
mod pages;

use crate::common::{TestGateway, client_for};

pub(super) fn bare(gw: &TestGateway) -> reqwest::Client {
    let _ = client_for(None);
    let cert = gw.config.tls_paths().0;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(crate::common::raw::tls_client_config(&cert, &[b"http/1.1"]))
        .build()
        .unwrap()
}

pub(super) fn origin(gw: &TestGateway) -> String {
    format!("https://localhost:{}", gw.addr.port())
}

/// Signs in through the form and returns the session cookie (`name=value`).
pub(super) async fn sign_in(
    gw: &TestGateway,
    username: &str,
    password: &str,
    next: &str,
) -> (reqwest::Response, Option<String>) {
    let response = bare(gw)
        .post(gw.url("/_portcullis/login"))
        .header("origin", origin(gw))
        .form(&[
            ("username", username),
            ("password", password),
            ("next", next),
        ])
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-portcullis_session=") && !c.contains("Max-Age=0"));
    let pair = cookie.map(|c| c.split(';').next().unwrap().to_string());
    (response, pair)
}

/// The `name=value` of the cookie a response sets, without its attributes.
pub(super) fn set_cookie_pair(response: &reqwest::Response) -> String {
    let header = response.headers()["set-cookie"].to_str().unwrap();
    header.split(';').next().unwrap().to_string()
}
