//! Test harness: start real custody nodes as processes on loopback, talk to their HTTP API, wait on conditions.

pub mod attack;
pub mod demo;
pub mod disk;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ledger_core::codec;
use ledger_core::dev::{dev_key, DevNetwork};
use serde_json::Value;

pub mod fuzz;
pub mod workload;

/// How long a node may take to start.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `check` returns `Some`, polling until `deadline` has passed; panics with `what`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + deadline;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The path of the node binary built for these tests (Cargo tells integration tests only, so
/// this expands in the test that uses it).
#[macro_export]
macro_rules! node_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_test-custody-node"))
    };
}

/// The path of the CLI binary built in this package (usable from this package's tests).
#[macro_export]
macro_rules! cli_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_test-custody"))
    };
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// How a test node is set up.
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    /// The member it signs for (a member of `DevNetwork::standard()`), or none for an observer.
    pub member: Option<String>,
    /// Addresses to dial at start.
    pub bootstrap: Vec<String>,
    /// Seconds between anti-entropy rounds.
    pub sync_secs: u64,
    /// The network's genesis, when not `DevNetwork::standard()`'s.
    pub genesis: Option<ledger_core::types::Genesis>,
}

/// A running node process with its own directory and sled store.
#[derive(Debug)]
pub struct TestNode {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub http: String,
    pub token: String,
    child: Option<Child>,
    agent: ureq::Agent,
}

impl TestNode {
    /// Writes a configuration for `spec` into `dir` (keeping any existing data) and starts the node.
    pub fn start(bin: &Path, dir: &Path, spec: &NodeSpec) -> TestNode {
        TestNode::start_with_limits(bin, dir, spec, &[])
    }

    /// As [`TestNode::start`], with more `[limits]` entries (name, value) in the configuration.
    pub fn start_with_limits(
        bin: &Path,
        dir: &Path,
        spec: &NodeSpec,
        limits: &[(&str, u64)],
    ) -> TestNode {
        std::fs::create_dir_all(dir).expect("node dir");
        let genesis = spec
            .genesis
            .clone()
            .unwrap_or_else(|| DevNetwork::standard().genesis());
        std::fs::write(dir.join("genesis.bin"), codec::encode(&genesis)).expect("genesis");
        let mut config = format!(
            "data_dir = \"data\"\ngenesis = \"genesis.bin\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nhttp = \"127.0.0.1:0\"\nlog = \"info,libp2p=warn\"\nbootstrap = {:?}\n",
            spec.bootstrap
        );
        if let Some(member) = &spec.member {
            custody_node::config::write_secret_key(&dir.join("member.key"), &dev_key(member))
                .expect("key");
            config.push_str(&format!(
                "member = \"{member}\"\nmember_key = \"member.key\"\n"
            ));
        }
        config.push_str(&format!(
            "[limits]\nsync_interval_secs = {}\n",
            spec.sync_secs.max(1)
        ));
        for (name, value) in limits {
            config.push_str(&format!("{name} = {value}\n"));
        }
        std::fs::write(dir.join("config.toml"), config).expect("config");
        TestNode::launch(bin, dir)
    }

    /// Starts (or restarts) the node in `dir` from its existing configuration.
    pub fn launch(bin: &Path, dir: &Path) -> TestNode {
        let addr_file = dir.join("data/http.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .expect("log file");
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node");
        let mut node = TestNode {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            http: String::new(),
            token: String::new(),
            child: Some(child),
            agent: agent(),
        };
        node.http = wait_for("the node's HTTP address", START_DEADLINE, || {
            if let Some(status) = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("node exited at start with {status}; log:\n{}", node.log());
            }
            std::fs::read_to_string(&addr_file)
                .ok()
                .filter(|s| !s.is_empty())
        });
        node.token = std::fs::read_to_string(dir.join("data/api-token"))
            .expect("token")
            .trim()
            .to_owned();
        wait_for("a libp2p listen address", START_DEADLINE, || {
            node.p2p_addr()
        });
        node
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> Reply {
        let url = format!("http://{}{path}", self.http);
        let mut r = self
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("read body");
        Reply {
            status: r.status().as_u16(),
            body,
        }
    }

    /// GET a path; a transport error (refused, reset, timed out) is returned, not a panic.
    pub fn try_get(&self, path: &str) -> Result<Reply, String> {
        let url = format!("http://{}{path}", self.http);
        let mut r = self.agent.get(&url).call().map_err(|e| e.to_string())?;
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            status: r.status().as_u16(),
            body,
        })
    }

    /// POST an action with this node's token; a transport error is returned, not a panic.
    pub fn try_act(&self, action: &Value) -> Result<Reply, String> {
        let url = format!("http://{}/v1/actions", self.http);
        let mut r = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", &format!("Bearer {}", self.token))
            .send(action.to_string().as_bytes())
            .map_err(|e| e.to_string())?;
        let body = r.body_mut().read_to_vec().map_err(|e| e.to_string())?;
        Ok(Reply {
            status: r.status().as_u16(),
            body,
        })
    }

    /// GET a path that must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(
            r.status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// POST a body with the given content type and authorization (None: no header).
    pub fn post(&self, path: &str, content_type: &str, body: &[u8], token: Option<&str>) -> Reply {
        let url = format!("http://{}{path}", self.http);
        let mut req = self.agent.post(&url).header("content-type", content_type);
        if let Some(t) = token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let mut r = req.send(body).unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let body = r.body_mut().read_to_vec().expect("read body");
        Reply {
            status: r.status().as_u16(),
            body,
        }
    }

    /// POST an action as this node's member; returns the reply.
    pub fn act(&self, action: &Value) -> Reply {
        self.post(
            "/v1/actions",
            "application/json",
            action.to_string().as_bytes(),
            Some(&self.token),
        )
    }

    /// POST an action that must be signed and applied; returns the event id.
    pub fn act_ok(&self, action: &Value) -> String {
        let r = self.act(action);
        let v = r.json();
        assert_eq!(
            (r.status, v["verdict"].as_str()),
            (200, Some("applied")),
            "{action}: {v}"
        );
        v["event"].as_str().expect("event id").to_owned()
    }

    /// POST exact event bytes.
    pub fn submit(&self, bytes: &[u8]) -> Reply {
        self.post(
            "/v1/events",
            "application/octet-stream",
            bytes,
            Some(&self.token),
        )
    }

    /// The status document.
    pub fn status(&self) -> Value {
        self.get_json("/v1/status")
    }

    /// The digest of the node's whole ledger state.
    pub fn state_root(&self) -> Value {
        self.get_json("/v1/state")["state_root"].clone()
    }

    /// The first libp2p listen address with the peer id, once known.
    pub fn p2p_addr(&self) -> Option<String> {
        let url = format!("http://{}/v1/status", self.http);
        let mut r = self.agent.get(&url).call().ok()?;
        let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().ok()?).ok()?;
        v["listen"].as_array()?.first()?.as_str().map(str::to_owned)
    }

    /// True when the node has event `id`.
    pub fn has_event(&self, id: &str) -> bool {
        self.get(&format!("/v1/events/{id}")).status == 200
    }

    /// A metric's value from /metrics (the first sample whose line starts with `name`).
    pub fn metric(&self, name: &str) -> f64 {
        let text = String::from_utf8(self.get("/metrics").body).expect("utf-8");
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// Resident memory of the process in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Number of threads of the process (from /proc).
    pub fn threads(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Starts this node again from its directory (after `kill` or `terminate`).
    pub fn restart(&mut self) {
        let fresh = TestNode::launch(&self.bin, &self.dir);
        *self = fresh;
    }

    /// SIGKILL: the process dies at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (with a deadline) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_for(
            "the node to exit after SIGTERM",
            Duration::from_secs(30),
            || child.try_wait().ok().flatten(),
        )
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until every node of `nodes` has stored `event`, or panics after `deadline` for a node.
pub fn wait_everywhere(nodes: &[TestNode], event: &str, deadline: Duration) {
    for n in nodes {
        wait_for(&format!("event {event} at {}", n.http), deadline, || {
            n.has_event(event).then_some(())
        });
    }
}

/// Starts one node per member of `members` (of `DevNetwork::standard()`) in `dir/n0`, `dir/n1`,
/// ...: each bootstraps to the first and to the one started before it (a connected graph, not a
/// complete one). Returns once every node has a peer.
pub fn start_network(bin: &Path, dir: &Path, members: &[&str], sync_secs: u64) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let mut bootstrap = Vec::new();
        if let Some(first) = nodes.first() {
            bootstrap.push(first.p2p_addr().expect("address"));
        }
        if i > 1 {
            bootstrap.push(nodes[i - 1].p2p_addr().expect("address"));
        }
        let spec = NodeSpec {
            member: Some((*member).to_owned()),
            bootstrap,
            sync_secs,
            ..NodeSpec::default()
        };
        nodes.push(TestNode::start(bin, &dir.join(format!("n{i}")), &spec));
    }
    wait_for("every node to have a peer", START_DEADLINE, || {
        nodes
            .iter()
            .all(|n| {
                n.status()["peers"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
            .then_some(())
    });
    nodes
}

/// A gossipsub behaviour as a raw libp2p peer uses it.
pub type Gossip = libp2p::gossipsub::Behaviour<
    libp2p::gossipsub::IdentityTransform,
    libp2p::gossipsub::AllowAllSubscriptionFilter,
>;

/// A raw libp2p peer (TCP, noise, yamux, gossipsub with `config`, unsigned messages as the
/// nodes use them: StrictNoSign) subscribed to `topic` and connected to `addr`; returns once
/// `target` has subscribed to it.
pub async fn gossip_peer(
    addr: libp2p::Multiaddr,
    target: libp2p::PeerId,
    topic: &libp2p::gossipsub::IdentTopic,
    config: libp2p::gossipsub::Config,
) -> libp2p::Swarm<Gossip> {
    use futures::StreamExt;
    use libp2p::gossipsub::{Event, MessageAuthenticity};
    use libp2p::swarm::SwarmEvent;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| Gossip::new(MessageAuthenticity::Anonymous, config).expect("gossipsub"))
        .expect("behaviour")
        .build();
    swarm.behaviour_mut().subscribe(topic).expect("subscribe");
    swarm.dial(addr).expect("dial");
    tokio::time::timeout(START_DEADLINE, async {
        loop {
            if let SwarmEvent::Behaviour(Event::Subscribed { peer_id, .. }) =
                swarm.select_next_some().await
            {
                if peer_id == target {
                    break;
                }
            }
        }
    })
    .await
    .expect("the target subscribes within the deadline");
    swarm
}

/// Today's date (UTC), as `YYYY-MM-DD`: registrations declare it as their extraction date, so
/// audits do not report them as late.
pub fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ledger_core::types::Date::from_unix_ms(now).to_string()
}

/// An issue and an expiry date around today (a certificate is valid for at most the policy's
/// days, and a dispatch must come before its certificate expires), as `YYYY-MM-DD`.
pub fn certificate_dates() -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let today = ledger_core::types::Date::from_unix_ms(now);
    (
        ledger_core::types::Date(today.0.saturating_sub(30)).to_string(),
        ledger_core::types::Date(today.0 + 90).to_string(),
    )
}

/// A JSON register action at `site`.
pub fn register(site: &str, carats: u64) -> Value {
    serde_json::json!({ "kind": "register", "site": site, "carats": carats, "stones": 3, "extracted_on": today() })
}

/// The parcel id created by registration event `event` (output 0).
pub fn registered_parcel(event: &str) -> String {
    let id: ledger_core::bytes::EventId = event.parse().expect("event id");
    ledger_core::rules::parcel_id(&id, 0).to_hex()
}

impl TestNode {
    /// POST a JSON body with this node's token; returns the reply.
    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post(
            path,
            "application/json",
            body.to_string().as_bytes(),
            Some(&self.token),
        )
    }

    /// The exact bytes of stored event `id` (from the `raw` field of `/v1/events/{id}`).
    pub fn event_bytes(&self, id: &str) -> Vec<u8> {
        let raw = self.get_json(&format!("/v1/events/{id}"))["raw"]
            .as_str()
            .expect("raw hex")
            .to_owned();
        (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Every event of the node's log, in its storing order (from `/v1/export`).
    pub fn export_events(&self) -> Vec<Vec<u8>> {
        let r = self.get("/v1/export");
        assert_eq!(r.status, 200, "export");
        ledger_core::export::ExportReader::new(r.body.as_slice())
            .map(|rec| rec.expect("export record").bytes)
            .collect()
    }
}

/// The id (hex) of an event, from its exact bytes.
pub fn event_id_of(bytes: &[u8]) -> String {
    let payload = &bytes[..bytes.len().saturating_sub(64)];
    ledger_core::admission::event_id(payload).to_hex()
}

/// As [`wait_for`], polling every `pause` without backing off: for timing measurements, where
/// a growing pause would blur the figure.
pub fn wait_for_every<T>(
    what: &str,
    deadline: Duration,
    pause: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(pause);
    }
}
