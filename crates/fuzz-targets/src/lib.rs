//! The parsers that take input from outside the shop, as fuzz targets. Each takes arbitrary
//! bytes, must not panic, and asserts what must hold of its answer. `fuzz/` runs them under
//! libFuzzer (`fuzz/run.sh`); `tests/regressions.rs` replays every input kept in
//! `regressions/<target>/`, so that a crash found once stays a test.

use std::sync::OnceLock;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use kernel::{Cursor, CursorKey, ProductId};

/// A fuzz target: arbitrary bytes in, a panic when something that must hold does not.
pub type Target = fn(&[u8]);

/// Every target by name: what `fuzz/` builds a binary for and the regressions replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("email_parse", email_parse),
    ("cursor_decode", cursor_decode),
    ("topology_file", topology_file),
    ("apigw_v2_event", apigw_v2_event),
    ("jwt_header", jwt_header),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `kernel::Email::parse`: what it accepts is already in its one form (parsing it again
/// gives it back), and holds no control character.
pub fn email_parse(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(email) = kernel::Email::parse(s) {
        let again = kernel::Email::parse(email.as_str());
        assert_eq!(again.as_ref().map(kernel::Email::as_str), Ok(email.as_str()), "{s:?}");
        assert!(!email.as_str().chars().any(char::is_control), "{s:?}");
    }
}

/// `kernel::Cursor::decode`: only a canonical cursor decodes, and exactly the texts its
/// published pattern matches do.
pub fn cursor_decode(data: &[u8]) {
    static PATTERN: OnceLock<regex_lite::Regex> = OnceLock::new();
    let Some(s) = text(data) else { return };
    let pattern = PATTERN.get_or_init(|| {
        regex_lite::Regex::new(&Cursor::pattern::<ProductId>()).expect("the pattern compiles")
    });
    let decoded = Cursor::decode::<ProductId>(s);
    if let Some(key) = &decoded {
        assert_eq!(Cursor::encode(key), s);
    }
    if !s.is_empty() && s.len() <= Cursor::MAX_LEN {
        assert_eq!(decoded.is_some(), pattern.is_match(s), "{s:?} against {}", ProductId::LIST);
    }
}

/// `runtime::Topology::from_toml`: a topology file, valid or not, is an answer, never a
/// panic.
pub fn topology_file(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(topology) = runtime::Topology::from_toml(s) {
        for module in runtime::Module::ALL {
            let _ = topology.placement_of(module);
        }
    }
}

/// The API Gateway HTTP API (v2) events: the request event a function decodes on Lambda
/// (into a request, or a 400 reason), and the response event the function host decodes
/// from a function. (Its first run found `lambda_http`, used before, panicking on a `Host`
/// that is no authority: `regressions/apigw_v2_event/crash-48cb…`.)
pub fn apigw_v2_event(data: &[u8]) {
    if let Ok(event) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data)
        && let Ok(req) = function_host::request_from_event(event)
    {
        assert!(req.uri().path().starts_with('/'), "{:?}", req.uri());
    }
    if let Ok(res) = function_host::response_from_event(data) {
        assert!((100..=999).contains(&res.status().as_u16()));
    }
}

/// The access token verifier on any text: a header that does not parse, names a critical
/// parameter or an unknown key is refused, and nothing is accepted without the shop's
/// signature.
pub fn jwt_header(data: &[u8]) {
    static VERIFIER: OnceLock<identity_api::token::TokenVerifier> = OnceLock::new();
    let Some(s) = text(data) else { return };
    let verifier = VERIFIER.get_or_init(|| {
        // An Ed25519 public key (RFC 8037): the one in RFC 8037's appendix A.2.
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "fuzz",
            "alg": "EdDSA", "use": "sig", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        let jwks = serde_json::from_value(jwks).expect("a JWK Set");
        identity_api::token::TokenVerifier::new(
            &identity_api::Jwks(jwks),
            &identity_api::token::TokenAudience::default(),
        )
    });
    assert!(verifier.verify(s).is_err(), "accepted without a signature: {s:?}");
    let _ = identity_api::token::TokenVerifier::key_id(s);
}
