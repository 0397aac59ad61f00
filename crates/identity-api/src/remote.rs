//! The identity contract over HTTP/JSON: [`IdentityRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::{Email, UserId};

use crate::{
    AccessToken, IdentityClient, IdentityError, IdentityService, Jwks, NewUser, Password, User,
};

rpc::remote_contract! {
    module: "identity",
    service: IdentityService,
    client: IdentityClient,
    error: IdentityError,
    remote: IdentityRemote,
    methods: {
        fn register(user: NewUser) -> User;
        #[idempotent]
        fn login(email: Email, password: Password) -> AccessToken;
        #[idempotent]
        fn user(id: UserId) -> User;
        #[idempotent]
        fn jwks() -> Jwks;
    }
}
