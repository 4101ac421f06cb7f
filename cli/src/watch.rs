//! `custody watch`: follows a node's watch stream (server-sent events), prints each event or
//! finding as it arrives, and reconnects by itself with the last id it printed, so nothing is
//! missed or printed twice across a reconnect or a node restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use serde_json::Value;

/// Longest a stream may stay silent (the node sends a keep-alive every 15 s) before reconnecting.
const SILENCE: Duration = Duration::from_secs(60);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest SSE line read.
const MAX_LINE: usize = 64 * 1024;

/// What to watch (the query of `GET /v1/watch`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub parcel: Option<String>,
    pub member: Option<String>,
    pub origin: Option<String>,
    pub finding: Option<String>,
}

impl Filter {
    fn query(&self) -> String {
        let pairs = [
            ("parcel", &self.parcel),
            ("member", &self.member),
            ("origin", &self.origin),
            ("finding", &self.finding),
        ];
        let parts: Vec<String> = pairs
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        parts.join("&")
    }
}

/// One item of the stream.
struct Item {
    id: String,
    kind: String,
    data: String,
}

fn print(item: &Item, json_out: bool) {
    let data: Value = serde_json::from_str(&item.data).unwrap_or(Value::Null);
    if json_out {
        println!(
            "{}",
            serde_json::json!({"id": item.id, "type": item.kind, "data": data})
        );
    } else if item.kind == "finding" {
        println!(
            "{:>8}  finding  {:<24} {}",
            data["position"],
            data["code"].as_str().unwrap_or("?"),
            data["detail"].as_str().unwrap_or("")
        );
    } else {
        let reason = data["reason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        println!(
            "{:>8}  {:<13} {:<15} {}{}  {}",
            data["position"],
            data["author"].as_str().unwrap_or("?"),
            data["kind"].as_str().unwrap_or("?"),
            data["verdict"].as_str().unwrap_or("?"),
            reason,
            data["event"].as_str().unwrap_or("?")
        );
    }
    let _ = std::io::stdout().flush();
}

/// Reads items from one connection until it ends; returns how many were printed.
/// The next line of `reader` without its end, reading at most [`MAX_LINE`] bytes of it (a node
/// that sends an endless line is cut off, not buffered); `None` at the end of the stream.
fn next_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
        return Err(std::io::Error::other("an SSE line over the limit"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| std::io::Error::other("an SSE line that is not UTF-8"))
}

fn follow(
    mut reader: impl BufRead,
    last: &mut Option<String>,
    json_out: bool,
    max: &mut Option<u64>,
) -> std::io::Result<()> {
    let (mut id, mut kind, mut data) = (None, String::from("message"), String::new());
    while let Some(line) = next_line(&mut reader)? {
        if line.is_empty() {
            if let Some(i) = id.take() {
                let item = Item {
                    id: i,
                    kind: std::mem::take(&mut kind),
                    data: std::mem::take(&mut data),
                };
                print(&item, json_out);
                *last = Some(item.id);
                if let Some(n) = max {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        return Ok(());
                    }
                }
            }
            kind = "message".into();
            continue;
        }
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            if data.len() + v.len() > MAX_LINE {
                return Err(std::io::Error::other("an SSE item over the limit"));
            }
            data.push_str(v.trim_start());
        }
    }
    Ok(())
}

/// Watches until interrupted (or until `max` items were printed), from after item `after`.
pub fn run(
    node: &str,
    filter: &Filter,
    json_out: bool,
    mut max: Option<u64>,
    after: Option<String>,
) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_recv_body(Some(SILENCE))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last: Option<String> = after;
    let mut backoff = Duration::from_millis(200);
    loop {
        let url = format!("{}/v1/watch?{}", node.trim_end_matches('/'), filter.query());
        let mut req = agent.get(&url).header("Accept", "text/event-stream");
        if let Some(id) = &last {
            req = req.header("Last-Event-ID", id);
        }
        match req.call() {
            Ok(mut r) if r.status() == 200 => {
                backoff = Duration::from_millis(200);
                let reader = BufReader::new(r.body_mut().as_reader());
                if let Err(e) = follow(reader, &mut last, json_out, &mut max) {
                    eprintln!("custody watch: stream ended ({e}); reconnecting");
                }
                if max == Some(0) {
                    return Ok(());
                }
            }
            Ok(mut r) => {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                anyhow::bail!("the node refused the watch ({}): {text}", r.status());
            }
            Err(e) => eprintln!("custody watch: {e}; reconnecting in {backoff:?}"),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_up_to_the_limit_and_an_endless_one_is_refused() {
        let mut ok = std::io::Cursor::new(b"id: 3.0\r\ndata: {}\n\n".to_vec());
        assert_eq!(
            next_line(&mut ok).expect("line"),
            Some("id: 3.0".to_owned())
        );
        assert_eq!(
            next_line(&mut ok).expect("line"),
            Some("data: {}".to_owned())
        );
        assert_eq!(next_line(&mut ok).expect("line"), Some(String::new()));
        assert_eq!(next_line(&mut ok).expect("end"), None);
        let endless = vec![b'x'; MAX_LINE * 4];
        let mut r = std::io::Cursor::new(endless);
        assert!(next_line(&mut r).is_err());
        assert!(
            r.position() <= MAX_LINE as u64 + 1,
            "read {} bytes",
            r.position()
        );
    }
}
