"""Raw videos -> video index -> caption-space episodes -> grounded samples -> shards."""
