//! The v3 client-credentials token endpoint and the Bearer check of the data routes.

use super::{Resp, State, json, lock, untis_error};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use rand::Rng;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Token requests are tiny; anything larger is refused unread.
const MAX_TOKEN_BODY: usize = 16 * 1024;

/// An issued access token.
#[derive(Debug, Clone)]
pub(super) struct Token {
    tenant: String,
    expires_at: Instant,
}

/// An OAuth 2 error answer (`{"error": …}`).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// `client_id:secret` from an HTTP Basic header; `None` when absent or malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `POST /WebUntis/api/sso/v3/{tenant}/token`.
pub(super) async fn token(state: &State, tenant: &str, req: Request<Incoming>) -> Resp {
    if tenant != state.config.tenant_id {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown tenant");
    }
    let basic = basic_credentials(req.headers());
    let query = super::query_pairs(req.uri().query());
    let body = match Limited::new(req.into_body(), MAX_TOKEN_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body could not be read or is too large",
            );
        }
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // Untis documents HTTP Basic; the form fields are accepted as OAuth allows them.
    let credentials = basic.or_else(|| {
        Some((
            super::query_value(&form, "client_id")?.to_string(),
            super::query_value(&form, "client_secret")?.to_string(),
        ))
    });
    let Some((client_id, password)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication (HTTP Basic) is missing",
        );
    };
    if client_id != state.config.client_id {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    if password != state.config.password {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "wrong password for this client",
        );
    }
    let grant_type = super::query_value(&form, "grant_type")
        .or_else(|| super::query_value(&query, "grant_type"));
    if grant_type != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }

    let bytes: [u8; 32] = lock(&state.rng).random();
    let access_token = URL_SAFE_NO_PAD.encode(bytes);
    let now = state.clock.now();
    {
        let mut tokens = lock(&state.tokens);
        tokens.retain(|_, t| t.expires_at > now);
        tokens.insert(
            access_token.clone(),
            Token {
                tenant: tenant.to_string(),
                expires_at: now + state.config.token_lifetime,
            },
        );
    }
    state.tokens_issued.fetch_add(1, Ordering::Relaxed);
    lock(&state.issued).push(access_token.clone());
    let mut resp = json(
        StatusCode::OK,
        &serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.config.token_lifetime.as_secs(),
        }),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `None` when the request carries a valid, unexpired token of the tenant; else the 401.
pub(super) fn require_bearer(state: &State, headers: &HeaderMap) -> Option<Resp> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let now = state.clock.now();
    let valid = presented.is_some_and(|token| {
        lock(&state.tokens)
            .get(token)
            .is_some_and(|t| t.tenant == state.config.tenant_id && t.expires_at > now)
    });
    if valid {
        return None;
    }
    let message = if presented.is_some() {
        "The access token is invalid or expired."
    } else {
        "A Bearer access token is required."
    };
    let mut resp = untis_error(state, StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    Some(resp)
}
