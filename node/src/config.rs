//! The node's configuration file (TOML) and the files it points to: genesis, member key, API token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use ledger_core::bytes::{from_hex, to_hex};
use ledger_core::crypto::SecretKey;
use ledger_core::governance::decode_genesis;
use ledger_core::types::{Genesis, MemberId};

/// Largest configuration, key or token file read.
pub const MAX_SMALL_FILE: u64 = 64 * 1024;
/// Default HTTP API address (loopback).
pub const DEFAULT_HTTP: &str = "127.0.0.1:7300";
/// Default libp2p listen address.
pub const DEFAULT_LISTEN: &str = "/ip4/127.0.0.1/tcp/7301";

/// Why the configuration or one of its files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_SMALL_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a small file whole, refusing anything over [`MAX_SMALL_FILE`].
pub fn read_small(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_SMALL_FILE {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read(path).map_err(io(path))
}

/// Writes a file readable by its owner only (mode 0600), replacing any old one atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Default of `[limits] http_max_connections`: HTTP connections served at once.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 256;
/// Most HTTP connections `http_max_connections` may allow.
pub const HTTP_CONNECTIONS_CEILING: usize = 65_536;
/// Default of `[limits] http_header_timeout_secs`: seconds a request's header may take to arrive,
/// counted from when the node starts waiting for it (at connect, and after each answer).
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default of `[limits] http_idle_timeout_secs`: seconds an HTTP connection may go with no byte
/// read or written before it is dropped.
pub const DEFAULT_HTTP_IDLE_TIMEOUT_SECS: u64 = 30;
/// Default of `[limits] http_write_timeout_secs`: seconds a response write may stay blocked (the
/// client reads nothing) before the connection is dropped.
pub const DEFAULT_HTTP_WRITE_TIMEOUT_SECS: u64 = 20;
/// Default of `[limits] http_shutdown_secs`: seconds open HTTP connections get to finish at
/// shutdown before they are dropped.
pub const DEFAULT_HTTP_SHUTDOWN_SECS: u64 = 5;
/// Longest HTTP timeout or deadline `[limits]` accepts (a day).
pub const MAX_HTTP_TIMEOUT_SECS: u64 = 86_400;

/// Bounds the node enforces (all have defaults).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most events waiting for a dependency.
    pub max_pending_events: usize,
    /// Most events of one author waiting for a dependency.
    pub max_pending_per_author: usize,
    /// Most simultaneous libp2p connections in all.
    pub max_connections: u32,
    /// Most established inbound libp2p connections (peers that dialled us).
    pub max_inbound: u32,
    /// Most established outbound libp2p connections (peers we dialled): kept apart from inbound
    /// so that peers dialling in cannot take the slots this node needs to reach its bootstrap peers.
    pub max_outbound: u32,
    /// Most connections (pending or established) from one IP address.
    pub max_per_ip: u32,
    /// Seconds between anti-entropy rounds with every connected peer.
    pub sync_interval_secs: u64,
    /// Invalid messages from one peer before it is banned.
    pub max_peer_faults: u32,
    /// Most HTTP connections served at once (1 to [`HTTP_CONNECTIONS_CEILING`]); one more is
    /// answered 503 `busy` and closed.
    #[serde(deserialize_with = "http_connections")]
    pub http_max_connections: usize,
    /// Seconds a request header may take, from when the node starts waiting for it.
    #[serde(deserialize_with = "http_secs")]
    pub http_header_timeout_secs: u64,
    /// Seconds with no byte read or written after which an HTTP connection is dropped.
    #[serde(deserialize_with = "http_secs")]
    pub http_idle_timeout_secs: u64,
    /// Seconds a blocked response write may make no progress before the connection is dropped.
    #[serde(deserialize_with = "http_secs")]
    pub http_write_timeout_secs: u64,
    /// Seconds HTTP connections get to finish at shutdown; then they are dropped.
    #[serde(deserialize_with = "http_secs")]
    pub http_shutdown_secs: u64,
    /// Seconds between checkpoints this node cosigns when its member has the witness duty
    /// (0: never; at most [`MAX_CHECKPOINT_INTERVAL_SECS`]).
    #[serde(deserialize_with = "checkpoint_secs")]
    pub checkpoint_interval_secs: u64,
}

/// Longest interval between a witness's checkpoints: a day.
pub const MAX_CHECKPOINT_INTERVAL_SECS: u64 = 86_400;
/// Default interval between a witness's checkpoints: ten minutes.
pub const DEFAULT_CHECKPOINT_INTERVAL_SECS: u64 = 600;

/// A checkpoint interval: 0 (never) to [`MAX_CHECKPOINT_INTERVAL_SECS`] seconds.
fn checkpoint_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n <= MAX_CHECKPOINT_INTERVAL_SECS {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} seconds between checkpoints: give 0 (never) to {MAX_CHECKPOINT_INTERVAL_SECS}"
        )))
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_pending_events: 65_536,
            max_pending_per_author: ledger_core::ledger::MAX_PENDING_PER_AUTHOR,
            max_connections: 96,
            max_inbound: 64,
            max_outbound: 32,
            max_per_ip: 16,
            sync_interval_secs: 5,
            max_peer_faults: 10,
            http_max_connections: DEFAULT_HTTP_MAX_CONNECTIONS,
            http_header_timeout_secs: DEFAULT_HTTP_HEADER_TIMEOUT_SECS,
            http_idle_timeout_secs: DEFAULT_HTTP_IDLE_TIMEOUT_SECS,
            http_write_timeout_secs: DEFAULT_HTTP_WRITE_TIMEOUT_SECS,
            http_shutdown_secs: DEFAULT_HTTP_SHUTDOWN_SECS,
            checkpoint_interval_secs: DEFAULT_CHECKPOINT_INTERVAL_SECS,
        }
    }
}

/// An HTTP connection cap: 1 to [`HTTP_CONNECTIONS_CEILING`].
fn http_connections<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if (1..=HTTP_CONNECTIONS_CEILING).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} HTTP connections: give 1 to {HTTP_CONNECTIONS_CEILING}"
        )))
    }
}

/// An HTTP timeout or deadline: 1 to [`MAX_HTTP_TIMEOUT_SECS`] seconds.
fn http_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if (1..=MAX_HTTP_TIMEOUT_SECS).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} seconds: give 1 to {MAX_HTTP_TIMEOUT_SECS}"
        )))
    }
}

/// The configuration file. Relative paths are relative to the file's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the sled store, the node's libp2p key and the API token live.
    pub data_dir: PathBuf,
    /// The genesis document (binary, as written by `custody genesis new`).
    pub genesis: PathBuf,
    /// The member this node signs for, and its key file (hex of the 32 secret bytes). Without
    /// them the node is a read-only observer that syncs, verifies and serves.
    #[serde(default)]
    pub member: Option<MemberId>,
    #[serde(default)]
    pub member_key: Option<PathBuf>,
    /// libp2p listen addresses.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Peers dialled at start (multiaddrs with /p2p/ peer ids or plain).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// HTTP API address; loopback by default.
    #[serde(default = "default_http")]
    pub http: SocketAddr,
    /// tracing filter, e.g. "info" or "custody_node=debug".
    #[serde(default = "default_log")]
    pub log: String,
    #[serde(default)]
    pub limits: LimitsConfig,
}

fn default_listen() -> Vec<String> {
    vec![DEFAULT_LISTEN.to_owned()]
}

fn default_http() -> SocketAddr {
    DEFAULT_HTTP
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7300)))
}

fn default_log() -> String {
    "info".to_owned()
}

impl Config {
    /// A configuration with defaults for a node whose files live in `data_dir`.
    pub fn new(data_dir: PathBuf, genesis: PathBuf) -> Config {
        Config {
            data_dir,
            genesis,
            member: None,
            member_key: None,
            listen: default_listen(),
            bootstrap: Vec::new(),
            http: default_http(),
            log: default_log(),
            limits: LimitsConfig::default(),
        }
    }

    /// Reads a configuration file and makes its paths absolute.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_small(path)?;
        let text = String::from_utf8(text).map_err(|_| ConfigError::Invalid {
            path: path.to_owned(),
            message: "not UTF-8".into(),
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.genesis = base.join(&config.genesis);
        config.member_key = config.member_key.map(|k| base.join(k));
        if config.member.is_some() != config.member_key.is_some() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: "member and member_key must be given together".into(),
            });
        }
        Ok(config)
    }

    /// Writes the configuration as TOML.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(io(path))
    }

    /// The genesis document.
    pub fn read_genesis(&self) -> Result<Genesis, ConfigError> {
        let bytes = std::fs::read(&self.genesis).map_err(io(&self.genesis))?;
        decode_genesis(&bytes).map_err(|e| ConfigError::Invalid {
            path: self.genesis.clone(),
            message: e.to_string(),
        })
    }

    /// The member key, if this node signs for a member.
    pub fn read_member_key(&self) -> Result<Option<SecretKey>, ConfigError> {
        self.member_key.as_deref().map(read_secret_key).transpose()
    }

    /// The sled directory.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The API token file.
    pub fn token_path(&self) -> PathBuf {
        self.data_dir.join("api-token")
    }

    /// The node's libp2p identity key file.
    pub fn node_key_path(&self) -> PathBuf {
        self.data_dir.join("node.key")
    }
}

/// Reads a secret key file: 64 hex characters (surrounding whitespace allowed).
pub fn read_secret_key(path: &Path) -> Result<SecretKey, ConfigError> {
    let text = read_small(path)?;
    let text = std::str::from_utf8(&text).unwrap_or("").trim();
    let bytes = from_hex::<32>(text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: format!("not a key file: {e}"),
    })?;
    Ok(SecretKey::from_bytes(&bytes))
}

/// Writes a secret key file (mode 0600).
pub fn write_secret_key(path: &Path, key: &SecretKey) -> Result<(), ConfigError> {
    write_private(path, format!("{}\n", to_hex(&key.to_bytes())).as_bytes())
}

/// Reads the API token, creating a random one (mode 0600) if there is none.
pub fn api_token(path: &Path) -> Result<String, ConfigError> {
    if path.exists() {
        let text = read_small(path)?;
        let token = String::from_utf8_lossy(&text).trim().to_owned();
        if token.len() >= 32 {
            return Ok(token);
        }
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            message: "token is shorter than 32 characters".into(),
        });
    }
    let token = to_hex(&rand::random::<[u8; 32]>());
    write_private(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(limits: &str) -> Result<Config, String> {
        let text = format!("data_dir = \"d\"\ngenesis = \"g\"\n[limits]\n{limits}\n");
        toml::from_str(&text).map_err(|e| e.to_string())
    }

    /// A configuration that would serve no HTTP connection, time out every request at once, or
    /// overflow a timer is refused, naming the limit and the range to give.
    #[test]
    fn http_limits_out_of_range_are_refused() {
        for (line, says) in [
            ("http_max_connections = 0", "give 1 to 65536"),
            ("http_max_connections = 100000000", "give 1 to 65536"),
            ("http_header_timeout_secs = 0", "give 1 to 86400"),
            ("http_idle_timeout_secs = 0", "give 1 to 86400"),
            (
                "http_write_timeout_secs = 18446744073709551615",
                "give 1 to 86400",
            ),
            ("http_shutdown_secs = 0", "give 1 to 86400"),
        ] {
            let e = parse(line).expect_err(line);
            let name = line.split(' ').next().unwrap_or_default();
            assert!(e.contains(says) && e.contains(name), "{line}: {e}");
        }
        let ok = parse("http_max_connections = 3\nhttp_idle_timeout_secs = 2").expect("valid");
        assert_eq!(ok.limits.http_max_connections, 3);
        assert_eq!(ok.limits.http_idle_timeout_secs, 2);
        assert_eq!(
            ok.limits.http_header_timeout_secs,
            DEFAULT_HTTP_HEADER_TIMEOUT_SECS
        );
    }
}
