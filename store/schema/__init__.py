"""The bottom layer: the typed tables, the record a call travels as, configuration, engines
and the Alembic revisions. Nothing here imports the layers above."""
