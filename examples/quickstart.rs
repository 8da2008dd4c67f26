use reqwest_alf::ClientCredentials;
use reqwest_middleware::ClientBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = ClientCredentials::builder(
        "https://tenant.eu.auth0.com/oauth/token",
        std::env::var("CLIENT_ID").map_err(|_| "set CLIENT_ID in the environment")?,
        std::env::var("CLIENT_SECRET").map_err(|_| "set CLIENT_SECRET in the environment")?,
    )
    .audience("https://fruits.example.com")
    .build()?;

    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build();

    // The first request fetches a token; the next ones reuse it until it is about to expire.
    let fruits = client
        .get("https://fruits.example.com/fruits")
        .send()
        .await?;
    println!("{}: {}", fruits.status(), fruits.text().await?);
    Ok(())
}
