use std::process::ExitCode;

use pimetrics::agent::Agent;
use pimetrics::cli::{self, Action, Cli};
use pimetrics::config::Config;

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
    let mut config = match &cli.config_file {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(err) => return fail(&err.to_string()),
        },
        None => Config::default(),
    };
    if let Err(err) = cli.apply(&mut config) {
        return fail(&err);
    }
    pimetrics::logging::init(config.log_level.to_filter());
    match cli.action {
        Action::PrintConfig => {
            println!("{}", config.to_ron());
            ExitCode::SUCCESS
        }
        Action::Once => {
            let agent = Agent::new(&config);
            agent.scrape(|text| print!("{text}"));
            ExitCode::SUCCESS
        }
        _ => match pimetrics::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        },
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("pimetrics: {message}");
    ExitCode::FAILURE
}
