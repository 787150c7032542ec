//! Graceful shutdown: one [`Shutdown`] handle, cloned into every server and background job.
//!
//! Servers pass [`Shutdown::cancelled`] to their graceful-shutdown hook; jobs `select!` on it.
//! The process cancels it once on SIGINT or SIGTERM (see [`Shutdown::on_signals`]).

use tokio_util::sync::CancellationToken;

/// A cloneable signal that the process is stopping.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A new, not yet triggered, shutdown signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers shutdown for every clone.
    pub fn trigger(&self) {
        self.0.cancel();
    }

    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once shutdown has been triggered.
    pub async fn cancelled(&self) {
        self.0.cancelled().await;
    }

    /// A signal that is triggered with this one but can also be triggered on its own, so one
    /// embedded service can be stopped without stopping the process.
    pub fn child(&self) -> Self {
        Self(self.0.child_token())
    }

    /// Triggers this signal on SIGINT or SIGTERM.
    pub fn on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            this.trigger();
        });
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the process");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

impl Shutdown {
    /// An owned future that resolves on shutdown, for APIs that need `'static`.
    pub fn cancelled_owned(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.0.clone().cancelled_owned()
    }
}
