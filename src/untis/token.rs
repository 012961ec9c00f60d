//! The v3 client-credentials token: cached, renewed before expiry, one renewal shared by every
//! concurrent request.

use super::UntisError;
use crate::config::Secret;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Tokens live about 3 minutes; renew this long before the announced expiry.
const RENEW_MARGIN: Duration = Duration::from_secs(30);
/// Used when the server omits `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(180);

#[derive(Clone)]
struct Cached {
    value: String,
    renew_at: Instant,
}

/// Token endpoint answer (RFC 6749 §5.1); other fields are ignored.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorAnswer {
    error: String,
}

pub(super) struct TokenCache {
    url: url::Url,
    client_id: String,
    password: Secret,
    cached: Mutex<Option<Cached>>,
}

impl TokenCache {
    pub(super) fn new(url: url::Url, client_id: String, password: Secret) -> Self {
        TokenCache {
            url,
            client_id,
            password,
            cached: Mutex::new(None),
        }
    }

    /// A valid token. Holding the lock while fetching makes concurrent callers wait for the one
    /// renewal in flight instead of starting their own.
    pub(super) async fn get(
        &self,
        http: &reqwest::Client,
        counter: &super::RequestCounter,
    ) -> Result<String, UntisError> {
        let mut guard = self.cached.lock().await;
        if let Some(c) = guard.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.value.clone());
        }
        let fresh = self.fetch(http, counter).await?;
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    /// Forgets `rejected` (a token the server answered 401 to), unless another task already
    /// replaced it with a newer one.
    pub(super) async fn invalidate(&self, rejected: &str) {
        let mut guard = self.cached.lock().await;
        if guard.as_ref().is_some_and(|c| c.value == rejected) {
            *guard = None;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        counter: &super::RequestCounter,
    ) -> Result<Cached, UntisError> {
        let password = self
            .password
            .expose()
            .map_err(|why| UntisError::Auth(why.to_string()))?;
        counter.count_token();
        let started = Instant::now();
        let resp = http
            .post(self.url.clone())
            .basic_auth(&self.client_id, Some(password))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| UntisError::network("token", &e))?;
        let status = resp.status();
        let retry_after = super::retry_after(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| UntisError::network("token", &e))?;
        if !status.is_success() {
            let code = serde_json::from_slice::<TokenErrorAnswer>(&body)
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(match code.as_str() {
                "invalid_grant" => UntisError::Auth(
                    "the token endpoint refused the password (invalid_grant): wrong password? The platform password is needed, the OIDC secret is not the platform password; check untis.password_file".to_string(),
                ),
                "invalid_client" | "unauthorized_client" => UntisError::Auth(format!(
                    "the token endpoint does not know this client ({code}): check untis.tenant_id and untis.client_id against the WebUntis platform app"
                )),
                _ if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN =>
                {
                    UntisError::Auth(format!(
                        "the token endpoint answered {status}: check untis.tenant_id, untis.client_id and the platform password"
                    ))
                }
                _ if status == reqwest::StatusCode::NOT_FOUND => {
                    UntisError::NotFound("token endpoint".into())
                }
                _ => UntisError::Status {
                    what: "token".into(),
                    status: status.as_u16(),
                    retry_after,
                },
            });
        }
        // A cut-off answer is worth another try; a complete one without a token is not.
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| UntisError::InvalidBody {
                what: "token".into(),
                detail: format!("not JSON ({e})"),
            })?;
        let answer: TokenAnswer = serde_json::from_value(value).map_err(|e| {
            UntisError::Parse(format!("token answer is not the expected JSON: {e}"))
        })?;
        if answer.access_token.is_empty() {
            return Err(UntisError::Parse(
                "token answer has an empty access_token".into(),
            ));
        }
        let lifetime = answer
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME);
        // Short lifetimes (tests, odd servers) renew after three quarters of their life.
        let margin = RENEW_MARGIN.min(lifetime / 4);
        Ok(Cached {
            value: answer.access_token,
            renew_at: started + lifetime.saturating_sub(margin),
        })
    }
}
