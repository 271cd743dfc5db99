"""Every setting marketpipe reads, from environment variables, declared once.

A setting is one field of a section dataclass (:class:`KafkaSettings`, :class:`TraderSettings`,
...), declared with :func:`setting`: its variable, default, parser, one-line doc and whether it is
secret. :func:`load` only takes a snapshot of the environment; a section is parsed, by one generic
loader, the first time a command touches it (``settings.trader``). So a bad value of a setting a
command does not use (``MARKETPIPE_TRADER_POLL_SECONDS=abc marketpipe decode ...``) cannot stop
that command, and a bad value of one it does use is a :class:`SettingsError` naming the variable.

Nothing else in the code base reads ``os.environ`` for configuration. :data:`DOCUMENTED` and the
README's configuration table (:func:`markdown_table`) are generated from the declarations.

Secrets (tokens, API keys, passwords, the order-signing key) are held in :class:`Secret` so that a
stray ``repr`` or log line prints ``'***'``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar, overload


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


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


# ---- parsers: (text, variable name) -> value; a bad text raises SettingsError naming the variable

Parser = Callable[[Any, str], Any]  # (text, or a family's {suffix: text}; variable name) -> value


def text(raw: str, name: str) -> str:
    return raw


def url(raw: str, name: str) -> str:
    return raw.rstrip("/")


def integer(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer") from exc


def number(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc
    if not math.isfinite(value):
        raise SettingsError(f"{name}={raw!r} is not a finite number")
    return value


def decimal(raw: str, name: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise SettingsError(f"{name}={raw!r} is not a decimal number") from exc
    if not value.is_finite():
        raise SettingsError(f"{name}={raw!r} is not a finite number")
    return value


def path(raw: str, name: str) -> Path:
    return Path(raw).expanduser().absolute()


def optional_path(raw: str, name: str) -> Path | None:
    return path(raw, name) if raw else None


def comma_list(raw: str, name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


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


def duration_ms(raw: str, name: str) -> int:
    return parse_duration_ms(raw, name)


def choice(*choices: str, upper: bool = False) -> Parser:
    """One of ``choices``, compared case-insensitively and given back in their case."""
    def parse(raw: str, name: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise SettingsError(f"{name}={raw!r}: use one of {', '.join(c or '(empty)' for c in choices)}")
        return value
    return parse


def librdkafka_properties(raw: Mapping[str, str], name: str) -> dict[str, str]:
    """KAFKA_OPT_SOCKET_KEEPALIVE_ENABLE=true → {"socket.keepalive.enable": "true"}."""
    return {key.lower().replace("_", "."): value for key, value in raw.items()}


# ---- the declaration mechanism

_VAR = "marketpipe.setting"


@dataclass(frozen=True)
class Var:
    """One environment variable: everything the loader, the docs and the tests know about it."""

    name: str  # KAFKA_OPT_<NAME>: a family, every variable starting with KAFKA_OPT_
    default: str  # as text, parsed like a value; unset and empty both mean the default
    doc: str
    parse: Parser = text
    secret: bool = False
    shown: str | None = None  # the default as documented, when the text default says little

    @property
    def family_prefix(self) -> str | None:
        return self.name.split("<", 1)[0] if "<" in self.name else None

    @property
    def documented_default(self) -> str:
        return self.default if self.shown is None else self.shown

    @property
    def meaning(self) -> str:
        return f"(secret) {self.doc}" if self.secret else self.doc

    def read(self, env: Mapping[str, str]) -> Any:
        prefix = self.family_prefix
        if prefix is not None:
            members = {k[len(prefix):]: v for k, v in env.items() if k.startswith(prefix) and v != ""}
            return self.parse(members, self.name)
        value = self.parse(env.get(self.name) or self.default, self.name)
        return Secret(value) if self.secret else value


def setting(name: str, default: str, doc: str, parse: Parser = text, *, secret: bool = False,
            shown: str | None = None) -> Any:
    """A section field read from the environment variable ``name``."""
    return field(metadata={_VAR: Var(name, default, doc, parse, secret, shown)})


def variables(cls: type) -> Iterator[tuple[str, Var]]:
    """(field name, variable) of every setting a section declares, in declaration order."""
    for f in fields(cls):
        if _VAR in f.metadata:
            yield f.name, f.metadata[_VAR]


S = TypeVar("S")


def parse_section(cls: type[S], env: Mapping[str, str]) -> S:
    """The one loader: every declared field of the section ``cls`` from ``env``."""
    return cls(**{name: var.read(env) for name, var in variables(cls)})


# ---- the sections


@dataclass(frozen=True)
class KafkaSettings:
    """Where the brokers are, how to reach them, and under which topic names."""

    servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS", "", "Kafka bootstrap servers. Unset: `marketpipe kafka up` starts a local broker "
        "and its address is used.", shown="(local broker)")
    local_port: int = setting("MARKETPIPE_KAFKA_PORT", "9092", "Port of the local broker (its controller uses the "
                              "next port); the address used when KAFKA_BOOTSTRAP_SERVERS is unset.", integer)
    security_protocol: str = setting("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
                                     choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", upper=True))
    sasl_mechanism: str = setting("KAFKA_SASL_MECHANISM", "", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (with SASL_* protocols).")
    sasl_username: str = setting("KAFKA_SASL_USERNAME", "", "SASL user name.")
    sasl_password: Secret = setting("KAFKA_SASL_PASSWORD", "", "SASL password.", secret=True)
    sasl_password_file: Path | None = setting(
        "KAFKA_SASL_PASSWORD_FILE", "", "File holding the SASL password (used when KAFKA_SASL_PASSWORD is unset), so "
        "the password stays out of the environment and the shell history; `marketpipe kafka up --secure` writes one "
        "per component.", optional_path)
    ssl_ca_location: str = setting("KAFKA_SSL_CA_LOCATION", "", "CA bundle used to verify the brokers.")
    ssl_certificate_location: str = setting("KAFKA_SSL_CERTIFICATE_LOCATION", "", "Client certificate (mutual TLS).")
    ssl_key_location: str = setting("KAFKA_SSL_KEY_LOCATION", "", "Client private key (mutual TLS).")
    extra: Mapping[str, str] = setting(
        "KAFKA_OPT_<NAME>", "", "Any other librdkafka property: KAFKA_OPT_SOCKET_KEEPALIVE_ENABLE=true sets "
        "socket.keepalive.enable.", librdkafka_properties)
    topic_prefix: str = setting("MARKETPIPE_TOPIC_PREFIX", "", "Prefix for every topic name (e.g. `staging.`), so "
                                "several pipelines share one cluster; consumer groups carry it too.")

    @property
    def external(self) -> bool:
        """True when KAFKA_BOOTSTRAP_SERVERS names the brokers (someone else runs them)."""
        return bool(self.servers)

    @property
    def bootstrap_servers(self) -> str:
        return self.servers or f"127.0.0.1:{self.local_port}"

    def password(self) -> Secret:
        """The SASL password: KAFKA_SASL_PASSWORD, else the content of KAFKA_SASL_PASSWORD_FILE."""
        if self.sasl_password or self.sasl_password_file is None:
            return self.sasl_password
        try:
            return Secret(self.sasl_password_file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise SettingsError(f"KAFKA_SASL_PASSWORD_FILE={self.sasl_password_file}: cannot be read "
                                f"({exc.strerror or exc})") from None

    def client_config(self, bootstrap: str | None = None) -> dict[str, str]:
        """librdkafka properties shared by every producer, consumer and admin client."""
        conf: dict[str, str] = {"bootstrap.servers": bootstrap or self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            conf["security.protocol"] = self.security_protocol
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.password().reveal(),
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({k: v for k, v in optional.items() if v})
        conf.update(self.extra)
        return conf


@dataclass(frozen=True)
class SchemaRegistrySettings:
    url: str = setting("SCHEMA_REGISTRY_URL", "", "Confluent-compatible Schema Registry. Set: Confluent wire format; "
                       "unset: Avro single-object encoding.", url)
    basic_auth: Secret = setting("SCHEMA_REGISTRY_BASIC_AUTH", "", "user:password for the registry.", secret=True)


@dataclass(frozen=True)
class LocalSettings:
    """State on this machine, and the embedded broker `marketpipe kafka up` runs."""

    home: Path = setting("MARKETPIPE_HOME", "./.marketpipe", "Local state: the embedded broker's data and log, "
                         "pid files, the processor's tables, the demo's logs.", path)
    kafka_heap: str = setting("MARKETPIPE_KAFKA_HEAP", "-Xms256m -Xmx768m", "JVM heap options of the local broker.")
    # three nodes sit beside the pipeline on a small machine: each gets half the single broker's heap
    kafka_node_heap: str = setting("MARKETPIPE_KAFKA_NODE_HEAP", "-Xms128m -Xmx384m", "JVM heap options of each node "
                                   "of a local cluster (`marketpipe kafka up --brokers 3`).")
    kafka_pom: Path | None = setting("MARKETPIPE_KAFKA_POM", "", "Maven pom that pins the local broker's Kafka version "
                                     "(unset: the one marketpipe carries, deploy/kafka/pom.xml in a checkout).",
                                     optional_path, shown="(packaged)")
    cache_home: Path = setting("XDG_CACHE_HOME", "~/.cache", "User cache directory; the local broker's jars are cached "
                               "once per version under marketpipe/kafka-<version>, the local Schema Registry under "
                               "marketpipe/apicurio-registry-<version>.", path)
    registry_port: int = setting("MARKETPIPE_REGISTRY_PORT", "8081", "Port of the local Schema Registry "
                                 "(`marketpipe registry up`, the demo's registry) on 127.0.0.1.", integer)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = setting("MARKETPIPE_LOG_LEVEL", "INFO", "Log level of every process: DEBUG, INFO, WARNING, ERROR.",
                         choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", upper=True))


@dataclass(frozen=True)
class MetricsSettings:
    port: int = setting("MARKETPIPE_METRICS_PORT", "0", "Prometheus port of a long-running process; 0 picks a free "
                        "port (printed at start), -1 disables.", integer)
    host: str = setting("MARKETPIPE_METRICS_HOST", "127.0.0.1", "Address the Prometheus endpoints bind; 0.0.0.0 "
                        "exposes them on every interface (they have no authentication).")


@dataclass(frozen=True)
class ProviderSettings:
    jvquant_token: Secret = setting("JVQUANT_TOKEN", "", "jvQuant token. Unset: the demo uses the jvQuant simulator.",
                                    secret=True)
    jvquant_base_url: str = setting("JVQUANT_BASE_URL", "http://jvquant.com",
                                    "Where server allocation is asked (`/query/server`).", url)
    jvquant_market: str = setting("JVQUANT_MARKET", "ab", "jvQuant market: ab, hk or us.")
    jvquant_trade_account: Secret = setting("JVQUANT_TRADE_ACCOUNT", "", "Brokerage account (资金账号) for the trade API.",
                                            secret=True)
    jvquant_trade_password: Secret = setting("JVQUANT_TRADE_PASSWORD", "", "Trading password.", secret=True)
    infoway_api_key: Secret = setting("INFOWAY_API_KEY", "", "Infoway API key. Unset: the demo uses the Infoway "
                                      "simulator.", secret=True)
    infoway_ws_url: str = setting("INFOWAY_WS_URL", "wss://data.infoway.io/ws", "Infoway websocket endpoint.")
    infoway_business: str = setting("INFOWAY_BUSINESS", "crypto", "Infoway channel: stock, crypto, common, ...")
    infoway_subscribe_interval: float = setting(
        "INFOWAY_SUBSCRIBE_INTERVAL", "5", "Seconds between two Infoway subscribe requests (the provider's sample "
        "waits 5 s; 60 requests/min limit).", number)
    jin10_url: str = setting("JIN10_URL", "https://dc-quote-old.jin10.com", "Jin10 socket.io price wall base URL.", url)


@dataclass(frozen=True)
class ProducerSettings:
    subscription_silence: float = setting(
        "MARKETPIPE_SUBSCRIPTION_SILENCE", "30", "Seconds a subscribed code that has been delivering may stay "
        "silent while its market is open (or 5x its usual interval, when longer) before the producer re-subscribes "
        "it; silent one more such period, the connection is recycled (marketpipe/producers/liveness.py). 0 turns it "
        "off.", number)


@dataclass(frozen=True)
class OrderSettings:
    """What both ends of the order path share: `marketpipe order ...`, the client and the trader."""

    signing_key: Secret = setting("MARKETPIPE_ORDER_SIGNING_KEY", "", "HMAC-SHA256 key that order commands are "
                                  "signed with. Required by `marketpipe trade` and `marketpipe order`.", secret=True)


@dataclass(frozen=True)
class TraderSettings:
    reference: str = setting("MARKETPIPE_TRADER_REFERENCE", "", "JSON file {symbol: {prev_close, name, st}}: previous "
                             "closes for the price-band check and names for the broker.")
    allow: tuple[str, ...] = setting("MARKETPIPE_TRADER_ALLOW", "", "Comma-separated symbol allow-list for orders "
                                     "(empty: every A-share symbol).", comma_list)
    max_order_notional: Decimal = setting("MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL", "1000000",
                                          "Largest price x volume of one order (CNY).", decimal)
    max_daily_notional: Decimal = setting(
        "MARKETPIPE_TRADER_MAX_DAILY_NOTIONAL", "5000000", "Largest sum of order notionals per broker account and "
        "day (CNY), counted from the ledger across restarts.", decimal)
    max_orders_per_second: int = setting("MARKETPIPE_TRADER_MAX_ORDERS_PER_SECOND", "5", "Orders sent per second at "
                                         "most (exchanges flag 300/s as high-frequency).", integer)
    poll_seconds: float = setting("MARKETPIPE_TRADER_POLL_SECONDS", "2", "How often the trader polls the broker's "
                                  "orders (fills) and positions.", number)
    account_alias: str = setting(
        "MARKETPIPE_TRADER_ACCOUNT_ALIAS", "", "Public name of the broker account (JVQUANT_TRADE_ACCOUNT) in "
        "commands, events, positions and logs; empty: `acct-` + a keyed hash of the number.")
    max_daily_orders: int = setting("MARKETPIPE_TRADER_MAX_DAILY_ORDERS", "10000", "Orders sent per broker account "
                                    "and day at most (exchanges flag 20000/day as high-frequency).", integer)
    crash_point: str = setting(
        "MARKETPIPE_TRADER_CRASH_POINT", "", "Test hook, never set in production: `after_broker_accept` makes the "
        "trader SIGKILL itself right after the broker accepted an order (the crash-recovery test).",
        choice("", "after_broker_accept"))


@dataclass(frozen=True)
class ProcessorSettings:
    bar_interval_ms: int = setting("MARKETPIPE_BAR_INTERVAL", "60s", "Bar length of the processor (`marketpipe "
                                   "process --bar-interval`): 60s, 5s, 1m, 500ms.", duration_ms)
    bar_grace_ms: int = setting("MARKETPIPE_BAR_GRACE", "2s", "How long past its end a bar window waits for late "
                                "ticks before it is emitted.", duration_ms)
    bar_horizon_ms: int = setting("MARKETPIPE_BAR_HORIZON", "5m", "How late a tick may still correct an emitted bar "
                                  "(a revised bar is emitted); later ticks are counted and logged.", duration_ms)
    batch: int = setting("MARKETPIPE_PROCESSOR_BATCH", "2000", "Raw frames a processor agent takes per batch (one "
                         "flush and one offset commit per batch).", integer)
    agents: str = setting("MARKETPIPE_PROCESSOR_AGENTS", "split", "What a processor worker runs: split (`marketpipe "
                          "process` starts one worker normalizing raw -> md.* and one binning md.tick -> md.bar, so bars "
                          "never delay ticks), all (both in one process, less memory), normalize, or bars (one set, to "
                          "scale them apart).", choice("split", "all", "normalize", "bars"))
    session_timeout_ms: int = setting("MARKETPIPE_PROCESSOR_SESSION_TIMEOUT", "10s", "Consumer-group session timeout: "
                                      "how soon a dead worker's partitions move to the others. The worker's Kafka "
                                      "request timeout is the larger of this and 10 s (Faust allows no shorter one), "
                                      "so it also bounds how long a request stuck on a paused broker waits.",
                                      duration_ms)
    replication_factor: int = setting("MARKETPIPE_REPLICATION_FACTOR", "1", "Replication factor of the topics the "
                                      "processor app creates for itself (use 3 in production).", integer)
    profile: str = setting("MARKETPIPE_PROCESSOR_PROFILE", "latency", "Processor latency/throughput trade-off: latency "
                           "(fetches wait at most 10 ms at the broker) or throughput (up to 100 ms, whole bar "
                           "batches: fewer, larger batches); see marketpipe/processors/profile.py.",
                           choice("latency", "throughput"))
    completeness_flush_ms: int = setting("MARKETPIPE_COMPLETENESS_INTERVAL", "5s", "How often the processor writes "
                                         "the completeness ledger's coverage to md.completeness (a gap or fill is "
                                         "written with the batch that found it).", duration_ms)
    ab_window_ms: int = setting("MARKETPIPE_AB_WINDOW", "60s", "A/B capture (produce --line): how long the "
                                "processor remembers a record's content identity per connection; the other line's "
                                "copy arriving later than this after the first is published again.", duration_ms)
    trading_calendar: str = setting("MARKETPIPE_TRADING_CALENDAR", "exchange", "Which days jvQuant's A-share clock "
                                    "times (15:00:03, no date) belong to: exchange (SSE/SZSE trading days: a time "
                                    "received on a Saturday is Friday's) or every-day (for the simulators, which "
                                    "trade on weekends and holidays too).", choice("exchange", "every-day"))


class section(Generic[S]):  # noqa: N801 - reads like a field declaration
    """A :class:`Settings` attribute parsed from the snapshot on first access, then kept.

    A non-data descriptor: the parsed section is stored in the instance's ``__dict__``, which
    later reads find first (the way ``functools.cached_property`` works, also on frozen classes)."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> section[S]: ...
    @overload
    def __get__(self, obj: Settings, owner: type | None = None) -> S: ...

    def __get__(self, obj: Settings | None, owner: type | None = None) -> S | section[S]:
        if obj is None:
            return self
        value = parse_section(self.cls, obj.env)
        obj.__dict__[self.name] = value
        return value


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment; each section is parsed (and validated) when first used."""

    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    kafka = section(KafkaSettings)
    schema_registry = section(SchemaRegistrySettings)
    local = section(LocalSettings)
    logging = section(LoggingSettings)
    metrics = section(MetricsSettings)
    providers = section(ProviderSettings)
    producer = section(ProducerSettings)
    orders = section(OrderSettings)
    trader = section(TraderSettings)
    processor = section(ProcessorSettings)

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one (``md.tick`` → ``<prefix>md.tick``)."""
        return f"{self.topic_prefix}{name}"

    def group_id(self, name: str) -> str:
        """A consumer group for a pipeline under this topic prefix: pipelines sharing a cluster do not
        share offsets or partition assignments (``marketpipe-trader`` → ``marketpipe-trader-staging``)."""
        prefix = self.topic_prefix.rstrip(".")
        return f"{name}-{prefix}" if prefix else name

    def with_env(self, **values: str) -> Settings:
        """These settings with some variables set otherwise (a new snapshot, parsed anew)."""
        return Settings({**self.env, **values})

    # shortcuts the code base has always used
    @property
    def topic_prefix(self) -> str:
        return self.kafka.topic_prefix

    @property
    def schema_registry_url(self) -> str:
        return self.schema_registry.url

    @property
    def schema_registry_basic_auth(self) -> Secret:
        return self.schema_registry.basic_auth

    @property
    def home(self) -> Path:
        return self.local.home

    @property
    def kafka_port(self) -> int:
        return self.kafka.local_port

    @property
    def kafka_heap(self) -> str:
        return self.local.kafka_heap

    @property
    def kafka_node_heap(self) -> str:
        return self.local.kafka_node_heap

    @property
    def metrics_port(self) -> int:
        return self.metrics.port

    @property
    def metrics_host(self) -> str:
        return self.metrics.host

    @property
    def log_level(self) -> str:
        return self.logging.level

    @property
    def order_signing_key(self) -> Secret:
        return self.orders.signing_key


#: The sections of :class:`Settings`, in the order the docs list them.
SECTIONS: tuple[type, ...] = tuple(v.cls for v in vars(Settings).values() if isinstance(v, section))


def declared() -> Iterator[Var]:
    """Every declared variable, section by section."""
    for cls in SECTIONS:
        for _, var in variables(cls):
            yield var


def load(env: Mapping[str, str] | None = None) -> Settings:
    """The settings in ``env`` (default: the process environment). Cheap and never fails: a value
    is checked when its section is first used. Only declared variables are kept."""
    env = os.environ if env is None else env
    names = {var.name for var in declared()}
    families = tuple(var.family_prefix for var in declared() if var.family_prefix)
    return Settings({k: v for k, v in env.items() if k in names or k.startswith(families)})


#: (variable, default, meaning) of every setting, generated from the declarations.
DOCUMENTED: tuple[tuple[str, str, str], ...] = tuple((v.name, v.documented_default, v.meaning) for v in declared())


def markdown_table() -> str:
    """The README's configuration table (``python -m marketpipe.settings`` prints it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | {default} | {meaning} |" for name, default, meaning in DOCUMENTED]
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
