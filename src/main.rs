//! The `vault-injector` binary: parse the command line, then serve or render.

use std::io::Read as _;
use std::process::ExitCode;

use vault_injector::cli::{self, CliError, Invocation};
use vault_injector::{logging, render, server};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let invocation = match cli::parse(&args, &|name| std::env::var(name).ok()) {
        Ok(invocation) => invocation,
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            // Go's flag package exits 1 on a usage error, 0 for -help.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(CliError::Settings(e)) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match invocation {
        Invocation::Version => {
            println!("vault-injector v{}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Invocation::Serve(settings) => serve(*settings),
        Invocation::Render {
            settings,
            file,
            namespace,
            output,
        } => run_render(&settings, file.as_deref(), namespace.as_deref(), output),
    }
}

fn serve(settings: vault_injector::settings::Settings) -> ExitCode {
    if let Err(e) = logging::init(settings.server.log_level, settings.server.log_json) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error starting runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(server::serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn run_render(
    settings: &vault_injector::settings::Settings,
    file: Option<&str>,
    namespace: Option<&str>,
    output: render::Output,
) -> ExitCode {
    let (input, source_name) = match file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (text, path.to_owned()),
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("<stdin>: cannot read: {e}");
                return ExitCode::from(2);
            }
            (text, "<stdin>".to_owned())
        }
    };
    match render::render(&input, &source_name, namespace, output, &settings.agent) {
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Ok(rendered) => {
            print!("{}", rendered.stdout);
            match rendered.refusal {
                Some(refusal) => {
                    eprintln!("{refusal}");
                    ExitCode::from(1)
                }
                None => ExitCode::SUCCESS,
            }
        }
    }
}
