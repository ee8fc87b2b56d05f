"""The application's ASGI middleware, one a module; `pwa_server.web.app` orders them."""
