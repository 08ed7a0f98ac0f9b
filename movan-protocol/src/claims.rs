//! Claims of the access token (a JWT signed with Ed25519) issued by the account server.

use serde::{Deserialize, Serialize};

/// What an access token asserts. The sync server checks signature, `exp`, `iss` and `aud`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The player's uid (a decimal string).
    pub sub: String,
    /// Session id: one per login, shared by the tokens a refresh issues.
    pub sid: String,
    /// Issuer, e.g. `movan-account`.
    pub iss: String,
    /// Audience, e.g. `movan-sync`.
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The player's username, for logs.
    #[serde(default)]
    pub name: String,
}
