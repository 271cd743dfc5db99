"""Talking to Kafka: client configurations, the declared topics and their ACLs, the local broker
launcher, and reading helpers every stage shares (compacted topics, time ranges, delivery)."""
