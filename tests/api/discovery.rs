//! Health, RFC 8414 metadata, OIDC discovery and the JWKS.

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("array of strings").to_string())
        .collect()
}

e2e! {
    async fn the_health_check_answers_200(app) {
        // Act
        let resp = app.get("/healthz").await;

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
    }

    async fn the_metadata_names_the_issuer_and_endpoints(app) {
        // Act
        let meta = app.metadata().await;

        // Assert
        let issuer = meta["issuer"].as_str().expect("issuer");
        assert_eq!(issuer.trim_end_matches('/'), app.address, "issuer is the bound address");
        for (field, path) in [
            ("authorization_endpoint", "/oauth/authorize"),
            ("token_endpoint", "/oauth/token"),
            ("jwks_uri", "/.well-known/jwks.json"),
            ("userinfo_endpoint", "/userinfo"),
        ] {
            assert_eq!(
                meta[field].as_str(),
                Some(format!("{}{path}", app.address).as_str()),
                "{field}"
            );
        }
    }

    async fn the_metadata_advertises_code_flow_with_s256_only(app) {
        // Act
        let meta = app.metadata().await;

        // Assert
        assert_eq!(strings(&meta["response_types_supported"]), vec!["code"]);
        assert_eq!(strings(&meta["code_challenge_methods_supported"]), vec!["S256"]);
        let grants = strings(&meta["grant_types_supported"]);
        for g in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(grants.contains(&g.to_string()), "grant_types_supported has {g}: {grants:?}");
        }
        let methods = strings(&meta["token_endpoint_auth_methods_supported"]);
        for m in ["client_secret_basic", "client_secret_post", "none"] {
            assert!(methods.contains(&m.to_string()), "auth methods have {m}: {methods:?}");
        }
        assert_eq!(meta["authorization_response_iss_parameter_supported"], Value::Bool(true));
    }

    async fn the_metadata_lists_the_whole_scope_catalogue(app) {
        // Act
        let meta = app.metadata().await;

        // Assert
        let scopes = strings(&meta["scopes_supported"]);
        for s in CATALOGUE {
            assert!(scopes.contains(&s.to_string()), "scopes_supported has {s}: {scopes:?}");
        }
    }

    async fn the_openid_configuration_is_the_metadata_plus_oidc_fields(app) {
        // Arrange
        let meta = app.metadata().await;

        // Act
        let oidc = app.openid_configuration().await;

        // Assert
        for field in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "userinfo_endpoint",
            "code_challenge_methods_supported",
            "response_types_supported",
        ] {
            assert_eq!(oidc[field], meta[field], "{field} is the same in both documents");
        }
        assert_eq!(strings(&oidc["id_token_signing_alg_values_supported"]), vec!["EdDSA"]);
        assert!(!strings(&oidc["subject_types_supported"]).is_empty(), "subject_types_supported");
        assert_eq!(oidc["authorization_response_iss_parameter_supported"], Value::Bool(true));
    }

    async fn the_jwks_publishes_an_ed25519_signing_key(app) {
        // Act
        let jwks = app.jwks().await;

        // Assert
        let keys = jwks["keys"].as_array().expect("keys");
        assert!(!keys.is_empty(), "at least one key");
        for key in keys {
            assert_eq!(key["kty"], "OKP", "{key}");
            assert_eq!(key["crv"], "Ed25519", "{key}");
            assert_eq!(key["alg"], "EdDSA", "{key}");
            assert_eq!(key["use"], "sig", "{key}");
            assert!(!key["kid"].as_str().unwrap_or("").is_empty(), "kid: {key}");
            let x = URL_SAFE_NO_PAD
                .decode(key["x"].as_str().expect("x"))
                .expect("x is unpadded base64url");
            assert_eq!(x.len(), 32, "an Ed25519 public key is 32 bytes");
            assert!(key.get("d").is_none(), "no private part: {key}");
        }
    }

    async fn the_metadata_jwks_uri_serves_the_jwks(app) {
        // Arrange
        let meta = app.metadata().await;
        let jwks_uri = meta["jwks_uri"].as_str().expect("jwks_uri");

        // Act
        let resp = app.api.get(jwks_uri).send().await.expect("GET jwks_uri");

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body, app.jwks().await);
    }
}
