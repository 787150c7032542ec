//! Persistence of the file-transfer service: one trait, implemented for PostgreSQL and SQLite.
