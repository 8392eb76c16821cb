"""Data exchange: field mappings, CSV/JSONL readers, CRM payload mapping."""
