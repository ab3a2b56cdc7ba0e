//! A web app's OAuth callback route, mounted with `CallbackHandler` on a small HTTP server
//! (tiny_http): the same checks, pages and security headers as the loopback listener.
//!
//! `cargo run --example web_callback` serves `http://127.0.0.1:8080/oauth/callback` and
//! prints one authorization URL; a real app begins its flows with the same redirect URI.

use oauth_state_store::{BeginRequest, CallbackHandler, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redirect_uri = "http://127.0.0.1:8080/oauth/callback";
    let store = Store::open_in_memory()?;
    let handler = CallbackHandler::new(redirect_uri)?;
    let flow = store.begin(
        BeginRequest::new("https://mcp.example.com")
            .client_id("web-app")
            .redirect_uri(redirect_uri),
    )?;
    println!(
        "open: {}",
        flow.authorization_url("https://auth.example.com/authorize")?
    );
    let server = tiny_http::Server::http("127.0.0.1:8080").map_err(|e| e.to_string())?;
    for request in server.incoming_requests() {
        let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
        if path != "/oauth/callback" || *request.method() != tiny_http::Method::Get {
            let _ = request.respond(tiny_http::Response::empty(404));
            continue;
        }
        let host = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Host"))
            .map(|h| h.value.as_str().to_owned());
        let page = handler.handle(&store, query, host.as_deref());
        let mut response =
            tiny_http::Response::from_string(page.body).with_status_code(page.status);
        for (name, value) in &page.headers {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        let _ = request.respond(response);
        if page.recorded {
            // The app would now `store.consume(state)` and redeem the code.
            println!("callback recorded (status {})", page.status);
        }
    }
    Ok(())
}
