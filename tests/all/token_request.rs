//! The token request on the wire: method, form body, client authentication, headers.

use httpmock::MockServer;
use reqwest_alf::{AuthMethod, ClientCredentials};

use crate::support::{self, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH};

#[tokio::test]
async fn client_secret_basic_is_the_default_and_form_encodes_before_base64() {
    let auth = MockServer::start_async().await;
    // base64("my+client%3A1:p%40ss%3Aw%2Frd+%C3%A9%2B%26"), per RFC 6749 §2.3.1.
    let token = auth
        .mock_async(|when, then| {
            when.method("POST")
                .path(TOKEN_PATH)
                .header(
                    "authorization",
                    "Basic bXkrY2xpZW50JTNBMTpwJTQwc3MlM0F3JTJGcmQrJUMzJUE5JTJCJTI2",
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body("grant_type=client_credentials");
            then.status(200)
                .body(support::token_json("tok", Some(3600)));
        })
        .await;

    let credentials =
        ClientCredentials::builder(auth.url(TOKEN_PATH), "my client:1", "p@ss:w/rd é+&")
            .build()
            .unwrap();
    let got = credentials.token().await.unwrap();

    assert_eq!(got.access_token().secret(), "tok");
    token.assert_calls_async(1).await;
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let auth = MockServer::start_async().await;
    let token = auth
        .mock_async(|when, then| {
            when.method("POST")
                .path(TOKEN_PATH)
                .header_missing("authorization")
                .body(format!(
                    "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
                ));
            then.status(200).body(support::token_json("tok", Some(3600)));
        })
        .await;

    let credentials = support::builder(&auth)
        .auth_method(AuthMethod::ClientSecretPost)
        .build()
        .unwrap();
    credentials.token().await.unwrap();

    token.assert_calls_async(1).await;
}

#[tokio::test]
async fn audience_scope_and_extra_parameters_are_sent_in_order() {
    let auth = MockServer::start_async().await;
    let token = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH).body(
                "grant_type=client_credentials\
                 &audience=https%3A%2F%2Ffruits.example%2F\
                 &scope=read%3Afruits+write%3Afruits\
                 &resource=https%3A%2F%2Ffruits.example%2Fv2\
                 &organization=org_1\
                 &client_id=test-client&client_secret=s3cr3t-client-secret",
            );
            then.status(200)
                .body(support::token_json("tok", Some(3600)));
        })
        .await;

    let credentials = support::builder(&auth)
        .auth_method(AuthMethod::ClientSecretPost)
        .audience("https://fruits.example/")
        .scope("read:fruits write:fruits")
        .extra_param("resource", "https://fruits.example/v2")
        .extra_param("organization", "org_1")
        .build()
        .unwrap();
    credentials.token().await.unwrap();

    token.assert_calls_async(1).await;
}

#[tokio::test]
async fn token_requests_do_not_follow_redirects() {
    let auth = MockServer::start_async().await;
    let elsewhere = MockServer::start_async().await;
    let redirect = auth
        .mock_async(|when, then| {
            when.method("POST").path(TOKEN_PATH);
            then.status(307).header("location", elsewhere.url("/steal"));
        })
        .await;
    let thief = elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(200)
                .body(support::token_json("stolen", Some(60)));
        })
        .await;

    let error = support::token_error(&auth).await;

    assert!(
        matches!(error, reqwest_alf::Error::TokenEndpoint { status, .. } if status == 307),
        "{error:?}"
    );
    redirect.assert_calls_async(1).await;
    thief.assert_calls_async(0).await;
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn private_key_jwt_sends_a_fresh_signed_assertion_and_no_secret() {
    use jsonwebtoken::Algorithm;
    use reqwest_alf::{JwtAlgorithm, PrivateKey};

    use crate::support::assertion::{self, EC_PRIVATE, EC_PUBLIC, RSA_PRIVATE, RSA_PUBLIC};

    let cases = [
        (RSA_PRIVATE, RSA_PUBLIC, None, Algorithm::RS256),
        (
            RSA_PRIVATE,
            RSA_PUBLIC,
            Some(JwtAlgorithm::Ps256),
            Algorithm::PS256,
        ),
        (EC_PRIVATE, EC_PUBLIC, None, Algorithm::ES256),
    ];
    for (private, public, algorithm, expected) in cases {
        let auth = MockServer::start_async().await;
        let (mock, bodies) = assertion::recording_token_endpoint(&auth).await;
        let mut key = PrivateKey::from_pem(private).unwrap().key_id("key-2024");
        if let Some(algorithm) = algorithm {
            key = key.algorithm(algorithm);
        }
        // No secret is needed: an empty one is accepted.
        let credentials = ClientCredentials::builder(auth.url(TOKEN_PATH), CLIENT_ID, "")
            .audience("https://fruits.example")
            .auth_method(AuthMethod::PrivateKeyJwt(key))
            .build()
            .unwrap();
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();

        credentials.token().await.unwrap();
        credentials
            .invalidate(&credentials.token().await.unwrap())
            .await;
        credentials.token().await.unwrap();

        mock.assert_calls_async(2).await;
        let bodies = bodies.all();
        let names: Vec<String> = assertion::fields(&bodies[0])
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "grant_type",
                "audience",
                "client_id",
                "client_assertion_type",
                "client_assertion"
            ]
        );
        assert_eq!(
            assertion::field(&bodies[0], "grant_type"),
            "client_credentials"
        );
        assert_eq!(assertion::field(&bodies[0], "client_id"), CLIENT_ID);
        assert_eq!(
            assertion::field(&bodies[0], "client_assertion_type"),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let endpoint = auth.url(TOKEN_PATH);
        let (header, claims) = assertion::verified(
            &assertion::field(&bodies[0], "client_assertion"),
            public,
            expected,
            &endpoint,
        );
        assert_eq!(header.kid.as_deref(), Some("key-2024"));
        assert_eq!(claims["iss"], CLIENT_ID);
        assert_eq!(claims["sub"], CLIENT_ID);
        assert_eq!(claims["aud"], endpoint.as_str());
        let iat = claims["iat"].as_u64().unwrap();
        let exp = claims["exp"].as_u64().unwrap();
        assert!(
            iat >= before && iat <= before + 5,
            "iat {iat}, now {before}"
        );
        assert!(exp > iat && exp - iat <= 300, "exp {exp} iat {iat}");
        assert!(!claims["jti"].as_str().unwrap().is_empty());

        let (_, second) = assertion::verified(
            &assertion::field(&bodies[1], "client_assertion"),
            public,
            expected,
            &endpoint,
        );
        assert_ne!(
            claims["jti"], second["jti"],
            "a fresh assertion per request"
        );
    }
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn client_secret_jwt_sends_an_assertion_signed_with_the_secret_and_never_the_secret() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    use crate::support::assertion;

    const SECRET: &str = "a-client-secret-of-at-least-32-bytes!";
    let auth = MockServer::start_async().await;
    let (mock, bodies) = assertion::recording_token_endpoint(&auth).await;
    let credentials = ClientCredentials::builder(auth.url(TOKEN_PATH), CLIENT_ID, SECRET)
        .auth_method(AuthMethod::ClientSecretJwt)
        .build()
        .unwrap();

    credentials.token().await.unwrap();
    credentials
        .invalidate(&credentials.token().await.unwrap())
        .await;
    credentials.token().await.unwrap();

    mock.assert_calls_async(2).await;
    let bodies = bodies.all();
    let endpoint = auth.url(TOKEN_PATH);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[&endpoint]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    let mut ids = Vec::new();
    for body in &bodies {
        assert!(!body.contains("client_secret="), "{body}");
        assert!(!body.contains(SECRET), "{body}");
        assert_eq!(assertion::field(body, "client_id"), CLIENT_ID);
        assert_eq!(
            assertion::field(body, "client_assertion_type"),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            assertion::field(body, "client_assertion"),
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .expect("an HS256 assertion signed with the client secret")
        .claims;
        assert_eq!(claims["iss"], CLIENT_ID);
        assert_eq!(claims["sub"], CLIENT_ID);
        assert_eq!(claims["aud"], endpoint.as_str());
        ids.push(claims["jti"].as_str().unwrap().to_owned());
        // Signed with another secret, the same assertion does not verify.
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(
                assertion::field(body, "client_assertion"),
                &DecodingKey::from_secret(b"another-secret-of-at-least-32-bytes"),
                &validation,
            )
            .is_err()
        );
    }
    assert_ne!(ids[0], ids[1], "each assertion is new");
    let shown = format!("{credentials:?}");
    assert!(shown.contains("ClientSecretJwt"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[cfg(feature = "jwt")]
#[test]
fn client_secret_jwt_refuses_a_secret_too_short_for_hs256() {
    let error = ClientCredentials::builder("https://idp.example/token", CLIENT_ID, "short-secret")
        .auth_method(AuthMethod::ClientSecretJwt)
        .build()
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("32 bytes") && shown.contains("12"),
        "{shown}"
    );
    assert!(!shown.contains("short-secret"), "{shown}");
}
