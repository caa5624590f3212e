"""One run to disk: simulate, record the tables, summarise, stage and publish the output."""
