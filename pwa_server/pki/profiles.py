"""Certificate profiles: which extensions each kind of certificate carries (RFC 5280)."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    ObjectIdentifier,
)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# Our private extended key usage "signs Shomei return assertions": an OID under 2.25 (a UUID,
# ITU-T X.667), which needs no registration. Its only job is to exclude every other purpose.
RETURN_ASSERTION_SIGNING = ObjectIdentifier("2.25.101992281994130861848206797479045624019")


class CertificateProfile(enum.StrEnum):
    """The kinds of certificate our CAs sign."""

    ROOT_CA = "root-ca"
    ISSUING_CA = "issuing-ca"
    TLS_SERVER = "tls-server"
    CLIENT = "client"
    OCSP_RESPONDER = "ocsp-responder"
    ASSERTION_SIGNER = "assertion-signer"


def _key_usage(
    *, cert_sign: bool, digital_signature: bool, key_encipherment: bool
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def subject_alternative_names(names: Sequence[str]) -> x509.SubjectAlternativeName:
    """DNS names and IP addresses, each in the SAN form a TLS client matches."""
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


@dataclass(frozen=True)
class PublicationUrls:
    """Where relying parties find the CRL, the OCSP responder and the issuer's certificate
    (plain HTTP, RFC 5280 practice)."""

    crl: str
    ca_issuers: str
    ocsp: str

    def extensions(self) -> list[tuple[x509.ExtensionType, bool]]:
        """CRL distribution point and authority information access (OCSP, CA issuers)."""
        return [
            (
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(self.crl)], None, None, None
                        )
                    ]
                ),
                False,
            ),
            (
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(self.ocsp),
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(self.ca_issuers),
                        ),
                    ]
                ),
                False,
            ),
        ]


def extensions(
    profile: CertificateProfile,
    subject_key: PublicKey,
    issuer_key: PublicKey,
    alt_names: Sequence[str] = (),
    urls: PublicationUrls | None = None,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The (extension, critical) pairs of a certificate of `profile`."""
    identifiers: list[tuple[x509.ExtensionType, bool]] = [
        (x509.SubjectKeyIdentifier.from_public_key(subject_key), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), False),
    ]
    # RSA key transport in TLS 1.2 needs keyEncipherment; EC keys never encipher.
    rsa_key = isinstance(subject_key, rsa.RSAPublicKey)
    if profile is CertificateProfile.ROOT_CA:
        # A self-signed root carries no AKI by custom; SKI identifies it.
        return [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (_key_usage(cert_sign=True, digital_signature=False, key_encipherment=False), True),
            identifiers[0],
        ]
    if profile is CertificateProfile.ISSUING_CA:
        return [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_key_usage(cert_sign=True, digital_signature=False, key_encipherment=False), True),
            *identifiers,
        ]
    if profile is CertificateProfile.OCSP_RESPONDER:
        # RFC 6960 4.2.2.2: a delegated responder, marked by its EKU; id-pkix-ocsp-nocheck
        # tells clients not to ask about the responder's own status.
        return [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(cert_sign=False, digital_signature=True, key_encipherment=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
            (x509.OCSPNoCheck(), False),
            *identifiers,
        ]
    if profile is CertificateProfile.ASSERTION_SIGNER:
        # Signs JWTs only. Without an EKU the certificate would be good for any purpose (RFC
        # 5280 4.2.1.12), e.g. TLS client authentication at a site that trusts our issuing CA;
        # the private EKU leaves it good for nothing else.
        return [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(cert_sign=False, digital_signature=True, key_encipherment=False), True),
            (x509.ExtendedKeyUsage([RETURN_ASSERTION_SIGNING]), False),
            *identifiers,
        ]
    if profile is CertificateProfile.TLS_SERVER:
        if not alt_names:
            raise ValueError("a TLS server certificate needs at least one host name")
        return [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(cert_sign=False, digital_signature=True, key_encipherment=rsa_key), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (subject_alternative_names(alt_names), False),
            *identifiers,
            *(urls.extensions() if urls else []),
        ]
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(cert_sign=False, digital_signature=True, key_encipherment=rsa_key), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        *identifiers,
        *(urls.extensions() if urls else []),
    ]
