"""The MQTT link: the one module of Wayline's sync layer that imports paho.

It connects in the background, reconnects with exponential backoff, re-subscribes on every
connect, publishes a retained ``online`` state and leaves an ``offline`` last will. An
unreachable broker is logged once per outage in one line, not on every retry. Received
messages are handed to a callback as ``(topic, payload)``; nothing here decodes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync.errors import BrokerUrlError

__all__ = ["BrokerAddress", "MqttLink", "parse_broker_url"]

log = logging.getLogger(__name__)


#: Query parameters a broker URL may carry (file paths of PEM files).
_URL_OPTIONS = {"ca": "ca_file", "cert": "cert_file", "key": "key_file"}
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to prove who we are to it.

    ``tls`` verifies the broker's certificate and host name against ``ca_file`` (the system's
    trust store when None); ``cert_file``/``key_file`` add a client certificate. The password
    never appears in ``url``, ``repr`` or a log line.
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def url(self) -> str:
        """The address as a URL without the password (for logs)."""
        user = f"{urllib.parse.quote(self.username, safe='')}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> BrokerAddress:
    """``mqtt[s]://[user[:password]@]host[:port][?ca=PEM&cert=PEM&key=PEM]`` → address.

    Keyword arguments (from settings, e.g. a password kept out of the URL in an environment
    file) fill what the URL leaves out; anything malformed raises BrokerUrlError in one line.
    """
    parsed = urllib.parse.urlsplit(url)
    example = "mqtt://127.0.0.1:1883 or mqtts://USER:PASSWORD@broker.example.com:8883"
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
        shown = _without_password(url)
        raise BrokerUrlError(f"broker URL must look like {example}, got {shown!r}")
    try:
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    except ValueError:
        raise BrokerUrlError(f"bad port in broker URL {_without_password(url)!r}") from None
    if parsed.path not in ("", "/") or parsed.fragment:
        raise BrokerUrlError(f"broker URL has a path: {_without_password(url)!r}")
    files: dict[str, str] = {}
    for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items():
        if key not in _URL_OPTIONS or len(values) != 1 or not values[0]:
            raise BrokerUrlError(
                f"broker URL option {key!r} unknown or empty (known: {', '.join(_URL_OPTIONS)})"
            )
        files[_URL_OPTIONS[key]] = values[0]
    tls = parsed.scheme == "mqtts"
    address = BrokerAddress(
        host=parsed.hostname,
        port=port,
        username=urllib.parse.unquote(parsed.username) if parsed.username else username,
        password=urllib.parse.unquote(parsed.password) if parsed.password else password,
        tls=tls,
        ca_file=files.get("ca_file", ca_file),
        cert_file=files.get("cert_file", cert_file),
        key_file=files.get("key_file", key_file),
    )
    if not tls and (address.ca_file or address.cert_file or address.key_file):
        raise BrokerUrlError("certificate files need an mqtts:// broker URL")
    if address.password and not address.username:
        raise BrokerUrlError("a broker password needs a username")
    if (address.cert_file is None) != (address.key_file is None):
        raise BrokerUrlError("a client certificate needs both cert and key")
    for option in ("ca_file", "cert_file", "key_file"):
        path = getattr(address, option)
        if path is not None and not os.path.isfile(path):
            raise BrokerUrlError(f"broker {option.removesuffix('_file')} file not found: {path}")
    return address


def _without_password(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


class MqttLink:
    """A persistent-session MQTT client that keeps itself connected.

    MQTT 5 by default. ``mqtt_v5=False`` speaks 3.1.1 with ``clean_session=False`` (the
    session then lives as long as the broker keeps persistent clients:
    ``persistent_client_expiration`` in ``deploy/mosquitto.conf``). The hub uses it:
    paho builds a properties object for every MQTT 5 message it receives, a cost that grows
    with the machine's load (docs/sync.md), and nothing in Wayline's sync uses MQTT 5
    properties.
    """

    def __init__(
        self,
        *,
        client_id: str,
        broker: BrokerAddress,
        subscriptions: list[str],
        on_message: Callable[[str, bytes], None],
        on_connected: Callable[[], None] = lambda: None,
        will: tuple[str, bytes] | None = None,
        online: tuple[str, bytes] | None = None,
        keepalive: int = 30,
        session_expiry_s: int = 7 * 24 * 3600,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        max_inflight: int = 100,
        mqtt_v5: bool = True,
    ) -> None:
        self.broker = broker
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._on_connected = on_connected
        self._online = online
        self._keepalive = keepalive
        self._session_expiry_s = session_expiry_s
        self._v5 = mqtt_v5
        self._connected = threading.Event()
        self._outage_logged = False
        self._stopping = False
        self._stopped = threading.Event()
        self._retry_min_s, self._retry_max_s = reconnect_min_s, reconnect_max_s
        self._retry_s = reconnect_min_s
        self._last_failure = 0.0
        if mqtt_v5:
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
        else:
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=False,
            )
        c.reconnect_delay_set(
            min_delay=max(1, int(reconnect_min_s)), max_delay=int(reconnect_max_s)
        )
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        if broker.username:
            c.username_pw_set(broker.username, broker.password)
        if broker.tls:
            # Verified by default: the broker's chain against ca_file (or the system's trust
            # store) and its host name against the certificate.
            c.tls_set(
                ca_certs=broker.ca_file,
                certfile=broker.cert_file,
                keyfile=broker.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.on_connect = self._handle_connect
        c.on_connect_fail = self._handle_connect_fail
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        c.on_socket_open = self._handle_socket_open
        self._client = c

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._session_expiry_s
            self._client.connect_async(
                self.broker.host,
                self.broker.port,
                keepalive=self._keepalive,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect_async(
                self.broker.host, self.broker.port, keepalive=self._keepalive
            )
        self._client.loop_start()

    def stop(self, *, offline: tuple[str, bytes] | None = None) -> None:
        """Publish a last state if connected, disconnect cleanly, and stop the network thread."""
        if offline is not None and self.connected:
            info = self._client.publish(offline[0], offline[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self._stopping = True
        self._stopped.set()
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Publish at QoS 1; False when not connected (the caller's outbox keeps the message)."""
        if not self.connected:
            return False
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # -- paho callbacks (paho's network thread) ------------------------------------------

    def _handle_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._log_outage(f"refused: {reason}")
            return
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        if self._online is not None:
            client.publish(self._online[0], self._online[1], qos=1, retain=True)
        if self._outage_logged:
            log.warning("broker %s reachable again", self.broker.url)
        self._outage_logged = False
        self._connected.set()
        try:
            self._on_connected()
        except Exception:
            log.exception("on_connected handler failed")

    def _handle_socket_open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        # Small messages and acks must not wait for Nagle's algorithm and delayed ACKs.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _handle_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self._log_outage("unreachable")
        self._back_off()

    def _back_off(self) -> None:
        """Wait out what is left of the backoff since the last failure.

        paho waits between attempts when the TCP connection fails, but retries a failed TLS
        handshake (an unknown CA, a clock outside the certificate's validity) at once, in a
        tight loop; this keeps every kind of failure to the same exponential backoff.
        """
        now = time.monotonic()
        if now - self._last_failure > 2 * self._retry_max_s:
            self._retry_s = self._retry_min_s  # a fresh outage starts from the shortest wait
        remaining = self._retry_s - (now - self._last_failure)
        if remaining > 0:
            self._stopped.wait(remaining)
        self._last_failure = time.monotonic()
        self._retry_s = min(self._retry_s * 2, self._retry_max_s)

    def _handle_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stopping:
            log.warning("lost broker %s (%s); retrying with backoff", self.broker.url, reason)

    def _handle_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("message handler failed for %s", msg.topic)

    def _log_outage(self, what: str) -> None:
        if not self._outage_logged:
            log.warning(
                "broker %s %s; working offline and retrying with backoff", self.broker.url, what
            )
            self._outage_logged = True
