"""The secured form of the local broker (``marketpipe kafka up --secure``): TLS, SCRAM users, ACLs.

What it makes, once per home, under ``<home>/kafka/secure`` (directory 0700, secrets 0600):

* a CA (``ca.pem``, its key ``ca.key``) made with ``openssl``, and a broker certificate for
  ``127.0.0.1``/``localhost`` signed by it, in a PKCS12 keystore (``broker.p12``, random password);
* one random SCRAM-SHA-512 password per component of :mod:`marketpipe.kafka.access` and one for
  ``admin`` (the broker's own principal and the one super user), in ``<user>.password``;
* one ``<user>.env`` per component: the client settings, naming the password *file*
  (``KAFKA_SASL_PASSWORD_FILE``), so sourcing it puts no password in the environment.

The client listener is SASL_SSL with SCRAM-SHA-512 only; the users are written into the metadata
log when it is formatted (the storage tool's ``--add-scram``). The controller listener (loopback
only) is SASL_PLAINTEXT with PLAIN and the admin credentials from the broker's own config:
SCRAM cannot authenticate controllers (their credentials live in the log they serve), and an
unauthenticated controller listener would make every local process a super user through it.
The KRaft ``StandardAuthorizer`` is on with ``allow.everyone.if.no.acl.found=false``: until
``marketpipe topics acl`` grants something, only ``admin`` may do anything.

:class:`BrokerSecurity` is the launcher's hook (``LocalKafka(security=...)``): broker properties,
format arguments, and the admin client settings the launcher uses for its readiness probe.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from marketpipe.kafka import access

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"


class SecurityError(RuntimeError):
    """The secured broker's material cannot be made or read; the message says why."""


def _private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def _openssl(*args: str, cwd: Path) -> None:
    try:
        result = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError:
        raise SecurityError("openssl is not installed (apt-get install openssl): it makes the local CA") from None
    if result.returncode != 0:
        raise SecurityError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def _jaas_string(value: str) -> str:
    # the passwords are token_urlsafe: nothing in them needs quoting in a JAAS option
    return f'"{value}"'


@dataclass(frozen=True)
class BrokerSecurity:
    """The secured broker's material in ``dir`` (``<home>/kafka/secure``)."""

    dir: Path

    @classmethod
    def of_home(cls, home: Path) -> BrokerSecurity:
        return cls(Path(home).absolute() / "kafka" / "secure")

    # -- paths ----------------------------------------------------------------------------
    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.dir / "broker.p12"

    def password_file(self, user: str) -> Path:
        return self.dir / f"{user}.password"

    def env_file(self, user: str) -> Path:
        return self.dir / f"{user}.env"

    @property
    def users(self) -> tuple[str, ...]:
        return (ADMIN, *(c.user for c in access.COMPONENTS))

    def exists(self) -> bool:
        return (self.dir / ".complete").exists()

    def password(self, user: str) -> str:
        try:
            return self.password_file(user).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecurityError(f"{self.password_file(user)}: {exc.strerror or exc} "
                                "(made by `marketpipe kafka up --secure`)") from None

    # -- making it -------------------------------------------------------------------------
    def ensure(self, host: str) -> None:
        """Make the CA, the broker keystore and the passwords unless this home has them."""
        if self.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        for user in self.users:
            _private(self.password_file(user), secrets.token_urlsafe(24) + "\n")
        _private(self.dir / "keystore.password", secrets.token_urlsafe(24) + "\n")
        d = self.dir
        # keys are written by openssl under a 0077 umask so they are never readable by others
        old = os.umask(0o077)
        try:
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                     "-days", "3650", "-subj", "/CN=marketpipe local CA", cwd=d)
            _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
                     "-subj", f"/CN={host}", cwd=d)
            (d / "san.ext").write_text(f"subjectAltName=IP:{host},IP:127.0.0.1,DNS:localhost\n")
            _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "broker.pem", "-days", "825", "-extfile", "san.ext", cwd=d)
            _openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem",
                     "-name", "broker", "-out", "broker.p12", "-passout", "file:keystore.password", cwd=d)
        finally:
            os.umask(old)
        os.chmod(self.ca_file, 0o644)  # the CA certificate is public: every client needs it
        for user in self.users:
            _private(self.env_file(user), "".join(f"{k}={v}\n" for k, v in self.client_env(user).items()))
        (d / ".complete").write_text("")

    # -- the launcher's hook -----------------------------------------------------------------
    def broker_properties(self, host: str, port: int, controller_port: int) -> dict[str, str]:
        admin_pw = _jaas_string(self.password(ADMIN))
        store_pw = (self.dir / "keystore.password").read_text(encoding="utf-8").strip()
        return {
            "listeners": f"{LISTENER}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            "advertised.listeners": f"{LISTENER}://{host}:{port}",
            "inter.broker.listener.name": LISTENER,
            "listener.security.protocol.map": f"{LISTENER}:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.{LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config":
                f"org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{ADMIN}\" "
                f"password={admin_pw};",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{ADMIN}\" "
                f"password={admin_pw} user_{ADMIN}={admin_pw};",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": store_pw,
            "ssl.key.password": store_pw,
            # the broker is a client of its own listener (inter-broker): it trusts the local CA
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def format_args(self) -> list[str]:
        """The storage tool's arguments that create every SCRAM user in the new metadata log."""
        args: list[str] = []
        for user in self.users:
            args += ["--add-scram", f"{MECHANISM}=[name={user},password={self.password(user)}]"]
        return args

    def client_env(self, user: str) -> dict[str, str]:
        """The environment of a client that authenticates as ``user`` (no password in it)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": LISTENER,
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(self.password_file(user)),
            "KAFKA_SSL_CA_LOCATION": str(self.ca_file),
        }

    def client_config(self, user: str = ADMIN) -> dict[str, str]:
        """librdkafka properties of a client authenticating as ``user`` (the launcher's probe)."""
        return {"security.protocol": LISTENER, "sasl.mechanism": MECHANISM, "sasl.username": user,
                "sasl.password": self.password(user), "ssl.ca.location": str(self.ca_file)}

    def instructions(self, bootstrap: str) -> str:
        """What ``kafka up --secure`` tells the operator: one env file per component. The files
        name password files, so neither this text nor the environment carries a password."""
        lines = [f"secured broker at {bootstrap}: SASL_SSL, SCRAM-SHA-512, ACLs enforced "
                 f"(grant them with `marketpipe topics acl`). Client settings per component "
                 f"(`set -a; . FILE; set +a`):"]
        for user in self.users:
            doc = "super user: topics create|acl" if user == ADMIN else access.by_user(user).doc
            lines.append(f"  {user:9} {self.env_file(user)}   # {doc}")
        return "\n".join(lines)


def refusal(client_config: dict[str, str], timeout: float = 10.0) -> str | None:
    """Why a secured broker refuses this client, in one line, or None when no TLS or SASL failure
    shows within ``timeout``. librdkafka reports either only as a connection failure it retries
    (to its log, ~3 lines a second); a throw-away producer's error callback sees the real cause."""
    import logging
    import time

    from confluent_kafka import KafkaError, Producer

    seen: list[KafkaError] = []
    quiet = logging.getLogger("marketpipe.kafka.security.probe")
    quiet.propagate = False  # the retries this probe provokes are what it reports, once
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    probe = Producer({**client_config, "error_cb": seen.append, "logger": quiet,
                      "reconnect.backoff.max.ms": "1000"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe.poll(0.2)
        for err in seen:
            text = err.str()
            user = client_config.get("sasl.username", "?")
            if err.code() == KafkaError._AUTHENTICATION:
                return (f"authentication failed: the broker refused user {user!r} with "
                        f"{client_config.get('sasl.mechanism', '?')} (wrong user name or password)")
            if "certificate verify failed" in text or "SSL handshake failed" in text:
                ca = client_config.get("ssl.ca.location", "(the system's CA bundle)")
                return (f"TLS handshake failed: the broker's certificate is not trusted by ssl.ca.location={ca} "
                        "(KAFKA_SSL_CA_LOCATION)" if "verify" in text else f"TLS handshake failed: {text}")
        seen.clear()
        try:
            if probe.list_topics(timeout=0.5).brokers:
                return None  # it answers: the failure was something else
        except Exception:  # noqa: BLE001 - not answering is what is being diagnosed
            continue
    return None
