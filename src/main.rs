//! The `scopegate` binary: serve (default), migrate, user …, client …, keys ….

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scopegate::config::Settings;
use scopegate::ops::{self, ClientSpec};
use scopegate::startup::Application;
use scopegate::store::Store;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "scopegate",
    version,
    about = "OAuth 2 authorization server with granular, user-consented scopes"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints {"client_id", "client_secret"} once.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri", required = true)]
        redirect_uri: Vec<String>,
        /// A public client (native or browser app): no secret, PKCE always.
        #[arg(long)]
        public: bool,
        /// Limit the scopes the client may ask for (repeatable; default: the whole catalogue).
        #[arg(long = "scope")]
        scope: Vec<String>,
        /// Do not require PKCE from this confidential client.
        #[arg(long)]
        no_pkce: bool,
        /// Let this client introspect tokens issued to other clients.
        #[arg(long)]
        resource_server: bool,
    },
    /// List clients as JSON lines.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys as JSON lines.
    List,
    /// Create a new signing key; old keys stay published until their tokens expire.
    Rotate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SCOPEGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One line: database drivers put newlines in their messages.
            let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("scopegate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let settings = Settings::load().map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let store = open(&settings)?;
            store.migrate().map_err(|e| e.to_string())?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Add { email, name, admin }) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            let password = line.trim_end_matches(['\n', '\r']);
            let store = open_migrated(&settings)?;
            let id = ops::add_user(&store, &email, &name, password, admin)
                .map_err(|e| e.public_message())?;
            println!(
                "{}",
                serde_json::json!({"user_id": id, "email": email.trim().to_lowercase()})
            );
            Ok(())
        }
        Command::Client(ClientCommand::Add {
            name,
            redirect_uri,
            public,
            scope,
            no_pkce,
            resource_server,
        }) => {
            let store = open_migrated(&settings)?;
            let spec = ClientSpec {
                name,
                redirect_uris: redirect_uri,
                public,
                scopes: (!scope.is_empty()).then_some(scope),
                pkce_required: !no_pkce,
                resource_server,
            };
            let created = ops::add_client(&store, spec).map_err(|e| e.public_message())?;
            println!(
                "{}",
                serde_json::to_string(&created).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Client(ClientCommand::List) => {
            let store = open_migrated(&settings)?;
            for c in ops::list_clients(&store).map_err(|e| e.public_message())? {
                println!("{}", serde_json::to_string(&c).map_err(|e| e.to_string())?);
            }
            Ok(())
        }
        Command::Keys(cmd) => {
            let store = open_migrated(&settings)?;
            let seal = scopegate::startup::resolve_seal_key(&settings, store.url())
                .map_err(|e| e.to_string())?;
            let keys = ops::key_admin(&store, &settings, seal).map_err(|e| e.public_message())?;
            match cmd {
                KeysCommand::List => {
                    for k in keys.list().map_err(|e| e.public_message())? {
                        println!("{}", serde_json::to_string(&k).map_err(|e| e.to_string())?);
                    }
                }
                KeysCommand::Rotate => {
                    let kid = keys.rotate().map_err(|e| e.public_message())?;
                    println!("{}", serde_json::json!({"kid": kid}));
                }
            }
            Ok(())
        }
    }
}

fn open(settings: &Settings) -> Result<Store, String> {
    Store::connect(&settings.database_url, 2).map_err(|e| e.to_string())
}

fn open_migrated(settings: &Settings) -> Result<Store, String> {
    let store = open(settings)?;
    store.migrate().map_err(|e| e.to_string())?;
    Ok(store)
}

fn serve(settings: Settings) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}
