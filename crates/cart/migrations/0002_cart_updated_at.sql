-- When a line's quantity was last set, so a confirmed order removes only the lines it
-- bought, not ones the user added or changed after placing it.
ALTER TABLE cart_items ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
