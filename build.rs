//! Records the git commit the binary is built from, for `vault-injector version`.
//!
//! `VAULT_INJECTOR_COMMIT` is set for the compiler to, in order: the short commit of the
//! checkout this package is the root of (`git rev-parse --short HEAD`); else the build's own
//! `VAULT_INJECTOR_COMMIT` environment variable (for builds from a source archive, where there
//! is no `.git`); else `unknown`. Nothing here can fail the build: without git, or outside a
//! checkout, the fallbacks apply.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=VAULT_INJECTOR_COMMIT");
    let commit = git_commit(&manifest_dir)
        .or_else(|| {
            std::env::var("VAULT_INJECTOR_COMMIT")
                .ok()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VAULT_INJECTOR_COMMIT={commit}");
}

/// The short commit of HEAD, when `dir` is the top of a git checkout and git runs. Also asks
/// cargo to run this again when HEAD moves (a commit, a checkout), and only then.
fn git_commit(dir: &Path) -> Option<String> {
    // A source archive unpacked inside some other repository must not take that one's commit.
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    // HEAD, the branch it points to, and packed-refs (where a branch may live instead); in a
    // worktree these paths differ from `.git/...`, which `--git-path` resolves.
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        // Cargo runs the script every time for a path that does not exist: name only real ones.
        if let Some(path) = git(dir, &["rev-parse", "--git-path", name])
            .map(|p| dir.join(p))
            .filter(|p| p.exists())
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    git(dir, &["rev-parse", "--short", "HEAD"])
}

/// `git ARGS` in `dir`: its trimmed output on success, `None` on any failure.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
