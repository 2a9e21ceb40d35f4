//! Listing: S3's ListObjects semantics over a source of keys in order. A back end feeds a
//! [`Pager`] the entries after the query's cursor, in key order (UTF-8 byte order); the pager
//! applies the prefix, groups keys by the delimiter into common prefixes, stops at the page
//! size or at [`crate::limits::LIST_SCAN_MAX`] entries looked at, and says where the next page
//! starts.

use crate::meta::ObjectMeta;

/// Where a listing resumes: after `key`, and, when `whole_prefix`, after every key that starts
/// with it (the key was a common prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub whole_prefix: bool,
}

impl Cursor {
    /// Whether a listing resuming here skips `key`.
    pub fn skips(&self, key: &str) -> bool {
        key <= self.key.as_str() || (self.whole_prefix && key.starts_with(self.key.as_str()))
    }

    /// Whether every key under the directory-like prefix `dir` (ending in `/`) is skipped.
    pub(crate) fn skips_all_under(&self, dir: &str) -> bool {
        (self.whole_prefix && dir.starts_with(self.key.as_str()))
            || (dir < self.key.as_str() && !self.key.starts_with(dir))
    }
}

/// One listing call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    /// Keys whose rest after the prefix contains the delimiter are rolled up into one common
    /// prefix (up to and including the delimiter's first occurrence).
    pub delimiter: Option<String>,
    pub after: Option<Cursor>,
    /// At most this many keys and common prefixes together (capped at 1,000).
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects in key order; their `attrs` are empty.
    pub objects: Vec<ObjectMeta>,
    pub common_prefixes: Vec<String>,
    /// More may follow: list again from `next`.
    pub truncated: bool,
    pub next: Option<Cursor>,
}

/// What a back end feeds the pager.
#[derive(Debug)]
pub(crate) enum Entry {
    Object(Box<ObjectMeta>),
    /// A common prefix as a whole, when the back end knows one without its keys (a directory
    /// holding at least one file, with the delimiter `/`).
    Prefix(String),
}

pub(crate) struct Pager<'q> {
    q: &'q ListQuery,
    max_keys: usize,
    page: ListPage,
    count: usize,
    scanned: usize,
    scan_max: usize,
    /// The last item put on the page, as a cursor.
    last: Option<Cursor>,
    /// Where the last entry looked at ends (for a page cut short by the scan limit).
    last_seen: Option<Cursor>,
    full: bool,
}

impl<'q> Pager<'q> {
    pub fn new(q: &'q ListQuery, scan_max: usize) -> Pager<'q> {
        Pager {
            q,
            max_keys: q.max_keys.min(crate::limits::LIST_KEYS_MAX),
            page: ListPage::default(),
            count: 0,
            scanned: 0,
            scan_max: scan_max.max(1),
            last: None,
            last_seen: None,
            full: false,
        }
    }

    /// Takes one entry; `false` once the page is done (full, or the scan limit reached).
    pub fn push(&mut self, e: Entry) -> bool {
        if self.full {
            return false;
        }
        self.scanned += 1;
        let keep_going = match e {
            Entry::Object(m) => {
                self.last_seen = Some(Cursor {
                    key: m.key.clone(),
                    whole_prefix: false,
                });
                self.object(*m)
            }
            Entry::Prefix(p) => {
                self.last_seen = Some(Cursor {
                    key: p.clone(),
                    whole_prefix: true,
                });
                if p.starts_with(self.q.prefix.as_str())
                    && !self.q.after.as_ref().is_some_and(|c| c.skips(&p))
                {
                    self.add(None, Some(p))
                } else {
                    true
                }
            }
        };
        if keep_going && self.scanned >= self.scan_max {
            // Cut short: resume after what was looked at (after the whole common prefix, if
            // the last key looked at was rolled up into the last one on the page).
            self.page.truncated = true;
            self.full = true;
            self.page.next = match (&self.last, &self.last_seen) {
                (Some(c), Some(seen)) if c.whole_prefix && seen.key.starts_with(c.key.as_str()) => {
                    Some(c.clone())
                }
                (_, Some(seen)) => Some(seen.clone()),
                (last, None) => last.clone(),
            };
            return false;
        }
        keep_going
    }

    fn object(&mut self, m: ObjectMeta) -> bool {
        let q = self.q;
        if !m.key.starts_with(q.prefix.as_str())
            || q.after.as_ref().is_some_and(|c| c.skips(&m.key))
        {
            return true;
        }
        if let Some(d) = q.delimiter.as_deref().filter(|d| !d.is_empty()) {
            let rest = &m.key[q.prefix.len()..];
            if let Some(i) = rest.find(d) {
                let cp = m.key[..q.prefix.len() + i + d.len()].to_string();
                return self.add(None, Some(cp));
            }
        }
        self.add(Some(m), None)
    }

    fn add(&mut self, object: Option<ObjectMeta>, prefix: Option<String>) -> bool {
        if let (Some(p), Some(last)) = (&prefix, &self.last) {
            if last.whole_prefix && last.key == *p {
                return true;
            }
        }
        if self.count >= self.max_keys {
            self.page.truncated = true;
            self.full = true;
            self.page.next = self.last.clone();
            return false;
        }
        self.count += 1;
        if let Some(m) = object {
            self.last = Some(Cursor {
                key: m.key.clone(),
                whole_prefix: false,
            });
            self.page.objects.push(m);
        } else if let Some(p) = prefix {
            self.last = Some(Cursor {
                key: p.clone(),
                whole_prefix: true,
            });
            self.page.common_prefixes.push(p);
        }
        true
    }

    pub fn finish(self) -> ListPage {
        self.page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(k: &str) -> Entry {
        Entry::Object(Box::new(ObjectMeta {
            key: k.into(),
            size: 0,
            etag: String::new(),
            modified_ms: 0,
            attrs: Default::default(),
            parts_count: None,
        }))
    }

    fn run(keys: &[&str], q: &ListQuery, scan_max: usize) -> ListPage {
        let mut p = Pager::new(q, scan_max);
        for k in keys {
            if !p.push(obj(k)) {
                break;
            }
        }
        p.finish()
    }

    fn keys(p: &ListPage) -> Vec<&str> {
        p.objects.iter().map(|o| o.key.as_str()).collect()
    }

    /// Pages through `keys` with `q`, following the cursor, as a client would.
    fn all_pages(keys_in: &[&str], mut q: ListQuery, scan_max: usize) -> (Vec<String>, usize) {
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages < 1000);
            let after = q.after.clone();
            let feed: Vec<&str> = keys_in
                .iter()
                .copied()
                .filter(|k| !after.as_ref().is_some_and(|c| c.skips(k)))
                .collect();
            let p = run(&feed, &q, scan_max);
            out.extend(p.objects.iter().map(|o| o.key.clone()));
            out.extend(p.common_prefixes.iter().cloned());
            if !p.truncated {
                return (out, pages);
            }
            q.after = p.next.clone();
        }
    }

    #[test]
    fn delimiter_rolls_up_common_prefixes() {
        let all = ["a/1", "a/2", "b", "c/x/1", "c/y", "d"];
        let q = ListQuery {
            delimiter: Some("/".into()),
            max_keys: 1000,
            ..ListQuery::default()
        };
        let p = run(&all, &q, usize::MAX);
        assert_eq!(keys(&p), ["b", "d"]);
        assert_eq!(p.common_prefixes, ["a/", "c/"]);
        assert!(!p.truncated);
        let q = ListQuery {
            prefix: "c/".into(),
            delimiter: Some("/".into()),
            max_keys: 1000,
            ..ListQuery::default()
        };
        let p = run(&all, &q, usize::MAX);
        assert_eq!(keys(&p), ["c/y"]);
        assert_eq!(p.common_prefixes, ["c/x/"]);
    }

    #[test]
    fn pages_resume_after_a_common_prefix() {
        let all = ["a/1", "a/2", "b", "c/x/1", "c/y", "d"];
        for max in 1..=6 {
            let q = ListQuery {
                delimiter: Some("/".into()),
                max_keys: max,
                ..ListQuery::default()
            };
            let (got, _) = all_pages(&all, q, usize::MAX);
            assert_eq!(got.len(), 4, "max {max}: {got:?}");
        }
        let q = ListQuery {
            max_keys: 2,
            ..ListQuery::default()
        };
        let (got, pages) = all_pages(&all, q, usize::MAX);
        assert_eq!(got, all);
        assert_eq!(pages, 3);
    }

    #[test]
    fn the_scan_limit_cuts_a_page_without_losing_keys() {
        let all = ["a/1", "a/2", "a/3", "b", "c"];
        for scan in 1..=6 {
            let q = ListQuery {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..ListQuery::default()
            };
            let (got, _) = all_pages(&all, q, scan);
            let mut dedup = got.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup, ["a/", "b", "c"], "scan {scan}: {got:?}");
            let q = ListQuery {
                max_keys: 1000,
                ..ListQuery::default()
            };
            assert_eq!(all_pages(&all, q, scan).0, all, "scan {scan}");
        }
    }

    #[test]
    fn prefix_and_start_after() {
        let all = ["x", "y/1", "y/2", "yy", "z"];
        let q = ListQuery {
            prefix: "y".into(),
            after: Some(Cursor {
                key: "y/1".into(),
                whole_prefix: false,
            }),
            max_keys: 1000,
            ..ListQuery::default()
        };
        assert_eq!(keys(&run(&all, &q, usize::MAX)), ["y/2", "yy"]);
        let q = ListQuery {
            max_keys: 0,
            ..ListQuery::default()
        };
        let p = run(&all, &q, usize::MAX);
        assert!(p.objects.is_empty());
    }

    #[test]
    fn cursors_skip_whole_directories() {
        let c = Cursor {
            key: "b/".into(),
            whole_prefix: true,
        };
        assert!(c.skips("b/x") && c.skips("a") && !c.skips("c"));
        assert!(c.skips_all_under("b/x/") && c.skips_all_under("a/"));
        assert!(!c.skips_all_under("c/"));
        let c = Cursor {
            key: "b/m".into(),
            whole_prefix: false,
        };
        assert!(!c.skips_all_under("b/") && c.skips_all_under("a/"));
    }
}
