"""SQLModel as a layer: ``sqlmodel+<dbapi>`` over every DBAPI driver SQLAlchemy's layers sit on, sync and async.

SQLModel is SQLAlchemy's ORM with Pydantic models: its ``Session`` (and ``ext.asyncio`` ``AsyncSession``) subclass
SQLAlchemy's, so the session protocol is sa-orm's with SQLModel's session class in place of SQLAlchemy's; the
``orm.*`` cases declare their models as ``SQLModel`` classes (``layers/sa_kit.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..drivers.base import Session
from ..drivers.sqlalchemy_driver import SQLAlchemyORM


class SQLModelLayer(SQLAlchemyORM):
    name = "sqlmodel"
    cases_by_default: ClassVar[tuple[str, ...]] = ("orm.*",)
    layer_distributions: ClassVar[tuple[str, ...]] = ("sqlmodel",)
    # SQLModel's own validation refusing a naive datetime for a ``datetime`` field (``NaiveDatetime`` takes one)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (
        *SQLAlchemyORM.refusals, ("ValueError", r"^Datetime values must have timezone information"))
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (("sqlmodel", "sqlmodel"), *SQLAlchemyORM.profile_parts)
    profile_stages: ClassVar[dict[str, str]] = {"sqlmodel": "objects", **SQLAlchemyORM.profile_stages}
    # its bench rows are sa-orm's operations through SQLModel's Session class: when named (--driver sqlmodel+X)
    orm_benched_by_default: ClassVar[bool] = False  # runs in the bench when named (the 15 minutes)

    def orm_session(self, bind: Any) -> Any:
        if self.is_async:
            from sqlmodel.ext.asyncio.session import AsyncSession

            return AsyncSession(bind=bind)
        from sqlmodel import Session as SQLModelSession

        return SQLModelSession(bind=bind)

    def orm_kit(self, session: Session, prefix: str) -> Any:
        from .sa_kit import SQLModelKit

        return SQLModelKit(session, prefix)
