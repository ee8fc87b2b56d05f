"""Shomei run as an operator runs it, for tests/ and bench/ alike: a server in a child process,
a browser that trusts it. Part of the repository, not of the wheel."""
