"""Where a webhook may go: public ``https`` addresses only, unless an admin allows others.

An integration that registers a webhook chooses where the coordinator sends POST requests,
so a target could otherwise point the coordinator at itself, its database or a cloud
metadata service. :func:`check_target` is the one rule, called when a target is registered
and again before every attempt (a name's addresses can change between the two): the URL
must be ``https``, its host must resolve, and every address it resolves to must be public —
not loopback, private, link-local, multicast, reserved or unspecified (an IPv4 address
inside IPv6 is judged as IPv4). The sender then connects to the very address that was
checked (:func:`cloud.ops.webhooks.send`), so a name cannot change in between.

``allow_private`` (the coordinator's ``webhook_allow_private`` setting) lifts the rule:
``http`` and any address, for receivers on the operator's own network and for tests.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

from cloud.ops.errors import DeliveryError

__all__ = ["Resolver", "check_target"]

Resolver = Callable[..., list[tuple[Any, ...]]]
"""``socket.getaddrinfo`` or a stand-in with its signature."""

_WHY = (
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_unspecified", "unspecified"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


def _not_public(address: str) -> str | None:
    """Why an address is not a public one, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, word in _WHY:
        if getattr(ip, attribute):
            return word
    return None if ip.is_global else "not public"


def check_target(
    url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo
) -> str | None:
    """The address to connect to for ``url`` (None: any, when ``allow_private``), or
    :class:`DeliveryError` saying why the URL may not be a webhook target. A host that does
    not resolve is ``retryable`` (DNS may be down for a moment); a refused one is not."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DeliveryError(f"not a usable URL: {exc}", retryable=False) from None
    schemes = ("http", "https") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        allowed = "an http(s)" if allow_private else "an https"
        raise DeliveryError(
            f"webhook targets must be {allowed} URL with a host, not {url[:200]!r}"
            + ("" if allow_private else " (webhook_allow_private allows http)"),
            retryable=False,
        )
    if allow_private:
        return None
    host = parts.hostname
    try:
        found = resolve(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {host!r}: {exc}", retryable=True) from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise DeliveryError(f"{host!r} resolves to no address", retryable=True)
    for address in addresses:
        why = _not_public(address)
        if why:
            raise DeliveryError(
                f"{host!r} is {address}, a {why} address: webhook targets must be public "
                "(an admin's webhook_allow_private setting allows others)",
                retryable=False,
            )
    return addresses[0]
