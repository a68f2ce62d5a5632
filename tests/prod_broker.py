"""A Mosquitto started from ``deploy/mosquitto-prod.conf`` with ``deploy/acl``: passwords,
the ACL and a TLS listener whose certificate authority is made for the test.

Only the paths of the production example change (password file, ACL, certificates) and its
loopback listener moves to a free port; every other line is served as shipped.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from firmware_sim.broker import MosquittoBroker, free_port

__all__ = ["ProductionBroker", "make_ca", "write_password_file"]

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROD_CONFIG = DEPLOY / "mosquitto-prod.conf"
ACL = DEPLOY / "acl"


@dataclass(frozen=True)
class Pki:
    """A certificate authority and a server certificate for 127.0.0.1/localhost."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path) -> Pki:
    """A CA, a server certificate signed by it (SAN 127.0.0.1 and localhost), and a client
    certificate for ``veh-cert``, made with the openssl command."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Wayline test CA",
        cwd=folder,
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, ext in (
        ("server", "/CN=localhost", ["-extfile", "san.ext"]),
        ("client", "/CN=veh-cert", []),
    ):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject,
            cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", *ext,
            cwd=folder,
        )  # fmt: skip
    return Pki(
        ca=folder / "ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
    )


def write_password_file(path: Path, users: dict[str, str]) -> None:
    """A Mosquitto password file written by ``mosquitto_passwd`` itself."""
    path.write_text("")
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)


class ProductionBroker(MosquittoBroker):
    """The production example on loopback: plain MQTT on ``port``, TLS on ``tls_port``."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.pki = make_ca(workdir / "pki")
        self.password_file = workdir / "wayline.passwd"
        write_password_file(self.password_file, users)
        self.tls_port = free_port()
        text = PROD_CONFIG.read_text()
        for shipped, here in (
            ("/etc/mosquitto/wayline.passwd", str(self.password_file)),
            ("/etc/mosquitto/wayline.acl", str(ACL)),
            ("listener 1883 127.0.0.1\n", ""),  # the starter adds the loopback listener
        ):
            assert shipped in text, f"{shipped!r} is no longer in {PROD_CONFIG.name}"
            text = text.replace(shipped, here)
        config = workdir / "mosquitto-prod.conf"
        config.write_text(text)
        tls = "\n".join(
            (
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.pki.ca}",
                f"certfile {self.pki.server_cert}",
                f"keyfile {self.pki.server_key}",
                "tls_version tlsv1.2",
            )
        )
        super().__init__(workdir, config=config, extra_config=tls)
        self.port_plain = self.port

    def url_for(self, user: str, password: str, *, tls: bool = True) -> str:
        """A broker URL with credentials (and the test CA over TLS)."""
        if tls:
            return f"mqtts://{user}:{password}@localhost:{self.tls_port}?ca={self.pki.ca}"
        return f"mqtt://{user}:{password}@127.0.0.1:{self.port}"
