//! Where Redis is: one server (`redis://`, `rediss://`, `redis+unix://`), a primary
//! that Sentinel names (`redis+sentinel://`, `rediss+sentinel://`) or a Redis Cluster
//! found from seed nodes (`redis+cluster://`, `rediss+cluster://`), with the TLS files to
//! trust it by.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, IntoConnectionInfo, TlsCertificates, TlsMode};
use serde::Deserialize;

use crate::redact_url;

/// The port Sentinel listens on when a `redis+sentinel://` host names none.
pub const SENTINEL_PORT: u16 = 26379;

/// What the URL forms look like, for error messages.
pub const URL_FORMS: &str = "redis://[user:password@]host[:port][/db], rediss://… for TLS, \
     redis+unix:///path/to/socket, redis+sentinel://[user:password@]host[:port][,host[:port]…]/primary-name[/db] \
     or redis+cluster://[user:password@]host:port[,host:port…] (rediss+sentinel:// and rediss+cluster:// for TLS)";

/// The files that TLS to Redis trusts and presents: the settings' `[redis_tls]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificates of the authority that signed the server's certificate. Without
    /// it, the system's trusted roots are used.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that ask for one (`tls-auth-clients yes`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

/// Why a Redis URL or its TLS files cannot be used. Each message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL cannot be read as any of the forms in [`URL_FORMS`].
    #[error("redis_url {shown:?} is not a valid Redis URL ({reason}); expected {URL_FORMS}")]
    Url {
        /// The URL with its password hidden.
        shown: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file cannot be read, or holds no PEM block.
    #[error("redis_tls.{key}: cannot read {path} ({reason}); expected a PEM file")]
    File {
        /// The `[redis_tls]` setting that names the file, e.g. `ca_file`.
        key: &'static str,
        /// The file's path.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// TLS files that do not fit the URL or each other; the message says how.
    #[error("redis_tls: {0}")]
    Tls(String),
}

/// A Redis to connect to. Cloning is cheap; clones share a Sentinel lookup.
#[derive(Clone)]
pub struct RedisTarget {
    place: Place,
    shown: String,
}

#[derive(Clone)]
enum Place {
    /// Boxed: a client is large beside the Sentinel variant, and targets are cloned.
    Server(Box<Client>),
    Sentinel(Arc<SentinelLookup>),
    Cluster(Box<ClusterClient>),
}

/// Asks the sentinels, in turn, where the primary is.
pub(crate) struct SentinelLookup {
    client: tokio::sync::Mutex<SentinelClient>,
    /// The database the primary's connections select.
    db: i64,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.shown)
            .finish()
    }
}

impl RedisTarget {
    /// A target from its URL alone; `rediss://` then trusts the system's roots.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        Self::with_tls(url, &TlsFiles::default())
    }

    /// A target from its URL and the TLS files to use with it.
    pub fn with_tls(url: &str, tls: &TlsFiles) -> Result<Self, TargetError> {
        let shown = redact_url(url);
        let invalid = |reason: String| TargetError::Url {
            shown: shown.clone(),
            reason,
        };
        let certificates = read_certificates(tls)?;
        let place = match url.split_once("://") {
            Some(("redis+sentinel", rest)) => {
                sentinel(rest, false, certificates).map_err(invalid)?
            }
            Some(("rediss+sentinel", rest)) => {
                sentinel(rest, true, certificates).map_err(invalid)?
            }
            Some(("redis+cluster", rest)) => cluster(rest, false, certificates).map_err(invalid)?,
            Some(("rediss+cluster", rest)) => cluster(rest, true, certificates).map_err(invalid)?,
            _ => {
                let info = url
                    .into_connection_info()
                    .map_err(|e| invalid(e.to_string()))?;
                let is_tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
                let client = match certificates {
                    Some(_) if !is_tls => {
                        return Err(TargetError::Tls(format!(
                            "TLS files are set but redis_url {shown:?} does not use TLS; use rediss://"
                        )));
                    }
                    Some(certificates) => Client::build_with_tls(info, certificates),
                    None => Client::open(info),
                }
                .map_err(|e| invalid(e.to_string()))?;
                Place::Server(Box::new(client))
            }
        };
        Ok(Self { place, shown })
    }

    /// The URL with its password hidden, for logs and messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the primary moves: true when Sentinel names it.
    pub fn follows_primary(&self) -> bool {
        matches!(self.place, Place::Sentinel(_))
    }

    /// Whether this is a Redis Cluster, where every multi-key call must stay in one slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self.place, Place::Cluster(_))
    }

    /// A client for the server, or for wherever the sentinels say the primary is now. A
    /// cluster has no one server: use [`super::SharedConnection`], which routes by key.
    pub async fn client(&self) -> redis::RedisResult<Client> {
        match &self.place {
            Place::Server(client) => Ok(Client::clone(client)),
            Place::Sentinel(lookup) => lookup.client.lock().await.async_get_client().await,
            Place::Cluster(_) => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a Redis Cluster has no single server to connect to",
            ))),
        }
    }

    /// The cluster client of a `redis+cluster://` target.
    pub(crate) fn cluster_client(&self) -> Option<&ClusterClient> {
        match &self.place {
            Place::Cluster(client) => Some(client),
            _ => None,
        }
    }

    /// The client of a single server; `None` behind Sentinel, where it changes.
    pub(crate) fn server_client(&self) -> Option<Client> {
        match &self.place {
            Place::Server(client) => Some(Client::clone(client)),
            Place::Sentinel(_) | Place::Cluster(_) => None,
        }
    }

    /// The database number connections select.
    pub fn db(&self) -> i64 {
        match &self.place {
            Place::Server(client) => client.get_connection_info().redis_settings().db(),
            Place::Sentinel(lookup) => lookup.db,
            Place::Cluster(_) => 0,
        }
    }
}

/// Anything a library's `connect` accepts as where Redis is: a URL or a [`RedisTarget`].
pub trait ToRedisTarget {
    /// The target this names; an error when it is a URL that cannot be used.
    fn to_redis_target(&self) -> Result<RedisTarget, TargetError>;
}

impl ToRedisTarget for RedisTarget {
    fn to_redis_target(&self) -> Result<RedisTarget, TargetError> {
        Ok(self.clone())
    }
}

impl ToRedisTarget for str {
    fn to_redis_target(&self) -> Result<RedisTarget, TargetError> {
        RedisTarget::parse(self)
    }
}

impl ToRedisTarget for String {
    fn to_redis_target(&self) -> Result<RedisTarget, TargetError> {
        RedisTarget::parse(self)
    }
}

/// `[user:password@]host[:port][,host[:port]…]/primary-name[/db][?sentinel_username=…&sentinel_password=…]`
fn sentinel(rest: &str, tls: bool, certificates: Option<TlsCertificates>) -> Result<Place, String> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest
        .split_once('/')
        .ok_or("it names no primary: add /primary-name after the sentinels")?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (
                name,
                port.parse::<u16>()
                    .map_err(|_| format!("{port:?} is not a port"))?,
            ),
            None => (host, SENTINEL_PORT),
        };
        if name.is_empty() {
            return Err("a sentinel has no host".into());
        }
        let name = name.to_owned();
        sentinels.push(if tls {
            ConnectionAddr::TcpTls {
                host: name,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(name, port)
        });
    }
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let service = segments
        .next()
        .ok_or("it names no primary: add /primary-name after the sentinels")?;
    let db = match segments.next() {
        Some(db) => db
            .parse::<i64>()
            .map_err(|_| format!("{db:?} is not a database number"))?,
        None => 0,
    };
    if segments.next().is_some() {
        return Err("the path has more than /primary-name/db".into());
    }

    let mut builder = SentinelClientBuilder::new(sentinels, service, SentinelServerType::Master)
        .map_err(|e| e.to_string())?
        .set_client_to_redis_db(db);
    let (user, password) = credentials(userinfo)?;
    if let Some(user) = user {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = password {
        builder = builder.set_client_to_redis_password(password);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        builder = match key {
            "sentinel_username" => builder.set_client_to_sentinel_username(decode(value)?),
            "sentinel_password" => builder.set_client_to_sentinel_password(decode(value)?),
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (expected sentinel_username or sentinel_password)"
                ));
            }
        };
    }
    if tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certificates) = certificates {
            builder = builder
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates);
        }
    } else if certificates.is_some() {
        return Err(
            "TLS files are set but the URL is redis+sentinel://; use rediss+sentinel://".into(),
        );
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    Ok(Place::Sentinel(Arc::new(SentinelLookup {
        client: tokio::sync::Mutex::new(client),
        db,
    })))
}

/// `[user:password@]host:port[,host:port…]`: the seed nodes, from which the client learns
/// the rest of the cluster and follows it as slots move and replicas are promoted.
fn cluster(rest: &str, tls: bool, certificates: Option<TlsCertificates>) -> Result<Place, String> {
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '?']) {
        return Err("a cluster URL names seed nodes only: a cluster has no databases".into());
    }
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let mut seeds = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = host
            .rsplit_once(':')
            .ok_or_else(|| format!("seed {host:?} has no port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{port:?} is not a port"))?;
        if name.is_empty() {
            return Err("a seed has no host".into());
        }
        let scheme = if tls { "rediss" } else { "redis" };
        seeds.push(format!("{scheme}://{name}:{port}"));
    }
    let mut builder = ClusterClientBuilder::new(seeds);
    let (user, password) = credentials(userinfo)?;
    if let Some(user) = user {
        builder = builder.username(user);
    }
    if let Some(password) = password {
        builder = builder.password(password);
    }
    if tls {
        builder = builder.tls(TlsMode::Secure);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates);
        }
    } else if certificates.is_some() {
        return Err(
            "TLS files are set but the URL is redis+cluster://; use rediss+cluster://".into(),
        );
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    Ok(Place::Cluster(Box::new(client)))
}

/// A user name and a password, each `None` when left out.
type Credentials = (Option<String>, Option<String>);

/// The user and password of a URL's `user:password` part, decoded.
fn credentials(userinfo: Option<&str>) -> Result<Credentials, String> {
    let Some(userinfo) = userinfo else {
        return Ok((None, None));
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let part = |text: &str| (!text.is_empty()).then(|| decode(text)).transpose();
    Ok((part(user)?, part(password)?))
}

/// A percent-encoded URL part, decoded as redis-rs decodes those of `redis://` URLs.
fn decode(part: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| "a percent-encoded part is not UTF-8".to_owned())
}

fn read_certificates(tls: &TlsFiles) -> Result<Option<TlsCertificates>, TargetError> {
    if tls.is_empty() {
        return Ok(None);
    }
    let root_cert = tls
        .ca_file
        .as_deref()
        .map(|path| read_pem("ca_file", path))
        .transpose()?;
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read_pem("cert_file", cert)?,
            client_key: read_pem("key_file", key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(TargetError::Tls(
                "cert_file and key_file go together: set both or neither".into(),
            ));
        }
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, TargetError> {
    let file_error = |reason: String| TargetError::File {
        key,
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(file_error("it holds no PEM block".into()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_parses_and_shows_no_password() {
        let target = RedisTarget::parse("redis://:secret@127.0.0.1:6380/2").expect("valid");
        assert_eq!(target.shown(), "redis://:***@127.0.0.1:6380/2");
        assert_eq!(target.db(), 2);
        assert!(!target.follows_primary());
    }

    #[test]
    fn a_sentinel_url_names_its_sentinels_primary_and_db() {
        let target =
            RedisTarget::parse("redis+sentinel://:p%40ss@10.0.0.1,10.0.0.2:26380/mymaster/3")
                .expect("valid");
        assert!(target.follows_primary());
        assert_eq!(target.db(), 3);
        assert_eq!(
            target.shown(),
            "redis+sentinel://:***@10.0.0.1,10.0.0.2:26380/mymaster/3"
        );
    }

    #[test]
    fn a_cluster_url_names_its_seeds() {
        let target =
            RedisTarget::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001").expect("valid");
        assert!(target.is_cluster() && !target.follows_primary());
        assert_eq!(
            target.shown(),
            "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7001"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_and_what_is_expected() {
        for (url, says) in [
            ("redis+sentinel://10.0.0.1", "names no primary"),
            ("redis+sentinel://10.0.0.1:x/m", "\"x\" is not a port"),
            (
                "redis+sentinel://10.0.0.1/m/x",
                "\"x\" is not a database number",
            ),
            (
                "redis+sentinel://10.0.0.1/m?tls=1",
                "unknown parameter \"tls\"",
            ),
            (
                "postgres://db",
                "redis_url \"postgres://db\" is not a valid Redis URL",
            ),
        ] {
            let err = RedisTarget::parse(url).expect_err(url).to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(
                err.contains("redis+sentinel://[user:password@]"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn tls_files_need_a_tls_url_and_readable_pem() {
        let dir = std::env::temp_dir().join(format!("flotilla-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let not_pem = dir.join("ca.txt");
        std::fs::write(&not_pem, "hello").expect("write");
        let files = TlsFiles {
            ca_file: Some(not_pem.clone()),
            ..TlsFiles::default()
        };
        let err = RedisTarget::with_tls("rediss://127.0.0.1", &files)
            .expect_err("not PEM")
            .to_string();
        assert!(
            err.contains("redis_tls.ca_file") && err.contains("no PEM block"),
            "{err}"
        );

        let pem = dir.join("ca.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").expect("write");
        let files = TlsFiles {
            ca_file: Some(pem),
            ..TlsFiles::default()
        };
        let err = RedisTarget::with_tls("redis://127.0.0.1", &files)
            .expect_err("plain URL")
            .to_string();
        assert!(err.contains("use rediss://"), "{err}");

        let files = TlsFiles {
            cert_file: Some(not_pem),
            ..TlsFiles::default()
        };
        let err = RedisTarget::with_tls("rediss://127.0.0.1", &files)
            .expect_err("cert without key")
            .to_string();
        assert!(err.contains("cert_file and key_file go together"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
