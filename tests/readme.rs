//! The examples in the README and the other Markdown pages, exercised offline:
//!
//! - every ```` ```console ```` block of the README, `CONTRIBUTING.md` and `docs/` is run: each
//!   `$ ` line with `sh` in the repository root, the freshly built `vault-injector` first on
//!   `PATH`, stderr folded into stdout; the command must exit 0 and print the lines below it (a
//!   line `...` stands for any number of lines);
//! - every `vault-injector ...` command in a ```` ```sh ```` block is parsed by the real command
//!   line (run with `--help` appended, so files need not exist): no unknown flag or bad value;
//! - every ```` ```yaml ```` block parses;
//! - every `vault.hashicorp.com/*` key and `AGENT_INJECT_*` variable named anywhere is declared,
//!   and every chart value given with `--set` exists in `values.yaml`;
//! - the README's example refusal is what `render` prints for that annotation;
//! - every relative link points at a file that exists, and at a heading that exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_yaml_ng::Value as Yaml;
use vault_injector::annotations::keys::{self, Shape};
use vault_injector::settings::{self, SETTINGS};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_vault-injector");

#[test]
fn console_examples_print_what_they_show() {
    let mut ran = 0;
    for file in user_pages() {
        for block in blocks(&file).into_iter().filter(|b| b.lang == "console") {
            for (command, expected) in console_steps(&block.lines) {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(format!("exec 2>&1\n{command}"))
                    .current_dir(ROOT)
                    .env_clear()
                    .env("PATH", search_path())
                    .env("LC_ALL", "C")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                let printed = String::from_utf8_lossy(&out.stdout);
                let lines: Vec<&str> = printed.lines().collect();
                assert!(
                    out.status.success(),
                    "{}:{}: `{command}` failed:\n{printed}",
                    file.name,
                    block.line
                );
                assert!(
                    matches(&expected, &lines),
                    "{}:{}: `{command}` printed\n{printed}\nbut the page shows\n{}",
                    file.name,
                    block.line,
                    expected.join("\n")
                );
                ran += 1;
            }
        }
    }
    assert!(ran >= 4, "only {ran} console examples found");
}

#[test]
fn vault_injector_commands_in_shell_examples_parse() {
    let mut checked = 0;
    for file in all_pages() {
        for block in blocks(&file).into_iter().filter(|b| b.lang == "sh") {
            for line in joined_lines(&block.lines) {
                for segment in line.split(['|', ';']).flat_map(|s| s.split("&&")) {
                    let segment = segment.split(" #").next().unwrap_or_default().trim();
                    let Some(rest) = segment.strip_prefix("vault-injector ") else {
                        continue;
                    };
                    let mut args = shell_words(rest);
                    // A redirection and what follows it belong to the shell.
                    if let Some(i) = args
                        .iter()
                        .position(|a| a.starts_with('>') || a.starts_with("2>"))
                    {
                        args.truncate(i);
                    }
                    args.push("--help".to_owned());
                    let out = Command::new(BIN).args(&args).env_clear().output().unwrap();
                    assert_eq!(
                        out.status.code(),
                        Some(0),
                        "{}:{}: `vault-injector {rest}` does not parse: {}",
                        file.name,
                        block.line,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} commands found");
}

#[test]
fn yaml_examples_parse() {
    let mut parsed = 0;
    for file in all_pages() {
        for block in blocks(&file).into_iter().filter(|b| b.lang == "yaml") {
            let text = block.lines.join("\n");
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                if let Err(e) = <Yaml as serde::Deserialize>::deserialize(doc) {
                    panic!("{}:{}: not YAML: {e}\n{text}", file.name, block.line);
                }
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 5, "only {parsed} YAML examples found");
}

#[test]
fn every_annotation_key_and_setting_named_is_declared() {
    let values: Yaml = serde_yaml_ng::from_str(&read_path(&format!(
        "{ROOT}/charts/vault-injector/values.yaml"
    )))
    .unwrap();
    for file in all_pages() {
        for prefix in [keys::PREFIX, "openbao.org/"] {
            for (i, _) in file.text.match_indices(prefix) {
                let name = word(&file.text[i + prefix.len()..], |c| {
                    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'
                });
                let name = name.trim_end_matches('.');
                // `<key>`, `*` and the like are placeholders.
                if name.is_empty() {
                    continue;
                }
                assert!(
                    annotation_is_declared(name),
                    "{}: {prefix}{name} is not a declared annotation",
                    file.name
                );
            }
        }
        for (i, _) in file.text.match_indices("AGENT_INJECT_") {
            let name = word(&file.text[i..], |c| {
                c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
            });
            // `AGENT_INJECT_VAULT_*` and the like name a group.
            if name.ends_with('_') {
                continue;
            }
            assert!(
                setting_is_declared(name),
                "{}: {name} is not a declared setting",
                file.name
            );
        }
        for (i, _) in file.text.match_indices("--set ") {
            let assignment = word(&file.text[i + "--set ".len()..], |c| !c.is_whitespace());
            let Some((path, _)) = assignment.split_once('=') else {
                continue;
            };
            assert!(
                value_exists(&values, path),
                "{}: --set {path}: no such value in values.yaml",
                file.name
            );
        }
    }
}

#[test]
fn the_readme_refusal_example_is_what_render_prints() {
    let readme = read_path(&format!("{ROOT}/README.md"));
    let tail = "(annotation vault.hashicorp.com/agent-limits-mem: \"128mb\")";
    let end = readme
        .find(tail)
        .expect("the README shows the 128mb refusal")
        + tail.len();
    let start = readme[..end].rfind('`').unwrap() + 1;
    let shown = &readme[start..end];
    let pod = read_path(&format!("{ROOT}/examples/pod.yaml")).replace(
        "vault.hashicorp.com/agent-inject-perms-db.env: \"0440\"",
        "vault.hashicorp.com/agent-limits-mem: \"128mb\"",
    );
    let mut child = Command::new(BIN)
        .args(["render", "-vault-address=http://vault.vault.svc:8200"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), pod.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), shown);
}

#[test]
fn relative_links_point_at_files_and_headings_that_exist() {
    for file in all_pages() {
        let dir = file.path.parent().unwrap();
        for (i, _) in file.text.match_indices("](") {
            let target = word(&file.text[i + 2..], |c| c != ')' && !c.is_whitespace());
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                file.path.clone()
            } else {
                dir.join(path)
            };
            assert!(
                linked.exists(),
                "{}: link to {target}: no such file",
                file.name
            );
            if !anchor.is_empty() && linked.extension().is_some_and(|e| e == "md") {
                let text = read_path(linked.to_str().unwrap());
                let anchors: Vec<String> = text
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .map(|l| slug(l.trim_start_matches('#').trim()))
                    .collect();
                assert!(
                    anchors.iter().any(|a| a == anchor),
                    "{}: link to {target}: no such heading",
                    file.name
                );
            }
        }
    }
}

/// A Markdown page.
struct Page {
    name: String,
    path: PathBuf,
    text: String,
}

/// A fenced code block: its language, first line number and lines (dedented to the fence).
struct Block {
    lang: String,
    line: usize,
    lines: Vec<String>,
}

/// The pages whose console examples are run: the README, CONTRIBUTING.md and docs/.
fn user_pages() -> Vec<Page> {
    let mut names = vec!["README.md".to_owned(), "CONTRIBUTING.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(format!("{ROOT}/docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names.iter().map(|n| page(n)).collect()
}

/// Every page users or contributors read.
fn all_pages() -> Vec<Page> {
    let mut pages = user_pages();
    for name in [
        "SECURITY.md",
        "CHANGELOG.md",
        "BENCHMARKS.md",
        "charts/vault-injector/README.md",
        "webhook-config/README.md",
        "certs/README.md",
    ] {
        pages.push(page(name));
    }
    pages
}

fn page(name: &str) -> Page {
    let path = PathBuf::from(format!("{ROOT}/{name}"));
    Page {
        name: name.to_owned(),
        text: read_path(path.to_str().unwrap()),
        path,
    }
}

fn read_path(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn blocks(page: &Page) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for (n, line) in page.text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if open.is_some() && trimmed == "```" {
            out.extend(open.take().map(|(_, block)| block));
        } else if let Some((fence, block)) = &mut open {
            block.lines.push(line[indent.min(*fence)..].to_owned());
        } else if let Some(lang) = trimmed.strip_prefix("```") {
            let block = Block {
                lang: lang.trim().to_owned(),
                line: n + 1,
                lines: Vec::new(),
            };
            open = Some((indent, block));
        }
    }
    out
}

/// Each `$ command` of a console block with the lines it prints.
fn console_steps(lines: &[String]) -> Vec<(String, Vec<String>)> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push((command.to_owned(), Vec::new()));
        } else if let Some((_, expected)) = steps.last_mut() {
            expected.push(line.clone());
        }
    }
    steps
}

/// Whether `printed` is `expected`, where an expected line `...` matches any number of lines.
fn matches(expected: &[String], printed: &[&str]) -> bool {
    match expected.split_first() {
        None => printed.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=printed.len()).any(|skip| matches(rest, &printed[skip..]))
        }
        Some((first, rest)) => printed
            .split_first()
            .is_some_and(|(line, more)| line == first && matches(rest, more)),
    }
}

/// The lines of a shell block with `\` continuations joined and comment lines left out.
fn joined_lines(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        if current.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// Words as `sh` splits them, for the simple quoting the examples use.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The longest prefix of `text` whose characters satisfy `keep`.
fn word(text: &str, keep: impl Fn(char) -> bool) -> &str {
    let end = text.find(|c: char| !keep(c)).unwrap_or(text.len());
    &text[..end]
}

/// `PATH` with the freshly built binary first.
fn search_path() -> String {
    let dir = Path::new(BIN).parent().unwrap();
    format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display())
}

/// A key, or a member of a declared family of keys (`agent-inject-secret-db`), or a family
/// written with a trailing `-` (`agent-limits-`).
fn annotation_is_declared(name: &str) -> bool {
    keys::ALL.iter().any(|k| {
        let suffix = k.suffix();
        let family = !matches!(k.shape, Shape::Single);
        name == suffix
            || (family && name.starts_with(&format!("{suffix}-")))
            || (name.ends_with('-') && suffix.starts_with(name))
    })
}

/// A documented variable, an alias upstream reads, or OpenBao's name for one.
fn setting_is_declared(name: &str) -> bool {
    SETTINGS.iter().any(|s| {
        s.env == name
            || s.alias == Some(name)
            || settings::bao_alias(s.env).is_some_and(|bao| bao == name)
    })
}

/// Whether `path` (`injector.metrics.enabled`) is in values.yaml; below a map that is empty by
/// default (`injector.extraEnvironmentVars.X`) anything goes.
fn value_exists(values: &Yaml, path: &str) -> bool {
    let mut node = values;
    for key in path.split('.') {
        match node {
            Yaml::Mapping(map) if map.is_empty() => return true,
            Yaml::Mapping(map) => match map.get(key) {
                Some(child) => node = child,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// The anchor GitHub gives a heading.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}
