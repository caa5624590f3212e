"""The run's configuration: the schema and its declared ranges, the checks, Hydra composition.

Nothing here imports the model: the model registers against the names declared here.
"""
