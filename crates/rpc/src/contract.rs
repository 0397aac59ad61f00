//! [`contract!`](crate::contract): one declaration of a module's contract, from which come
//! every piece that must agree on its methods.

/// Declares a module's contract once. From the one list of methods come:
///
/// - the service trait (`#[async_trait]`, with the attributes written on it, e.g.
///   `mockall::automock`): each method takes `&self, ctx: &RequestContext` and the declared
///   arguments, and returns `Result<T, Error>`;
/// - the client handle `$client` (cheap to clone), whose methods each open one span named
///   `<module>.<method>` with the OpenTelemetry RPC attributes `rpc.system`, `rpc.service`
///   and `rpc.method`, with `local`, `from_arc`, `into_service`, `remote` and `through`;
/// - `$remote`, the trait over HTTP/JSON: each method is `POST /internal/<module>/<method>`
///   with the arguments as a JSON array ([`Remote::call`](crate::Remote::call));
/// - `internal_routes(client)`, the routes that serve those calls (mount them behind
///   [`internal::guard`](crate::internal::guard), never on the public listener), and
///   `$client::INTERNAL_PATHS`, their paths;
/// - `Layered`, the trait through a [`resilience::Edge`] (a caller's timeout, retries,
///   breaker and concurrency limit, or injected faults).
///
/// The trait is written as it will be, with `async fn` methods that take
/// `&self, ctx: &RequestContext` first and return `Result<_, E>`, where `E` is the
/// contract's error (a [`kernel::TransportError`], as `kernel::contract_error!` declares).
/// A method marked `#[idempotent]` (a read, or a write that carries an idempotency key, in
/// the sense of RFC 9110 §9.2.2) may be tried again after a transient failure; others never.
///
/// ```ignore
/// rpc::contract! {
///     module: "catalog",
///     client: CatalogClient,
///     remote: CatalogRemote,
///     /// What the catalog module does, whatever its placement.
///     #[cfg_attr(feature = "mock", mockall::automock)]
///     pub trait CatalogService {
///         /// One product.
///         #[idempotent]
///         async fn get(&self, ctx: &RequestContext, id: ProductId) -> Result<Product, CatalogError>;
///         /// Admin only.
///         async fn create(&self, ctx: &RequestContext, product: NewProduct)
///             -> Result<Product, CatalogError>;
///     }
/// }
/// ```
#[macro_export]
macro_rules! contract {
    (
        module: $module:literal,
        client: $client:ident,
        remote: $remote:ident,
        $(#[$service_attr:meta])*
        pub trait $service:ident { $($body:tt)* }
    ) => {
        $crate::contract!(@method
            [$module $client $remote [$([$service_attr])*] $service]
            [] [] []
            $($body)*
        );
    };

    // The methods are taken token by token (a "tt muncher"), and a signature is re-emitted
    // as written rather than through `ty` fragments: a type that passed through a fragment
    // reaches an attribute macro wrapped in an invisible group, which `mockall::automock`
    // refuses (asomers/mockall#681), and `self` must keep the caller's hygiene. Each
    // signature is kept twice: as written, and to be parsed into names and types.
    (@method $head:tt $done:tt $attrs:tt [$($flag:ident)?] #[idempotent] $($rest:tt)*) => {
        $crate::contract!(@method $head $done $attrs [idempotent] $($rest)*);
    };
    (@method $head:tt $done:tt [$($attrs:tt)*] $flag:tt #[$attr:meta] $($rest:tt)*) => {
        $crate::contract!(@method $head $done [$($attrs)* [$attr]] $flag $($rest)*);
    };
    (@method $head:tt $done:tt $attrs:tt $flag:tt async fn $method:ident $params:tt -> $($rest:tt)*) => {
        $crate::contract!(@returns $head $done $attrs $flag $method $params [] $($rest)*);
    };
    (@returns $head:tt [$($done:tt)*] $attrs:tt $flag:tt $method:ident $params:tt [$($ret:tt)*] ; $($rest:tt)*) => {
        $crate::contract!(@method $head [$($done)* [$attrs $flag $method $params $params [$($ret)*]]] [] [] $($rest)*);
    };
    (@returns $head:tt $done:tt $attrs:tt $flag:tt $method:ident $params:tt [$($ret:tt)*] $next:tt $($rest:tt)*) => {
        $crate::contract!(@returns $head $done $attrs $flag $method $params [$($ret)* $next] $($rest)*);
    };
    (@method
        [$module:literal $client:ident $remote:ident [$([$service_attr:meta])*] $service:ident]
        [$( [
            [$([$method_attr:meta])*]
            [$($flag:ident)?]
            $method:ident
            $signature:tt
            ( & $self:ident, $ctx:ident : $ctx_type:ty $(, $arg:ident : $arg_type:ty)* $(,)? )
            [$($ret:tt)*]
        ] )*]
        [] []
    ) => {
        $(#[$service_attr])*
        #[$crate::reexport::async_trait]
        pub trait $service: Send + Sync + 'static {
            $(
                $(#[$method_attr])*
                async fn $method $signature -> $($ret)*;
            )*
        }

        #[doc = concat!("The handle through which everything else talks to ", $module, ".")]
        #[derive(Clone)]
        pub struct $client(std::sync::Arc<dyn $service>);

        impl std::fmt::Debug for $client {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($client))
            }
        }

        impl $client {
            /// The paths of the internal routes, one per method.
            pub const INTERNAL_PATHS: &'static [&'static str] =
                &[$( concat!("/internal/", $module, "/", stringify!($method)) ),*];

            /// An in-process implementation (the monolith's placement), or a mock.
            pub fn local(service: impl $service) -> Self {
                $client(std::sync::Arc::new(service))
            }

            /// Any implementation, e.g. a remote transport.
            pub fn from_arc(service: std::sync::Arc<dyn $service>) -> Self {
                $client(service)
            }

            /// The implementation behind the handle, for a wrapper that opens no span of its
            /// own (the handle's methods each open one).
            pub fn into_service(self) -> std::sync::Arc<dyn $service> {
                self.0
            }

            /// The module placed in another process, reached over HTTP/JSON.
            pub fn remote(remote: $crate::Remote) -> Self {
                $client::from_arc(std::sync::Arc::new($remote::new(remote)))
            }

            /// Every call of this client goes through `edge`. The call's span stays the
            /// outermost handle's: one per call, however many edges it passes.
            pub fn through(self, edge: std::sync::Arc<$crate::reexport::Edge>) -> Self {
                $client::from_arc(std::sync::Arc::new(Layered { inner: self.into_service(), edge }))
            }

            $(
                $(#[$method_attr])*
                pub async fn $method $signature -> $($ret)* {
                    $crate::reexport::Instrument::instrument(
                        $self.0.$method($ctx, $( $arg ),*),
                        $crate::reexport::info_span!(
                            concat!($module, ".", stringify!($method)),
                            rpc.system = "microlith",
                            rpc.service = $module,
                            rpc.method = stringify!($method),
                        ),
                    )
                    .await
                }
            )*
        }

        /// The contract over HTTP/JSON: each method is an internal call to a healthy instance
        /// of the service (or the function) that hosts this module.
        #[derive(Debug, Clone)]
        pub struct $remote($crate::Remote);

        impl $remote {
            pub fn new(remote: $crate::Remote) -> Self {
                $remote(remote)
            }
        }

        #[$crate::reexport::async_trait]
        impl $service for $remote {
            $(
                async fn $method $signature -> $($ret)* {
                    let path = concat!("/internal/", $module, "/", stringify!($method));
                    $self.0.call($ctx, path, &( $( $arg, )* )).await
                }
            )*
        }

        /// The contract through an edge: the caller's policy (timeout, retries, breaker,
        /// concurrency limit) or the module's own injected faults.
        #[derive(Clone)]
        pub struct Layered {
            inner: std::sync::Arc<dyn $service>,
            edge: std::sync::Arc<$crate::reexport::Edge>,
        }

        #[$crate::reexport::async_trait]
        impl $service for Layered {
            $(
                async fn $method $signature -> $($ret)* {
                    let idempotent = $crate::__idempotent!($($flag)?);
                    let inner = &$self.inner;
                    $self.edge
                        .call($ctx, stringify!($method), idempotent, |ctx| {
                            let inner = inner.clone();
                            $( let $arg = $arg.clone(); )*
                            async move { $service::$method(&*inner, &ctx, $( $arg ),*).await }
                        })
                        .await
                }
            )*
        }

        /// The internal routes that serve the remote transport; mount them behind
        /// `rpc::internal::guard`, never on the public listener.
        pub fn internal_routes(client: $client) -> $crate::reexport::Router {
            $crate::reexport::Router::new()
            $(
                .route(
                    concat!("/internal/", $module, "/", stringify!($method)),
                    $crate::reexport::post(
                        |$crate::reexport::State(client): $crate::reexport::State<$client>,
                         $crate::Ctx(ctx): $crate::Ctx,
                         body: $crate::reexport::Bytes| async move {
                            #[allow(unused_parens)]
                            let ( $( $arg, )* ): ( $( $arg_type, )* ) =
                                match $crate::internal::decode_args(&body) {
                                    Ok(args) => args,
                                    Err(rejection) => return rejection,
                                };
                            $crate::internal::reply(client.$method(&ctx, $( $arg ),*).await)
                        },
                    ),
                )
            )*
            .with_state(client)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __idempotent {
    (idempotent) => {
        true
    };
    () => {
        false
    };
}
