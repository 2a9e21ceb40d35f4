//! S3's XML: answers are written here (a few fixed shapes, escaped), and the three request
//! bodies S3 takes as XML (CompleteMultipartUpload, Delete, CreateBucketConfiguration) read
//! with quick-xml (entities, CDATA and namespaces handled).

use std::borrow::Cow;

use quick_xml::events::Event;

use crate::error::S3Error;

pub(crate) const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// An answer being written.
pub(crate) struct Xml {
    s: String,
}

impl Xml {
    /// The declaration and the root element, in S3's namespace.
    pub fn new(root: &str) -> Xml {
        Xml {
            s: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NS}\">"),
        }
    }

    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.s.push('<');
        self.s.push_str(tag);
        self.s.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.s.push_str("</");
        self.s.push_str(tag);
        self.s.push('>');
        self
    }

    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Xml {
        self.open(tag);
        self.s.push_str(&escape(text));
        self.close(tag)
    }

    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.s
    }
}

/// `2009-10-12T17:50:30.000Z`.
pub(crate) fn iso8601(ms: i64) -> String {
    sluice_aws::civil::iso8601_ms(ms)
}

/// Reads a document, calling `end(path, text)` as each element closes: the path of local names
/// from the root (the element's included) and the element's own text.
fn walk(
    body: &[u8],
    mut end: impl FnMut(&[String], &str) -> Result<(), S3Error>,
) -> Result<(), S3Error> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut buf = String::new();
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|_| S3Error::malformed_xml())?;
        match event {
            Event::Start(e) => {
                if path.is_empty() && seen_root {
                    return Err(S3Error::malformed_xml());
                }
                seen_root = true;
                if path.len() >= 8 {
                    return Err(S3Error::malformed_xml());
                }
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                buf.clear();
            }
            Event::Empty(e) => {
                if path.is_empty() && seen_root {
                    return Err(S3Error::malformed_xml());
                }
                seen_root = true;
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                end(&path, "")?;
                path.pop();
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|_| S3Error::malformed_xml())?;
                buf.push_str(&s);
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|_| S3Error::malformed_xml())?;
                buf.push_str(&s);
            }
            Event::GeneralRef(r) => {
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => buf.push(c),
                        _ => return Err(S3Error::malformed_xml()),
                    }
                } else {
                    let name = r.decode().map_err(|_| S3Error::malformed_xml())?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(v) => buf.push_str(v),
                        None => return Err(S3Error::malformed_xml()),
                    }
                }
            }
            Event::End(_) => {
                if path.is_empty() {
                    return Err(S3Error::malformed_xml());
                }
                let text = std::mem::take(&mut buf);
                end(&path, &text)?;
                path.pop();
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !path.is_empty() || !seen_root {
        return Err(S3Error::malformed_xml());
    }
    Ok(())
}

fn is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a == b)
}

/// `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>...`: (number, ETag) in order.
pub(crate) fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, S3Error> {
    let mut parts = Vec::new();
    let (mut number, mut etag): (Option<String>, Option<String>) = (None, None);
    walk(body, |path, t| {
        if is(path, &["CompleteMultipartUpload", "Part", "PartNumber"]) {
            number = Some(t.trim().to_string());
        } else if is(path, &["CompleteMultipartUpload", "Part", "ETag"]) {
            etag = Some(t.trim().to_string());
        }
        if path.len() == 1 && path[0] != "CompleteMultipartUpload" {
            return Err(S3Error::malformed_xml());
        }
        if is(path, &["CompleteMultipartUpload", "Part"]) {
            let n = number
                .take()
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(S3Error::malformed_xml)?;
            let e = etag.take().ok_or_else(S3Error::malformed_xml)?;
            if parts.len() >= sluice_lake::limits::PART_NUMBER_MAX as usize {
                return Err(S3Error::malformed_xml());
            }
            parts.push((n, e));
        }
        Ok(())
    })?;
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok(parts)
}

/// `<Delete><Quiet/><Object><Key/></Object>...`: (quiet, keys).
pub(crate) fn parse_delete(body: &[u8]) -> Result<(bool, Vec<String>), S3Error> {
    let mut keys = Vec::new();
    let mut quiet = false;
    let mut key: Option<String> = None;
    walk(body, |path, t| {
        if is(path, &["Delete", "Quiet"]) {
            quiet = t.trim().eq_ignore_ascii_case("true");
        } else if is(path, &["Delete", "Object", "Key"]) {
            key = Some(t.to_string());
        }
        if path.len() == 1 && path[0] != "Delete" {
            return Err(S3Error::malformed_xml());
        }
        if is(path, &["Delete", "Object"]) {
            let k = key.take().ok_or_else(S3Error::malformed_xml)?;
            if keys.len() >= crate::limits::DELETE_KEYS_MAX {
                return Err(S3Error::malformed_xml());
            }
            keys.push(k);
        }
        Ok(())
    })?;
    if keys.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok((quiet, keys))
}

/// `<CreateBucketConfiguration><LocationConstraint/>`: the constraint, if any.
pub(crate) fn parse_location(body: &[u8]) -> Result<Option<String>, S3Error> {
    let mut location = None;
    walk(body, |path, t| {
        if is(path, &["CreateBucketConfiguration", "LocationConstraint"]) {
            location = Some(t.trim().to_string());
        }
        Ok(())
    })?;
    Ok(location.filter(|l| !l.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_parse() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"a&amp;b"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>x</ChecksumCRC32></Part>
  <Part><PartNumber>2</PartNumber><ETag>&quot;c&quot;</ETag></Part>
</CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(body).unwrap(),
            [(1, "\"a&b\"".to_string()), (2, "\"c\"".to_string())]
        );
        let body = b"<Delete><Quiet>true</Quiet><Object><Key>a&#47;b <![CDATA[<c>]]></Key></Object><Object><Key>d</Key><VersionId>v</VersionId></Object></Delete>";
        let (quiet, keys) = parse_delete(body).unwrap();
        assert!(quiet);
        assert_eq!(keys, ["a/b <c>", "d"]);
        assert_eq!(
            parse_location(b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>").unwrap().as_deref(),
            Some("eu-west-1")
        );
        for bad in [
            &b"<CompleteMultipartUpload></CompleteMultipartUpload>"[..],
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
            b"not xml at all <",
            b"<Other/>",
        ] {
            assert!(parse_complete(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_delete(b"<Delete><Object></Object></Delete>").is_err());
    }

    #[test]
    fn answers_are_escaped() {
        let mut x = Xml::new("R");
        x.elem("Key", "a<&>\"b");
        assert!(x
            .finish("R")
            .ends_with("<Key>a&lt;&amp;&gt;&quot;b</Key></R>"));
        assert_eq!(iso8601(1_440_938_160_250), "2015-08-30T12:36:00.250Z");
    }
}
