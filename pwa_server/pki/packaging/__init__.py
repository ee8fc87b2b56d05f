"""Packaging an issued identity for phones: PKCS#12 files and Apple configuration profiles.

Pure domain code: bytes in, bytes out. The web layer chooses the format per platform and
serves the result with the module's MEDIA_TYPE.
"""

from pwa_server.pki.packaging.errors import PackagingError

__all__ = ["PackagingError"]
