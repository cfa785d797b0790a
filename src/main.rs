//! The `vault-injector` binary: parse the command line, then serve or render.

use std::io::Read as _;
use std::process::ExitCode;

use vault_injector::cli::{self, CliError, Invocation};
use vault_injector::telemetry::logging;
use vault_injector::tls::autotls;
use vault_injector::{lint, render, server};

// A review is allocation-heavy (decoded JSON, the patch, the reply): with glibc's malloc in its
// place the injector serves about a third fewer reviews per core (benches/run.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let invocation = match cli::parse(&args, &|name| std::env::var(name).ok()) {
        Ok(invocation) => invocation,
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            // Help and version are successes; anything else clap reports is a usage error.
            return if e.use_stderr() {
                ExitCode::from(cli::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(CliError::Settings(e)) => {
            eprintln!("{e}");
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    match invocation {
        Invocation::Version => {
            print!("{}", cli::version_text());
            ExitCode::SUCCESS
        }
        Invocation::Serve(settings) => serve(*settings),
        Invocation::GenCerts {
            hosts,
            out_dir,
            days,
        } => gen_certs(&hosts, &out_dir, days),
        Invocation::Render {
            settings,
            file,
            namespace,
            output,
            from_cluster,
        } => run_render(
            &settings,
            file.as_deref(),
            namespace.as_deref(),
            output,
            from_cluster,
        ),
        Invocation::Lint {
            settings,
            files,
            namespace,
            strict,
        } => run_lint(&settings, &files, namespace.as_deref(), strict),
    }
}

/// `lint`: findings on stdout, one per line; a summary on stderr. Exit 1 on errors (and on
/// warnings with `--strict`), 2 on unreadable input.
fn run_lint(
    settings: &vault_injector::settings::Settings,
    files: &[String],
    namespace: Option<&str>,
    strict: bool,
) -> ExitCode {
    let mut inputs = Vec::new();
    if files.is_empty() {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("<stdin>: cannot read: {e}");
            return ExitCode::from(cli::EXIT_USAGE);
        }
        inputs.push(("<stdin>".to_owned(), text));
    }
    for path in files {
        match std::fs::read_to_string(path) {
            Ok(text) => inputs.push((path.clone(), text)),
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                return ExitCode::from(cli::EXIT_USAGE);
            }
        }
    }
    let (mut checked, mut errors, mut warnings) = (0, 0, 0);
    for (name, text) in &inputs {
        let report = match lint::lint(text, name, namespace, &settings.agent) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(cli::EXIT_USAGE);
            }
        };
        checked += report.checked;
        for finding in &report.findings {
            println!("{finding}");
            match finding.severity {
                lint::Severity::Error => errors += 1,
                lint::Severity::Warning => warnings += 1,
            }
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    eprintln!(
        "lint: {} checked, {}, {}",
        plural(checked, "pod template"),
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    if errors > 0 || (strict && warnings > 0) {
        ExitCode::from(cli::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

fn serve(settings: vault_injector::settings::Settings) -> ExitCode {
    if let Err(e) = logging::init(settings.server.log_level, settings.server.log_json) {
        eprintln!("{e}");
        return ExitCode::from(cli::EXIT_FAILURE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error starting runtime: {e}");
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };
    let served = runtime.block_on(server::serve(settings));
    // Background work still running (a DNS lookup of the startup Vault check, a watch) must
    // not hold the process after the server has stopped.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(cli::EXIT_FAILURE)
        }
    }
}

/// `gen-certs`: writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `out_dir`.
fn gen_certs(hosts: &[String], out_dir: &str, days: u32) -> ExitCode {
    let lifetime = std::time::Duration::from_secs(u64::from(days) * 24 * 3600);
    let (ca, leaf) = match autotls::dev_certs(hosts, time::OffsetDateTime::now_utc(), lifetime) {
        Ok(certs) => certs,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };
    let dir = std::path::Path::new(out_dir);
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("ca.crt"), &ca))
        .and_then(|()| std::fs::write(dir.join("tls.crt"), &leaf.cert_pem))
        .and_then(|()| write_private(&dir.join("tls.key"), &leaf.key_pem));
    if let Err(e) = written {
        eprintln!("{out_dir}: cannot write the certificates: {e}");
        return ExitCode::from(cli::EXIT_FAILURE);
    }
    println!(
        "Wrote {out_dir}/ca.crt (CA, 10 years), {out_dir}/tls.crt and {out_dir}/tls.key (serving certificate for {}, {days} days)",
        hosts.join(", ")
    );
    ExitCode::SUCCESS
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

fn run_render(
    settings: &vault_injector::settings::Settings,
    file: Option<&str>,
    namespace: Option<&str>,
    output: render::Output,
    from_cluster: bool,
) -> ExitCode {
    let (input, source_name) = match file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (text, path.to_owned()),
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                return ExitCode::from(cli::EXIT_USAGE);
            }
        },
        None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("<stdin>: cannot read: {e}");
                return ExitCode::from(cli::EXIT_USAGE);
            }
            (text, "<stdin>".to_owned())
        }
    };
    match render::render(
        &input,
        &source_name,
        namespace,
        output,
        from_cluster,
        &settings.agent,
    ) {
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(cli::EXIT_USAGE)
        }
        Ok(rendered) => {
            print!("{}", rendered.stdout);
            match rendered.refusal {
                Some(refusal) => {
                    eprintln!("{refusal}");
                    ExitCode::from(cli::EXIT_FAILURE)
                }
                None => ExitCode::SUCCESS,
            }
        }
    }
}
