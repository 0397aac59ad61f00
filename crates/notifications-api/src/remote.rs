//! The notifications contract over HTTP/JSON: [`NotificationsRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::{Cursor, Limit, Page};

use crate::{Notification, NotificationsClient, NotificationsError, NotificationsService};

rpc::remote_contract! {
    module: "notifications",
    service: NotificationsService,
    client: NotificationsClient,
    error: NotificationsError,
    remote: NotificationsRemote,
    methods: {
        #[idempotent]
        fn list(limit: Limit, after: Option<Cursor>) -> Page<Notification>;
    }
}
