//! A response as the prober saw it, and the generic judgement of its
//! status: which statuses make a URL fail, with what kind and message
//! (S3-compatible stores' XML error bodies say why, and the message says
//! what that means for Zoi).

use super::problem::{Kind, Problem};

/// A response we got (any status).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    /// Total length from `Content-Range: bytes a-b/TOTAL`.
    pub range_total: Option<u64>,
    pub accept_ranges: bool,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// A status that makes a URL fail (redirects were stopped at another host).
pub fn status_problem(r: &Reply) -> Option<Problem> {
    let s = r.status;
    let p = match s {
        200..=299 => return None,
        300..=399 => Problem::new(
            Kind::RedirectOtherHost,
            format!(
                "HTTP {s} redirect to {}",
                r.location
                    .as_deref()
                    .map_or_else(|| "?".to_string(), super::redact::redact)
            ),
        ),
        401 => Problem::new(Kind::Unauthorized, "HTTP 401 Unauthorized"),
        403 => Problem::new(Kind::Forbidden, "HTTP 403 Forbidden"),
        404 | 410 => Problem::new(Kind::NotFound, format!("HTTP {s} Not Found")),
        _ => Problem::new(Kind::HttpError, format!("HTTP {s}")),
    };
    Some(with_s3_detail(p.with_status(s), r))
}

/// S3-compatible stores answer errors with an XML body naming the cause
/// (`<Error><Code>AccessDenied</Code>…`): say what it means for Zoi.
fn with_s3_detail(mut p: Problem, r: &Reply) -> Problem {
    let body = String::from_utf8_lossy(&r.body[..r.body.len().min(4096)]);
    if !body.contains("<Error>") {
        return p;
    }
    let Some(code) = xml_code(&body) else {
        return p;
    };
    let what = match code.as_str() {
        "AccessDenied" | "AllAccessDisabled" => {
            "the bucket (or this key) is not public-read, and Zoi fetches anonymously: grant anonymous s3:GetObject on it (bucket policy or ACL), or serve it through a CDN that can read it"
        }
        "NoSuchKey" => {
            "the bucket answers, but holds no object at this key: run `zoi-mirror bin sync --dest s3://…` (or `index s3://…` for metadata) for it, and check binaries.layout"
        }
        "NoSuchBucket" => "the bucket named in the URL does not exist on this endpoint",
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
            "the store wanted credentials: Zoi sends none, so the bucket must allow anonymous reads"
        }
        _ => "an S3 error",
    };
    p.message = format!("{} (S3 {code}: {what})", p.message);
    p
}

/// The `<Code>` of an S3 XML error body.
pub fn xml_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].trim().to_string()).filter(|c| !c.is_empty() && c.len() < 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_codes() {
        assert_eq!(
            xml_code("<?xml?><Error><Code>AccessDenied</Code><Message>x</Message></Error>")
                .as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(xml_code("<html>nope</html>"), None);
    }
}
