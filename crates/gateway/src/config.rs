use std::num::NonZeroU32;

use identity_api::token::TokenAudience;

/// A token-bucket quota: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateQuota {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(v) => v,
        None => panic!("a quota must not be zero"),
    }
}

impl RateQuota {
    pub const DEFAULT_PER_USER: RateQuota = RateQuota { per_second: nz(20), burst: nz(60) };
    pub const DEFAULT_PER_ADDRESS: RateQuota = RateQuota { per_second: nz(50), burst: nz(100) };

    pub fn new(per_second: u32, burst: u32) -> Option<RateQuota> {
        Some(RateQuota { per_second: NonZeroU32::new(per_second)?, burst: NonZeroU32::new(burst)? })
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GatewayConfig {
    /// Applied to requests with a valid token, per user.
    pub per_user: RateQuota,
    /// Applied to requests without one, per client address.
    pub per_address: RateQuota,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Origins allowed by CORS; empty means any (tokens are not cookies, so this is safe).
    pub cors_origins: Vec<String>,
    pub audience: TokenAudience,
    /// How long the token keys in hand are used before they are fetched again from
    /// identity: a rotated-out key stops verifying at most this long after identity stops
    /// publishing it.
    #[serde(default = "GatewayConfig::default_token_keys_max_age")]
    pub token_keys_max_age: std::time::Duration,
}

impl GatewayConfig {
    fn default_token_keys_max_age() -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            per_user: RateQuota::DEFAULT_PER_USER,
            per_address: RateQuota::DEFAULT_PER_ADDRESS,
            body_limit: 64 * 1024,
            cors_origins: Vec::new(),
            audience: TokenAudience::default(),
            token_keys_max_age: Self::default_token_keys_max_age(),
        }
    }
}
