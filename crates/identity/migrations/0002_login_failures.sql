-- Failed logins per account (whether or not it exists), for the login throttle.
CREATE TABLE login_failures (
    email          TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL,
    last_failed_at BIGINT NOT NULL,
    blocked_until  BIGINT NOT NULL
);
