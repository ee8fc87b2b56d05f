"""The one logged-in session of this process on each token, shared by its Token objects, and
running an operation in it (opened again once when the token lost it)."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pkcs11.exceptions as p11

from hsm import library as pkcs11_library
from hsm.errors import PinError, translate
from hsm.library import LIBRARY_LOCK

_T = TypeVar("_T")


class Login:
    """The one logged-in session of this process on one token, shared by its Token objects.

    Login is per token and process, and python-pkcs11 logs out when a session opened with a
    PIN is closed; one shared session, closed by its last user, keeps every Token object on
    the token logged in. All calls are serialised by the library lock anyway, so separate
    sessions would buy nothing.
    """

    def __init__(self, library: Any, module_path: Path, label: str, pin: str) -> None:
        self.library = library
        self.module_path = module_path
        self.label = label
        self.pin = pin
        self.users = 0
        self.session: Any = None
        self.token: Any = None
        # The library life the session belongs to: re-initialising the library ends every
        # session, and SoftHSM then reuses handles, so a stale one could reach another token.
        self.epoch = -1
        # Bumped on every new session, so cached object handles are looked up again.
        self.generation = 0

    def current(self) -> Any:
        """The live session, opened (again) when it is missing or from an earlier library life."""
        if self.session is None or self.epoch != pkcs11_library.epoch(self.module_path):
            self.open()
        return self.session

    def open(self) -> None:
        """Find the token and open a logged-in read-write session on it."""
        token = pkcs11_library.find_token(self.library, self.module_path, self.label)
        try:
            session = token.open(rw=True, user_pin=self.pin)
        except p11.UserAlreadyLoggedIn:
            # Logged in by a session of this process that we no longer hold (lost, or from
            # an earlier library life); the PIN was checked then.
            session = token.open(rw=True)
        except p11.PKCS11Error as error:
            raise translate(error, f"logging in to token {self.label!r}") from None
        self.session, self.token = session, token
        self.epoch = pkcs11_library.epoch(self.module_path)
        self.generation += 1

    def run(self, doing: str, operation: Callable[[Any], _T], *, searches: bool = False) -> _T:
        """Run `operation(session)` under the library lock, reopening a lost session once.

        python-pkcs11 0.10 leaves a failed object search marked active, and its finaliser
        then raises on a dead session; operations that search first make a cheap call that
        fails cleanly if the session is gone.
        """
        with LIBRARY_LOCK:
            try:
                session = self.current()
                if searches:
                    session.generate_random(64)
                return operation(session)
            except (p11.SessionHandleInvalid, p11.SessionClosed, p11.UserNotLoggedIn):
                # Drop the session the token no longer knows, without closing a handle
                # that may be someone else's now.
                self.session = None
            except p11.PKCS11Error as error:
                raise translate(error, doing) from None
            try:
                return operation(self.current())
            except p11.PKCS11Error as error:
                raise translate(error, doing) from None

    def close(self) -> None:
        """Close the session, unless a re-initialised library ended it already."""
        if self.session is not None and self.epoch == pkcs11_library.epoch(self.module_path):
            # Closing a session the token already dropped is not an error.
            with contextlib.suppress(p11.PKCS11Error):
                self.session.close()
        self.session = None


_logins: dict[tuple[Path, str], Login] = {}


def join_login(library: Any, module_path: Path, label: str, pin: str) -> Login:
    """The login of this process on token `label`, opened on first use; the caller holds
    LIBRARY_LOCK and calls `leave_login` when done."""
    login = _logins.get((module_path, label))
    if login is None:
        login = Login(library, module_path, label, pin)
        login.open()
        _logins[(module_path, label)] = login
    elif not hmac.compare_digest(login.pin.encode(), pin.encode()):
        # The token would not check the PIN again for a process already logged in.
        raise PinError(f"logging in to token {label!r}: the token refused the PIN (wrong PIN)")
    else:
        login.current()
    login.users += 1
    return login


def leave_login(login: Login) -> None:
    """One user fewer of `login`; the last one logs out. The caller holds LIBRARY_LOCK."""
    login.users -= 1
    if login.users == 0:
        login.close()
        del _logins[(login.module_path, login.label)]
