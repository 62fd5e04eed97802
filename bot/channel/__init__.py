"""Channels: how a conversation reaches a customer (simulated today; Telegram and voice planned)."""
