"""Customers and their orders: importing shop exports (CSV, JSON lines) into the database."""
