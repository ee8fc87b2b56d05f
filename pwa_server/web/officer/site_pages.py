"""Registration officers' pages for relying sites: register one (its API key and webhook
secret shown once), manage its keys, webhook and return URLs, and watch its webhook
deliveries (attempts, the last error, when the next try is)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pwa_server.audit.actors import Actor
from pwa_server.officers.roles import Permission
from pwa_server.sites.webhook_delivery import list_deliveries
from pwa_server.vocabulary import KeyProfile
from pwa_server.web.context import app_context
from pwa_server.web.officer.forms import chosen_key_profile
from pwa_server.web.officer.guard import confirmed_form, officer_for
from pwa_server.web.officer.rendering import console_page


def _lines(text: object) -> tuple[str, ...]:
    """One URL a line, blank lines ignored."""
    return tuple(line.strip() for line in str(text or "").splitlines() if line.strip())


async def site_list(request: Request) -> Response:
    """GET /officer/sites"""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    sites = await run_in_threadpool(app_context(request).services.sites.sites)
    return console_page(
        request, "officer/sites.html", officer, sites=sites, profiles=list(KeyProfile)
    )


async def create_site(request: Request) -> Response:
    """POST /officer/sites: the site, with its first API key and webhook secret shown once."""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    new = await run_in_threadpool(
        lambda: services.sites.create(
            name=str(form.get("name", "")).strip(),
            display_name=str(form.get("display_name", "")),
            return_urls=_lines(form.get("return_urls")),
            webhook_url=str(form.get("webhook_url", "")).strip() or None,
            default_profile=chosen_key_profile(form),
            now=services.now(),
            actor=Actor.officer(officer.id),
        )
    )
    return console_page(
        request,
        "officer/site_secrets.html",
        officer,
        site=new.site,
        api_key=new.api_key,
        webhook_secret=new.webhook_secret,
    )


async def site_detail(request: Request) -> Response:
    """GET /officer/sites/{name}: settings, keys and the latest webhook deliveries."""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    services = app_context(request).services
    name = request.path_params["name"]
    site = await run_in_threadpool(services.sites.site, name)
    keys = await run_in_threadpool(services.sites.keys, name)
    deliveries = await run_in_threadpool(list_deliveries, services.engine, site_id=site.id)
    return console_page(
        request, "officer/site.html", officer, site=site, keys=keys, deliveries=deliveries
    )


async def add_key(request: Request) -> Response:
    """POST /officer/sites/{name}/keys: a new API key, shown once."""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    name = request.path_params["name"]
    key = await run_in_threadpool(
        lambda: services.sites.add_key(
            name,
            label=str(form.get("label", "")),
            now=services.now(),
            actor=Actor.officer(officer.id),
        )
    )
    site = await run_in_threadpool(services.sites.site, name)
    return console_page(
        request, "officer/site_secrets.html", officer, site=site, api_key=key, webhook_secret=None
    )


async def revoke_key(request: Request) -> Response:
    """POST /officer/sites/{name}/keys/{key_id}/revoke"""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    await confirmed_form(request, officer)
    services = app_context(request).services
    await run_in_threadpool(
        lambda: services.sites.revoke_key(
            request.path_params["key_id"], now=services.now(), actor=Actor.officer(officer.id)
        )
    )
    return RedirectResponse(f"/officer/sites/{request.path_params['name']}", status_code=303)


async def set_webhook(request: Request) -> Response:
    """POST /officer/sites/{name}/webhook: a new URL (or none) and a new secret, shown once."""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    name = request.path_params["name"]
    secret = await run_in_threadpool(
        lambda: services.sites.set_webhook(
            name,
            str(form.get("webhook_url", "")).strip() or None,
            now=services.now(),
            actor=Actor.officer(officer.id),
        )
    )
    site = await run_in_threadpool(services.sites.site, name)
    return console_page(
        request,
        "officer/site_secrets.html",
        officer,
        site=site,
        api_key=None,
        webhook_secret=secret,
    )


async def set_return_urls(request: Request) -> Response:
    """POST /officer/sites/{name}/return-urls"""
    officer = await officer_for(request, Permission.MANAGE_SITES)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    name = request.path_params["name"]
    await run_in_threadpool(
        lambda: services.sites.set_return_urls(
            name,
            _lines(form.get("return_urls")),
            now=services.now(),
            actor=Actor.officer(officer.id),
        )
    )
    return RedirectResponse(f"/officer/sites/{name}", status_code=303)


routes = [
    Route("/officer/sites", site_list, methods=["GET", "HEAD"]),
    Route("/officer/sites", create_site, methods=["POST"]),
    Route("/officer/sites/{name}", site_detail, methods=["GET", "HEAD"]),
    Route("/officer/sites/{name}/keys", add_key, methods=["POST"]),
    Route("/officer/sites/{name}/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
    Route("/officer/sites/{name}/webhook", set_webhook, methods=["POST"]),
    Route("/officer/sites/{name}/return-urls", set_return_urls, methods=["POST"]),
]
