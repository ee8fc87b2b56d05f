"""The ASGI application: routes, handlers, middleware, rendering (`pwa_server.serve` serves it)."""
