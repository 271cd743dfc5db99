"""Market knowledge the stages share: trading hours and the trading calendar, China time,
interval volumes and the canonical symbol rules."""
