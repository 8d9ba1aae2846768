use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use pimetrics::agent::Agent;
use pimetrics::cli::{self, Action, Cli};
use pimetrics::config::Config;

/// The config file (if any) with the command-line flags over it; read again on SIGHUP.
struct FileAndFlags {
    file: Option<PathBuf>,
    cli: Cli,
}

impl pimetrics::ConfigSource for FileAndFlags {
    fn load(&self) -> Result<Config, String> {
        let mut config = match &self.file {
            Some(path) => Config::load(path).map_err(|err| err.to_string())?,
            None => Config::default(),
        };
        self.cli.apply(&mut config)?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::parse(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(err) => return fail(&err),
    };
    match &cli.action {
        Action::Help => {
            print!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        Action::Version => {
            println!("pimetrics {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Action::CheckConfig(path) => {
            return match Config::load(path) {
                Ok(_) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&err.to_string()),
            };
        }
        _ => {}
    }
    let source = FileAndFlags {
        file: cli.config_file.clone(),
        cli: cli.clone(),
    };
    let config = match pimetrics::ConfigSource::load(&source) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    pimetrics::logging::init(config.log_level.to_filter());
    match cli.action {
        Action::PrintConfig => {
            println!("{}", config.to_ron());
            ExitCode::SUCCESS
        }
        Action::Once => {
            print!("{}", Agent::once(config.build_scraper().0));
            ExitCode::SUCCESS
        }
        _ => match pimetrics::run(Arc::new(source), config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        },
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("pimetrics: {message}");
    ExitCode::FAILURE
}
