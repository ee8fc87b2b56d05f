"""The enrollment state machine: one-time password, secret question, download password,
download window, installation, lockout and reissue."""
