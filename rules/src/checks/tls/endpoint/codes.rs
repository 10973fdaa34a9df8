//! The finding codes of `tls_endpoint`: the certificate codes (the same
//! words as [`crate::checks::tls::cert::CertCode`]) and the endpoint's own.

use crate::finding_codes;

finding_codes! {
    pub enum Code {
        Expired = ("expired", Critical, "a presented certificate is past its not-after date"),
        NotYetValid = ("not_yet_valid", High, "a presented certificate is before its not-before date"),
        ExpiringSoon = ("expiring_soon", Medium, "a presented certificate expires within `min_days_remaining` days"),
        SelfSigned = ("self_signed", High, "the leaf certificate is self-signed"),
        UntrustedChain = ("untrusted_chain", High, "no path from the chain to a trusted root"),
        IncompleteChain = ("incomplete_chain", High, "the chain stops at a certificate whose issuer was not sent and is not a trusted root (an intermediate is missing)"),
        ChainOrder = ("chain_order", Medium, "the chain is not in order: a certificate is not followed by its issuer"),
        HostnameMismatch = ("hostname_mismatch", High, "the leaf certificate's names do not cover `server_name`"),
        WeakKey = ("weak_key", High, "a key below `min_rsa_bits` / `min_ec_bits`, or a DSA key"),
        WeakSignature = ("weak_signature", High, "a certificate signed with SHA-1, MD5 or MD2"),
        IssuerMismatch = ("issuer_mismatch", High, "the leaf's issuer does not contain `issuer_contains`"),
        Unparsable = ("unparsable_certificate", High, "a presented certificate is not valid X.509 DER"),
        NoCertificate = ("no_certificate", High, "no certificate was presented or found"),
        OldProtocol = ("old_protocol", High, "the endpoint negotiates or accepts a protocol below `min_protocol`"),
        OldProtocolNotProbed = ("old_protocol_not_probed", Info, "whether the endpoint accepts a protocol below `min_protocol` is not known"),
        NoOcspStapling = ("no_ocsp_stapling", Medium, "no OCSP response stapled while `require_ocsp_stapling` is set"),
        WeakCipher = ("weak_cipher", High, "the endpoint negotiates or accepts a TLS 1.2 cipher suite without AEAD or without forward secrecy"),
        WeakCipherNotProbed = ("weak_cipher_not_probed", Info, "whether the endpoint accepts a weak TLS 1.2 cipher suite is not known"),
        HstsMissing = ("hsts_missing", High, "`hsts` is set and `GET /` answers without a valid `Strict-Transport-Security` header"),
        HstsTooShort = ("hsts_too_short", Medium, "the `Strict-Transport-Security` `max-age` is below `min_hsts_max_age`"),
        NoHttpsRedirect = ("no_https_redirect", High, "plain HTTP at `http_address` does not answer with a redirect (301, 302, 307, 308) to `https://`"),
    }
}
