//! Progress bars for uploads and downloads: bytes, rate and time left, drawn on stderr and only
//! for a person watching (stdout a terminal, no `--json`), so scripts see clean output.

use std::io::IsTerminal;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const TEMPLATE: &str = "{msg:10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";

/// Whether bars are drawn: a person is watching and did not ask for JSON.
pub fn wanted(json: bool) -> bool {
    !json && std::io::stdout().is_terminal()
}

/// A bar for `total` bytes labelled `message`, hidden unless `visible`.
pub fn bar(total: u64, message: &'static str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// `stream` counting each chunk on `bar` as it passes.
pub fn counted<E>(
    stream: impl Stream<Item = Result<Bytes, E>>,
    bar: ProgressBar,
) -> impl Stream<Item = Result<Bytes, E>> {
    stream.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            bar.inc(chunk.len() as u64);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        // `bar` falls back to indicatif's default style on a bad template; this keeps it ours.
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn a_hidden_bar_still_counts() {
        let bar = bar(10, "test", false);
        let chunks = futures::stream::iter([Ok::<_, ()>(Bytes::from_static(b"abc"))]);
        futures::executor::block_on(counted(chunks, bar.clone()).collect::<Vec<_>>());
        assert_eq!(bar.position(), 3);
    }
}
