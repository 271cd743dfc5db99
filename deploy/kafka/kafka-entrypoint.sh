#!/bin/bash
# Writes server.properties from the environment, formats the KRaft log once, runs the broker.
#
# Defaults are the local launcher's single-node settings (marketpipe/kafka/local.py, kept equal by
# tests/deploy/test_deploy.py). Every KAFKA_<NAME> variable sets the property <name> ("_" -> ".",
# "__" -> "_", "___" -> "-"), e.g. KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://localhost:39092 sets
# advertised.listeners. Not properties: KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS, KAFKA_CLUSTER_ID.
# `kafka-entrypoint.sh --print-config` prints the properties it would write and exits.
set -euo pipefail

CONFIG_DIR=/var/lib/kafka/config
PROPS=$CONFIG_DIR/server.properties

declare -A conf=(
  [process.roles]="broker,controller"
  [node.id]="1"
  [controller.quorum.voters]="1@127.0.0.1:9093"
  [listeners]="PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093"
  [advertised.listeners]="PLAINTEXT://localhost:9092"
  [controller.listener.names]="CONTROLLER"
  [inter.broker.listener.name]="PLAINTEXT"
  [listener.security.protocol.map]="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  [log.dirs]="/var/lib/kafka/data"
  [offsets.topic.replication.factor]="1"
  [transaction.state.log.replication.factor]="1"
  [transaction.state.log.min.isr]="1"
  [share.coordinator.state.topic.replication.factor]="1"
  [share.coordinator.state.topic.min.isr]="1"
  [default.replication.factor]="1"
  [num.partitions]="1"
  [group.initial.rebalance.delay.ms]="0"
  [auto.create.topics.enable]="true"
  [log.retention.check.interval.ms]="60000"
)

while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS|KAFKA_JVM_OPTS|KAFKA_CLUSTER_ID|KAFKA_OPTS) continue ;;
    KAFKA_*) ;;
    *) continue ;;
  esac
  key=${name#KAFKA_}
  key=${key,,}
  key=${key//___/-}
  key=${key//__/@}
  key=${key//_/.}
  key=${key//@/_}
  conf[$key]=$value
done < <(env)

render() {
  local key
  for key in "${!conf[@]}"; do
    printf '%s=%s\n' "$key" "${conf[$key]}"
  done | LC_ALL=C sort
}

if [ "${1:-}" = --print-config ]; then
  render
  exit 0
fi
mkdir -p "$CONFIG_DIR"
render > "$PROPS"

data_dir=${conf[log.dirs]%%,*}
if [ ! -f "$data_dir/meta.properties" ]; then
  cluster_id=${KAFKA_CLUSTER_ID:-}
  # 16 random bytes, URL-safe base64 without padding; never one starting with "-", which the
  # storage tool's argument parser would take for an option (the local launcher does the same)
  while [ -z "$cluster_id" ] || [ "${cluster_id:0:1}" = "-" ]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  echo "kafka-entrypoint: formatting $data_dir (cluster id $cluster_id)"
  java -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" --ignore-formatted
fi

echo "kafka-entrypoint: starting Kafka, advertised.listeners=${conf[advertised.listeners]}"
# shellcheck disable=SC2086 # the option strings are word lists on purpose
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} \
  ${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError} \
  -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  -cp '/opt/kafka/libs/*' kafka.Kafka "$PROPS"
