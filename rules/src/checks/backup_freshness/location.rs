//! Where a repository is (the host that holds it, for `min_locations`) and
//! how backups travel to it (for `require_encrypted_transport`).

use super::{Kind, Mount, SourceFacts, Transport};

fn host_of_url(rest: &str) -> String {
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(h) = host.strip_prefix('[') {
        return h.split(']').next().unwrap_or(h).to_owned();
    }
    host.split(':').next().unwrap_or(host).to_owned()
}

/// Where a location is, as a site name: the host in the repository string
/// (lower case), the cloud provider (`b2`, `azure`, `gs`, `swift`), or
/// `local` for a path (resolved to this host, or a network mount's server,
/// by [`host_of_source`]).
pub fn default_site(kind: Kind, location: &str) -> String {
    let l = location.trim();
    if let Some(i) = l.find("://") {
        if l.starts_with("file://") {
            return "local".into();
        }
        return host_of_url(l.get(i + 3..).unwrap_or("")).to_ascii_lowercase();
    }
    if kind == Kind::Restic {
        if let Some(rest) = l.strip_prefix("sftp:") {
            let before_colon = rest.split(':').next().unwrap_or(rest);
            return before_colon
                .rsplit('@')
                .next()
                .unwrap_or(before_colon)
                .to_ascii_lowercase();
        }
        for p in ["rest:", "s3:"] {
            if let Some(rest) = l.strip_prefix(p) {
                let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
                return host_of_url(rest).to_ascii_lowercase();
            }
        }
        // Cloud stores: the provider is the place (the bucket is not a host).
        for p in ["swift:", "b2:", "azure:", "gs:"] {
            if l.starts_with(p) {
                return p.trim_end_matches(':').to_owned();
            }
        }
        if let Some(rest) = l.strip_prefix("rclone:") {
            return format!("rclone:{}", rest.split(':').next().unwrap_or(rest));
        }
        if l.starts_with("local:") {
            return "local".into();
        }
    }
    if !l.starts_with('/') {
        // scp-like `user@host:path` (borg, rsync).
        if let Some((host, _)) = l.split_once(':') {
            return host.rsplit('@').next().unwrap_or(host).to_ascii_lowercase();
        }
    }
    "local".into()
}

/// The names that always mean this host.
const LOOPBACK_NAMES: &[&str] = &["localhost", "localhost.localdomain", "127.0.0.1", "::1"];

/// This host, as `min_locations` sees it: its name and every alias.
#[derive(Debug, Clone)]
pub struct ThisHost {
    pub name: String,
    pub aliases: Vec<String>,
}

impl ThisHost {
    /// `name` (the agent's host name) and the facts' `host_names`.
    pub fn new(name: &str, host_names: &[String]) -> Self {
        let mut aliases: Vec<String> = host_names.iter().map(|n| canonical_host(n)).collect();
        aliases.extend(LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()));
        aliases.push(canonical_host(name));
        aliases.retain(|a| !a.is_empty());
        ThisHost {
            name: canonical_host(name),
            aliases,
        }
    }

    pub fn is(&self, host: &str) -> bool {
        let h = canonical_host(host);
        h.starts_with("127.") || self.aliases.iter().any(|a| same_host(a, &h))
    }
}

/// Lower case, no trailing dot, no IPv6 brackets.
pub fn canonical_host(h: &str) -> String {
    h.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn is_ip(h: &str) -> bool {
    h.parse::<std::net::IpAddr>().is_ok()
}

/// Whether two host names name one host: equal (without case and trailing
/// dot), or one is a bare name and the other's first label (`backup-1` and
/// `backup-1.papyrs.internal`). IP addresses compare whole.
pub fn same_host(a: &str, b: &str) -> bool {
    let (a, b) = (canonical_host(a), canonical_host(b));
    if a == b {
        return true;
    }
    if a.is_empty() || b.is_empty() || is_ip(&a) || is_ip(&b) {
        return false;
    }
    let first = |h: &str| h.split('.').next().unwrap_or("").to_owned();
    match (a.contains('.'), b.contains('.')) {
        (false, true) => first(&b) == a,
        (true, false) => first(&a) == b,
        _ => false,
    }
}

/// The names `/etc/hosts` gives to loopback addresses (`127.0.0.0/8`,
/// `::1`): Debian writes `127.0.1.1 host.example host` for the host itself.
pub fn loopback_host_names(hosts: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next() else { continue };
        let loopback = match addr.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => false,
        };
        if !loopback {
            continue;
        }
        for name in fields {
            let n = canonical_host(name);
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// The server a network mount's source names: `nas-1` for `nas-1:/export`
/// (NFS, GlusterFS, sshfs `user@host:/path`), `//nas-1/share` (SMB/CIFS),
/// `mon1,mon2:/` (CephFS: the first). `None` for a local filesystem.
pub fn mount_server(m: &Mount) -> Option<String> {
    if !(NETWORK_FS.contains(&m.fs_type.as_str()) || m.fs_type == "fuse.sshfs") {
        return None;
    }
    let src = m.source.trim();
    let host = if let Some(rest) = src.strip_prefix("//") {
        rest.split('/').next().unwrap_or("")
    } else if let Some(rest) = src.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        let before = src.split(":/").next().unwrap_or(src);
        let before = before.rsplit('@').next().unwrap_or(before);
        let first = before.split(',').next().unwrap_or(before);
        // `mon1:6789` (CephFS) or `host:` (scp-like): the name before the port.
        match first.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => first.trim_end_matches(':'),
        }
    };
    let host = canonical_host(host);
    (!host.is_empty()).then_some(host)
}

/// The host that holds a source's copy: its `site` when that names a host,
/// this host for a path (`local`) unless the path is on a network mount,
/// then the mount's server; a name of this host becomes this host's name.
pub fn host_of_source(s: &SourceFacts, this: &ThisHost) -> String {
    let named = if s.site == "local" {
        match s.mount.as_ref().and_then(mount_server) {
            Some(server) => server,
            None => return this.name.clone(),
        }
    } else {
        canonical_host(&s.site)
    };
    if this.is(&named) {
        this.name.clone()
    } else {
        named
    }
}

const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "glusterfs",
    "ceph",
    "fuse.glusterfs",
    "fuse.cephfs",
    "afs",
    "davfs",
    "fuse.davfs2",
    "fuse.rclone",
    "lustre",
    "beegfs",
];

/// How backups reach `location` (with `mount` the mount its path sits on).
pub fn judge_transport(kind: Kind, location: &str, mount: Option<&Mount>) -> Transport {
    let l = location.trim();
    let enc = |how: &str| Transport::Encrypted { how: how.into() };
    let plain = |why: String| Transport::Plain { why };
    let lower = l.to_ascii_lowercase();
    for (prefix, verdict) in [
        ("sftp:", Some("ssh (sftp)")),
        ("ssh://", Some("ssh")),
        ("rest:https://", Some("https")),
        ("s3:https://", Some("https")),
        ("https://", Some("https")),
        ("swift:", Some("https (swift)")),
        ("b2:", Some("https (b2)")),
        ("azure:", Some("https (azure)")),
        ("gs:", Some("https (gcs)")),
        ("rest:http://", None),
        ("s3:http://", None),
        ("http://", None),
        ("ftp://", None),
        ("rsync://", None),
        ("smb://", None),
        ("nfs://", None),
    ] {
        if lower.starts_with(prefix) {
            return match verdict {
                Some(how) => enc(how),
                None => plain(format!("`{prefix}` sends backups unencrypted")),
            };
        }
    }
    if lower.starts_with("s3:") {
        // restic talks https to S3 unless told `http://`.
        return enc("https (s3)");
    }
    if lower.starts_with("rclone:") {
        return plain("`rclone:` hides the transport; vigil cannot tell it is encrypted".into());
    }
    let path = if kind == Kind::Restic {
        l.strip_prefix("local:").unwrap_or(l)
    } else {
        l
    };
    if !path.starts_with('/') {
        if let Some(i) = path.find("://") {
            let scheme = path.get(..i).unwrap_or("");
            return plain(format!(
                "the scheme `{scheme}://` is not known to be encrypted"
            ));
        }
        if kind != Kind::Restic && path.contains(':') && !path.starts_with('.') {
            return enc("ssh (host:path)");
        }
    }
    match mount {
        Some(m) if NETWORK_FS.contains(&m.fs_type.as_str()) => {
            let opts: Vec<&str> = m.options.split(',').collect();
            let nfs_sealed = m.fs_type.starts_with("nfs") && opts.contains(&"sec=krb5p");
            let smb_sealed =
                matches!(m.fs_type.as_str(), "cifs" | "smb3") && opts.contains(&"seal");
            if nfs_sealed {
                enc("nfs with sec=krb5p")
            } else if smb_sealed {
                enc("smb with seal")
            } else {
                plain(format!(
                    "`{}` is on a {} mount of `{}` without encryption",
                    m.mount_point, m.fs_type, m.source
                ))
            }
        }
        Some(m) if m.fs_type == "fuse.sshfs" => enc("sshfs"),
        _ => Transport::Local,
    }
}
