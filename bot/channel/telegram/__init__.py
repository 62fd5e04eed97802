"""The Telegram channel (aiogram 3): linking, conversations from scripts, limits, opt-out."""
