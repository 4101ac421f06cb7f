//! The demo's network kept running (`custody demo --keep-running`), for tests that look at what
//! its nodes serve: the explorer's pages, EPCIS documents.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The demo's network, kept running, stopped when dropped.
#[derive(Debug)]
pub struct Demo {
    child: Child,
    /// The first node's HTTP address.
    pub url: String,
    /// The exported parcel.
    pub mix: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `custody demo --keep-running` and reads the monitor's address and the exported parcel.
pub fn demo(cli: &Path) -> Demo {
    let mut child = Command::new(cli)
        .args(["demo", "--keep-running"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    // Read on in the background: a closed pipe would stop the demo and its nodes.
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        let mut mix = None;
        let mut sent = false;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let (None, Some(id)) = (&mix, line.strip_prefix("parcel ")) {
                mix = Some(id.trim().to_owned());
            }
            let url = line
                .split("--node ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            if let (false, Some(url), Some(mix)) = (sent, url, &mix) {
                let _ = tx.send((url.to_owned(), mix.clone()));
                sent = true;
            }
        }
    });
    let (url, mix) = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the demo prints the exported parcel and a node's address");
    Demo { child, url, mix }
}
