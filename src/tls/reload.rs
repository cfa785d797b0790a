//! The watcher of disk mode's certificate files: it publishes every new valid pair into the
//! [`CertStore`], woken by inotify and backed by a periodic re-read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{CertFiles, CertStore, TlsError};
use crate::telemetry::logging::CERT_WATCHER;

/// How often the watcher re-reads the files even without a file-system event, as a fallback
/// for file systems where inotify events do not arrive (some network and overlay mounts).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How long the watcher waits after an event before reading, so that a writer replacing both
/// files is usually seen once, finished, rather than half-way.
const SETTLE_DELAY: Duration = Duration::from_millis(100);

/// Keeps the store in step with the certificate files until dropped.
#[derive(Debug)]
pub struct CertWatcher {
    task: JoinHandle<()>,
}

impl Drop for CertWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `files` and publishing every new valid pair into `store`. Must be called
/// inside a tokio runtime.
///
/// Watching uses inotify (via `notify`) on the files' parent directories, not the files: the
/// kubelet updates Secret volumes by re-pointing the `..data` symlink, which changes no watched
/// file inode but is an event in the directory. A poll every [`POLL_INTERVAL`] backs this up.
/// A changed pair that is unreadable, invalid or mismatched is logged and the old certificate
/// stays in service; it is retried when the files change again.
pub fn watch(store: CertStore, files: CertFiles) -> CertWatcher {
    watch_every(store, files, POLL_INTERVAL)
}

/// [`watch`] with another poll interval.
pub fn watch_every(store: CertStore, files: CertFiles, poll: Duration) -> CertWatcher {
    let wake = Arc::new(Notify::new());
    let fs_watcher = start_fs_watcher(&files, wake.clone());
    let task = tokio::spawn(async move {
        // Held by the task so the inotify watches live exactly as long as it does.
        let _fs_watcher = fs_watcher;
        let mut reloader = Reloader::new(files);
        // The pair loaded at startup is the baseline; don't log it as a change.
        reloader.check(&store);
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = wake.notified() => tokio::time::sleep(SETTLE_DELAY).await,
                _ = ticker.tick() => {}
            }
            reloader.check(&store);
        }
    });
    CertWatcher { task }
}

fn start_fs_watcher(files: &CertFiles, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};

    let names = [&files.cert, &files.key].map(|p| p.file_name().map(ToOwned::to_owned));
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            // Our own reads show up as access events; reacting to them would loop.
            if let Ok(event) = event
                && !matches!(event.kind, EventKind::Access(_))
                && concerns_pair(&event.paths, &names)
            {
                wake.notify_one();
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(target: CERT_WATCHER, Cert = %files.cert.display(), Key = %files.key.display(), Error = %e, "could not watch the certificate files; polling only");
            return None;
        }
    };
    let dirs: BTreeSet<PathBuf> = [&files.cert, &files.key]
        .into_iter()
        .map(|p| parent_dir(p))
        .collect();
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(target: CERT_WATCHER, Path = %dir.display(), Error = %e, "could not watch directory; polling only");
        }
    }
    Some(watcher)
}

/// Whether a change in a watched directory can concern the pair: the cert or key file itself,
/// or the kubelet's `..data` symlink and `..<timestamp>` directories. Anything else written
/// there (a log file, say) would otherwise cost a re-read of both files per write.
fn concerns_pair(paths: &[PathBuf], names: &[Option<std::ffi::OsString>; 2]) -> bool {
    // An event without paths (a queue overflow, a rescan) may hide anything.
    paths.is_empty()
        || paths.iter().any(|p| match p.file_name() {
            None => true,
            Some(name) => {
                names.iter().flatten().any(|n| n == name)
                    || name.as_encoded_bytes().starts_with(b"..")
            }
        })
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What one look at the files found.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The bytes are those last seen.
    Unchanged,
    /// A new valid pair is now served.
    Reloaded,
    /// The files changed but could not be used; the previous certificate is kept.
    Rejected(TlsError),
}

/// Compares the files with the pair last seen and publishes changes. Separate from the task so
/// the decision logic is testable without timing.
#[derive(Debug)]
pub struct Reloader {
    files: CertFiles,
    last_seen: Option<(Vec<u8>, Vec<u8>)>,
    last_error: Option<String>,
}

impl Reloader {
    /// A reloader that has seen nothing yet.
    pub fn new(files: CertFiles) -> Self {
        Self {
            files,
            last_seen: None,
            last_error: None,
        }
    }

    /// Reads the files and publishes a changed, valid pair into `store`.
    pub fn check(&mut self, store: &CertStore) -> ReloadOutcome {
        let first = self.last_seen.is_none() && self.last_error.is_none();
        let outcome = self.check_quietly(store);
        match &outcome {
            ReloadOutcome::Unchanged => {}
            ReloadOutcome::Reloaded if first => {}
            ReloadOutcome::Reloaded => {
                tracing::info!(
                    target: CERT_WATCHER,
                    Cert = %self.files.cert.display(),
                    Key = %self.files.key.display(),
                    "Updated serving certificate"
                );
            }
            ReloadOutcome::Rejected(e) => {
                // Log each distinct problem once, not on every poll while it lasts.
                let text = e.to_string();
                if self.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(target: CERT_WATCHER, Cert = %self.files.cert.display(), Key = %self.files.key.display(), Error = %text, "error loading next cert; keeping the current one");
                    self.last_error = Some(text);
                }
            }
        }
        outcome
    }

    fn check_quietly(&mut self, store: &CertStore) -> ReloadOutcome {
        let (cert_pem, key_pem) = match self.files.read() {
            Ok(pair) => pair,
            Err(e) => return ReloadOutcome::Rejected(e),
        };
        if self
            .last_seen
            .as_ref()
            .is_some_and(|(c, k)| *c == cert_pem && *k == key_pem)
        {
            return ReloadOutcome::Unchanged;
        }
        let parsed = self.files.parse(&cert_pem, &key_pem);
        // Remember the bytes even when invalid, so a bad pair is not re-parsed every poll.
        self.last_seen = Some((cert_pem, key_pem));
        match parsed {
            Ok(key) => {
                store.set(key);
                self.last_error = None;
                ReloadOutcome::Reloaded
            }
            Err(e) => ReloadOutcome::Rejected(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::tests::{self_signed, served_der, write};
    use super::*;

    #[test]
    fn only_changes_to_the_pair_or_the_kubelets_data_links_wake_the_reloader() {
        let names = [Some("tls.crt".into()), Some("tls.key".into())];
        let at = |p: &str| vec![PathBuf::from(p)];
        assert!(concerns_pair(&at("/etc/certs/tls.crt"), &names));
        assert!(concerns_pair(&at("/etc/certs/tls.key"), &names));
        assert!(concerns_pair(&at("/etc/certs/..data"), &names));
        assert!(concerns_pair(&at("/etc/certs/..data_tmp"), &names));
        assert!(concerns_pair(
            &at("/etc/certs/..2026_11_30_22_00_00.1"),
            &names
        ));
        assert!(concerns_pair(&[], &names), "a rescan may hide anything");
        assert!(!concerns_pair(&at("/etc/certs/injector.log"), &names));
        assert!(!concerns_pair(&at("/etc/certs/tls.crt.bak"), &names));
    }

    #[test]
    fn reloader_publishes_changes_and_keeps_the_old_pair_when_the_new_one_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed();
        let files = write(dir.path(), &first);
        let store = CertStore::new();
        let mut reloader = Reloader::new(files.clone());

        assert!(matches!(reloader.check(&store), ReloadOutcome::Reloaded));
        assert_eq!(served_der(&store), first.der);
        assert!(matches!(reloader.check(&store), ReloadOutcome::Unchanged));

        // Half-way through a non-atomic update: new cert, old key.
        let second = self_signed();
        std::fs::write(&files.cert, &second.cert_pem).unwrap();
        assert!(matches!(
            reloader.check(&store),
            ReloadOutcome::Rejected(TlsError::Mismatch { .. })
        ));
        assert_eq!(served_der(&store), first.der);
        // The same bad bytes are not re-parsed.
        assert!(matches!(reloader.check(&store), ReloadOutcome::Unchanged));

        std::fs::write(&files.key, &second.key_pem).unwrap();
        assert!(matches!(reloader.check(&store), ReloadOutcome::Reloaded));
        assert_eq!(served_der(&store), second.der);

        // A vanished file is an error too, and the current pair stays.
        std::fs::remove_file(&files.key).unwrap();
        assert!(matches!(
            reloader.check(&store),
            ReloadOutcome::Rejected(TlsError::Read { .. })
        ));
        assert_eq!(served_der(&store), second.der);
    }
}
