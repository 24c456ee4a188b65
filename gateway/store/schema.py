"""Every table on one MetaData: what Alembic migrates against and the drift test compares.

Importing this module loads every model module, so `metadata` is complete.
"""

from __future__ import annotations

from . import (  # noqa: F401  (their tables join metadata)
    auth_models,
    limit_models,
    models,
    profile_models,
    webhook_models,
)
from .base import Base

metadata = Base.metadata
