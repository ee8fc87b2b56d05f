"""`shomei serve`: the listeners, the worker processes behind them and their background loops.

Three listeners, one application: the PWA on https_port; the installation check on
check_port, which asks for (but does not require) a client certificate and accepts any, so
that the application can judge it; and /pki/* over plain HTTP on http_port. Crypto work holds the
GIL, so throughput comes from processes: the sockets are bound once (`listeners`) and shared by
`workers` spawned processes (`supervisor`), each running one uvicorn server per listener
(`worker`) and the outbox, seal and rollover loops (`background`). The ASGI application itself
is `pwa_server.web`, which knows nothing of this package.
"""
