//! Host key checking against known_hosts: strict by default, `accept-new`
//! on request, never silent. Messages name the host, the key's SHA256
//! fingerprint (as OpenSSH prints it) and how to accept the key.

use std::io::Write;
use std::path::Path;

use ssh2::{CheckResult, HostKeyType, KnownHostFileKind, Session};

use crate::config::HostKeyPolicy;

/// Standard base64 without padding (OpenSSH's fingerprint form), or with.
pub fn base64(data: &[u8], pad: bool) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let k = c.len() + 1;
        for i in 0..4 {
            if i < k {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                s.push('=');
            }
        }
    }
    s
}

/// `SHA256:...` of a raw key blob.
pub fn fingerprint(key: &[u8]) -> String {
    use sha2::Digest;
    format!("SHA256:{}", base64(&sha2::Sha256::digest(key), false))
}

/// The OpenSSH name of a key type (`ssh-ed25519`).
pub fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        _ => "unknown",
    }
}

/// The known_hosts name of a host: `host` on port 22, `[host]:port` else.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Checks the key the server offered on `sess` against `file`. `Ok(Some)`
/// tells that a new key was recorded (accept-new), with a note to log.
pub fn check(
    sess: &Session,
    host: &str,
    port: u16,
    file: &Path,
    policy: HostKeyPolicy,
) -> Result<Option<String>, String> {
    let (key, ktype) = sess
        .host_key()
        .ok_or_else(|| "the server offered no host key".to_string())?;
    let kname = key_type_name(ktype);
    let fp = fingerprint(key);
    let name = known_hosts_name(host, port);
    let mut kh = sess.known_hosts().map_err(|e| e.to_string())?;
    if file.exists() {
        kh.read_file(file, KnownHostFileKind::OpenSSH)
            .map_err(|e| format!("cannot read known_hosts {}: {e}", file.display()))?;
    }
    match kh.check_port(host, port, key) {
        CheckResult::Match => Ok(None),
        CheckResult::Mismatch => Err(format!(
            "HOST KEY MISMATCH for {name}: it offers {kname} {fp}, which differs from the key \
             recorded in {f}; this may be an attack, or the host was reinstalled. If the change \
             is expected, remove the old entry with `ssh-keygen -R '{name}' -f {f}` and \
             connect again",
            f = file.display()
        )),
        CheckResult::NotFound => match policy {
            HostKeyPolicy::Strict => Err(format!(
                "unknown host key for {name}: {kname} {fp} is not in {f}; check the \
                 fingerprint, then accept it with `ssh-keyscan -p {port} {host} >> {f}` or set \
                 host_key = \"accept-new\" on the tester",
                f = file.display()
            )),
            HostKeyPolicy::AcceptNew => {
                append(file, &name, kname, key).map_err(|e| {
                    format!("cannot record the host key in {}: {e}", file.display())
                })?;
                Ok(Some(format!(
                    "accepted new host key for {name}: {kname} {fp} (added to {})",
                    file.display()
                )))
            }
        },
        CheckResult::Failure => Err(format!(
            "cannot check the host key of {name} ({kname} {fp}) against {}",
            file.display()
        )),
    }
}

/// Appends one known_hosts line (leaves the rest of the file untouched).
fn append(file: &Path, name: &str, kname: &str, key: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let needs_nl = std::fs::read(file)
        .map(|d| !d.is_empty() && !d.ends_with(b"\n"))
        .unwrap_or(false);
    let line = format!(
        "{}{name} {kname} {}\n",
        if needs_nl { "\n" } else { "" },
        base64(key, true)
    );
    f.write_all(line.as_bytes())
}

/// The server's key fingerprint for messages (`ED25519 SHA256:...`).
pub fn describe(sess: &Session) -> String {
    match sess.host_key() {
        Some((k, t)) => format!("{} {}", key_type_name(t), fingerprint(k)),
        None => "no key".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b"", true), "");
        assert_eq!(base64(b"f", true), "Zg==");
        assert_eq!(base64(b"fo", true), "Zm8=");
        assert_eq!(base64(b"foo", true), "Zm9v");
        assert_eq!(base64(b"foob", false), "Zm9vYg");
        assert_eq!(known_hosts_name("h", 22), "h");
        assert_eq!(known_hosts_name("h", 2222), "[h]:2222");
    }
}
