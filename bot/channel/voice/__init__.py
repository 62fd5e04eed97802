"""The voice channel: Twilio calls, their audio (μ-law, 8 kHz) and offline speech recognition."""
