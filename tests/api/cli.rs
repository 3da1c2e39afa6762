//! The `scopegate` binary: migrate, user add, client add / list, and bad database URLs.
//! SQLite only: the CLI's database layer is the server's, which the e2e tests run on both.

use crate::helpers::*;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A temp directory with a database file path and a seal key path for the CLI.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("scopegate.db")
    }

    fn database_url(&self) -> String {
        sqlite_url(&self.db_path())
    }

    fn seal_key_file(&self) -> PathBuf {
        self.dir.path().join("seal.key")
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with_url(&self.database_url(), args, stdin)
    }

    fn run_with_url(&self, database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scopegate"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SCOPEGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("SCOPEGATE_DATABASE_URL", database_url)
            .env("SCOPEGATE_SEAL_KEY_FILE", self.seal_key_file())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the scopegate binary starts");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("scopegate finishes")
    }

    #[track_caller]
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "scopegate {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_panic(&out);
        String::from_utf8(out.stdout).expect("UTF-8 stdout")
    }

    fn add_client(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "client",
            "add",
            "--name",
            "CLI App",
            "--redirect-uri",
            CONFIDENTIAL_REDIRECT,
        ];
        args.extend_from_slice(extra);
        let stdout = self.ok(&args, None);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("client add prints one JSON object ({e}): {stdout:?}"))
    }
}

#[track_caller]
fn assert_no_panic(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "the CLI panicked: {stderr}");
}

#[test]
fn migrate_creates_the_database() {
    // Arrange
    let cli = Cli::new();

    // Act
    cli.ok(&["migrate"], None);

    // Assert
    assert!(
        cli.db_path().exists(),
        "the SQLite file exists after migrate"
    );
}

#[test]
fn migrate_twice_is_harmless() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let out = cli.run(&["migrate"], None);

    // Assert
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn user_add_reads_the_password_from_the_first_line_of_stdin() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let out = cli.run(
        &[
            "user",
            "add",
            "--email",
            "ada@example.test",
            "--name",
            "Ada Lovelace",
        ],
        Some("analytical engine 1843\nignored second line\n"),
    );

    // Assert
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_panic(&out);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("analytical engine 1843"),
        "the password is never printed"
    );
}

#[test]
fn user_add_with_a_taken_email_fails_cleanly() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);
    cli.ok(
        &[
            "user",
            "add",
            "--email",
            "ada@example.test",
            "--name",
            "Ada",
        ],
        Some("first password 123\n"),
    );

    // Act
    let out = cli.run(
        &[
            "user",
            "add",
            "--email",
            "ada@example.test",
            "--name",
            "Ada",
        ],
        Some("second password 456\n"),
    );

    // Assert
    assert!(!out.status.success(), "a duplicate email is refused");
    assert_no_panic(&out);
}

#[test]
fn user_add_without_a_password_fails_cleanly() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let out = cli.run(
        &[
            "user",
            "add",
            "--email",
            "ada@example.test",
            "--name",
            "Ada",
        ],
        Some(""),
    );

    // Assert
    assert!(!out.status.success(), "an empty password is refused");
    assert_no_panic(&out);
}

#[test]
fn client_add_prints_one_json_object_with_the_id_and_secret() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let created = cli.add_client(&["--redirect-uri", "https://client.example/second"]);

    // Assert
    assert!(created.is_object(), "{created}");
    assert!(
        !created["client_id"].as_str().unwrap_or("").is_empty(),
        "{created}"
    );
    assert!(
        !created["client_secret"].as_str().unwrap_or("").is_empty(),
        "{created}"
    );
}

#[test]
fn client_add_public_prints_no_secret() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let created = cli.add_client(&["--public"]);

    // Assert
    assert!(
        !created["client_id"].as_str().unwrap_or("").is_empty(),
        "{created}"
    );
    assert!(
        created.get("client_secret").is_none(),
        "no client_secret for a public client: {created}"
    );
}

#[test]
fn client_list_prints_one_json_line_per_client_and_no_secret() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);
    let a = cli.add_client(&[]);
    let b = cli.add_client(&["--public", "--scope", "email.read_only"]);

    // Act
    let stdout = cli.ok(&["client", "list"], None);

    // Assert
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON line ({e}): {l:?}")))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let ids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["client_id"].as_str())
        .collect();
    assert!(ids.contains(&a["client_id"].as_str().unwrap()));
    assert!(ids.contains(&b["client_id"].as_str().unwrap()));
    assert!(
        !stdout.contains(a["client_secret"].as_str().unwrap()),
        "the secret is never listed"
    );
}

#[test]
fn a_bad_database_url_exits_non_zero_with_a_one_line_error() {
    // Arrange
    let cli = Cli::new();
    for url in ["mysql://x", "postgres://nobody@127.0.0.1:1/x", "nonsense"] {
        for args in [&["migrate"][..], &["client", "list"][..]] {
            // Act
            let out = cli.run_with_url(url, args, None);

            // Assert
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{url} {args:?} must fail");
            assert_no_panic(&out);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(
                lines.len(),
                1,
                "{url} {args:?}: a one-line error, got {stderr:?}"
            );
        }
    }
}

#[test]
fn an_unknown_scope_in_client_add_is_refused() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let out = cli.run(
        &[
            "client",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            CONFIDENTIAL_REDIRECT,
            "--scope",
            "email.everything",
        ],
        None,
    );

    // Assert
    assert!(!out.status.success(), "an unknown scope is refused");
    assert_no_panic(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_created_user_and_client_complete_a_full_flow() {
    // Arrange
    let (cli, created) = tokio::task::spawn_blocking(|| {
        let cli = Cli::new();
        cli.ok(&["migrate"], None);
        cli.ok(
            &[
                "user",
                "add",
                "--email",
                "grace@example.test",
                "--name",
                "Grace Hopper",
            ],
            Some("cobol compiler 1959\nnot the password\n"),
        );
        let created = cli.add_client(&["--scope", "email.read_only", "--scope", "openid"]);
        (cli, created)
    })
    .await
    .expect("CLI task");
    let user = TestUser {
        id: String::new(),
        email: "grace@example.test".to_string(),
        name: "Grace Hopper".to_string(),
        password: "cobol compiler 1959".to_string(),
    };
    let client = TestClient {
        name: "CLI App".to_string(),
        client_id: created["client_id"].as_str().unwrap().to_string(),
        client_secret: created["client_secret"].as_str().map(str::to_string),
        redirect_uri: CONFIDENTIAL_REDIRECT.to_string(),
        redirect_uris: vec![CONFIDENTIAL_REDIRECT.to_string()],
    };
    let app = spawn_app_on(cli.database_url(), cli.seal_key_file()).await;

    // Act
    let tokens = app.tokens(&user, &client, "openid email.read_only").await;
    let outside = AuthParams::new(&client, "email.send");
    let refused = app.get_authorize(&outside).await;

    // Assert
    assert_eq!(tokens.scope, set_of(&["openid", "email.read_only"]));
    let (_, claims) = app.verify_jwt(&tokens.access_token).await;
    assert!(!claims["sub"].as_str().unwrap_or("").is_empty());
    let to = assert_redirect(&refused);
    assert_error_redirect(
        &to,
        &client.redirect_uri,
        "invalid_scope",
        outside.state(),
        &app.issuer().await,
    );
    drop(app);
    drop(cli);
}

#[test]
fn user_add_admin_is_accepted() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    // Act
    let out = cli.run(
        &[
            "user",
            "add",
            "--email",
            "root@example.test",
            "--name",
            "Root",
            "--admin",
        ],
        Some("admin password 99\n"),
    );

    // Assert
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn client_add_with_an_insecure_redirect_uri_is_refused() {
    // Arrange
    let cli = Cli::new();
    cli.ok(&["migrate"], None);

    for uri in [
        "http://client.example/cb",
        "not a url",
        "https://client.example/cb#frag",
    ] {
        // Act
        let out = cli.run(
            &["client", "add", "--name", "X", "--redirect-uri", uri],
            None,
        );

        // Assert
        assert!(!out.status.success(), "{uri} is refused");
        assert_no_panic(&out);
    }
}
