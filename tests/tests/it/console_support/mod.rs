//! A browser's side of the admin console over HTTP: the session cookie, the
//! CSRF token the pages carry, forms posted as a browser posts them.

use std::net::SocketAddr;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use tokio::net::TcpListener;

/// Serves the admin app as `admin::serve` does (with client addresses) on a
/// free port; its base URL.
pub async fn serve(state: admin::AppState) -> String {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = admin::app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    url
}

/// The admin service (console and API) on a running pipeline's database and
/// NATS, with these operators (name, password, role); its base URL.
pub async fn serve_on(
    app_url: &str,
    admin_read_url: &str,
    keyring: aia_store::Keyring,
    nats_url: &str,
    settings: admin::console::ConsoleSettings,
    operators: &[(&str, &str, admin::console::Role)],
) -> String {
    let tenant_admin = admin::tenant_admin(
        app_url,
        admin_read_url,
        keyring,
        "https://hooks.example.com".into(),
    )
    .unwrap();
    for (name, password, role) in operators {
        admin::console::auth::create_user(&tenant_admin.admin, name, password, *role)
            .await
            .unwrap();
    }
    let (_client, jetstream) = aia_bus::connect(nats_url, "console").await.unwrap();
    serve(admin::AppState {
        tenants: std::sync::Arc::new(tenant_admin),
        token: "admin-token-0123456789abcdef".into(),
        jetstream: Some(jetstream),
        console: std::sync::Arc::new(settings),
    })
    .await
}

/// An HTTP client that follows no redirects, so each answer is seen.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in browser.
pub struct Browser {
    pub url: String,
    pub http: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub async fn sign_in(url: &str, username: &str, password: &str) -> Self {
        let http = client();
        let response = http
            .post(format!("{url}/console/sign-in"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in of {username}"
        );
        let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let mut browser = Self {
            url: url.to_owned(),
            http,
            cookie,
            csrf: String::new(),
        };
        let (_, page) = browser.get("/console/tenants").await;
        browser.csrf = regex::Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#)
            .unwrap()
            .captures(&page)
            .expect("pages carry the session's CSRF token")[1]
            .to_owned();
        browser
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form with this session's CSRF token added.
    pub async fn submit(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    /// Posts exactly the fields given.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

/// Headless Chromium driven through its WebDriver (`chromedriver`, from
/// `AI_AGENTS_CHROMEDRIVER_BIN` or the PATH; the project's setup installs
/// Debian's `chromium` and `chromium-driver`). The driver process ends with
/// the value.
pub struct Chromium {
    pub client: fantoccini::Client,
    driver: tokio::process::Child,
}

impl Chromium {
    pub async fn start() -> Self {
        let binary =
            std::env::var("AI_AGENTS_CHROMEDRIVER_BIN").unwrap_or_else(|_| "chromedriver".into());
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{binary} could not start ({err}): run the tests through `./dev test`, which installs chromium-driver"));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=en-US"
            ]}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last_error = None;
        for _ in 0..100 {
            match fantoccini::ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => return Self { client, driver },
                Err(err) => {
                    last_error = Some(err);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        panic!("chromedriver did not accept a session: {last_error:?}");
    }

    /// Writes a screenshot of the page for a person to look at, into
    /// `target/console-screenshots/` (or `AI_AGENTS_SCREENSHOTS_DIR`).
    pub async fn screenshot(&self, name: &str) {
        let dir = std::env::var("AI_AGENTS_SCREENSHOTS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/console-screenshots")
            });
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}
