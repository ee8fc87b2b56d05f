"""ASGI type names shared by our middleware (Starlette's, so there is one definition)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
