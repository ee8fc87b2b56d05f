"""The plain-HTTP listener's uvicorn protocol: httptools, without access log lines.

Relying parties' TLS servers fetch OCSP answers and CRLs there, up to thousands of times a
second: a log line each would cost a sixth of a reused OCSP answer (bench/ocsp.py) and record
nothing about anyone (the requests name certificates, not people). uvicorn's own switch
(`Config(access_log=False)`) empties the process-wide "uvicorn.access" logger, which would
silence the TLS listeners of the same worker too; hence this per-listener subclass, which
relies on uvicorn's `access_log` attribute (uvicorn is pinned exactly, see pyproject.toml).
"""

from __future__ import annotations

from typing import Any

from pwa_server.serve.bounded_protocol import BoundedHttpToolsProtocol


class UnloggedHttpToolsProtocol(BoundedHttpToolsProtocol):
    """BoundedHttpToolsProtocol that writes no access log line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False
