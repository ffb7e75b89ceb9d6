//! The CEL validation rules of the Beskar7 CRDs, and the messages a person sees when one fails.
//!
//! Every rule lives here as a constant so that the types, the tests and the documentation
//! (`docs/api.md`) all speak of the same text. Each rule is attached to its field with
//! `#[x_kube(validation = Rule::new(..).message(..))]` (never a `validate(rule = ..)` attribute, which
//! kube-derive silently drops), and every field a rule reads carries a `maxLength`/`maxItems`
//! bound so the API server's CEL cost estimate stays within budget.
//!
//! Regular expressions are written with `\\` inside CEL string literals: CEL unescapes them once,
//! so the regex engine sees `\s`, `\.`.

/// An `http://` or `https://` URL with a host and no whitespace.
pub const HTTP_URL: &str = r"self.matches('^https?://[^\\s/?#]+([/?#][^\\s]*)?$') && isURL(self) && url(self).getHostname() != ''";
/// Message of [`HTTP_URL`] on a BMC address.
pub const BMC_ADDRESS_MSG: &str = "must be an http:// or https:// URL with a host and no spaces, e.g. https://192.168.1.100 or https://bmc-01.example.com:8443";
/// Message of [`HTTP_URL`] on an image or configuration URL.
pub const IMAGE_URL_MSG: &str = "must be an http:// or https:// URL with a host and no spaces, e.g. http://boot-server/images/os.raw";

/// A Kubernetes object name (RFC 1123 DNS subdomain), as Secret names are.
pub const DNS_SUBDOMAIN: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
/// Message of [`DNS_SUBDOMAIN`] on a Secret reference.
pub const SECRET_NAME_MSG: &str = "must be the name of a Secret in the same namespace: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

/// `insecureSkipVerify` and `caBundleSecretRef` cannot both be set.
pub const TLS_EXCLUSIVE: &str =
    "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.caBundleSecretRef))";
/// Message of [`TLS_EXCLUSIVE`].
pub const TLS_EXCLUSIVE_MSG: &str = "insecureSkipVerify and caBundleSecretRef are mutually exclusive: set caBundleSecretRef to verify the BMC's certificate against your CA, or insecureSkipVerify to skip verification, not both";

/// A SHA-256 digest as `sha256sum` prints it, prefixed with `sha256:`.
pub const SHA256_DIGEST: &str = "self.matches('^sha256:[0-9a-f]{64}$')";
/// Message of [`SHA256_DIGEST`].
pub const SHA256_DIGEST_MSG: &str =
    "must be 'sha256:' followed by 64 lowercase hexadecimal digits (the output of sha256sum)";

/// A positive count or size.
pub const AT_LEAST_ONE: &str = "self >= 1";
/// Message of [`AT_LEAST_ONE`].
pub const AT_LEAST_ONE_MSG: &str = "must be at least 1";

/// A MAC address written as six colon-separated hexadecimal pairs.
pub const MAC_ADDRESS: &str = "self.matches('^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$')";
/// Message of [`MAC_ADDRESS`].
pub const MAC_ADDRESS_MSG: &str =
    "must be a MAC address of six colon-separated hexadecimal pairs, e.g. 52:54:00:12:34:56";

/// A static IPv4 configuration in the kernel `ip=` subset `<ip>::[<gw>]:<mask>[:<dns>]`.
pub const STATIC_IP: &str = r"self.matches('^([0-9]{1,3}\\.){3}[0-9]{1,3}::(([0-9]{1,3}\\.){3}[0-9]{1,3})?:(([0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9]{1,2})(:([0-9]{1,3}\\.){3}[0-9]{1,3})?$')";
/// Message of [`STATIC_IP`].
pub const STATIC_IP_MSG: &str = "must be '<ip>::[<gateway>]:<netmask or prefix length>[:<dns>]' with IPv4 addresses, e.g. 192.168.150.10::192.168.150.1:24 or 10.0.0.5:::255.255.255.0:10.0.0.1";

/// A device path under `/dev`, safe on a kernel command line.
pub const DEVICE_PATH: &str = "self.matches('^/dev/[A-Za-z0-9._:/+-]+$')";
/// Message of [`DEVICE_PATH`].
pub const DEVICE_PATH_MSG: &str = "must be a device path under /dev made of letters, digits and . _ : / + -, e.g. /dev/nvme0n1 or /dev/disk/by-id/wwn-0x5000c500a0b1c2d3";

/// A disk identifier (serial number or WWN), safe on a kernel command line.
pub const DISK_ID: &str = "self.matches('^[A-Za-z0-9._:+-]+$')";
/// Message of [`DISK_ID`].
pub const DISK_ID_MSG: &str = "must be made of letters, digits and . _ : + - only";

/// Image handoff writes the image to disk and needs its digest to verify it.
pub const IMAGE_NEEDS_DIGEST: &str =
    "!has(self.handoff) || self.handoff != 'Image' || has(self.targetImageDigest)";
/// Message of [`IMAGE_NEEDS_DIGEST`].
pub const IMAGE_NEEDS_DIGEST_MSG: &str = "handoff Image needs targetImageDigest: the agent verifies the image it writes to disk against it";

/// The provider ID Beskar7 sets: `b7://<namespace>/<host>/<machine>`.
pub const PROVIDER_ID_FORMAT: &str = r"self.matches('^b7://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$')";
/// Message of [`PROVIDER_ID_FORMAT`].
pub const PROVIDER_ID_FORMAT_MSG: &str = "must be b7://<namespace>/<physical host>/<machine>";

/// The provider ID cannot change or be removed once set (a transition rule on the spec).
pub const PROVIDER_ID_IMMUTABLE: &str =
    "!has(oldSelf.providerID) || (has(self.providerID) && self.providerID == oldSelf.providerID)";
/// Message of [`PROVIDER_ID_IMMUTABLE`].
pub const PROVIDER_ID_IMMUTABLE_MSG: &str =
    "providerID is immutable once set: it identifies the Node, so it cannot be changed or removed";

/// A claim may be set or cleared, but not moved from one consumer to another (a transition rule
/// on `consumerRef`, which the API server only evaluates when the old and new objects both have it).
pub const CONSUMER_REF_UNCHANGED: &str = "self == oldSelf";
/// Message of [`CONSUMER_REF_UNCHANGED`].
pub const CONSUMER_REF_UNCHANGED_MSG: &str = "consumerRef cannot be changed from one consumer to another: release the host first (remove consumerRef), then claim it again";

/// Every rule, for tests and documentation.
pub const ALL: &[&str] = &[
    HTTP_URL,
    DNS_SUBDOMAIN,
    TLS_EXCLUSIVE,
    SHA256_DIGEST,
    AT_LEAST_ONE,
    MAC_ADDRESS,
    STATIC_IP,
    DEVICE_PATH,
    DISK_ID,
    IMAGE_NEEDS_DIGEST,
    PROVIDER_ID_FORMAT,
    PROVIDER_ID_IMMUTABLE,
    CONSUMER_REF_UNCHANGED,
];
