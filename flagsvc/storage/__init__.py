"""SQLAlchemy 2 persistence: ORM rows and the database handle. No Flask here."""
