//! Runs the provider simulator standalone: `cargo run -p switchyard-simulator --example sim [ADDR]`
//! (default `127.0.0.1:0`), printing `listening on http://ADDR`, until Ctrl-C.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    switchyard_simulator::serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
