"""Security officers: WebAuthn-only sign-in, roles and their permissions, invitations."""
