"""OMOP CDM v5.4 in PostgreSQL as a site's data source (docs/omop.md)."""
