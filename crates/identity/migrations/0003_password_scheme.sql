-- How a password was turned into bytes before hashing: 0, as typed (accounts made before
-- passwords were prepared); 1, RFC 8265's OpaqueString profile. A login with scheme 0
-- that succeeds rehashes the password prepared and moves the account to 1.
ALTER TABLE users ADD COLUMN password_scheme INTEGER NOT NULL DEFAULT 0;
