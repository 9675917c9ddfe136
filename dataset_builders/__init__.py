"""Local `datasets` builders of this project (datasets 4+ has no loading scripts: the builders are used directly)."""
