//! Test helpers: `spawn_app`, an HTTP client with the admin token, and the guest modules.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tempfile::TempDir;
use weft::config::ServerConfig;
use weft::server::Server;

/// The admin token every test server accepts.
pub const ADMIN: &str = "test-admin-token";

/// A server on a free loopback port, with its own SQLite file.
pub struct TestApp {
    pub url: String,
    pub database_url: String,
    pub client: reqwest::Client,
    server: Option<Server>,
    dir: TempDir,
}

/// Starts a server on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], after `configure` adjusts the configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.path().join("weft.db").display()),
        admin_token: Some(ADMIN.into()),
        ..ServerConfig::default()
    };
    config.runtime.max_instances = 16;
    configure(&mut config);
    let database_url = config.database_url.clone();
    let server = Server::start(config).await.expect("server starts");
    TestApp { url: server.url(), database_url, client: reqwest::Client::new(), server: Some(server), dir }
}

impl TestApp {
    /// Sends `method path` with the admin token and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(Some(ADMIN), method, path, body).await
    }

    /// Sends a request with `token` (or none).
    pub async fn call_as(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.url) };
        let mut request = self.client.request(method.parse().unwrap(), url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn create_org(&self, id: &str) {
        let (status, body) = self.call("POST", "/v1/orgs", Some(json!({"id": id, "title": id}))).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Publishes `wasm` as `name` for `org` and returns the integration.
    pub async fn publish(&self, name: &str, org: &str, wasm: &[u8]) -> Value {
        let (status, body) =
            self.call("POST", &format!("/v1/integrations/{name}"), Some(publish_body(org, wasm))).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Installs `name` on `org` and returns the installation.
    pub async fn install(&self, name: &str, org: &str) -> Value {
        let path = format!("/v1/integrations/{name}/installations");
        let (status, body) = self.call("POST", &path, Some(json!({"organization": org}))).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Polls the events log of `name` until it holds at least `count` `fetch` events (the
    /// public endpoint's; every install adds an `installation_setup` beside them); returns
    /// them newest first.
    pub async fn wait_for_events(&self, name: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.call("GET", &format!("/v1/integrations/{name}/events?type=fetch"), None).await;
            assert_eq!(status, 200, "{body}");
            let items = body["items"].as_array().unwrap().clone();
            if items.len() >= count {
                return items;
            }
            assert!(Instant::now() < deadline, "only {} of {count} events were recorded", items.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The running server's shared state.
    pub fn state(&self) -> &weft::state::AppState {
        self.server.as_ref().expect("the server is running").state()
    }

    /// Stops the server gracefully; the returned directory keeps its database alive.
    pub async fn stop(mut self) -> TempDir {
        self.server.take().unwrap().stop().await.unwrap();
        self.dir
    }
}

/// A valid publish body for `wasm`.
pub fn publish_body(org: &str, wasm: &[u8]) -> Value {
    json!({
        "title": "Hello",
        "description": "Answers with the request's method and path.",
        "organization": org,
        "scopes": [],
        "visibility": "private",
        "script": BASE64.encode(wasm),
    })
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The hello example built for wasm32-wasip1 (built once per test run with the project's
/// own guest build script, so the tests always run the current source).
pub fn hello_wasm() -> &'static [u8] {
    static HELLO: OnceLock<Vec<u8>> = OnceLock::new();
    HELLO.get_or_init(|| example_wasm("hello"))
}

/// The probe example (every host op on request; logs every task and event it receives).
pub fn probe_wasm() -> &'static [u8] {
    static PROBE: OnceLock<Vec<u8>> = OnceLock::new();
    PROBE.get_or_init(|| example_wasm("probe"))
}

/// The example module `name` (the file name: `config_check` for `examples/config-check`),
/// built like [`hello_wasm`].
pub fn wasm(name: &str) -> Vec<u8> {
    example_wasm(name)
}

/// The publish body of the example in `examples/{dir}`, read from its own `weft.toml` like
/// `weft publish` does, with `overrides`' fields replacing the manifest's.
pub fn example_publish_body(dir: &str, wasm: &[u8], overrides: Value) -> (String, Value) {
    let manifest = weft::manifest::Manifest::load(&repo_root().join("examples").join(dir))
        .unwrap_or_else(|e| panic!("examples/{dir}/weft.toml: {e:#}"));
    let mut body = manifest.publish_body(wasm);
    for (key, value) in overrides.as_object().expect("overrides are an object") {
        body[key] = value.clone();
    }
    (manifest.name, body)
}

/// Builds every example once per test run, then reads `name`'s module.
fn example_wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/build-examples"))
            .output()
            .expect("run scripts/build-examples");
        assert!(
            output.status.success(),
            "scripts/build-examples failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
    let path = repo_root().join(format!("examples/target/wasm32-wasip1/release/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{} was not built: {e}", path.display()))
}

/// A hostile or minimal guest from `tests/fixtures/NAME.wat`.
pub fn fixture(name: &str) -> Vec<u8> {
    wat::parse_file(repo_root().join("tests/fixtures").join(format!("{name}.wat"))).expect("fixture is valid WAT")
}

/// A store on a new SQLite file (kept alive by the returned directory).
pub async fn fresh_sqlite() -> (weft::store::Store, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("weft.db").display());
    (weft::store::Store::connect(&url).await.unwrap(), dir)
}

/// A new, empty PostgreSQL database, dropped again when this value is dropped.
pub struct PostgresDatabase {
    pub url: String,
    name: String,
}

/// The server that fresh databases are made on: `WEFT_TEST_POSTGRES_URL`, or the local one.
fn postgres_admin_url() -> String {
    std::env::var("WEFT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub async fn fresh_postgres() -> PostgresDatabase {
    use sqlx::Connection as _;
    let admin = postgres_admin_url();
    let name = weft::ids::random("weft_test_", 12).to_lowercase();
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running at {admin} (set WEFT_TEST_POSTGRES_URL): {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await.unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    PostgresDatabase { url: format!("{base}/{name}"), name }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Drop it from a thread of its own: Drop cannot await, and the test's runtime may be gone.
        let (admin, name) = (postgres_admin_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut connection) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                }
            })
        })
        .join();
    }
}

impl TestApp {
    /// Publishes `wasm` as `name` for `org` with extra manifest fields merged into the body.
    pub async fn publish_with(&self, name: &str, org: &str, wasm: &[u8], extra: Value) -> Value {
        let mut body = publish_body(org, wasm);
        for (key, value) in extra.as_object().expect("extra fields are an object") {
            body[key] = value.clone();
        }
        let (status, answer) = self.call("POST", &format!("/v1/integrations/{name}"), Some(body)).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Polls until `name`'s events log holds `count` events matching `filter` (list items);
    /// returns them as `GET …/events/{id}` answers, `{event, trace}`, oldest first.
    pub async fn wait_for_matching_events(
        &self,
        name: &str,
        count: usize,
        filter: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.call("GET", &format!("/v1/integrations/{name}/events?limit=1000"), None).await;
            assert_eq!(status, 200, "{body}");
            let matching: Vec<Value> =
                body["items"].as_array().unwrap().iter().filter(|e| filter(e)).cloned().collect();
            if matching.len() >= count {
                let mut detailed = Vec::new();
                for event in matching.iter().rev() {
                    let path = format!("/v1/integrations/{name}/events/{}", event["id"].as_str().unwrap());
                    detailed.push(self.call("GET", &path, None).await.1);
                }
                return detailed;
            }
            assert!(Instant::now() < deadline, "only {} of {count} matching events: {body}", matching.len());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The log messages of an event (as returned with its detail, `{event, trace}`).
pub fn log_messages(event: &Value) -> Vec<String> {
    event["trace"]["logs"].as_array().map_or_else(Vec::new, |logs| {
        logs.iter().filter_map(|line| line["message"].as_str().map(str::to_owned)).collect()
    })
}
