"""The certificate authority: hierarchy, profiles and the issuance pipeline."""
