"""The security officers' console under /officer: WebAuthn sign-in, roles checked on every
page and action, a fresh assertion before every sensitive action."""
