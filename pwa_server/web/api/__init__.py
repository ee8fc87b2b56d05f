"""The JSON API for relying sites under /api/v1, described by its own OpenAPI document."""
