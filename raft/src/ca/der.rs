//! Just enough DER to read the parts of an X.509 certificate this module needs: the
//! subject and issuer names, the validity window, the public key, and two extensions
//! (basic constraints and the subject key identifier). Signatures and everything else are
//! left to webpki; this reader never decides whether a certificate is trusted.
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! tbsCertificate ::= SEQUENCE { [0] version?, serial, signature, issuer, validity,
//!                               subject, subjectPublicKeyInfo, [1]?, [2]?, [3] extensions? }
//! ```

use base64::Engine as _;

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_VERSION: u8 = 0xa0;
const TAG_EXTENSIONS: u8 = 0xa3;

/// 2.5.29.19, basicConstraints.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// 2.5.29.14, subjectKeyIdentifier.
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
/// 2.5.29.35 authorityKeyIdentifier
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
/// `[0] keyIdentifier` inside an authorityKeyIdentifier (implicit, primitive).
const TAG_KEY_ID: u8 = 0x80;

/// A DER reading failure; callers wrap it with what was being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError(pub(crate) &'static str);

type DerResult<T> = Result<T, DerError>;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    /// The whole element, header included.
    pub(crate) raw: &'a [u8],
}

/// A cursor over a run of DER elements.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub(crate) fn next(&mut self) -> DerResult<Tlv<'a>> {
        let bytes = self.rest;
        let (&tag, after_tag) = bytes.split_first().ok_or(DerError("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tags are not supported"));
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(DerError("missing length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || after_len.len() < count {
                return Err(DerError("bad length"));
            }
            let (len_bytes, rest) = after_len.split_at(count);
            after_len = rest;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if after_len.len() < len {
            return Err(DerError("element overruns its container"));
        }
        let header = bytes.len() - after_len.len();
        let (content, rest) = after_len.split_at(len);
        self.rest = rest;
        Ok(Tlv {
            tag,
            content,
            raw: &bytes[..header + len],
        })
    }

    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> DerResult<Tlv<'a>> {
        let tlv = self.next()?;
        if tlv.tag != tag {
            return Err(DerError(what));
        }
        Ok(tlv)
    }

    /// Reads the next element only if it carries `tag`.
    fn optional(&mut self, tag: u8) -> DerResult<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.next().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The parts of a certificate this module reads.
#[derive(Debug)]
pub(crate) struct CertInfo<'a> {
    /// The issuer Name, header included.
    pub(crate) issuer: &'a [u8],
    /// The subject Name, header included.
    pub(crate) subject: &'a [u8],
    /// The SubjectPublicKeyInfo, header included.
    pub(crate) spki: &'a [u8],
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// basicConstraints cA, false when the extension is absent.
    pub(crate) is_ca: bool,
    pub(crate) subject_key_id: Option<&'a [u8]>,
    /// The key identifier of the authorityKeyIdentifier extension: the issuer's
    /// subject key identifier.
    pub(crate) authority_key_id: Option<&'a [u8]>,
}

/// Reads the fields of [`CertInfo`] from a DER certificate.
pub(crate) fn parse_certificate(der: &[u8]) -> DerResult<CertInfo<'_>> {
    let mut outer = Reader::new(der);
    let cert = outer.expect(TAG_SEQUENCE, "certificate is not a sequence")?;
    if !outer.is_empty() {
        return Err(DerError("trailing data after the certificate"));
    }
    let mut cert = Reader::new(cert.content);
    let tbs = cert.expect(TAG_SEQUENCE, "tbsCertificate is not a sequence")?;
    let mut tbs = Reader::new(tbs.content);
    tbs.optional(TAG_VERSION)?;
    tbs.expect(TAG_INTEGER, "missing serial number")?;
    tbs.expect(TAG_SEQUENCE, "missing signature algorithm")?;
    let issuer = tbs.expect(TAG_SEQUENCE, "missing issuer")?.raw;
    let validity = tbs.expect(TAG_SEQUENCE, "missing validity")?;
    let subject = tbs.expect(TAG_SEQUENCE, "missing subject")?.raw;
    let spki = tbs
        .expect(TAG_SEQUENCE, "missing subject public key info")?
        .raw;

    let mut validity = Reader::new(validity.content);
    let not_before = parse_time(validity.next()?)?;
    let not_after = parse_time(validity.next()?)?;

    let mut info = CertInfo {
        issuer,
        subject,
        spki,
        not_before,
        not_after,
        is_ca: false,
        subject_key_id: None,
        authority_key_id: None,
    };
    while !tbs.is_empty() {
        let field = tbs.next()?;
        if field.tag == TAG_EXTENSIONS {
            read_extensions(field.content, &mut info)?;
        }
    }
    Ok(info)
}

fn read_extensions<'a>(explicit: &'a [u8], info: &mut CertInfo<'a>) -> DerResult<()> {
    let list = Reader::new(explicit).expect(TAG_SEQUENCE, "extensions are not a sequence")?;
    let mut list = Reader::new(list.content);
    while !list.is_empty() {
        let ext = list.expect(TAG_SEQUENCE, "extension is not a sequence")?;
        let mut ext = Reader::new(ext.content);
        let oid = ext.expect(TAG_OID, "extension without an oid")?.content;
        ext.optional(TAG_BOOLEAN)?;
        let value = ext
            .expect(TAG_OCTET_STRING, "extension without a value")?
            .content;
        if oid == OID_BASIC_CONSTRAINTS {
            let constraints = Reader::new(value).expect(TAG_SEQUENCE, "bad basic constraints")?;
            let ca = Reader::new(constraints.content).optional(TAG_BOOLEAN)?;
            info.is_ca = ca.is_some_and(|b| b.content.first().is_some_and(|&v| v != 0));
        } else if oid == OID_SUBJECT_KEY_ID {
            let id = Reader::new(value).expect(TAG_OCTET_STRING, "bad subject key identifier")?;
            info.subject_key_id = Some(id.content);
        } else if oid == OID_AUTHORITY_KEY_ID {
            let aki = Reader::new(value).expect(TAG_SEQUENCE, "bad authority key identifier")?;
            if let Some(id) = Reader::new(aki.content).optional(TAG_KEY_ID)? {
                info.authority_key_id = Some(id.content);
            }
        }
    }
    Ok(())
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as unix seconds.
fn parse_time(tlv: Tlv<'_>) -> DerResult<i64> {
    let text = std::str::from_utf8(tlv.content)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or(DerError("time is not ascii"))?;
    let (year, rest) = match (tlv.tag, text.len()) {
        (TAG_UTC_TIME, 13) => {
            let yy = digits(&text[..2])?;
            // RFC 5280: YY >= 50 is 19YY, otherwise 20YY.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (TAG_GENERALIZED_TIME, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return Err(DerError("unsupported time encoding")),
    };
    if !rest.ends_with('Z') {
        return Err(DerError("time is not in utc"));
    }
    let field = |i: usize| -> DerResult<u32> {
        u32::try_from(digits(&rest[i..i + 2])?).map_err(|_| DerError("bad time"))
    };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let year = i32::try_from(year).map_err(|_| DerError("bad time"))?;
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .ok_or(DerError("time out of range"))?;
    Ok(date.and_utc().timestamp())
}

fn digits(text: &str) -> DerResult<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DerError("time has non-digits"));
    }
    text.parse().map_err(|_| DerError("bad time"))
}

/// One attribute of a distinguished name: its OID arcs, string tag and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameAttr<'a> {
    pub(crate) oid: Vec<u64>,
    pub(crate) tag: u8,
    pub(crate) value: &'a [u8],
}

/// The attributes of a Name (header included), one per RDN; multi-valued RDNs are refused.
pub(crate) fn parse_name(name: &[u8]) -> DerResult<Vec<NameAttr<'_>>> {
    let seq = Reader::new(name).expect(TAG_SEQUENCE, "name is not a sequence")?;
    let mut rdns = Reader::new(seq.content);
    let mut attrs = Vec::new();
    while !rdns.is_empty() {
        let set = rdns.expect(TAG_SET, "relative name is not a set")?;
        let mut set = Reader::new(set.content);
        let atv = set.expect(TAG_SEQUENCE, "attribute is not a sequence")?;
        if !set.is_empty() {
            return Err(DerError("multi-valued relative names are not supported"));
        }
        let mut atv = Reader::new(atv.content);
        let oid = decode_oid(atv.expect(TAG_OID, "attribute without an oid")?.content)?;
        let value = atv.next()?;
        attrs.push(NameAttr {
            oid,
            tag: value.tag,
            value: value.content,
        });
    }
    Ok(attrs)
}

/// The arcs of an encoded OBJECT IDENTIFIER.
fn decode_oid(content: &[u8]) -> DerResult<Vec<u64>> {
    let mut arcs = Vec::new();
    let mut acc: u64 = 0;
    for (i, &b) in content.iter().enumerate() {
        if acc > u64::MAX >> 7 {
            return Err(DerError("oid arc too large"));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 != 0 {
            continue;
        }
        if arcs.is_empty() {
            let first = (acc / 40).min(2);
            arcs.push(first);
            arcs.push(acc - first * 40);
        } else {
            arcs.push(acc);
        }
        acc = 0;
        if i + 1 == content.len() {
            return Ok(arcs);
        }
    }
    Err(DerError("truncated oid"))
}

/// PEM text for a DER blob (64-column base64, as RFC 7468 asks).
pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    // base64 output is ascii, so any byte offset is a character boundary.
    for start in (0..b64.len()).step_by(64) {
        pem.push_str(&b64[start..b64.len().min(start + 64)]);
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 200];
        long.extend(std::iter::repeat_n(7u8, 200));
        long.extend([0x05, 0x00]);
        let mut r = Reader::new(&long);
        let first = r.next().expect("long form");
        assert_eq!(first.content.len(), 200);
        assert_eq!(first.raw.len(), 203);
        let null = r.next().expect("short form");
        assert_eq!((null.tag, null.content.len()), (0x05, 0));
        assert!(r.is_empty());
    }

    #[test]
    fn refuses_overruns() {
        assert!(Reader::new(&[0x04, 0x05, 1, 2]).next().is_err());
        assert!(Reader::new(&[0x04]).next().is_err());
        assert!(Reader::new(&[0x04, 0x85, 0, 0, 0, 0, 1]).next().is_err());
    }

    #[test]
    fn decodes_times() {
        let utc = Tlv {
            tag: TAG_UTC_TIME,
            content: b"700101000000Z",
            raw: &[],
        };
        assert_eq!(parse_time(utc), Ok(0));
        let utc = Tlv {
            tag: TAG_UTC_TIME,
            content: b"491231235959Z",
            raw: &[],
        };
        assert_eq!(parse_time(utc), Ok(2_524_607_999));
        let gen = Tlv {
            tag: TAG_GENERALIZED_TIME,
            content: b"20500101000000Z",
            raw: &[],
        };
        assert_eq!(parse_time(gen), Ok(2_524_608_000));
        let bad = Tlv {
            tag: TAG_UTC_TIME,
            content: b"701301000000Z",
            raw: &[],
        };
        assert!(parse_time(bad).is_err());
        let multibyte = Tlv {
            tag: TAG_UTC_TIME,
            content: "7é0101000000".as_bytes(),
            raw: &[],
        };
        assert!(parse_time(multibyte).is_err());
    }

    #[test]
    fn decodes_oids() {
        assert_eq!(decode_oid(&[0x55, 0x04, 0x03]), Ok(vec![2, 5, 4, 3]));
        assert_eq!(
            decode_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            Ok(vec![1, 2, 840, 113549])
        );
        assert!(decode_oid(&[0x2a, 0x86]).is_err());
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let pem = to_pem("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
    }
}
