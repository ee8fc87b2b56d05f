"""Signed Apple configuration profiles that install a client identity and our root CA on iOS.

Payload keys follow Apple's schemas (apple/device-management `mdm/profiles/`: TopLevel,
CommonPayloadKeys, com.apple.security.pkcs12, com.apple.security.root).
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from pwa_server.pki.packaging.pkcs12 import PrivateKey
from pwa_server.pki.packaging.signing_identity import SigningIdentity, load_signing_identity

__all__ = [
    "MEDIA_TYPE",
    "SigningIdentity",
    "build_configuration_profile",
    "load_signing_identity",
    "sign_configuration_profile",
]

MEDIA_TYPE = "application/x-apple-aspen-config"

# Shown by iOS before installation, in the phone's language (fallback "default").
_CONSENT = {
    "en": (
        "This profile installs two certificates from {organization}: your client "
        "certificate {user_id}, with which you sign in, and the root CA certificate "
        "{root_name} that vouches for it. When iOS asks for the certificate's password, enter "
        "the download password you were shown. Install it only if you asked for this "
        "certificate."
    ),
    "ja": (
        "このプロファイルは{organization}の証明書を2つインストールします。ログインに使う"
        "クライアント証明書「{user_id}」と、その信頼の起点となるルートCA証明書「{root_name}」です。"
        "証明書のパスワードを求められたら、表示されたダウンロードパスワードを入力して"
        "ください。この証明書を申請していない場合はインストールしないでください。"
    ),
}
# CertificateProfile-level texts have no localisation in the format, so they carry both languages.
_DESCRIPTION = (
    "ログイン用のクライアント証明書と{organization}のルートCA証明書 / "
    "Client certificate for signing in, and the {organization} root CA certificate"
)
_UNSAFE_IN_NAMES = set("/\\:") | {chr(code) for code in range(33)} | {chr(127)}


def build_configuration_profile(
    *,
    pkcs12: bytes,
    root: x509.Certificate,
    certificate_user_id: str,
    organization: str,
    identifier_prefix: str,
) -> bytes:
    """An unsigned XML configuration profile with a PKCS#12 payload and a root certificate payload.

    The PayloadIdentifier depends only on `identifier_prefix` and `certificate_user_id`, so
    the profile of a reissued certificate replaces the installed one. The PKCS#12 payload has
    no Password key: iOS asks the user for the download password at install.
    """
    for name, value in (
        ("certificate user ID", certificate_user_id),
        ("prefix", identifier_prefix),
    ):
        # Both end up in identifiers and a file name on the phone.
        if not value or _UNSAFE_IN_NAMES & set(value):
            raise ValueError(f"unusable {name} for a profile: {value!r}")
    identifier = f"{identifier_prefix}.{certificate_user_id}"
    root_name = _common_name(root)
    texts = {"organization": organization, "user_id": certificate_user_id, "root_name": root_name}
    consent = {language: text.format(**texts) for language, text in _CONSENT.items()}
    identity_payload = _payload(
        "com.apple.security.pkcs12",
        f"{identifier}.pkcs12",
        certificate_user_id,
        organization,
        content=pkcs12,
        file_name=f"{certificate_user_id}.p12",
    )
    root_payload = _payload(
        "com.apple.security.root",
        f"{identifier}.root",
        root_name,
        organization,
        content=root.public_bytes(serialization.Encoding.DER),
        file_name="root-ca.cer",
    )
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        # Apple: the UUID identifies these contents; the identifier decides replacement.
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": f"{organization}: {certificate_user_id}",
        "PayloadDescription": _DESCRIPTION.format(**texts),
        "PayloadOrganization": organization,
        "ConsentText": {**consent, "default": consent["en"]},
        "PayloadContent": [identity_payload, root_payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


def _payload(
    payload_type: str,
    identifier: str,
    display_name: str,
    organization: str,
    *,
    content: bytes,
    file_name: str,
) -> dict[str, Any]:
    return {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": display_name,
        "PayloadOrganization": organization,
        "PayloadCertificateFileName": file_name,
        "PayloadContent": content,  # bytes become <data> in the plist
    }


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def sign_configuration_profile(
    profile: bytes,
    *,
    certificate: x509.Certificate,
    private_key: PrivateKey,
    chain: Sequence[x509.Certificate],
) -> bytes:
    """The profile wrapped in DER CMS SignedData (content attached), as iOS installs it.

    SHA-256 with PKCS#1 v1.5 for RSA keys (iOS does not accept PSS here) or ECDSA for EC keys;
    the signer certificate and `chain` travel in the signature, so the phone can build the
    path to a root it trusts and show the profile as verified.
    """
    rsa_padding = padding.PKCS1v15() if isinstance(private_key, rsa.RSAPrivateKey) else None
    # cryptography 50's builder forgets added certificates when set_data or add_signer comes
    # after add_certificate, so the order here matters.
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(profile)
        .add_signer(certificate, private_key, hashes.SHA256(), rsa_padding=rsa_padding)
    )
    for extra in chain:
        builder = builder.add_certificate(extra)
    # Binary: without it the plist's line ends are rewritten to CRLF (S/MIME canonical form)
    # before signing. NoCapabilities: S/MIME capabilities mean nothing for a profile.
    options = [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCapabilities]
    return builder.sign(serialization.Encoding.DER, options)
