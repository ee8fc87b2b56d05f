"""The supervisor: starts the worker processes, restarts any that dies, stops them all."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from pwa_server.serve.listeners import Listeners
from pwa_server.serve.worker import run_worker
from pwa_server.settings import Settings

logger = logging.getLogger("shomei.serve")

_RESTART_DELAY = 1.0


def supervise(settings: Settings, listeners: Listeners) -> int:
    """Start the workers, restart any that dies, and stop them all on SIGINT or SIGTERM."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(settings, listeners), daemon=False)
        process.start()
        return process

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = [start() for _ in range(settings.workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for index, worker in enumerate(workers):
                if not worker.is_alive() and not stopping:
                    logger.warning(
                        "worker %s exited with %s; restarting", worker.pid, worker.exitcode
                    )
                    time.sleep(_RESTART_DELAY)
                    workers[index] = start()
    finally:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in (listeners.https, listeners.check, listeners.http):
            sock.close()
    print("shomei: stopped", file=sys.stderr)
    return 0
