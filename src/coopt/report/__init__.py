"""What a run did: the summary, its markdown and html forms, and merging the results of shards."""
