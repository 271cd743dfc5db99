#!/bin/bash
# Healthy = the broker answers a Kafka ApiVersions request on its inter-broker listener.
# A bare TCP connect is not enough: the listener socket is bound before requests are processed.
# bash's /dev/tcp keeps this free of a JVM start (it runs every few seconds).
set -euo pipefail
props=/var/lib/kafka/config/server.properties
listeners=$(sed -n 's/^listeners=//p' "$props")
name=$(sed -n 's/^inter.broker.listener.name=//p' "$props")
port=""
IFS=',' read -ra items <<< "$listeners"
for item in "${items[@]}"; do
  if [ "${item%%://*}" = "$name" ]; then port=${item##*:}; fi
done
[ -n "$port" ] || { echo "no $name listener in $props"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
# size 12 | api_key 18 (ApiVersions) | version 0 | correlation id 1 | client id "hc"
printf '\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02hc' >&3
reply=$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
# response: size (4) | correlation id 1 | error_code 0
[ "${reply:8:12}" = "000000010000" ] || { echo "unexpected ApiVersions reply: ${reply:-none}"; exit 1; }
