"""Every setting marketpipe reads, from environment variables, in one place.

Each process calls :func:`load` once at start-up and passes the resulting
:class:`Settings` down; nothing else in the code base reads ``os.environ`` for
configuration. The README's configuration table mirrors :data:`DOCUMENTED`.

Secrets (tokens, API keys, passwords, the order-signing key) are held in
:class:`Secret` so that a stray ``repr`` or log line prints ``'***'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


class Secret:
    """A secret value that prints as ``***`` in logs, reprs and f-strings.

    Only :meth:`reveal` gives the value, so every place that sends a secret
    over the wire is easy to find with grep.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


#: (variable, default, meaning) — the README's configuration table is generated from this.
DOCUMENTED: tuple[tuple[str, str, str], ...] = (
    ("KAFKA_BOOTSTRAP_SERVERS", "(local broker)", "Kafka bootstrap servers. Unset: `marketpipe kafka up` starts a local broker and its address is used."),
    ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    ("KAFKA_SASL_MECHANISM", "", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (with SASL_* protocols)."),
    ("KAFKA_SASL_USERNAME", "", "SASL user name."),
    ("KAFKA_SASL_PASSWORD", "", "SASL password (secret)."),
    ("KAFKA_SSL_CA_LOCATION", "", "CA bundle used to verify the brokers."),
    ("KAFKA_SSL_CERTIFICATE_LOCATION", "", "Client certificate (mutual TLS)."),
    ("KAFKA_SSL_KEY_LOCATION", "", "Client private key (mutual TLS)."),
    ("KAFKA_OPT_<NAME>", "", "Any other librdkafka property: KAFKA_OPT_SOCKET_KEEPALIVE_ENABLE=true sets socket.keepalive.enable."),
    ("SCHEMA_REGISTRY_URL", "", "Confluent-compatible Schema Registry. Set: Confluent wire format; unset: Avro single-object encoding."),
    ("SCHEMA_REGISTRY_BASIC_AUTH", "", "user:password for the registry (secret)."),
    ("MARKETPIPE_TOPIC_PREFIX", "", "Prefix for every topic name (e.g. `staging.`), so several pipelines share one cluster."),
    ("MARKETPIPE_HOME", "./.marketpipe", "Local state: the embedded broker's jars, data and log, pid files."),
    ("MARKETPIPE_KAFKA_PORT", "9092", "Port of the local broker (its controller uses the next port)."),
    ("MARKETPIPE_KAFKA_HEAP", "-Xms256m -Xmx768m", "JVM heap options of the local broker."),
    ("MARKETPIPE_METRICS_PORT", "0", "Prometheus port of a long-running process; 0 picks a free port (printed at start), -1 disables."),
    ("MARKETPIPE_LOG_LEVEL", "INFO", "Log level of every process."),
    ("JVQUANT_TOKEN", "", "jvQuant token (secret). Unset: the demo uses the jvQuant simulator."),
    ("JVQUANT_BASE_URL", "http://jvquant.com", "Where server allocation is asked (`/query/server`)."),
    ("JVQUANT_MARKET", "ab", "jvQuant market: ab, hk or us."),
    ("JVQUANT_TRADE_ACCOUNT", "", "Brokerage account (资金账号) for the trade API (secret)."),
    ("JVQUANT_TRADE_PASSWORD", "", "Trading password (secret)."),
    ("INFOWAY_API_KEY", "", "Infoway API key (secret). Unset: the demo uses the Infoway simulator."),
    ("INFOWAY_WS_URL", "wss://data.infoway.io/ws", "Infoway websocket endpoint."),
    ("INFOWAY_BUSINESS", "crypto", "Infoway channel: stock, crypto, common, ..."),
    ("JIN10_URL", "https://dc-quote-old.jin10.com", "Jin10 socket.io price wall base URL."),
    ("MARKETPIPE_ORDER_SIGNING_KEY", "", "HMAC-SHA256 key that order commands are signed with (secret). Required by `marketpipe trade`."),
    ("MARKETPIPE_TRADER_REFERENCE", "", "JSON file {symbol: {prev_close, name, st}}: previous closes for the price-band check and names for the broker."),
    ("MARKETPIPE_TRADER_ALLOW", "", "Comma-separated symbol allow-list for orders (empty: every A-share symbol)."),
    ("MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL", "1000000", "Largest price x volume of one order (CNY)."),
    ("MARKETPIPE_TRADER_MAX_DAILY_NOTIONAL", "5000000", "Largest sum of order notionals per account and day (CNY)."),
    ("MARKETPIPE_TRADER_MAX_ORDERS_PER_SECOND", "5", "Orders sent per second at most (exchanges flag 300/s as high-frequency)."),
    ("MARKETPIPE_TRADER_POLL_SECONDS", "2", "How often the trader polls the broker's orders (fills) and positions."),
    ("MARKETPIPE_BAR_INTERVAL", "60s", "Bar length of the processor (`marketpipe process --bar-interval`): 60s, 5s, 1m, 500ms."),
    ("MARKETPIPE_BAR_GRACE", "2s", "How long past its end a bar window waits for late ticks before it is emitted."),
    ("MARKETPIPE_BAR_HORIZON", "5m", "How late a tick may still correct an emitted bar (a revised bar is emitted); later ticks are counted and logged."),
    ("MARKETPIPE_PROCESSOR_BATCH", "2000", "Raw frames a processor agent takes per batch (one flush and one offset commit per batch)."),
    ("MARKETPIPE_PROCESSOR_PROFILE", "latency", "Processor latency/throughput trade-off: latency (2 ms batch window) or throughput (100 ms window, larger batches, less CPU per record); see processors/profile.py."),
    ("MARKETPIPE_PROCESSOR_AGENTS", "all", "What a processor worker runs: all, normalize (raw -> md.*) or bars (md.tick -> md.bar), to scale the two apart."),
    ("MARKETPIPE_PROCESSOR_SESSION_TIMEOUT", "30s", "Consumer-group session timeout: how soon a dead worker's partitions move to the others."),
    ("MARKETPIPE_REPLICATION_FACTOR", "1", "Replication factor of the topics the processor app creates for itself (use 3 in production)."),
)


def _env(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = env.get(name)
    return default if value is None or value == "" else value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _env(env, name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer") from exc


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


_UNITS_MS = (("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000))


def parse_duration_ms(text: str, name: str = "duration") -> int:
    """``"60s"`` → 60000; ``"1.5m"``, ``"300ms"``, ``"2h"``; a bare number is milliseconds."""
    raw = text.strip().lower()
    for suffix, factor in _UNITS_MS:
        number = raw[: -len(suffix)]
        if raw.endswith(suffix) and number.replace(".", "", 1).isdigit():
            return int(float(number) * factor)
    if raw.isdigit():
        return int(raw)
    raise SettingsError(f"{name}={text!r} is not a duration (examples: 500ms, 5s, 1m, 2h)")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _env(env, name, choices[0]).lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _duration(env: Mapping[str, str], name: str, default: str) -> int:
    return parse_duration_ms(_env(env, name, default), name)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    external: bool = False  # True when KAFKA_BOOTSTRAP_SERVERS names the brokers
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = Secret("")
    ssl_ca_location: str = ""
    ssl_certificate_location: str = ""
    ssl_key_location: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def client_config(self, bootstrap: str | None = None) -> dict[str, str]:
        """librdkafka properties shared by every producer, consumer and admin client."""
        conf: dict[str, str] = {"bootstrap.servers": bootstrap or self.bootstrap_servers}
        if self.security_protocol.upper() != "PLAINTEXT":
            conf["security.protocol"] = self.security_protocol
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.reveal(),
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({k: v for k, v in optional.items() if v})
        conf.update(self.extra)
        return conf


@dataclass(frozen=True)
class ProviderSettings:
    jvquant_token: Secret = Secret("")
    jvquant_base_url: str = "http://jvquant.com"
    jvquant_market: str = "ab"
    jvquant_trade_account: Secret = Secret("")
    jvquant_trade_password: Secret = Secret("")
    infoway_api_key: Secret = Secret("")
    infoway_ws_url: str = "wss://data.infoway.io/ws"
    infoway_business: str = "crypto"
    jin10_url: str = "https://dc-quote-old.jin10.com"


@dataclass(frozen=True)
class TraderSettings:
    reference: str = ""
    allow: tuple[str, ...] = ()
    max_order_notional: str = "1000000"
    max_daily_notional: str = "5000000"
    max_orders_per_second: int = 5
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class ProcessorSettings:
    bar_interval_ms: int = 60_000
    bar_grace_ms: int = 2_000
    bar_horizon_ms: int = 300_000
    batch: int = 2000
    session_timeout_ms: int = 30_000
    replication_factor: int = 1
    agents: str = "all"
    profile: str = "latency"


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    providers: ProviderSettings
    schema_registry_url: str = ""
    schema_registry_basic_auth: Secret = Secret("")
    topic_prefix: str = ""
    home: Path = Path(".marketpipe")
    kafka_port: int = 9092
    kafka_heap: str = "-Xms256m -Xmx768m"
    metrics_port: int = 0
    log_level: str = "INFO"
    order_signing_key: Secret = Secret("")
    trader: TraderSettings = field(default_factory=TraderSettings)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one (``md.tick`` → ``<prefix>md.tick``)."""
        return f"{self.topic_prefix}{name}"


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    extra = {
        key[len("KAFKA_OPT_"):].lower().replace("_", "."): value
        for key, value in env.items()
        if key.startswith("KAFKA_OPT_") and value != ""
    }
    protocol = _env(env, "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
        raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={protocol!r}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_port = _int(env, "MARKETPIPE_KAFKA_PORT", 9092)
    kafka = KafkaSettings(
        # unset: the broker `marketpipe kafka up` starts on this machine
        bootstrap_servers=_env(env, "KAFKA_BOOTSTRAP_SERVERS") or f"127.0.0.1:{kafka_port}",
        external=bool(_env(env, "KAFKA_BOOTSTRAP_SERVERS")),
        security_protocol=protocol,
        sasl_mechanism=_env(env, "KAFKA_SASL_MECHANISM"),
        sasl_username=_env(env, "KAFKA_SASL_USERNAME"),
        sasl_password=Secret(_env(env, "KAFKA_SASL_PASSWORD")),
        ssl_ca_location=_env(env, "KAFKA_SSL_CA_LOCATION"),
        ssl_certificate_location=_env(env, "KAFKA_SSL_CERTIFICATE_LOCATION"),
        ssl_key_location=_env(env, "KAFKA_SSL_KEY_LOCATION"),
        extra=extra,
    )
    providers = ProviderSettings(
        jvquant_token=Secret(_env(env, "JVQUANT_TOKEN")),
        jvquant_base_url=_env(env, "JVQUANT_BASE_URL", "http://jvquant.com").rstrip("/"),
        jvquant_market=_env(env, "JVQUANT_MARKET", "ab"),
        jvquant_trade_account=Secret(_env(env, "JVQUANT_TRADE_ACCOUNT")),
        jvquant_trade_password=Secret(_env(env, "JVQUANT_TRADE_PASSWORD")),
        infoway_api_key=Secret(_env(env, "INFOWAY_API_KEY")),
        infoway_ws_url=_env(env, "INFOWAY_WS_URL", "wss://data.infoway.io/ws"),
        infoway_business=_env(env, "INFOWAY_BUSINESS", "crypto"),
        jin10_url=_env(env, "JIN10_URL", "https://dc-quote-old.jin10.com").rstrip("/"),
    )
    return Settings(
        kafka=kafka,
        providers=providers,
        schema_registry_url=_env(env, "SCHEMA_REGISTRY_URL").rstrip("/"),
        schema_registry_basic_auth=Secret(_env(env, "SCHEMA_REGISTRY_BASIC_AUTH")),
        topic_prefix=_env(env, "MARKETPIPE_TOPIC_PREFIX"),
        home=Path(_env(env, "MARKETPIPE_HOME", ".marketpipe")).expanduser().absolute(),
        kafka_port=kafka_port,
        kafka_heap=_env(env, "MARKETPIPE_KAFKA_HEAP", "-Xms256m -Xmx768m"),
        metrics_port=_int(env, "MARKETPIPE_METRICS_PORT", 0),
        log_level=_env(env, "MARKETPIPE_LOG_LEVEL", "INFO").upper(),
        order_signing_key=Secret(_env(env, "MARKETPIPE_ORDER_SIGNING_KEY")),
        trader=TraderSettings(
            reference=_env(env, "MARKETPIPE_TRADER_REFERENCE"),
            allow=tuple(s.strip() for s in _env(env, "MARKETPIPE_TRADER_ALLOW").split(",") if s.strip()),
            max_order_notional=_env(env, "MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL", "1000000"),
            max_daily_notional=_env(env, "MARKETPIPE_TRADER_MAX_DAILY_NOTIONAL", "5000000"),
            max_orders_per_second=_int(env, "MARKETPIPE_TRADER_MAX_ORDERS_PER_SECOND", 5),
            poll_seconds=float(_env(env, "MARKETPIPE_TRADER_POLL_SECONDS", "2")),
        ),
        processor=ProcessorSettings(
            bar_interval_ms=_duration(env, "MARKETPIPE_BAR_INTERVAL", "60s"),
            bar_grace_ms=_duration(env, "MARKETPIPE_BAR_GRACE", "2s"),
            bar_horizon_ms=_duration(env, "MARKETPIPE_BAR_HORIZON", "5m"),
            batch=_int(env, "MARKETPIPE_PROCESSOR_BATCH", 2000),
            session_timeout_ms=_duration(env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT", "30s"),
            replication_factor=_int(env, "MARKETPIPE_REPLICATION_FACTOR", 1),
            agents=_choice(env, "MARKETPIPE_PROCESSOR_AGENTS", ("all", "normalize", "bars")),
            profile=_choice(env, "MARKETPIPE_PROCESSOR_PROFILE", ("latency", "throughput")),
        ),
    )
