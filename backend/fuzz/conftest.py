"""The fuzz run uses the test suite's throwaway database (created, migrated, dropped)."""

from tests.conftest import engine

__all__ = ["engine"]
