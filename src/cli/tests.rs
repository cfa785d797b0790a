use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn parse_env(a: &[&str], env: &[(&str, &str)]) -> Result<Invocation, CliError> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    parse(&args(a), &|k| env.get(k).cloned())
}

fn serve_settings(inv: Invocation) -> Settings {
    match inv {
        Invocation::Serve(s) => *s,
        other => panic!("expected serve, got {other:?}"),
    }
}

#[test]
fn go_style_single_dash_flags_and_listen_address_are_accepted() {
    let s = serve_settings(
        parse_env(
            &[
                "vi",
                "serve",
                "-vault-address=http://v:8200",
                "-listen",
                ":9443",
                "-revoke-on-shutdown",
            ],
            &[],
        )
        .unwrap(),
    );
    assert_eq!(s.agent.vault_address, "http://v:8200");
    assert_eq!(s.server.listen, ":9443");
    assert!(s.agent.revoke_on_shutdown);
}

#[test]
fn agent_inject_alias_ignores_the_stray_shell_redirect_argument() {
    let s = serve_settings(
        parse_env(
            &["vi", "agent-inject", "2>&1"],
            &[("AGENT_INJECT_VAULT_ADDR", "http://v")],
        )
        .unwrap(),
    );
    assert_eq!(s.agent.vault_address, "http://v");
}

#[test]
fn flags_after_the_first_positional_argument_are_ignored_like_go() {
    let s = serve_settings(
        parse_env(
            &[
                "vi",
                "serve",
                "-vault-address=a",
                "stray",
                "-vault-address=b",
            ],
            &[],
        )
        .unwrap(),
    );
    assert_eq!(s.agent.vault_address, "a");
}

#[test]
fn environment_wins_over_flags() {
    let s = serve_settings(
        parse_env(
            &["vi", "serve", "--vault-address=flag"],
            &[("AGENT_INJECT_VAULT_ADDR", "env")],
        )
        .unwrap(),
    );
    assert_eq!(s.agent.vault_address, "env");
}

#[test]
fn boolean_flags_take_an_explicit_value_only_with_equals() {
    let s = serve_settings(
        parse_env(
            &[
                "vi",
                "serve",
                "-vault-address=a",
                "-set-security-context=false",
            ],
            &[],
        )
        .unwrap(),
    );
    assert!(!s.agent.set_security_context);
}

#[test]
fn unknown_flags_are_usage_errors() {
    assert!(matches!(
        parse_env(&["vi", "serve", "-no-such-flag=1"], &[]),
        Err(CliError::Clap(_))
    ));
}

#[test]
fn render_takes_file_namespace_and_output() {
    match parse_env(
        &[
            "vi",
            "render",
            "-f",
            "pod.yaml",
            "--namespace",
            "apps",
            "--output",
            "patch",
            "-vault-address=x",
        ],
        &[],
    )
    .unwrap()
    {
        Invocation::Render {
            file,
            namespace,
            output,
            settings,
            from_cluster,
        } => {
            assert!(!from_cluster);
            assert_eq!(file.as_deref(), Some("pod.yaml"));
            assert_eq!(namespace.as_deref(), Some("apps"));
            assert_eq!(output, Output::Patch);
            assert_eq!(settings.agent.vault_address, "x");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_vault_address_is_upstreams_startup_error() {
    match parse_env(&["vi", "serve"], &[]) {
        Err(CliError::Settings(e)) => assert_eq!(e.to_string(), "No Vault service configured"),
        other => panic!("{other:?}"),
    }
}

fn lint_files_and_strict(inv: Result<Invocation, CliError>) -> (Vec<String>, bool, String) {
    match inv {
        Ok(Invocation::Lint {
            files,
            strict,
            settings,
            ..
        }) => (files, strict, settings.agent.vault_address),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lint_needs_no_vault_address_and_takes_flags_after_its_files() {
    let (files, strict, address) = lint_files_and_strict(parse_env(
        &["vi", "lint", "a.yaml", "--strict", "b.yaml"],
        &[],
    ));
    assert_eq!(files, ["a.yaml", "b.yaml"]);
    assert!(strict);
    assert_eq!(address, LINT_VAULT_ADDRESS);
    // A configured address is used; Go-style flags after files too.
    let (files, _, address) = lint_files_and_strict(parse_env(
        &[
            "vi",
            "lint",
            "a.yaml",
            "-f",
            "c.yaml",
            "-vault-address=http://v:8200",
        ],
        &[],
    ));
    assert_eq!(files, ["a.yaml", "c.yaml"]);
    assert_eq!(address, "http://v:8200");
    let (_, _, address) = lint_files_and_strict(parse_env(
        &["vi", "lint"],
        &[("AGENT_INJECT_VAULT_ADDR", "http://e")],
    ));
    assert_eq!(address, "http://e");
    // After `--`, everything is a file.
    let (files, strict, _) =
        lint_files_and_strict(parse_env(&["vi", "lint", "--", "--strict"], &[]));
    assert_eq!(files, ["--strict"]);
    assert!(!strict);
    // Other settings are still validated.
    assert!(matches!(
        parse_env(&["vi", "lint", "-log-level=loud"], &[]),
        Err(CliError::Settings(_))
    ));
}

#[test]
fn render_takes_its_file_as_an_argument_too() {
    match parse_env(
        &[
            "vi",
            "render",
            "pod.yaml",
            "-o",
            "patch",
            "-vault-address=x",
        ],
        &[],
    )
    .unwrap()
    {
        Invocation::Render { file, output, .. } => {
            assert_eq!(file.as_deref(), Some("pod.yaml"));
            assert_eq!(output, Output::Patch);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_env(
            &["vi", "render", "a.yaml", "-f", "b.yaml", "-vault-address=x"],
            &[]
        ),
        Err(CliError::Clap(_))
    ));
}

#[test]
fn every_subcommand_help_shows_its_arguments() {
    let mut cmd = command();
    cmd.build();
    let usage = |name: &str| {
        let mut sub = cmd.find_subcommand(name).unwrap().clone();
        sub.render_usage().to_string()
    };
    assert!(usage("lint").contains("[FILE]..."), "{}", usage("lint"));
    assert!(usage("render").contains("[FILE]"), "{}", usage("render"));
    assert!(usage("serve").contains("[ARG]..."), "{}", usage("serve"));
}

#[test]
fn gen_certs_takes_hosts_out_dir_and_days() {
    let inv = parse_env(
        &[
            "vault-injector",
            "gen-certs",
            "-hosts",
            "a.b,127.0.0.1",
            "--out-dir",
            "/tmp/x",
        ],
        &[],
    )
    .map_err(|e| format!("{e:?}"));
    assert_eq!(
        inv,
        Ok(Invocation::GenCerts {
            hosts: vec!["a.b".into(), "127.0.0.1".into()],
            out_dir: "/tmp/x".into(),
            days: 365
        })
    );
}
