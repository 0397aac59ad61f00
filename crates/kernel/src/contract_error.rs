//! One declaration per contract error: the contract lists only its own failures, and the
//! failures every contract shares are added once, here.

/// Declares a contract's error enum: the contract's own variants, each with its
/// [`ErrorKind`](crate::ErrorKind) and stable code, plus the shared core every contract
/// error has, so that any transport can produce it:
///
/// | variant | kind | code |
/// |---|---|---|
/// | `InvalidInput(String)` | `Validation` | `invalid_input` |
/// | `Unauthenticated` | `Unauthenticated` | `unauthenticated` |
/// | `Forbidden` | `Forbidden` | `forbidden` |
/// | `Unavailable` | `Unavailable` | `unavailable` |
/// | `Timeout` | `Timeout` | `timeout` |
/// | `UpstreamUnavailable { module }` | `Unavailable` | `unavailable` |
/// | `UpstreamTimeout { module }` | `Timeout` | `timeout` |
/// | `Internal(String)` | `Internal` | `internal` |
///
/// It derives `thiserror::Error` and serde (snake_case variant names: the wire format of
/// remote calls), so the declaring crate depends on `thiserror` and `serde`. It implements
/// [`ContractError`](crate::ContractError), [`TransportError`](crate::TransportError), `From<AccessDenied>`, `From<TextError>`, and
/// two helpers: `internal(cause)` and `from_callee(callee, error)`, which passes on a called
/// module's outage (unavailable, timeout) and turns the rest into `Internal`. After the variants, optional settings:
/// `forbidden = "message";` (default "not allowed") and `retry_after = Variant.field;` (the
/// variant whose `field`, in seconds, is the HTTP `Retry-After`).
///
/// ```
/// kernel::contract_error! {
///     /// What can go wrong when calling shelf.
///     pub enum ShelfError for "shelf" {
///         #[error("book not found")]
///         BookNotFound => NotFound, "book_not_found";
///         #[error("try again in {retry_after_s} s")]
///         Busy { retry_after_s: u64 } => RateLimited, "busy";
///     }
///     retry_after = Busy.retry_after_s;
/// }
/// use kernel::ContractError as _;
/// assert_eq!(ShelfError::BookNotFound.code(), "book_not_found");
/// assert_eq!(ShelfError::Timeout.to_string(), "shelf did not answer in time");
/// assert_eq!(ShelfError::Busy { retry_after_s: 3 }.retry_after_secs(), Some(3));
/// ```
#[macro_export]
macro_rules! contract_error {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident for $module:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $( ( $($tty:ty),* ) )? $( { $($fname:ident : $fty:ty),* } )?
                    => $kind:ident, $code:literal;
            )*
        }
        $( forbidden = $forbidden:literal; )?
        $( retry_after = $ra_variant:ident . $ra_field:ident; )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant $( ( $($tty),* ) )? $( { $($fname : $fty),* } )?,
            )*
            /// The input is malformed or breaks a rule.
            #[error("{0}")]
            InvalidInput(String),
            /// No valid credentials.
            #[error("authentication is required")]
            Unauthenticated,
            /// Valid credentials, not enough rights.
            #[error("{m}", m = $crate::__first!($($forbidden,)? "not allowed"))]
            Forbidden,
            /// The module (or one it needs) is down or overloaded: try again later.
            #[error("{m} is unavailable", m = $module)]
            Unavailable,
            /// The module did not answer within the caller's deadline.
            #[error("{m} did not answer in time", m = $module)]
            Timeout,
            /// A module this one called (directly or further down) is down or overloaded.
            #[error("{module} is unavailable (called by {m})", m = $module)]
            UpstreamUnavailable { module: String },
            /// A module this one called (directly or further down) did not answer in time.
            #[error("{module} did not answer in time (called by {m})", m = $module)]
            UpstreamTimeout { module: String },
            /// A bug or an unexpected failure: logged, never shown to a client.
            #[error("internal error: {0}")]
            Internal(String),
        }

        impl $crate::ContractError for $name {
            fn kind(&self) -> $crate::ErrorKind {
                match self {
                    $( $name::$variant { .. } => $crate::ErrorKind::$kind, )*
                    $name::InvalidInput(_) => $crate::ErrorKind::Validation,
                    $name::Unauthenticated => $crate::ErrorKind::Unauthenticated,
                    $name::Forbidden => $crate::ErrorKind::Forbidden,
                    $name::Unavailable | $name::UpstreamUnavailable { .. } => {
                        $crate::ErrorKind::Unavailable
                    }
                    $name::Timeout | $name::UpstreamTimeout { .. } => $crate::ErrorKind::Timeout,
                    $name::Internal(_) => $crate::ErrorKind::Internal,
                }
            }

            fn failed_module(&self) -> Option<&str> {
                match self {
                    $name::Unavailable | $name::Timeout => Some($module),
                    $name::UpstreamUnavailable { module } | $name::UpstreamTimeout { module } => {
                        Some(module)
                    }
                    _ => None,
                }
            }

            fn code(&self) -> &'static str {
                match self {
                    $( $name::$variant { .. } => $code, )*
                    $name::InvalidInput(_) => "invalid_input",
                    $name::Unauthenticated => "unauthenticated",
                    $name::Forbidden => "forbidden",
                    $name::Unavailable | $name::UpstreamUnavailable { .. } => "unavailable",
                    $name::Timeout | $name::UpstreamTimeout { .. } => "timeout",
                    $name::Internal(_) => "internal",
                }
            }

            $(
                fn retry_after_secs(&self) -> Option<u64> {
                    match self {
                        $name::$ra_variant { $ra_field, .. } => Some(*$ra_field),
                        _ => None,
                    }
                }
            )?
        }

        impl $crate::TransportError for $name {
            fn unavailable() -> Self {
                $name::Unavailable
            }
            fn timeout() -> Self {
                $name::Timeout
            }
            fn internal(message: String) -> Self {
                $name::Internal(message)
            }
        }

        impl $name {
            /// An unexpected failure, with its cause (logged, never shown to a client).
            pub fn internal(cause: impl std::fmt::Display) -> Self {
                $name::Internal(cause.to_string())
            }

            /// A failure of a call to `callee`: its outage (unavailable, timeout) is this
            /// module's too, naming the module that failed (`callee`, or one it called);
            /// anything else is unexpected here unless the caller maps it first (a product
            /// the catalog does not know, say).
            pub fn from_callee<E: $crate::ContractError>(callee: &str, e: E) -> Self {
                let module = || e.failed_module().unwrap_or(callee).to_owned();
                match e.kind() {
                    $crate::ErrorKind::Unavailable => $name::UpstreamUnavailable { module: module() },
                    $crate::ErrorKind::Timeout => $name::UpstreamTimeout { module: module() },
                    _ => $name::Internal(format!("{callee}: {e}")),
                }
            }
        }

        impl From<$crate::AccessDenied> for $name {
            fn from(a: $crate::AccessDenied) -> Self {
                match a {
                    $crate::AccessDenied::Unauthenticated => $name::Unauthenticated,
                    $crate::AccessDenied::Forbidden => $name::Forbidden,
                }
            }
        }

        impl From<$crate::TextError> for $name {
            fn from(e: $crate::TextError) -> Self {
                $name::InvalidInput(e.to_string())
            }
        }
    };
}

/// The first of its arguments: an optional setting, then its default.
#[doc(hidden)]
#[macro_export]
macro_rules! __first {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}

#[cfg(test)]
mod tests {
    // Not every generated helper is called here.
    #![allow(dead_code)]

    use crate::{AccessDenied, ContractError as _, ErrorKind};

    crate::contract_error! {
        enum ShelfError for "shelf" {
            #[error("book not found")]
            BookNotFound => NotFound, "book_not_found";
            #[error("shelf {0} is full")]
            Full(u32) => Conflict, "full";
            #[error("try again in {retry_after_s} s")]
            Busy { retry_after_s: u64 } => RateLimited, "busy";
        }
        forbidden = "this action needs the admin role";
        retry_after = Busy.retry_after_s;
    }

    crate::contract_error! {
        enum BareError for "bare" {}
    }

    #[test]
    fn the_wire_format_is_each_variant_in_snake_case() {
        let cases = [
            (ShelfError::BookNotFound, r#""book_not_found""#),
            (ShelfError::Full(3), r#"{"full":3}"#),
            (ShelfError::Busy { retry_after_s: 2 }, r#"{"busy":{"retry_after_s":2}}"#),
            (ShelfError::InvalidInput("no".into()), r#"{"invalid_input":"no"}"#),
            (ShelfError::Unauthenticated, r#""unauthenticated""#),
            (ShelfError::Forbidden, r#""forbidden""#),
            (ShelfError::Unavailable, r#""unavailable""#),
            (ShelfError::Timeout, r#""timeout""#),
            (
                ShelfError::UpstreamUnavailable { module: "ink".into() },
                r#"{"upstream_unavailable":{"module":"ink"}}"#,
            ),
            (ShelfError::Internal("boom".into()), r#"{"internal":"boom"}"#),
        ];
        for (e, json) in cases {
            assert_eq!(serde_json::to_string(&e).unwrap(), json);
            assert_eq!(serde_json::from_str::<ShelfError>(json).unwrap(), e);
        }
    }

    #[test]
    fn kinds_codes_messages_and_helpers() {
        assert_eq!(ShelfError::Full(1).kind(), ErrorKind::Conflict);
        assert_eq!(ShelfError::Full(1).code(), "full");
        assert_eq!(ShelfError::Full(1).to_string(), "shelf 1 is full");
        assert_eq!(ShelfError::Forbidden.to_string(), "this action needs the admin role");
        assert_eq!(BareError::Forbidden.to_string(), "not allowed");
        assert_eq!(BareError::Unavailable.to_string(), "bare is unavailable");
        assert_eq!(BareError::Unavailable.kind(), ErrorKind::Unavailable);
        assert_eq!(ShelfError::Busy { retry_after_s: 9 }.retry_after_secs(), Some(9));
        assert_eq!(ShelfError::Timeout.retry_after_secs(), None);
        assert_eq!(BareError::Timeout.retry_after_secs(), None);

        assert_eq!(BareError::from(AccessDenied::Forbidden), BareError::Forbidden);
        assert_eq!(BareError::internal("disk"), BareError::Internal("disk".into()));
        // A callee's outage is the caller's, naming the module that failed; its other
        // failures are unexpected here.
        let late = BareError::from_callee("shelf", ShelfError::Timeout);
        assert_eq!(late, BareError::UpstreamTimeout { module: "shelf".into() });
        assert_eq!(late.kind(), ErrorKind::Timeout);
        assert_eq!(late.code(), "timeout");
        assert_eq!(late.to_string(), "shelf did not answer in time (called by bare)");
        // Two hops up, still the module that failed, not the one in between.
        let down = ShelfError::from_callee("bare", BareError::Unavailable);
        let two_up = BareError::from_callee("shelf", down);
        assert_eq!(two_up.failed_module(), Some("bare"));
        assert_eq!(two_up.kind(), ErrorKind::Unavailable);
        assert_eq!(two_up.to_string(), "bare is unavailable (called by bare)");
        assert_eq!(
            BareError::from_callee("shelf", ShelfError::BookNotFound),
            BareError::Internal("shelf: book not found".into())
        );
        assert_eq!(
            BareError::from_callee("shelf", ShelfError::Forbidden),
            BareError::Internal("shelf: this action needs the admin role".into())
        );
    }
}
