//! The contract's rules as a test suite any implementation (local or remote) must pass.

use kernel::{Email, Principal, RequestContext, Role, UserId};

use crate::{IdentityClient, IdentityError, NewUser, Password, RegisterRequest};

fn new_user(email: &str) -> NewUser {
    NewUser::parse(RegisterRequest {
        email: email.into(),
        password: "a-long-password".into(),
        name: "Suite User".into(),
    })
    .expect("test user")
}

/// `unique` makes the suite's email addresses unused in the implementation's store.
pub async fn run(client: &IdentityClient, unique: &str) {
    let anon = RequestContext::anonymous();
    let email = format!("suite-{unique}@example.test");
    let user = client.register(&anon, new_user(&email)).await.expect("register");
    assert_eq!(user.email.as_str(), email);
    assert_eq!(user.roles, vec![Role::Customer]);
    // The same email again: the same kind of answer, and no second account.
    let again = client.register(&anon, new_user(&email)).await.expect("answered alike");
    assert_eq!(again.email.as_str(), email);
    assert_ne!(again.id, user.id, "a user that was not stored");

    let email = Email::parse(&email).expect("email");
    let good = Password::new("a-long-password".into()).expect("password");
    let token = client.login(&anon, email.clone(), good).await.expect("login");
    assert!(!token.access_token.is_empty());
    let bad = Password::offered("wrong-password".into()).expect("offered");
    assert_eq!(
        client.login(&anon, email, bad).await.unwrap_err(),
        IdentityError::InvalidCredentials
    );

    let me = RequestContext::for_user(Principal { user_id: user.id, roles: vec![Role::Customer] });
    assert_eq!(client.user(&me, user.id).await.expect("me"), user);
    assert_eq!(client.user(&anon, user.id).await.unwrap_err(), IdentityError::Unauthenticated);
    // Another customer's account is "not found": ids are not confirmed.
    let other =
        RequestContext::for_user(Principal { user_id: UserId::new(), roles: vec![Role::Customer] });
    assert_eq!(client.user(&other, user.id).await.unwrap_err(), IdentityError::UserNotFound);

    let jwks = client.jwks(&anon).await.expect("jwks");
    assert!(!jwks.0.keys.is_empty());
}
