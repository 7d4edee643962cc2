"""Readers: shards (local folder, Hub repo, URL list) -> typed samples with their frames."""
