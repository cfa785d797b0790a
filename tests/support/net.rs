//! Socket helpers shared by the server tests (`tests/serve.rs`, `tests/adversarial.rs`).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads and discards (e.g. the server's HTTP/2 SETTINGS frame) until the server closes the
/// connection (EOF or an error); false if it is still open after `within`.
pub async fn closed_within(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    let mut buf = [0_u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}
