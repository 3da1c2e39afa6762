//! Real-browser tests: Debian's Chromium driven by Playwright (`tests/browser/`) against the
//! real server. Outside CI, missing tooling skips with a note; with `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::*;
use crate::ui_helpers::create_admin;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `Some(node)` when node, Chromium and the npm packages are all there.
fn tooling() -> Option<PathBuf> {
    let node = std::env::var_os("NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"));
    let node_ok = Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if !node_ok {
        Some("node is not installed".to_string())
    } else if !Path::new(CHROMIUM).exists() {
        Some(format!("{CHROMIUM} is missing (apt-get install chromium)"))
    } else if !browser_dir().join("node_modules/playwright-core").exists() {
        Some("tests/browser/node_modules is missing (npm ci in tests/browser)".to_string())
    } else {
        None
    };
    match missing {
        None => Some(node),
        Some(why) if in_ci() => panic!("browser tests cannot run in CI: {why}"),
        Some(why) => {
            eprintln!("skipping browser test: {why}");
            None
        }
    }
}

/// Runs `tests/browser/<script>` with `env`, printing its output; panics unless it exits 0.
async fn run_script(node: PathBuf, script: &str, env: Vec<(&'static str, String)>) {
    let script = browser_dir().join(script);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg(&script)
            .current_dir(browser_dir())
            .envs(env)
            .output()
            .expect("node runs")
    })
    .await
    .expect("browser task");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_a_client_and_a_user_authorizes_then_removes_it_in_chromium() {
    let Some(node) = tooling() else { return };
    // Arrange
    let app = spawn_app(Backend::Sqlite).await;
    let admin = create_admin(&app).await;
    let user = app.create_user().await;
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).expect("target/screenshots");

    // Act + Assert (in the script)
    run_script(
        node,
        "flow.mjs",
        vec![
            ("SCOPEGATE_URL", app.address.clone()),
            ("ADMIN_EMAIL", admin.email.clone()),
            ("ADMIN_PASSWORD", admin.password.clone()),
            ("USER_EMAIL", user.email.clone()),
            ("USER_PASSWORD", user.password.clone()),
            ("USER_NAME", user.name.clone()),
            ("CHROMIUM", CHROMIUM.to_string()),
            ("SCREENSHOT_DIR", screenshots.display().to_string()),
        ],
    )
    .await;
}
