//! Mutual-TLS client authentication (RFC 8705) against a rustls server that requires a client
//! certificate: the token request presents it, carries the client id and no secret, and a
//! client without it is refused.

use httpmock::MockServer;
use reqwest_alf::{AuthMethod, ClientCredentials, ConfigError, Error};

use crate::support::assertion::{self, recording_token_endpoint};
use crate::support::mtls::mtls_front;
use crate::support::{CLIENT_ID, TOKEN_PATH};

#[tokio::test]
async fn token_requests_present_the_certificate_and_send_the_client_id_without_a_secret() {
    for method in [
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
    ] {
        let backend = MockServer::start_async().await;
        let (mock, bodies) = recording_token_endpoint(&backend).await;
        let front = mtls_front(&backend, "idp.example").await;
        let identity = reqwest::Identity::from_pem(front.client.pem.as_bytes()).unwrap();
        // The builder's own client presents the identity; this one only trusts the front.
        let credentials =
            ClientCredentials::builder(format!("{}{TOKEN_PATH}", front.base_url), CLIENT_ID, "")
                .auth_method(method.clone())
                .http_client(front.client(Some(identity)))
                .build()
                .unwrap();

        credentials.token().await.unwrap();

        mock.assert_calls_async(1).await;
        let body = &bodies.all()[0];
        assert_eq!(
            assertion::fields(body),
            [
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_id".to_owned(), CLIENT_ID.to_owned())
            ],
            "{method:?}"
        );
        assert_eq!(
            *front.presented.lock().unwrap(),
            vec![front.client.der.clone()]
        );
    }
}

#[tokio::test]
async fn a_token_request_without_the_certificate_is_refused_in_the_handshake() {
    let backend = MockServer::start_async().await;
    let (mock, _) = recording_token_endpoint(&backend).await;
    let front = mtls_front(&backend, "idp.example").await;
    let credentials =
        ClientCredentials::builder(format!("{}{TOKEN_PATH}", front.base_url), CLIENT_ID, "")
            .auth_method(AuthMethod::TlsClientAuth)
            .http_client(front.client(None))
            .token_retry(crate::support::fast_retry(0))
            .build()
            .unwrap();

    let error = credentials.token().await.unwrap_err();

    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(*front.refused.lock().unwrap() >= 1);
    mock.assert_calls_async(0).await;
}

#[cfg(feature = "default-tls")]
#[tokio::test]
async fn client_identity_goes_on_the_builder_s_own_client_and_not_with_an_http_client_of_yours() {
    let backend = MockServer::start_async().await;
    let (mock, _) = recording_token_endpoint(&backend).await;
    let front = mtls_front(&backend, "127.0.0.1").await;
    let identity = reqwest::Identity::from_pem(front.client.pem.as_bytes()).unwrap();
    // The builder's own client trusts the system's roots, not this throwaway CA, so it cannot
    // finish a handshake here: what is checked is that the option builds, and that it is
    // refused next to a client of the caller's, which the builder cannot add it to.
    let with_both =
        ClientCredentials::builder(format!("{}{TOKEN_PATH}", front.base_url), CLIENT_ID, "")
            .auth_method(AuthMethod::TlsClientAuth)
            .client_identity(identity.clone())
            .http_client(front.client(None))
            .build()
            .unwrap_err();
    assert!(
        matches!(
            with_both,
            Error::InvalidConfig(ConfigError::ClientCertificateWithHttpClient)
        ),
        "{with_both:?}"
    );
    let built =
        ClientCredentials::builder(format!("{}{TOKEN_PATH}", front.base_url), CLIENT_ID, "")
            .auth_method(AuthMethod::TlsClientAuth)
            .client_identity(identity)
            .build();
    assert!(built.is_ok(), "{built:?}");
    mock.assert_calls_async(0).await;
}

#[test]
fn tls_client_auth_without_a_certificate_is_a_config_error() {
    for method in [
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
    ] {
        let error = ClientCredentials::builder("https://idp.example/token", CLIENT_ID, "")
            .auth_method(method)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidConfig(ConfigError::MissingClientCertificate)
            ),
            "{error:?}"
        );
    }
}
