"""Moving logs in and out: JSONL/CSV import and export, and demo data."""
