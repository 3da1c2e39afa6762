//! Throughput of the hot paths against the real server (SQLite, loopback), with targets:
//! `cargo bench --bench throughput`. Prints requests/second, latency percentiles and peak RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scopegate::config::Settings;
use scopegate::ops::{self, ClientSpec};
use scopegate::startup::Application;

const REQUESTS: usize = 3000;
const CONCURRENCY: usize = 16;
/// Targets on the 2-core reference machine.
const TOKEN_TARGET_RPS: f64 = 1000.0;
const API_TARGET_RPS: f64 = 2000.0;
const RSS_TARGET_MIB: f64 = 128.0;

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(name: &str, make: F) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = worker;
            while i < REQUESTS {
                let t = Instant::now();
                let status = make().await;
                assert!(status < 500, "server error during the benchmark");
                lat.push(t.elapsed());
                i += CONCURRENCY;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    all.sort();
    let f = Figures {
        rps: REQUESTS as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    };
    println!(
        "{name:<40} {:>8.0} req/s   p50 {:>7.2?}   p99 {:>7.2?}",
        f.rps, f.p50, f.p99
    );
    f
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        database_url: format!("sqlite://{}/bench.db", dir.path().display()),
        bind: "127.0.0.1:0".into(),
        admin_email: Some("admin@bench.example".into()),
        admin_password: Some("bench-admin-password".to_string().into()),
        token_rate_limit_per_minute: 1_000_000,
        ..Settings::default()
    };
    let app = Application::build(settings).await.expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store();
    tokio::spawn(app.run_until_stopped());
    let client = tokio::task::spawn_blocking(move || {
        ops::add_client(
            &store,
            ClientSpec {
                name: "bench".into(),
                redirect_uris: vec!["https://bench.example/cb".into()],
                ..ClientSpec::default()
            },
        )
    })
    .await
    .expect("join")
    .expect("client");
    let id = client.client_id.clone();
    let secret = client.client_secret.clone().expect("confidential");
    let http = reqwest::Client::new();

    println!(
        "scopegate throughput: {REQUESTS} requests, {CONCURRENCY} concurrent, loopback, SQLite"
    );
    let (h, b, i, s) = (http.clone(), base.clone(), id.clone(), secret.clone());
    let token = measure("POST /oauth/token (client_credentials)", move || {
        let (h, b, i, s) = (h.clone(), b.clone(), i.clone(), s.clone());
        async move {
            h.post(format!("{b}/oauth/token"))
                .basic_auth(i, Some(s))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "email.read_only"),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(599)
        }
    })
    .await;

    let at: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "email.read_only"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let at = at["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let (h, b, t) = (http.clone(), base.clone(), at.clone());
    let api = measure("GET /messages (guard: verify + revocation)", move || {
        let (h, b, t) = (h.clone(), b.clone(), t.clone());
        async move {
            h.get(format!("{b}/messages"))
                .bearer_auth(t)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(599)
        }
    })
    .await;
    let (h, b, i, s, t) = (
        http.clone(),
        base.clone(),
        id.clone(),
        secret.clone(),
        at.clone(),
    );
    measure("POST /oauth/introspect", move || {
        let (h, b, i, s, t) = (h.clone(), b.clone(), i.clone(), s.clone(), t.clone());
        async move {
            h.post(format!("{b}/oauth/introspect"))
                .basic_auth(i, Some(s))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(599)
        }
    })
    .await;

    let rss = peak_rss_mib();
    println!("peak RSS (server and load generator together): {rss:.1} MiB");
    let checks = [
        (
            "token endpoint",
            token.rps >= TOKEN_TARGET_RPS,
            format!("{:.0} req/s >= {TOKEN_TARGET_RPS}", token.rps),
        ),
        (
            "guarded API",
            api.rps >= API_TARGET_RPS,
            format!("{:.0} req/s >= {API_TARGET_RPS}", api.rps),
        ),
        (
            "memory",
            rss <= RSS_TARGET_MIB,
            format!("{rss:.1} MiB <= {RSS_TARGET_MIB}"),
        ),
    ];
    let mut ok = true;
    for (name, pass, detail) in checks {
        println!(
            "{:<16} {}  ({detail})",
            name,
            if pass { "PASS" } else { "FAIL" }
        );
        ok &= pass;
    }
    if !ok {
        std::process::exit(1);
    }
}
