"""Input/output: the one video reader/writer, atomic files and parquet shards."""
