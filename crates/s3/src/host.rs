//! Which bucket a request names: virtual-host style takes it from the Host header
//! (`<bucket>.<domain>[:port]` for a configured domain, e.g. `lake.localhost:4567` or
//! `lake.s3.localhost:4567`); otherwise (a Host that is a configured domain itself, an IP address
//! or any other name) it is path-style, the first segment of the path.

/// The bucket named by `host` (a Host header, maybe with a port), if it is virtual-host style.
pub(crate) fn bucket_from_host(host: &str, domains: &[String]) -> Option<String> {
    let name = strip_port(host).to_ascii_lowercase();
    if domains.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
        return None;
    }
    // The longest domain that matches, so `a.s3.localhost` is bucket `a` under `s3.localhost`
    // and not bucket `a.s3` under `localhost`.
    let mut best: Option<&str> = None;
    for d in domains {
        let d = d.as_str();
        if name.len() > d.len() + 1
            && name.ends_with(&d.to_ascii_lowercase())
            && name.as_bytes()[name.len() - d.len() - 1] == b'.'
            && best.is_none_or(|b| d.len() > b.len())
        {
            best = Some(d);
        }
    }
    best.map(|d| name[..name.len() - d.len() - 1].to_string())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal: never a bucket.
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_hosts_under_a_domain() {
        let d = vec!["localhost".to_string(), "s3.localhost".to_string()];
        assert_eq!(
            bucket_from_host("lake.localhost:4567", &d).as_deref(),
            Some("lake")
        );
        assert_eq!(
            bucket_from_host("lake.s3.localhost", &d).as_deref(),
            Some("lake")
        );
        assert_eq!(
            bucket_from_host("my.lake.localhost", &d).as_deref(),
            Some("my.lake")
        );
        assert_eq!(bucket_from_host("s3.localhost:1", &d), None);
        assert_eq!(bucket_from_host("localhost:4567", &d), None);
        assert_eq!(bucket_from_host("127.0.0.1:4567", &d), None);
        assert_eq!(bucket_from_host("[::1]:4567", &d), None);
        assert_eq!(bucket_from_host("example.com", &d), None);
        assert_eq!(bucket_from_host("xlocalhost", &d), None);
    }
}
