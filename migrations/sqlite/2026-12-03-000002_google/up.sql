-- A user's link to a Google account, with Google's tokens sealed under the master key.
CREATE TABLE google_accounts (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    google_sub TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    -- The Google OAuth client the refresh token belongs to: NULL is Scopegate's own;
    -- native authentication stores the application's (secret sealed).
    oauth_client_id TEXT,
    oauth_client_secret_sealed TEXT,
    refresh_token_sealed TEXT,
    access_token_sealed TEXT,
    access_expires_at BIGINT,
    granted_scopes TEXT NOT NULL,
    needs_reauth BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Single-use codes of native authentication (POST /connect/authorize → /connect/token).
CREATE TABLE connect_codes (
    digest TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
