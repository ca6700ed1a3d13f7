//! The cluster root CA: generated once at `swarm init`, held with its key by managers and
//! as a bare certificate by workers; it signs every node certificate.

use std::time::Duration;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData as _, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::der::{self, NameAttr};
use super::{sha256_hex, unix_now, CaError, NodeCert, Role, MIN_NODE_CERT_VALIDITY};

/// The common name of a generated root, as swarmkit names it.
const ROOT_COMMON_NAME: &str = "swarm-ca";

/// A generated root lasts 20 years (swarmkit's `RootCAExpiration`).
const ROOT_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 60 * 60);

/// How far in the past `not_before` is put, so a peer whose clock is a little behind still
/// accepts a certificate issued just now.
pub(super) const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The cluster root CA certificate and, on managers, its key.
#[derive(Clone)]
pub struct RootCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: Option<String>,
    digest: String,
    not_after: i64,
    /// The root's subject, rebuilt so rcgen can name it as the issuer of leaves.
    subject: DistinguishedName,
    /// The root's subject key identifier, copied into leaves' authority key identifier.
    key_id: Option<Vec<u8>>,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("digest", &self.digest)
            .field("not_after", &self.not_after)
            .field("has_key", &self.key_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl RootCa {
    /// A fresh ECDSA P-256 root: CN "swarm-ca", CA:true, valid 20 years.
    pub fn generate() -> Result<RootCa, CaError> {
        let key = generate_key("the ca key")?;
        let now = unix_now();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, ROOT_COMMON_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = ca_key_usages();
        set_validity(
            &mut params,
            now - secs(CLOCK_SKEW),
            now.saturating_add(secs(ROOT_VALIDITY)),
        );
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&key)
            .map_err(|source| CaError::Generate {
                what: "the ca certificate",
                source,
            })?;
        RootCa::from_pem(&cert.pem(), Some(&key.serialize_pem()))
    }

    /// Loads a root from PEM. Workers pass no key; they can verify but not issue.
    ///
    /// Only the first certificate of `cert_pem` is used. The certificate must be a CA and,
    /// when a key is given, the key must be the certificate's.
    pub fn from_pem(cert_pem: &str, key_pem: Option<&str>) -> Result<RootCa, CaError> {
        const WHAT: &str = "ca certificate";
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
            CaError::InvalidPem {
                what: WHAT,
                reason: e.to_string(),
            }
        })?;
        let invalid = |reason: String| CaError::InvalidCertificate { what: WHAT, reason };
        let info = der::parse_certificate(&cert_der).map_err(|e| invalid(e.0.to_string()))?;
        if !info.is_ca {
            return Err(invalid("not a ca (basic constraints lack ca:true)".into()));
        }
        let subject = der::parse_name(info.subject)
            .map_err(|e| invalid(format!("subject: {}", e.0)))
            .and_then(|attrs| rebuild_name(&attrs).map_err(invalid))?;
        if let Some(key_pem) = key_pem {
            let key = parse_key(key_pem, "ca key")?;
            if key.subject_public_key_info() != info.spki {
                return Err(CaError::KeyMismatch { what: "ca" });
            }
        }
        Ok(RootCa {
            cert_pem: der::to_pem("CERTIFICATE", &cert_der),
            digest: sha256_hex(&cert_der),
            not_after: info.not_after,
            key_id: info.subject_key_id.map(<[u8]>::to_vec),
            subject,
            key_pem: key_pem.map(str::to_owned),
            cert_der,
        })
    }

    /// The root certificate as PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root key as PEM (PKCS#8), on managers only.
    pub fn key_pem(&self) -> Option<&str> {
        self.key_pem.as_deref()
    }

    /// The root certificate as DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the root certificate's DER, lowercase hex.
    pub fn digest(&self) -> String {
        self.digest.clone()
    }

    /// The root's subject and public key (SubjectPublicKeyInfo), both DER: what Docker shows
    /// as `TLSInfo.CertIssuerSubject` and `CertIssuerPublicKey`.
    pub fn issuer_info(&self) -> Result<(Vec<u8>, Vec<u8>), CaError> {
        let info =
            der::parse_certificate(&self.cert_der).map_err(|e| CaError::InvalidCertificate {
                what: "ca certificate",
                reason: e.0.to_string(),
            })?;
        Ok((info.subject.to_vec(), info.spki.to_vec()))
    }

    /// When the root expires, unix seconds. Leaves never outlive it.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Issues a node certificate and its fresh P-256 key (the key is made here: for
    /// `swarm init`, where the CA and the node are the same host; a joining node sends a
    /// [`Csr`] instead, see [`RootCa::sign`]).
    pub fn issue(
        &self,
        node_id: &str,
        role: Role,
        cluster_id: &str,
        validity: Duration,
    ) -> Result<NodeCert, CaError> {
        let csr = Csr::generate()?;
        let cert_pem = self.sign(&csr.csr_pem, node_id, role, cluster_id, validity)?;
        NodeCert::from_pem(&cert_pem, &csr.key_pem)
    }

    /// Signs a node's certificate signing request: the certificate certifies the request's
    /// public key (its signature proves the requester holds the private key), but every
    /// name in it is the CA's choice, never the request's.
    ///
    /// The leaf names the node (CN), its role (OU) and the cluster (O); it carries the DNS
    /// names of its role (`swarm-manager` / `swarm-worker`) and of the node id, and is good
    /// for both server and client authentication. Its lifetime is `validity`, at least
    /// [`MIN_NODE_CERT_VALIDITY`], cut short at the root's own expiry. Returns the
    /// certificate's PEM.
    pub fn sign(
        &self,
        csr_pem: &str,
        node_id: &str,
        role: Role,
        cluster_id: &str,
        validity: Duration,
    ) -> Result<String, CaError> {
        validate_node_id(node_id)?;
        if cluster_id.is_empty() {
            return Err(CaError::InvalidClusterId);
        }
        if validity < MIN_NODE_CERT_VALIDITY {
            return Err(CaError::ValidityTooShort {
                requested: validity,
            });
        }
        let ca_key = parse_key(self.key_pem.as_deref().ok_or(CaError::NoCaKey)?, "ca key")?;
        let mut request =
            rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
                CaError::InvalidCertificate {
                    what: "certificate signing request",
                    reason: e.to_string(),
                }
            })?;
        let now = unix_now();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        let dn = &mut params.distinguished_name;
        dn.push(DnType::OrganizationName, cluster_id);
        dn.push(DnType::OrganizationalUnitName, role.org_unit());
        dn.push(DnType::CommonName, node_id);
        params.subject_alt_names = vec![dns_name(role.server_name())?, dns_name(node_id)?];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let wanted = now.saturating_add(secs(validity));
        set_validity(
            &mut params,
            now - secs(CLOCK_SKEW),
            wanted.min(self.not_after),
        );
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        request.params = params;

        let cert = request
            .signed_by(&self.issuer(ca_key))
            .map_err(|source| CaError::Generate {
                what: "a node certificate",
                source,
            })?;
        self.check_issuer_name(cert.der())?;
        Ok(cert.pem())
    }

    /// A CA certificate for `next`'s subject and public key, signed by this root: the
    /// intermediate that lets a node trusting only this root accept certificates issued
    /// by `next` while a root rotation is under way. It expires with the earlier of the
    /// two roots. Both roots need their keys. Returns its PEM.
    pub fn cross_sign(&self, next: &RootCa) -> Result<String, CaError> {
        let key = parse_key(self.key_pem.as_deref().ok_or(CaError::NoCaKey)?, "ca key")?;
        let next_key = parse_key(
            next.key_pem.as_deref().ok_or(CaError::NoCaKey)?,
            "new ca key",
        )?;
        let now = unix_now();
        let mut params = CertificateParams::default();
        params.distinguished_name = next.subject.clone();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = ca_key_usages();
        if let Some(id) = &next.key_id {
            params.key_identifier_method = KeyIdMethod::PreSpecified(id.clone());
        }
        params.use_authority_key_identifier_extension = true;
        set_validity(
            &mut params,
            now - secs(CLOCK_SKEW),
            next.not_after.min(self.not_after),
        );
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&next_key, &self.issuer(key))
            .map_err(|source| CaError::Generate {
                what: "the cross-signed ca certificate",
                source,
            })?;
        let (subject, _) = next.issuer_info()?;
        let crossed =
            der::parse_certificate(cert.der()).map_err(|e| CaError::InvalidCertificate {
                what: "cross-signed ca certificate",
                reason: e.0.to_string(),
            })?;
        if crossed.subject != subject.as_slice() {
            return Err(CaError::InvalidCertificate {
                what: "new ca certificate",
                reason: "its subject name cannot be reproduced when cross-signing".into(),
            });
        }
        Ok(cert.pem())
    }

    /// Whether `now` (unix seconds) falls inside the root's validity window.
    pub fn valid_at(&self, now: i64) -> bool {
        der::parse_certificate(&self.cert_der)
            .is_ok_and(|i| i.not_before <= now && now < i.not_after)
    }

    fn issuer(&self, key: KeyPair) -> Issuer<'static, KeyPair> {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.subject.clone();
        params.key_usages = ca_key_usages();
        if let Some(id) = &self.key_id {
            params.key_identifier_method = KeyIdMethod::PreSpecified(id.clone());
        }
        Issuer::new(params, key)
    }

    /// rcgen re-encodes the issuer name; a leaf is only useful if the bytes equal the
    /// root's subject, since path building compares them byte for byte.
    fn check_issuer_name(&self, leaf_der: &[u8]) -> Result<(), CaError> {
        let leaf = der::parse_certificate(leaf_der).map_err(|e| CaError::InvalidCertificate {
            what: "issued certificate",
            reason: e.0.to_string(),
        })?;
        let root =
            der::parse_certificate(&self.cert_der).map_err(|e| CaError::InvalidCertificate {
                what: "ca certificate",
                reason: e.0.to_string(),
            })?;
        if leaf.issuer != root.subject {
            return Err(CaError::InvalidCertificate {
                what: "ca certificate",
                reason: "its subject name cannot be reproduced when signing".into(),
            });
        }
        Ok(())
    }
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ]
}

/// A node's fresh P-256 key and a certificate signing request for it: the key never leaves
/// the node; the request goes to a manager ([`RootCa::sign`]).
pub struct Csr {
    /// PKCS#8 PEM of the new private key.
    pub key_pem: String,
    /// PEM of the PKCS#10 request (no names: the CA chooses them).
    pub csr_pem: String,
}

impl std::fmt::Debug for Csr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csr").finish_non_exhaustive()
    }
}

impl Csr {
    pub fn generate() -> Result<Csr, CaError> {
        let key = generate_key("a node key")?;
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .and_then(|r| r.pem())
            .map_err(|source| CaError::Generate {
                what: "a certificate signing request",
                source,
            })?;
        Ok(Csr {
            key_pem: key.serialize_pem(),
            csr_pem: csr,
        })
    }
}

fn generate_key(what: &'static str) -> Result<KeyPair, CaError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|source| CaError::Generate { what, source })
}

pub(super) fn parse_key(pem: &str, what: &'static str) -> Result<KeyPair, CaError> {
    KeyPair::from_pem(pem).map_err(|e| CaError::InvalidPem {
        what,
        reason: e.to_string(),
    })
}

/// A positive 16-byte serial (top bit clear so the DER INTEGER needs no padding byte).
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Node ids become DNS names, so they must be DNS labels (swarm ids are 25 base36 chars).
fn validate_node_id(node_id: &str) -> Result<(), CaError> {
    let ok = (1..=63).contains(&node_id.len())
        && !node_id.starts_with('-')
        && !node_id.ends_with('-')
        && node_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CaError::InvalidNodeId {
            node_id: node_id.to_owned(),
        })
    }
}

fn dns_name(name: &str) -> Result<SanType, CaError> {
    let ia5 = name.try_into().map_err(|_| CaError::InvalidNodeId {
        node_id: name.to_owned(),
    })?;
    Ok(SanType::DnsName(ia5))
}

/// Rebuilds an rcgen name from parsed attributes, keeping each value's string type.
fn rebuild_name(attrs: &[NameAttr<'_>]) -> Result<DistinguishedName, String> {
    let mut dn = DistinguishedName::new();
    for attr in attrs {
        let text = std::str::from_utf8(attr.value)
            .map_err(|_| "subject attribute is not text".to_string())?
            .to_owned();
        let bad = |_| format!("subject attribute {text:?} does not fit its string type");
        let value = match attr.tag {
            0x0c => DnValue::Utf8String(text.clone()),
            0x13 => DnValue::PrintableString(text.as_str().try_into().map_err(bad)?),
            0x16 => DnValue::Ia5String(text.as_str().try_into().map_err(bad)?),
            tag => return Err(format!("unsupported subject string type 0x{tag:02x}")),
        };
        let ty = DnType::from_oid(&attr.oid);
        if dn.get(&ty).is_some() {
            return Err("repeated subject attributes are not supported".into());
        }
        dn.push(ty, value);
    }
    Ok(dn)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Sets the validity window from unix seconds (clamped to the epoch and year 9999).
/// rcgen's date type comes from the `time` crate, which it does not re-export; adding
/// a std `Duration` to a date it builds keeps that type unnamed here.
fn set_validity(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let at = |unix: i64| {
        let unix = u64::try_from(unix.clamp(0, MAX)).unwrap_or(0);
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(unix)
    };
    params.not_before = at(not_before);
    params.not_after = at(not_after);
}
