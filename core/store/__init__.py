"""The workspace: one folder with the SQLite database (WAL mode), image files and run folders."""
