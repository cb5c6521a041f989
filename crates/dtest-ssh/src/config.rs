//! Where and how to connect: the tester's SSH keys, `ssh://` URLs, and the
//! few ssh_config keywords the native transport honours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dtest_exec::session::{HostUrl, OpenSpec, Result, SessionError};

/// The environment variable naming an ssh_config file to use instead of
/// `~/.ssh/config` (both transports; the tester key `ssh_config` wins).
pub const SSH_CONFIG_ENV: &str = "DTEST_SSH_CONFIG";

/// What to do with a host key that is not in known_hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKeyPolicy {
    /// Refuse unknown and changed keys (the default).
    Strict,
    /// Record an unknown key in known_hosts and go on; still refuse a
    /// changed one.
    AcceptNew,
}

/// The SSH keys of a tester (`OpenSpec::options`), checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TesterOptions {
    /// `identity = "path"`: private key file, tried before the defaults.
    pub identity: Option<PathBuf>,
    /// `password_env = "VAR"`: the environment variable holding a password.
    pub password_env: Option<String>,
    /// `known_hosts = "path"`.
    pub known_hosts: Option<PathBuf>,
    /// `host_key = "strict" | "accept-new"`.
    pub host_key: Option<HostKeyPolicy>,
    /// `x11 = true`.
    pub x11: bool,
    /// `ssh_config = "path"`.
    pub ssh_config: Option<PathBuf>,
    /// `keepalive = "5s"`-style seconds: interval of keepalive probes.
    pub keepalive: Duration,
    /// `max_sessions = 10`: sessions sshd allows on one connection.
    pub max_sessions: usize,
    /// `connect_timeout = "5s"`: overrides the run's connect deadline.
    pub connect_timeout: Option<Duration>,
}

/// Parses `500ms`, `5s`, `2m` or a number of seconds.
fn duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, mul) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000)
    } else {
        (v, 1000)
    };
    let n: u64 = num.trim().parse().ok()?;
    let ms = n.checked_mul(mul)?;
    (ms > 0 && ms <= 3_600_000).then(|| Duration::from_millis(ms))
}

/// The keys the SSH transports accept on a tester.
pub const KNOWN_KEYS: &[&str] = &[
    "identity",
    "password_env",
    "known_hosts",
    "host_key",
    "x11",
    "ssh_config",
    "keepalive",
    "max_sessions",
    "connect_timeout",
];

fn bad(spec: &OpenSpec, reason: String) -> SessionError {
    SessionError::Open {
        target: spec.host.raw.clone(),
        reason,
    }
}

impl TesterOptions {
    /// Reads and checks the options of `spec`.
    pub fn from_spec(spec: &OpenSpec) -> Result<TesterOptions> {
        Self::parse(&spec.options).map_err(|e| bad(spec, e))
    }

    /// The connect deadline: the tester's `connect_timeout`, else the run's.
    pub fn connect_timeout(&self, spec: &OpenSpec) -> Duration {
        self.connect_timeout.unwrap_or(spec.connect_timeout)
    }

    /// Reads and checks an options map; the error is one line.
    pub fn parse(map: &BTreeMap<String, String>) -> std::result::Result<TesterOptions, String> {
        let mut o = TesterOptions {
            identity: None,
            password_env: None,
            known_hosts: None,
            host_key: None,
            x11: false,
            ssh_config: None,
            keepalive: Duration::from_secs(5),
            max_sessions: 10,
            connect_timeout: None,
        };
        for (k, v) in map {
            match k.as_str() {
                "identity" => o.identity = Some(expand_tilde(v)),
                "password_env" => {
                    if v.is_empty() || v.contains('=') {
                        return Err(format!(
                            "password_env must name an environment variable, got `{v}`"
                        ));
                    }
                    o.password_env = Some(v.clone())
                }
                "known_hosts" => o.known_hosts = Some(expand_tilde(v)),
                "host_key" => {
                    o.host_key = Some(match v.as_str() {
                        "strict" | "yes" => HostKeyPolicy::Strict,
                        "accept-new" => HostKeyPolicy::AcceptNew,
                        _ => {
                            return Err(format!(
                                "host_key must be \"strict\" or \"accept-new\", got `{v}`"
                            ))
                        }
                    })
                }
                "x11" => {
                    o.x11 = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("x11 must be true or false, got `{v}`")),
                    }
                }
                "ssh_config" => o.ssh_config = Some(expand_tilde(v)),
                "keepalive" => {
                    o.keepalive = duration(v).filter(|d| d.as_secs() >= 1).ok_or_else(|| {
                        format!("keepalive must be a duration of 1s or more, got `{v}`")
                    })?;
                }
                "max_sessions" => {
                    o.max_sessions = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 2 && *n <= 1000)
                        .ok_or_else(|| format!("max_sessions must be 2..1000, got `{v}`"))?;
                }
                "connect_timeout" => {
                    o.connect_timeout = Some(duration(v).ok_or_else(|| {
                        format!("connect_timeout must be a duration (500ms, 5s, 2m), got `{v}`")
                    })?)
                }
                _ => {
                    return Err(format!(
                        "unknown tester key `{k}` for an ssh host (known: {})",
                        KNOWN_KEYS.join(", ")
                    ))
                }
            }
        }
        Ok(o)
    }

    /// The ssh_config file to read: the tester's, `$DTEST_SSH_CONFIG`, or
    /// `~/.ssh/config`.
    pub fn config_file(&self) -> PathBuf {
        if let Some(p) = &self.ssh_config {
            return p.clone();
        }
        match std::env::var_os(SSH_CONFIG_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => home_dir().join(".ssh/config"),
        }
    }

    /// Whether an ssh_config file was named explicitly (tester or env).
    pub fn explicit_config(&self) -> Option<PathBuf> {
        if self.ssh_config.is_some() {
            return self.ssh_config.clone();
        }
        match std::env::var_os(SSH_CONFIG_ENV) {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => None,
        }
    }
}

/// `$HOME`, or the passwd entry's home.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    PathBuf::from("/")
}

/// The local user name (`$USER`, `$LOGNAME`, or the passwd entry).
pub fn local_user() -> String {
    for v in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(v) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; the
    // name is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    "root".into()
}

/// `~/x` -> `$HOME/x`.
pub fn expand_tilde(p: &str) -> PathBuf {
    if p == "~" {
        return home_dir();
    }
    match p.strip_prefix("~/") {
        Some(rest) => home_dir().join(rest),
        None => PathBuf::from(p),
    }
}

/// `[user@]host[:port]` of an `ssh://` or `openssh://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts {
    /// The user, when given.
    pub user: Option<String>,
    /// The host or alias.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

/// Splits the part after `://`; a trailing `/` is allowed, a path is not.
pub fn parse_url(url: &HostUrl) -> Result<UrlParts> {
    let bad = |reason: &str| SessionError::BadUrl {
        url: url.raw.clone(),
        reason: reason.into(),
    };
    let rest = url.rest.strip_suffix('/').unwrap_or(&url.rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(bad("expected [user@]host[:port], without a path"));
    }
    let (user, hp) = match rest.rsplit_once('@') {
        Some((u, h)) => {
            if u.is_empty() {
                return Err(bad("empty user before `@`"));
            }
            (Some(u.to_string()), h)
        }
        None => (None, rest),
    };
    let (host, port) = if let Some(r) = hp.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| bad("unclosed `[` in the host"))?;
        match after {
            "" => (h.to_string(), None),
            p => (
                h.to_string(),
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected `:PORT` after `]`"))?,
                ),
            ),
        }
    } else {
        match hp.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hp.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '"' || c == '\\')
    {
        return Err(bad("the host holds a space or a quote"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port must be a number in 1..65535"))?,
        ),
    };
    Ok(UrlParts { user, host, port })
}

/// What ssh_config says about one host (first value wins, as in OpenSSH).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`.
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`, in order.
    pub identity_files: Vec<PathBuf>,
    /// `UserKnownHostsFile` (the first file).
    pub known_hosts: Option<PathBuf>,
    /// `StrictHostKeyChecking accept-new`.
    pub accept_new: bool,
    /// `ConnectTimeout` in seconds.
    pub connect_timeout: Option<u64>,
}

/// Matches an ssh_config pattern (`*`, `?`) against a host name.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Whether a `Host` line's pattern list matches `host`.
fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut any = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob(p.as_bytes(), host.as_bytes()) {
            any = true;
        }
    }
    any
}

/// Splits a config line into words, honouring double quotes and `=`.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            c if !quoted && (c.is_whitespace() || (c == '=' && out.is_empty())) => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// Expands `~` and the `%` tokens OpenSSH knows for paths.
fn expand_path(v: &str, host: &str, user: &str) -> PathBuf {
    let mut s = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            s.push(c);
            continue;
        }
        match it.next() {
            Some('%') => s.push('%'),
            Some('d') => s.push_str(&home_dir().to_string_lossy()),
            Some('h') => s.push_str(host),
            Some('r') => s.push_str(user),
            Some('u') => s.push_str(&local_user()),
            Some(o) => {
                s.push('%');
                s.push(o);
            }
            None => s.push('%'),
        }
    }
    expand_tilde(&s)
}

impl HostConfig {
    /// Reads `file` for `host`; a missing file is an empty config.
    pub fn load(file: &Path, host: &str) -> Result<HostConfig> {
        match std::fs::read_to_string(file) {
            Ok(text) => Ok(HostConfig::parse(&text, host)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HostConfig::default()),
            Err(e) => Err(SessionError::Other(format!(
                "cannot read ssh config {}: {e}",
                file.display()
            ))),
        }
    }

    /// The settings of `text` that apply to `host`. `Match` blocks are
    /// skipped (their conditions are not evaluated); `Include` is ignored.
    pub fn parse(text: &str, host: &str) -> HostConfig {
        let mut c = HostConfig::default();
        let mut active = true;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let w = words(line);
            let Some(key) = w.first().map(|k| k.to_ascii_lowercase()) else {
                continue;
            };
            let args = &w[1..];
            match key.as_str() {
                "host" => {
                    active = host_matches(args, host);
                    continue;
                }
                "match" => {
                    active = args.first().map(|a| a.eq_ignore_ascii_case("all")) == Some(true);
                    continue;
                }
                _ => {}
            }
            if !active || args.is_empty() {
                continue;
            }
            let v = args[0].as_str();
            match key.as_str() {
                "hostname" if c.hostname.is_none() => c.hostname = Some(v.replace("%h", host)),
                "user" if c.user.is_none() => c.user = Some(v.to_string()),
                "port" if c.port.is_none() => c.port = v.parse().ok(),
                "identityfile" => {
                    let u = c.user.clone().unwrap_or_else(local_user);
                    c.identity_files.push(expand_path(v, host, &u));
                }
                "userknownhostsfile" if c.known_hosts.is_none() => {
                    let u = c.user.clone().unwrap_or_else(local_user);
                    c.known_hosts = Some(expand_path(v, host, &u));
                }
                "stricthostkeychecking" => {
                    c.accept_new = v.eq_ignore_ascii_case("accept-new");
                }
                "connecttimeout" if c.connect_timeout.is_none() => {
                    c.connect_timeout = v.parse().ok()
                }
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = |s: &str| parse_url(&HostUrl::parse(s).unwrap());
        assert_eq!(
            p("ssh://bob@aurore:2222").unwrap(),
            UrlParts {
                user: Some("bob".into()),
                host: "aurore".into(),
                port: Some(2222)
            }
        );
        assert_eq!(p("ssh://h/").unwrap().host, "h");
        assert_eq!(p("ssh://[::1]:22").unwrap().host, "::1");
        assert!(p("ssh://h:0").is_err());
        assert!(p("ssh://h:x").is_err());
        assert!(p("ssh://@h").is_err());
        assert!(p("ssh://h/path").is_err());
    }

    #[test]
    fn ssh_config_first_value_wins() {
        let text = "\
# comment
Host aurore *.lab !bad.lab
  HostName 127.0.0.2
  Port=2222
  IdentityFile ~/.ssh/a_%h
Host *
  User root
  Port 22
  HostName other
  IdentityFile \"/k/b key\"
  StrictHostKeyChecking accept-new
";
        let c = HostConfig::parse(text, "aurore");
        assert_eq!(c.hostname.as_deref(), Some("127.0.0.2"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.user.as_deref(), Some("root"));
        assert_eq!(c.identity_files.len(), 2);
        assert!(c.identity_files[0].ends_with(".ssh/a_aurore"));
        assert_eq!(c.identity_files[1], PathBuf::from("/k/b key"));
        assert!(c.accept_new);
        let c = HostConfig::parse(text, "bad.lab");
        assert_eq!(c.hostname.as_deref(), Some("other"));
        assert_eq!(c.port, Some(22));
    }

    #[test]
    fn options() {
        let mut m = BTreeMap::new();
        m.insert("x11".to_string(), "true".to_string());
        m.insert("host_key".to_string(), "accept-new".to_string());
        let o = TesterOptions::parse(&m).unwrap();
        assert!(o.x11);
        assert_eq!(o.host_key, Some(HostKeyPolicy::AcceptNew));
        m.insert("password".to_string(), "x".to_string());
        let e = TesterOptions::parse(&m).unwrap_err();
        assert!(e.contains("unknown tester key `password`"), "{e}");
    }
}
