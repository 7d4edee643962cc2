"""The contract: the trajectory record, its JSON Schema, the shard layout and the validator."""
