//! Who may call what: the organiser's bearer token and customers' JWTs
//! (`[auth]` in `config.toml`, "Access control" in `docs/API.md`).
//!
//! Authentication happens in the extractors [`Organiser`] and [`Customer`],
//! which every guarded handler takes as its *first* argument: actix polls
//! extractors in order and answers the first error, so a request that is
//! both unauthenticated and invalid gets 401, never 400 or 404. Whether a
//! customer may act for the `userId` of a request is decided once that id
//! is parsed, by [`Customer::may_act_for`].

use std::future::{ready, Ready};
use std::path::Path;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use subtle::ConstantTimeEq;

use crate::config::{AuthSettings, UserAuth};
use crate::domain::UserId;
use crate::http::api::error::ApiError;
use crate::http::api::route_table::Access;
use crate::http::AppState;

/// The credentials checks of a running service, built once at start.
pub struct Gate {
    /// The organiser's token; `None` leaves organiser routes open.
    admin_token: Option<Box<[u8]>>,
    /// How customers' tokens are checked; `None` in `trusted` mode.
    jwt: Option<JwtCheck>,
}

/// Verifies customer JWTs.
struct JwtCheck {
    key: DecodingKey,
    validation: Validation,
}

/// The claims a customer token must carry beyond the checked ones.
#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

/// Why the `[auth]` settings could not be put to use (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("auth.jwt_public_key_file {path}: {why}")]
pub struct KeyFileError {
    path: String,
    why: String,
}

impl Gate {
    /// The checks `settings` ask for; reads the public key file if one is named.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, KeyFileError> {
        let admin_token = (!settings.admin_token.is_empty())
            .then(|| settings.admin_token.as_bytes().to_vec().into_boxed_slice());
        let jwt = match settings.users {
            UserAuth::Trusted => None,
            UserAuth::Jwt => Some(JwtCheck::from_settings(settings)?),
        };
        Ok(Self { admin_token, jwt })
    }

    /// Whether `token` is the admin token, compared in constant time.
    fn is_admin(&self, token: &str) -> bool {
        self.admin_token
            .as_deref()
            .is_some_and(|admin| bool::from(admin.ct_eq(token.as_bytes())))
    }
}

impl JwtCheck {
    fn from_settings(settings: &AuthSettings) -> Result<Self, KeyFileError> {
        let (key, algorithm) = if settings.jwt_secret.is_empty() {
            public_key(&settings.jwt_public_key_file)?
        } else {
            if settings.jwt_secret.len() < 32 {
                log::warn!(
                    "auth.jwt_secret is shorter than 32 bytes; HS256 keys should be at least 256 bits"
                );
            }
            (
                DecodingKey::from_secret(settings.jwt_secret.as_bytes()),
                Algorithm::HS256,
            )
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.jwt_leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured issuer or audience is required, not only checked
        // when present: a token without the claim is refused like a
        // token with a wrong one.
        let mut required = vec!["exp", "sub"];
        if !settings.jwt_issuer.is_empty() {
            required.push("iss");
        }
        if !settings.jwt_audience.is_empty() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        if settings.jwt_issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&settings.jwt_issuer]);
        }
        if settings.jwt_audience.is_empty() {
            // Otherwise a token that names any audience would be refused.
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&settings.jwt_audience]);
        }
        Ok(Self { key, validation })
    }

    /// The token's `sub` if it is signed by our key, current, and for us.
    fn subject(&self, token: &str) -> Option<String> {
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => Some(data.claims.sub),
            Err(e) => {
                // The kind only: the token itself is a credential.
                log::debug!("customer token refused: {:?}", e.kind());
                None
            }
        }
    }
}

/// An RSA or EC (P-256) public key from a PEM file, with its algorithm.
fn public_key(path: &Path) -> Result<(DecodingKey, Algorithm), KeyFileError> {
    let error = |why: String| KeyFileError {
        path: path.display().to_string(),
        why,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((key, Algorithm::ES256));
    }
    Err(error("not a PEM RSA or EC public key".into()))
}

/// The bearer token of a request: `None` without an `Authorization`
/// header, `Err` with one that is not `Bearer <token>`.
fn bearer(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::Unauthenticated("Authorization must be \"Bearer <token>\"");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

fn gate(req: &HttpRequest) -> Result<&Gate, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|state| &state.gate)
        .ok_or_else(|| ApiError::Internal("no app state on a guarded route".into()))
}

/// Whether `req` carries what `access` asks for: the check its handler's
/// extractor makes (whether a customer may act for the path's user aside,
/// a 403 that comes later). A middleware that acts on a header
/// (`X-Boxoffice-Min-Index`) looks at it only after this, so an
/// unauthenticated request is 401 whatever it carries.
pub fn authenticated(req: &HttpRequest, access: Access) -> bool {
    match access {
        Access::Public => true,
        Access::Customer => Customer::check(req).is_ok(),
        Access::Organiser => Organiser::check(req).is_ok(),
    }
}

/// An organiser route's caller: the admin token was shown, or none is set.
pub struct Organiser;

impl Organiser {
    fn check(req: &HttpRequest) -> Result<Self, ApiError> {
        let gate = gate(req)?;
        if gate.admin_token.is_none() {
            return Ok(Self);
        }
        match bearer(req)? {
            None => Err(ApiError::Unauthenticated(
                "This route needs the organiser's bearer token",
            )),
            Some(token) if gate.is_admin(token) => Ok(Self),
            Some(token) if gate.jwt.as_ref().and_then(|j| j.subject(token)).is_some() => Err(
                ApiError::Forbidden("A customer token cannot be used on an organiser route"),
            ),
            Some(_) => Err(ApiError::Unauthenticated("The bearer token is not valid")),
        }
    }
}

impl FromRequest for Organiser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::check(req))
    }
}

/// A customer route's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Customer {
    /// `users = "trusted"`: the request's `userId` is believed.
    Trusted,
    /// The admin token: may act for any user.
    Organiser,
    /// A verified JWT with this `sub`.
    User(String),
}

impl Customer {
    fn check(req: &HttpRequest) -> Result<Self, ApiError> {
        let gate = gate(req)?;
        let Some(jwt) = &gate.jwt else {
            return Ok(Self::Trusted);
        };
        match bearer(req)? {
            None => Err(ApiError::Unauthenticated(
                "This route needs a bearer token for the user",
            )),
            Some(token) if gate.is_admin(token) => Ok(Self::Organiser),
            Some(token) => jwt
                .subject(token)
                .map(Self::User)
                .ok_or(ApiError::Unauthenticated(
                    "The bearer token is not valid (signature, expiry, issuer or audience)",
                )),
        }
    }

    /// Whether replies to this caller may name other users: not to a
    /// customer's own token (`users = "jwt"`), whose replies describe only
    /// the caller; the admin token and trusted front ends see everyone.
    pub fn sees_other_users(&self) -> bool {
        !matches!(self, Self::User(_))
    }

    /// 403 unless this caller may act for `user`.
    pub fn may_act_for(&self, user: &UserId) -> Result<(), ApiError> {
        match self {
            Self::Trusted | Self::Organiser => Ok(()),
            Self::User(sub) if sub == user.as_str() => Ok(()),
            Self::User(_) => Err(ApiError::Forbidden(
                "The token is for another user than the userId of this request",
            )),
        }
    }
}

impl FromRequest for Customer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::check(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings(admin: &str, secret: &str) -> AuthSettings {
        let mut s = Settings::default().auth;
        s.admin_token = admin.into();
        if !secret.is_empty() {
            s.users = UserAuth::Jwt;
            s.jwt_secret = secret.into();
        }
        s
    }

    #[test]
    fn the_admin_token_matches_only_itself() {
        let gate = Gate::from_settings(&settings("s3cret-token", "")).expect("gate");
        assert!(gate.is_admin("s3cret-token"));
        assert!(!gate.is_admin("s3cret-toke"));
        assert!(!gate.is_admin("s3cret-token2"));
        assert!(!gate.is_admin(""));
        let open = Gate::from_settings(&settings("", "")).expect("gate");
        assert!(!open.is_admin(""), "no token set: nothing is admin");
    }

    #[test]
    fn a_customer_token_names_its_subject_only_when_valid() {
        let secret = "0123456789abcdef0123456789abcdef";
        let gate = Gate::from_settings(&settings("", secret)).expect("gate");
        let jwt = gate.jwt.as_ref().expect("jwt mode");
        let sign = |claims: serde_json::Value, key: &str| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
            )
            .expect("signed")
        };
        let far = 4_000_000_000u64;
        let good = sign(serde_json::json!({"sub": "alice", "exp": far}), secret);
        assert_eq!(jwt.subject(&good).as_deref(), Some("alice"));
        let forged = sign(
            serde_json::json!({"sub": "alice", "exp": far}),
            "another key",
        );
        assert_eq!(jwt.subject(&forged), None);
        let expired = sign(serde_json::json!({"sub": "alice", "exp": 1_000}), secret);
        assert_eq!(jwt.subject(&expired), None);
        let no_exp = sign(serde_json::json!({"sub": "alice"}), secret);
        assert_eq!(jwt.subject(&no_exp), None);
        assert_eq!(jwt.subject("not.a.jwt"), None);
    }

    #[test]
    fn a_user_may_act_only_for_itself() {
        let alice = UserId::try_from("alice").expect("id");
        assert!(Customer::User("alice".into()).may_act_for(&alice).is_ok());
        assert!(Customer::User("bob".into()).may_act_for(&alice).is_err());
        assert!(Customer::Organiser.may_act_for(&alice).is_ok());
        assert!(Customer::Trusted.may_act_for(&alice).is_ok());
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let mut s = settings("", "");
        s.users = UserAuth::Jwt;
        s.jwt_public_key_file = "/nonexistent/key.pem".into();
        let err = Gate::from_settings(&s).err().expect("refused");
        assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
    }
}
