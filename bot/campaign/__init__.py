"""Campaigns: definitions read from `campaigns/*.yaml`, checked against the dialog scripts."""
