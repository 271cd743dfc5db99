"""`marketpipe topics create` creates the declared topics with the declared configs."""

from __future__ import annotations

import subprocess
import sys

from confluent_kafka.admin import AdminClient, ConfigResource

from marketpipe import settings
from marketpipe.kafka import topics


def test_topics_create_matches_the_declared_list(mp_env: dict[str, str]) -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe", "topics", "create"], env=mp_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("created") == len(topics.TOPICS)

    s = settings.load(mp_env)
    admin = AdminClient(s.kafka.client_config())
    md = admin.list_topics(timeout=20)
    resources = []
    for spec in topics.TOPICS:
        name = s.topic(spec.name)
        assert name in md.topics, name
        assert len(md.topics[name].partitions) == spec.partitions, name
        resources.append(ConfigResource(ConfigResource.Type.TOPIC, name))
    for resource, future in admin.describe_configs(resources).items():
        actual = {k: v.value for k, v in future.result(20).items()}
        spec = topics.by_name(resource.name[len(s.topic_prefix):])
        for key, value in spec.config.items():
            assert actual[key] == value, (resource.name, key)

    again = subprocess.run([sys.executable, "-m", "marketpipe", "topics", "create"], env=mp_env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert again.stdout.count("exists") == len(topics.TOPICS)
    assert "created" not in again.stdout


def test_compacted_topics_are_the_keyed_state_ones() -> None:
    compacted = {t.name for t in topics.TOPICS if t.config.get("cleanup.policy") == "compact"}
    assert compacted == {topics.ORDER_LEDGER, topics.ORDER_CONTROL, topics.ORDER_POSITIONS, topics.MD_BAR_STATE,
                         topics.MD_COMPLETENESS}
    assert len({t.name for t in topics.TOPICS}) == len(topics.TOPICS)
