//! Finding a Weights & Biases run in a job's output: its local run directory
//! (`…/wandb/run-<date>-<id>`) and its page (`https://wandb.ai/…`), as `wandb` prints them
//! when a run starts. The scan is a substring search per output chunk and stops once both
//! were found, so a flooding job pays almost nothing for it.

use memchr::memmem;
use reagent::metrics::WandbInfo;

/// Scans output for W&B; remembers what it found.
#[derive(Debug, Default)]
pub struct Detector {
    found: WandbInfo,
    changed: bool,
}

impl Detector {
    /// Scans one chunk of output.
    pub fn feed(&mut self, data: &[u8]) {
        if self.found.url.is_none()
            && let Some(at) = memmem::find(data, b"https://wandb.ai/")
        {
            self.found.url = Some(forward(data, at));
            self.changed = true;
        }
        if self.found.dir.is_none()
            && let Some(at) = memmem::find(data, b"wandb/run-")
        {
            let start = backward(data, at);
            self.found.dir = Some(forward(data, start));
            self.changed = true;
        }
    }

    /// What was found, when something new was since the last call.
    pub fn take_new(&mut self) -> Option<WandbInfo> {
        std::mem::take(&mut self.changed).then(|| self.found.clone())
    }
}

fn ends_token(byte: u8) -> bool {
    byte <= b' ' || byte == 0x1b || byte == b'"' || byte == b'\'' || byte == 0x7f
}

/// The token starting at `start`, up to whitespace, an escape sequence or a quote.
fn forward(data: &[u8], start: usize) -> String {
    let end = data[start..]
        .iter()
        .position(|&b| ends_token(b))
        .map_or(data.len(), |n| start + n);
    String::from_utf8_lossy(&data[start..end]).into_owned()
}

/// Where the token containing `at` starts; skips the tail of a colour sequence before it.
fn backward(data: &[u8], at: usize) -> usize {
    let mut start = data[..at]
        .iter()
        .rposition(|&b| ends_token(b))
        .map_or(0, |n| n + 1);
    if data.get(start) == Some(&b'[')
        && let Some(m) = data[start..at].iter().position(|&b| b == b'm')
    {
        start += m + 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_directory_and_page_in_coloured_output() {
        let mut detector = Detector::default();
        detector.feed(b"starting\r\n");
        assert_eq!(detector.take_new(), None);
        detector.feed(
            b"\x1b[34mwandb\x1b[0m: Run data is saved locally in \x1b[35m/home/a/p/wandb/run-20240101_120000-ab12\x1b[0m\r\n\
              wandb: \xf0\x9f\x9a\x80 View run at \x1b[34m\x1b[4mhttps://wandb.ai/me/proj/runs/ab12\x1b[0m\r\n",
        );
        let found = detector.take_new().unwrap();
        assert_eq!(
            found.dir.as_deref(),
            Some("/home/a/p/wandb/run-20240101_120000-ab12")
        );
        assert_eq!(
            found.url.as_deref(),
            Some("https://wandb.ai/me/proj/runs/ab12")
        );
        detector.feed(b"https://wandb.ai/other");
        assert_eq!(detector.take_new(), None, "the first one found stays");
    }
}
