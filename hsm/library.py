"""The PKCS#11 library of this process: loading a module, finding a token on it, and the one
lock every call into it takes.

python-pkcs11 initialises the library with C_Initialize(NULL), which tells SoftHSM that only
one thread uses it; two threads calling in at once crash the process. Every call into the
library therefore goes through one process-wide lock (the library itself is process-wide).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pkcs11
import pkcs11.exceptions as p11

from hsm.errors import ModuleLoadError, TokenNotFoundError, translate

LIBRARY_LOCK = threading.RLock()
_SOFTHSM_CONF: dict[Path, Path] = {}
# The library life of each module: re-initialising the library (C_Finalize, C_Initialize)
# ends every session of the process, and SoftHSM then reuses handles.
_epochs: dict[Path, int] = defaultdict(int)


def load_module(module_path: Path, softhsm_conf: Path | None = None) -> Any:
    """Load a PKCS#11 module; SoftHSM's configuration file must be named before the first load."""
    if softhsm_conf is not None:
        # SoftHSM reads its configuration once per process: a second one would be ignored.
        loaded = _SOFTHSM_CONF.get(module_path, softhsm_conf)
        if loaded != softhsm_conf:
            raise ModuleLoadError(
                f"{module_path} is already loaded with configuration {loaded};"
                f" this process cannot also use {softhsm_conf}"
            )
        os.environ["SOFTHSM2_CONF"] = str(softhsm_conf)
    if not module_path.is_file():
        raise ModuleLoadError(f"PKCS#11 module not found: {module_path}")
    with LIBRARY_LOCK:
        try:
            library = pkcs11.lib(str(module_path))
        except (RuntimeError, OSError, p11.PKCS11Error) as error:
            raise ModuleLoadError(f"cannot load PKCS#11 module {module_path}: {error}") from None
        if softhsm_conf is not None:
            _SOFTHSM_CONF[module_path] = softhsm_conf
        return library


def epoch(module_path: Path) -> int:
    """How often this process re-initialised the library of `module_path`."""
    return _epochs[module_path]


def find_token(library: Any, module_path: Path, label: str) -> Any:
    """The token labelled `label`; the caller holds LIBRARY_LOCK."""
    doing = f"finding token {label!r}"
    try:
        return library.get_token(token_label=label)
    except p11.NoSuchToken:
        pass
    except p11.PKCS11Error as error:
        raise translate(error, doing) from None
    # A token created by another process after this one loaded the library is invisible
    # until the library is initialised again, which ends every session of the process.
    try:
        library.reinitialize()
        _epochs[module_path] += 1
        return library.get_token(token_label=label)
    except p11.NoSuchToken:
        raise TokenNotFoundError(f"no token labelled {label!r} in {module_path}") from None
    except p11.PKCS11Error as error:
        raise translate(error, doing) from None
