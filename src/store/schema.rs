//! Diesel table definitions, shared by the SQLite and PostgreSQL backends.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        disabled -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_digest -> Nullable<Text>,
        redirect_uris -> Text,
        allowed_scopes -> Text,
        pkce_required -> Bool,
        is_resource_server -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        scopes -> Text,
        redirect_uri -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        created_at -> BigInt,
        last_used_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    auth_codes (digest) {
        digest -> Text,
        client_id -> Text,
        user_id -> Text,
        scopes -> Text,
        redirect_uri -> Text,
        redirect_uri_given -> Bool,
        extensions -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        grant_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (digest) {
        digest -> Text,
        grant_id -> Text,
        scopes -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_sealed -> Text,
        public_x -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (digest) {
        digest -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Text,
        ip -> Nullable<Text>,
    }
}

diesel::joinable!(consents -> clients (client_id));
diesel::joinable!(consents -> users (user_id));
diesel::joinable!(grants -> clients (client_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    clients,
    consents,
    grants,
    auth_codes,
    refresh_tokens,
    revoked_tokens,
    signing_keys,
    sessions,
    audit_events,
);

diesel::table! {
    google_accounts (user_id) {
        user_id -> Text,
        google_sub -> Text,
        email -> Text,
        oauth_client_id -> Nullable<Text>,
        oauth_client_secret_sealed -> Nullable<Text>,
        refresh_token_sealed -> Nullable<Text>,
        access_token_sealed -> Nullable<Text>,
        access_expires_at -> Nullable<BigInt>,
        granted_scopes -> Text,
        needs_reauth -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    connect_codes (digest) {
        digest -> Text,
        client_id -> Text,
        user_id -> Text,
        scopes -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(google_accounts, users);
