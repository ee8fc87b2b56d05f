"""`shomei site ...`: register relying sites, manage their API keys, webhook and return URLs."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from pwa_server.audit import CLI
from pwa_server.names import for_terminal
from pwa_server.runtime import site_registry
from pwa_server.settings import Settings
from pwa_server.sites.registry import SiteRegistry
from pwa_server.sites.webhook_delivery import list_deliveries
from pwa_server.store.database import check, create_database_engine
from pwa_server.vocabulary import DeliveryState, KeyProfile


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """The `site` command and its subcommands."""
    site = commands.add_parser("site", help="relying web sites and their API keys")
    site_commands = site.add_subparsers(dest="site_command", required=True)
    add = site_commands.add_parser(
        "add", parents=[common], help="register a site: prints its API key (shown once)"
    )
    add.add_argument("name", help="short name: lower-case letters, digits, hyphens")
    add.add_argument("--display-name", required=True, help="shown to users on the return button")
    add.add_argument(
        "--return-url", action="append", default=[], help="an allowed return URL (repeatable)"
    )
    add.add_argument("--webhook-url", help="where events are POSTed")
    add.add_argument("--profile", default=KeyProfile.DEFAULT, choices=list(KeyProfile))
    add.add_argument("--json", action="store_true", help="print JSON")
    site_commands.add_parser("list", parents=[common], help="the sites and their keys")
    key_add = site_commands.add_parser(
        "add-key", parents=[common], help="a new API key for a site (shown once)"
    )
    key_add.add_argument("name")
    key_add.add_argument("--label", required=True, help="what the key is for")
    key_revoke = site_commands.add_parser("revoke-key", parents=[common], help="revoke an API key")
    key_revoke.add_argument("key_id", help="the key's id (shk_<id>_...)")
    webhook = site_commands.add_parser(
        "set-webhook", parents=[common], help="set or remove the webhook URL (new secret)"
    )
    webhook.add_argument("name")
    webhook.add_argument("url", nargs="?", help="omit to remove the webhook")
    deliveries = site_commands.add_parser(
        "deliveries", parents=[common], help="the site's latest webhook events and their state"
    )
    deliveries.add_argument("name")
    returns = site_commands.add_parser(
        "set-return-urls", parents=[common], help="replace the allowed return URLs"
    )
    returns.add_argument("name")
    returns.add_argument("urls", nargs="*")


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Run one `site` subcommand."""
    engine = create_database_engine(settings.effective_database_url)
    try:
        check(engine)
        registry = site_registry(settings, engine)
        return _COMMANDS[arguments.site_command](registry, arguments, dt.datetime.now(dt.UTC))
    finally:
        engine.dispose()


def _add(registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime) -> int:
    new = registry.create(
        name=arguments.name,
        display_name=arguments.display_name,
        return_urls=tuple(arguments.return_url),
        webhook_url=arguments.webhook_url,
        default_profile=KeyProfile(arguments.profile),
        now=now,
        actor=CLI,
    )
    if arguments.json:
        print(
            json.dumps(
                {
                    "site": new.site.name,
                    "api_key": new.api_key,
                    "webhook_secret": new.webhook_secret,
                },
                indent=2,
            )
        )
        return 0
    print(f"Site:           {new.site.name} ({new.site.display_name})")
    print(f"API key:        {new.api_key}")
    if new.webhook_secret:
        print(f"Webhook secret: {new.webhook_secret}")
    print("The key and the secret are shown only now: store them in the site's configuration.")
    return 0


def _list(registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime) -> int:
    sites = registry.sites()
    for site in sites:
        print(
            f"{site.name}  {for_terminal(site.display_name)}  [{site.status}]"
            f"  profile {site.default_profile}"
        )
        print(f"  webhook: {site.webhook_url or '-'}")
        for url in site.return_urls:
            print(f"  return:  {url}")
        for key in registry.keys(site.name):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            print(f"  key {key.id}  {for_terminal(key.label)}  {state}  last used {used}")
    if not sites:
        print("no sites; add one with `shomei site add`")
    return 0


def _add_key(registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime) -> int:
    print(registry.add_key(arguments.name, label=arguments.label, now=now, actor=CLI))
    return 0


def _revoke_key(registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime) -> int:
    registry.revoke_key(arguments.key_id, now=now, actor=CLI)
    print(f"API key {arguments.key_id} revoked")
    return 0


def _set_webhook(registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime) -> int:
    secret = registry.set_webhook(arguments.name, arguments.url, now=now, actor=CLI)
    if secret is None:
        print(f"{arguments.name}: webhook removed")
    else:
        print(f"Webhook secret: {secret}  (shown only now)")
    return 0


def _set_return_urls(
    registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime
) -> int:
    registry.set_return_urls(arguments.name, tuple(arguments.urls), now=now, actor=CLI)
    print(f"{arguments.name}: {len(arguments.urls)} return URLs")
    return 0


def _deliveries(registry: SiteRegistry, arguments: argparse.Namespace, now: dt.datetime) -> int:
    site = registry.site(arguments.name)
    messages = list_deliveries(registry.engine, site_id=site.id)
    for message in messages:
        match message.state:
            case DeliveryState.DELIVERED:
                state = f"{message.state} {message.delivered_at:%Y-%m-%d %H:%M:%S}"
            case DeliveryState.FAILED:
                state = f"{message.state}"
            case DeliveryState.PENDING:
                state = f"{message.state}, next try {message.next_attempt_at:%H:%M:%S}"
        print(
            f"{message.id:>6}  {message.created_at:%Y-%m-%d %H:%M:%S}  {message.subject or '':22}"
            f"  {message.attempts} attempts  {state}"
        )
        if message.last_error and not message.delivered_at:
            print(f"        last error: {message.last_error}")
    if not messages:
        print(f"no webhook events for {site.name}")
    return 0


_COMMANDS = {
    "deliveries": _deliveries,
    "add": _add,
    "list": _list,
    "add-key": _add_key,
    "revoke-key": _revoke_key,
    "set-webhook": _set_webhook,
    "set-return-urls": _set_return_urls,
}
